package duckdb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// MaxLimit bounds one page of search results.
const MaxLimit = 10000

// selectEvents reads whole events: the rows of the events query q (which must
// select * from events) joined with their dimensions, in the order of orderBy.
// The rows are materialised first and each dimension is read only for the ids
// they point to: left to itself, DuckDB hashed the whole processes table for a
// page of a hundred events (170 ms instead of 30 on ten million events).
func selectEvents(q, orderBy string) string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = "e." + c.name
	}
	sel := strings.Join(names, ", ")
	var joins strings.Builder
	for i, d := range dimensions {
		alias := fmt.Sprintf("d%d", i)
		sel += ", " + d.selectList(alias+".")
		// Without the IS NOT NULL, a page without any row of the dimension (a
		// Kubernetes request has no process) read the whole dimension table.
		fmt.Fprintf(&joins, " LEFT JOIN (SELECT * FROM %s WHERE id IN (SELECT %s FROM page WHERE %s IS NOT NULL)) %s ON %s.id = e.%s",
			d.table, d.idColumn, d.idColumn, alias, alias, d.idColumn)
	}
	return fmt.Sprintf("WITH page AS MATERIALIZED (%s) SELECT %s FROM page e%s %s", q, sel, joins.String(), orderBy)
}

// where builds the WHERE clause shared by every query: window, then filter.
func where(w kubetrail.Window, filter kubetrail.Expr) (string, []any, error) {
	var conds []string
	var args []any
	if !w.From.IsZero() {
		conds = append(conds, "evt_time >= ?")
		args = append(args, w.From.UTC())
	}
	if !w.To.IsZero() {
		conds = append(conds, "evt_time < ?")
		args = append(args, w.To.UTC())
	}
	if filter != nil {
		if _, ok := filter.(kubetrail.True); !ok {
			sqlf, fargs, err := compile(filter)
			if err != nil {
				return "", nil, err
			}
			conds = append(conds, sqlf)
			args = append(args, fargs...)
		}
	}
	if len(conds) == 0 {
		return "TRUE", nil, nil
	}
	return strings.Join(conds, " AND "), args, nil
}

// Events with equal times are ordered by these keys, which the cursor carries:
// a runtime event's stream and sequence number, a Kubernetes request's audit ID,
// a policy event's trigger, policy and rule (the rules of several policies may
// match one trigger, all at its time).
const tiebreakDesc = `coalesce(evt_stream, '') DESC, coalesce(evt_seq, 0) DESC, ` + eventKeySQL + ` DESC`

// eventKeySQL is the last key of the order: a request's audit ID, a policy
// event's key (a policy event raised on a request keeps the request's audit
// ID too, which is not its own), an empty key for runtime events.
const eventKeySQL = `(CASE WHEN evt_category = 'policy' THEN ` + policyKeySQL + ` ELSE coalesce(ka_auditid, '') END)`

type cursor struct {
	time   time.Time
	stream string
	seq    int64
	key    string // the audit ID or the policy key
}

// cursorAfter is the cursor of the page that follows event e. It reads the
// stored keys only: a runtime event read back carries its session's audit ID,
// which is not its own.
func cursorAfter(e *kubetrail.Event) cursor {
	c := cursor{time: e.Time, stream: e.Stream, seq: int64(e.Seq)}
	switch e.Category {
	case kubetrail.CategoryK8s:
		c.key = e.Audit.AuditID
	case kubetrail.CategoryPolicy:
		c.key = e.Alert.Trigger + "\n" + e.Alert.Policy + "\n" + e.Alert.Rule
	}
	return c
}

func (c cursor) encode() string {
	s := strconv.FormatInt(c.time.UnixNano(), 10) + "\x00" + c.stream + "\x00" + strconv.FormatInt(c.seq, 10) + "\x00" + c.key
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeCursor(s string) (cursor, error) {
	bad := kubetrail.Errorf(kubetrail.EINVALID, "cursor %q is not one this server issued", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 4 {
		return cursor{}, bad
	}
	ns, err1 := strconv.ParseInt(parts[0], 10, 64)
	seq, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	return cursor{time: time.Unix(0, ns).UTC(), stream: parts[1], seq: seq, key: parts[3]}, nil
}

// pageLimit is a query's limit: def when it gives none, refused above max.
func pageLimit(limit, def, max int) (int, error) {
	if limit <= 0 {
		return def, nil
	}
	if limit > max {
		return 0, kubetrail.Errorf(kubetrail.EINVALID, "limit %d is above the maximum of %d", limit, max)
	}
	return limit, nil
}

// Search returns a page of matching events, newest first.
func (s *Store) Search(ctx context.Context, q kubetrail.SearchQuery) (kubetrail.Page, error) {
	var page kubetrail.Page
	limit, err := pageLimit(q.Limit, 100, MaxLimit)
	if err != nil {
		return page, err
	}
	cond, args, err := where(q.Window, q.Filter)
	if err != nil {
		return page, err
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return page, err
		}
		cond += ` AND (evt_time < ? OR (evt_time = ? AND (coalesce(evt_stream, '') < ? OR (coalesce(evt_stream, '') = ? AND (coalesce(evt_seq, 0) < ? OR (coalesce(evt_seq, 0) = ? AND ` + eventKeySQL + ` < ?))))))`
		args = append(args, c.time, c.time, c.stream, c.stream, c.seq, c.seq, c.key)
	}
	rowids, err := s.newestRowids(ctx, q.Window, cond, args, limit+1)
	if err != nil {
		return page, err
	}
	// Read the page's rows whole only now: reading every column of every
	// matching row before the top-N cut was 7x slower on a filter matching a
	// million rows.
	inner := `SELECT * FROM events WHERE rowid IN (SELECT unnest(?::BIGINT[]))`
	query := selectEvents(inner, "ORDER BY e.evt_time DESC, "+strings.ReplaceAll(tiebreakDesc, "coalesce(", "coalesce(e."))
	events, err := s.readEvents(ctx, query, rowids)
	if err != nil {
		return page, err
	}
	if len(events) > limit {
		events = events[:limit]
		page.Next = cursorAfter(&events[limit-1]).encode()
	}
	page.Events = events
	return page, nil
}

// newestSlice is the newest stretch of a window searched on its own first.
const newestSlice = time.Hour

// newestRowids returns the row ids of the newest n events matching cond (the
// window's and filter's conditions, with args) in the window. It looks at the
// window's newest hour first, and at the rest only when that hour holds fewer
// than n: sorting a day's 2.6M matches to keep a page of them cost 240 ms, the
// last hour's 13 ms, and a page is nearly always found there. The two stretches
// do not overlap, so their results in order are the newest n of the window.
func (s *Store) newestRowids(ctx context.Context, w kubetrail.Window, cond string, args []any, n int) ([]int64, error) {
	hi := w.To
	if hi.IsZero() {
		hi = s.newest().Add(time.Nanosecond)
	}
	var ids []int64
	for _, from := range []time.Time{hi.Add(-newestSlice), {}} {
		if !w.From.IsZero() && (from.IsZero() || from.Before(w.From)) {
			from = w.From
		}
		bounds, bargs := "evt_time < ?", []any{hi.UTC()}
		if !from.IsZero() {
			bounds, bargs = "evt_time >= ? AND evt_time < ?", []any{from.UTC(), hi.UTC()}
		}
		rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT rowid FROM events WHERE %s AND %s ORDER BY evt_time DESC, %s LIMIT %d`,
			cond, bounds, tiebreakDesc, n-len(ids)), append(args[:len(args):len(args)], bargs...)...)
		if err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("query events: %w", err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		if len(ids) >= n || from.IsZero() || !from.After(w.From) {
			break
		}
		hi = from
	}
	return ids, nil
}

// Event returns one event by its id.
func (s *Store) Event(ctx context.Context, id string) (*kubetrail.Event, error) {
	var query string
	var args []any
	stream, rest, ok := strings.Cut(id, "/")
	if !ok || rest == "" {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "event id %q is not of the form <stream>/<seq>, audit/<auditID> or policy/<hash>", id)
	}
	switch {
	case stream == "audit":
		query = `SELECT * FROM events WHERE evt_category = 'k8s' AND ka_auditid = ? LIMIT 1`
		args = []any{rest}
	case stream == "policy" && isPolicyHash(rest):
		// The id is a hash of stored columns: compared on the few policy events.
		query = `SELECT * FROM events WHERE evt_category = 'policy' AND ` + derivedSQL["evt.id"] + ` = ? LIMIT 1`
		args = []any{id}
	default:
		seq, err := strconv.ParseUint(rest, 10, 63)
		if err != nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "event id %q: %q is not a sequence number", id, rest)
		}
		query = `SELECT * FROM events WHERE evt_stream = ? AND evt_seq = ? LIMIT 1`
		args = []any{stream, int64(seq)}
	}
	events, err := s.readEvents(ctx, selectEvents(query, ""), args...)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, kubetrail.Errorf(kubetrail.ENOTFOUND, "no event %s", id)
	}
	return &events[0], nil
}

// isPolicyHash reports whether s is the 32 lowercase hex digits of a policy
// event's id. A stream may be named policy too: its sequence numbers are
// shorter.
func isPolicyHash(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// readEvents reads events with a query built by selectEvents and fills in what
// they carry across session links.
func (s *Store) readEvents(ctx context.Context, query string, args ...any) ([]kubetrail.Event, error) {
	events, err := queryEvents(ctx, s.db, query, args...)
	if err != nil {
		return nil, err
	}
	return events, s.linkSessions(ctx, events)
}

// querier is a database or one connection of it (the write connection reads
// what its transaction has not committed yet).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryEvents runs a query built by selectEvents and scans the rows.
func queryEvents(ctx context.Context, db querier, query string, args ...any) ([]kubetrail.Event, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var events []kubetrail.Event
	all := append([]column{}, columns...)
	for _, d := range dimensions {
		all = append(all, d.columns...)
	}
	dest := make([]any, len(all))
	vals := make([]any, len(all))
	for i := range dest {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		var e kubetrail.Event
		for i, v := range vals {
			if v == nil {
				continue
			}
			if err := all[i].field.Set(&e, v); err != nil {
				return nil, fmt.Errorf("read column %s: %w", all[i].name, err)
			}
		}
		e.Time = e.Time.UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}

// Scopes counts matching events per scope and returns the tree.
func (s *Store) Scopes(ctx context.Context, q kubetrail.ScopeQuery) ([]*kubetrail.ScopeNode, error) {
	cond, args, err := where(q.Window, q.Filter)
	if err != nil {
		return nil, err
	}
	var groupCols string
	var levels []string
	switch q.GroupBy {
	case kubetrail.GroupByWorkload, "":
		groupCols = "k8s_cluster_name, k8s_ns_name, k8s_workload_kind, k8s_workload_name, k8s_pod_name"
		levels = []string{"cluster", "namespace", "workload", "pod"}
	case kubetrail.GroupByHost:
		groupCols = "k8s_cluster_name, k8s_node_name, container_id, container_name, container_image_repository"
		levels = []string{"cluster", "node", "container"}
	default:
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "group by %q: want %s or %s", q.GroupBy, kubetrail.GroupByWorkload, kubetrail.GroupByHost)
	}
	// Count per scope id first (an integer group-by over the events), then name the
	// few thousand scopes.
	query := fmt.Sprintf(`SELECT %s, sum(c.n)::BIGINT FROM (SELECT scope_id, count(*) AS n FROM events WHERE %s GROUP BY scope_id) c
		LEFT JOIN scopes ON scopes.id = c.scope_id GROUP BY ALL ORDER BY ALL`, groupCols, cond)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("scope counts: %w", err)
	}
	defer rows.Close()
	tree := newScopeTree()
	for rows.Next() {
		var k [5]sql.NullString
		var n int64
		if err := rows.Scan(&k[0], &k[1], &k[2], &k[3], &k[4], &n); err != nil {
			return nil, fmt.Errorf("scope counts: %w", err)
		}
		if q.GroupBy == kubetrail.GroupByHost {
			tree.add(n,
				treeKey{level: levels[0], name: k[0].String},
				treeKey{level: levels[1], name: k[1].String},
				treeKey{level: levels[2], name: k[3].String, id: k[2].String, kind: k[4].String})
		} else {
			tree.add(n,
				treeKey{level: levels[0], name: k[0].String},
				treeKey{level: levels[1], name: k[1].String},
				treeKey{level: levels[2], name: k[3].String, kind: k[2].String},
				treeKey{level: levels[3], name: k[4].String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return tree.roots, nil
}

type treeKey struct{ level, name, kind, id string }

type scopeTree struct {
	roots []*kubetrail.ScopeNode
	index map[*kubetrail.ScopeNode]map[treeKey]*kubetrail.ScopeNode
	top   map[treeKey]*kubetrail.ScopeNode
}

func newScopeTree() *scopeTree {
	return &scopeTree{index: map[*kubetrail.ScopeNode]map[treeKey]*kubetrail.ScopeNode{}, top: map[treeKey]*kubetrail.ScopeNode{}}
}

// add adds n events to the path of keys, creating nodes on the way. Rows arrive in
// sorted order, so children keep that order.
func (t *scopeTree) add(n int64, path ...treeKey) {
	var parent *kubetrail.ScopeNode
	for _, k := range path {
		var siblings map[treeKey]*kubetrail.ScopeNode
		if parent == nil {
			siblings = t.top
		} else {
			siblings = t.index[parent]
			if siblings == nil {
				siblings = map[treeKey]*kubetrail.ScopeNode{}
				t.index[parent] = siblings
			}
		}
		node := siblings[k]
		if node == nil {
			node = &kubetrail.ScopeNode{Level: k.level, Name: k.name, Kind: k.kind, ID: k.id}
			siblings[k] = node
			if parent == nil {
				t.roots = append(t.roots, node)
			} else {
				parent.Children = append(parent.Children, node)
			}
		}
		node.Count += n
		parent = node
	}
}

// MaxBuckets bounds a histogram.
const MaxBuckets = 5000

// Histogram counts matching events per bucket and category.
func (s *Store) Histogram(ctx context.Context, q kubetrail.HistogramQuery) ([]kubetrail.Bucket, error) {
	if q.Window.From.IsZero() || q.Window.To.IsZero() || !q.Window.From.Before(q.Window.To) {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "a histogram needs a window with from before to")
	}
	if q.Bucket <= 0 {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "bucket width must be positive")
	}
	n := int64(q.Window.To.Sub(q.Window.From) / q.Bucket)
	if q.Window.To.Sub(q.Window.From)%q.Bucket != 0 {
		n++
	}
	if n > MaxBuckets {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "%d buckets of %s would be needed; at most %d are allowed", n, q.Bucket, MaxBuckets)
	}
	cond, args, err := where(q.Window, q.Filter)
	if err != nil {
		return nil, err
	}
	from := q.Window.From.UTC()
	// Group by the category enum and name it after grouping: casting each row
	// first cost a third more.
	query := fmt.Sprintf(`SELECT b, c::VARCHAR, n FROM (SELECT (epoch_ns(evt_time) - %d) // %d AS b, evt_category AS c, count(*) AS n FROM events WHERE %s GROUP BY ALL)`,
		from.UnixNano(), int64(q.Bucket), cond)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("histogram: %w", err)
	}
	defer rows.Close()
	buckets := make([]kubetrail.Bucket, n)
	for i := range buckets {
		buckets[i] = kubetrail.Bucket{Start: from.Add(time.Duration(i) * q.Bucket), Counts: map[kubetrail.Category]int64{}}
	}
	for rows.Next() {
		var b, c int64
		var cat string
		if err := rows.Scan(&b, &cat, &c); err != nil {
			return nil, fmt.Errorf("histogram: %w", err)
		}
		if b < 0 || b >= n {
			continue
		}
		buckets[b].Counts[kubetrail.Category(cat)] += c
		buckets[b].Total += c
	}
	return buckets, rows.Err()
}

// MaxValues bounds one list of values.
const MaxValues = 1000

// Values lists the commonest values of a field among matching events. A field
// of a dimension is counted per dimension row first, as scope counts are, and
// its values read from the few rows that matter.
func (s *Store) Values(ctx context.Context, q kubetrail.ValuesQuery) ([]kubetrail.ValueCount, error) {
	f := kubetrail.LookupField(q.Field)
	switch {
	case f == nil:
		return nil, kubetrail.ErrorAt(kubetrail.EINVALID, "field", "unknown field %q%s", q.Field, suggestion(q.Field))
	case f.Type == kubetrail.TypeTime, f.Name == "evt.id", f.Name == "evt.is_host":
		return nil, kubetrail.ErrorAt(kubetrail.EINVALID, "field", "%s has no values to list: every event has its own", f.Name)
	}
	limit, err := pageLimit(q.Limit, 20, MaxValues)
	if err != nil {
		return nil, err
	}
	cond, args, err := where(q.Window, q.Filter)
	if err != nil {
		return nil, err
	}
	expr, err := fieldSQL(f.Name)
	if err != nil {
		return nil, err
	}
	if f.Type == kubetrail.TypeStrings {
		expr = "unnest(" + expr + ")"
	}
	var query string
	if d := dimensionOf(f.Name); d != nil {
		query = fmt.Sprintf(`SELECT v, sum(c.n)::BIGINT AS n FROM (SELECT %s AS id, count(*) AS n FROM events WHERE %s GROUP BY 1) c
			JOIN (SELECT id, %s AS v FROM %s) x ON x.id = c.id`, d.idColumn, cond, expr, d.table)
	} else {
		query = fmt.Sprintf(`SELECT v, count(*)::BIGINT AS n FROM (SELECT %s AS v FROM events WHERE %s)`, expr, cond)
	}
	query = "SELECT v, sum(n)::BIGINT FROM (" + query + " GROUP BY v) WHERE v IS NOT NULL AND starts_with(v::VARCHAR, ?) GROUP BY v ORDER BY 2 DESC, 1 LIMIT ?"
	rows, err := s.db.QueryContext(ctx, query, append(args, q.Prefix, limit)...)
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", f.Name, err)
	}
	defer rows.Close()
	var out []kubetrail.ValueCount
	for rows.Next() {
		var v any
		var n int64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, fmt.Errorf("values of %s: %w", f.Name, err)
		}
		if f.Type == kubetrail.TypeInt {
			if i, ok := v.(int64); ok {
				v = i
			}
		} else if b, ok := v.([]byte); ok {
			v = string(b)
		}
		out = append(out, kubetrail.ValueCount{Value: v, Count: n})
	}
	return out, rows.Err()
}

func suggestion(field string) string {
	if s := kubetrail.SuggestField(field); s != "" {
		return " (did you mean " + s + "?)"
	}
	return ""
}

// WriteInventory records inventory observations.
func (s *Store) WriteInventory(ctx context.Context, objs []kubetrail.InventoryObject) error {
	_, err := s.WriteBatch(ctx, nil, objs)
	return err
}

// insertInventory adds observations inside the transaction WriteBatch opened.
func (s *Store) insertInventory(ctx context.Context, objs []kubetrail.InventoryObject) error {
	if len(objs) == 0 {
		return nil
	}
	stmt, err := s.wconn.PrepareContext(ctx, `INSERT INTO inventory VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record inventory: %w", err)
	}
	defer stmt.Close()
	for _, o := range objs {
		var ips any
		if len(o.IPs) > 0 {
			ips = o.IPs
		}
		if _, err := stmt.ExecContext(ctx, o.Time.UTC(), o.Cluster, o.Kind, o.Namespace, o.Name, o.UID, ips, o.Node, o.WorkloadKind, o.WorkloadName, o.Deleted); err != nil {
			return fmt.Errorf("record inventory: %w", err)
		}
	}
	return nil
}

// Inventory returns the observations since t in time order.
func (s *Store) Inventory(ctx context.Context, since time.Time) ([]kubetrail.InventoryObject, error) {
	query := `SELECT time, cluster, kind, namespace, name, uid, ips, node, workload_kind, workload_name, deleted FROM inventory`
	var args []any
	if !since.IsZero() {
		query += ` WHERE time >= ?`
		args = append(args, since.UTC())
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY time`, args...)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer rows.Close()
	var out []kubetrail.InventoryObject
	for rows.Next() {
		var o kubetrail.InventoryObject
		var cluster, ns, uid, node, wk, wn sql.NullString
		var ips any
		if err := rows.Scan(&o.Time, &cluster, &o.Kind, &ns, &o.Name, &uid, &ips, &node, &wk, &wn, &o.Deleted); err != nil {
			return nil, fmt.Errorf("read inventory: %w", err)
		}
		o.Time = o.Time.UTC()
		o.Cluster, o.Namespace, o.UID, o.Node, o.WorkloadKind, o.WorkloadName = cluster.String, ns.String, uid.String, node.String, wk.String, wn.String
		if l, ok := ips.([]any); ok {
			for _, ip := range l {
				if s, ok := ip.(string); ok {
					o.IPs = append(o.IPs, s)
				}
			}
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
