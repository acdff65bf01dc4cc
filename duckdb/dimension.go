package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kubetrail/kubetrail"
)

// A dimension is a group of fields that many events share, stored once per
// distinct combination in a table of its own; events point to the row by an id.
// Where an event happened (eleven strings) is the same for all of a pod's events,
// and the process that acted is the same for all of its connections and file
// changes: kept once, they cost the events table one small integer each, and a
// filter on them is answered from the small table first.
type dimension struct {
	table    string   // the dimension's table
	idColumn string   // the id column in the events table
	fields   []string // stored fields, in reference order once built
	derived  []string // derived fields computed from this dimension's columns only
	columns  []column
	// maxCached bounds the cache of known combinations. When it is full it is
	// emptied: a combination seen again then gets a second row, which costs a row
	// and changes no answer.
	maxCached int
}

// dimState is what one store knows of a dimension's rows: the combinations it
// has and the next id. Each store keeps its own, so that several stores in one
// process (tests do that) never point to each other's rows.
type dimState struct {
	*dimension
	cache map[string]int64
	next  int64
}

// Dimensions of the event model.
var (
	scopes = &dimension{table: "scopes", idColumn: "scope_id", maxCached: 1 << 20,
		fields: []string{"k8s.cluster.name", "k8s.node.name", "k8s.ns.name", "k8s.workload.kind", "k8s.workload.name",
			"k8s.pod.name", "k8s.pod.uid", "container.id", "container.name", "container.image.repository", "container.image.tag"},
		derived: []string{"container.image", "evt.is_host"}}
	// A policy event has no process of its own but keeps its trigger's session:
	// session.id is the only field of this dimension that applies to it, so its
	// row holds the session id and nothing else (one row per session, shared by
	// its policy events). Through it, what finds a session's events (Trace,
	// Sessions, session.id and the linked ka.* fields in filters, linkSessions)
	// finds its policy events with no case of their own, while a comparison on a
	// process field reads NULL there and matches none, as on a Kubernetes
	// request. Session counts come from the events written (updateSessions), not
	// from this table, and skip policy events.
	processes = &dimension{table: "processes", idColumn: "proc_id", maxCached: 1 << 19,
		fields: []string{"proc.name", "proc.exepath", "proc.argv", "proc.pid", "proc.ppid", "proc.pname", "proc.cwd", "proc.tty",
			"proc.exec_id", "proc.pexec_id", "user.uid", "user.name", "user.loginuid", "group.gid",
			// A process belongs to one session all its life: kept with it, a session's
			// events are found through the small processes table, by integer.
			"session.id", "proc.exec_auditid"},
		derived: []string{"proc.exe", "proc.args", "proc.cmdline"}}
	dimensions = []*dimension{scopes, processes}
)

// dimensionOf returns the dimension a field (stored or derived) belongs to, or nil
// for fields of the events table itself.
func dimensionOf(field string) *dimension {
	for _, d := range dimensions {
		for _, f := range d.fields {
			if f == field {
				return d
			}
		}
		for _, f := range d.derived {
			if f == field {
				return d
			}
		}
	}
	return nil
}

func (d *dimension) createSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n  id BIGINT NOT NULL", d.table)
	for _, c := range d.columns {
		fmt.Fprintf(&b, ",\n  %s %s", c.name, c.sql)
	}
	b.WriteString("\n);\n")
	return b.String()
}

// selectList lists the dimension's columns, each prefixed with prefix.
func (d *dimension) selectList(prefix string) string {
	names := make([]string, len(d.columns))
	for i, c := range d.columns {
		names[i] = prefix + c.name
	}
	return strings.Join(names, ", ")
}

// key appends the event's key in the dimension to buf: its values of the
// dimension's fields, each ended by a zero byte; present says whether it has any.
func (d *dimension) key(buf []byte, e *kubetrail.Event) (key []byte, present bool) {
	for _, c := range d.columns {
		if c.field.AppliesTo(e.Category) {
			n := len(buf)
			buf = c.field.AppendKey(buf, e)
			present = present || len(buf) > n
		}
		buf = append(buf, 0)
	}
	return buf, present
}

// row returns the dimension's columns of e as the appender takes them.
func (d *dimension) row(id int64, e *kubetrail.Event) []driver.Value {
	row := make([]driver.Value, 1+len(d.columns))
	row[0] = id
	for i, c := range d.columns {
		if c.field.AppliesTo(e.Category) {
			row[1+i] = storedValue(c.field.Get(e))
		}
	}
	return row
}

// load reads the highest id and, for small dimensions, the known combinations.
func (d *dimState) load(ctx context.Context, db *sql.DB) error {
	d.cache = map[string]int64{}
	var max sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT max(id) FROM "+d.table).Scan(&max); err != nil {
		return fmt.Errorf("load %s: %w", d.table, err)
	}
	d.next = max.Int64 + 1
	return nil
}

// assign returns each event's id in the dimension (0 for an event with none of
// its fields) and appends the combinations not seen before, inside the caller's
// transaction. added lists the keys to forget if that transaction rolls back.
func (d *dimState) assign(conn *sql.Conn, events []*kubetrail.Event) (ids []int64, added []string, err error) {
	ids = make([]int64, len(events))
	var rows [][]driver.Value
	var buf []byte
	for i, e := range events {
		var present bool
		buf, present = d.key(buf[:0], e)
		if !present {
			continue
		}
		id, ok := d.cache[string(buf)] // no allocation for the lookup
		if !ok {
			if len(d.cache) >= d.maxCached {
				clear(d.cache)
			}
			id = d.next
			d.next++
			key := string(buf)
			d.cache[key] = id
			added = append(added, key)
			rows = append(rows, d.row(id, e))
		}
		ids[i] = id
	}
	if len(rows) == 0 {
		return ids, added, nil
	}
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", d.table)
		if err != nil {
			return fmt.Errorf("open %s appender: %w", d.table, err)
		}
		for _, row := range rows {
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return fmt.Errorf("append to %s: %w", d.table, err)
			}
		}
		return a.Close()
	})
	return ids, added, err
}

// forget drops keys added by a transaction that rolled back. Their ids are not
// reused, so no event can point to a row that was never stored.
func (d *dimState) forget(keys []string) {
	for _, k := range keys {
		delete(d.cache, k)
	}
}

// storedValue is how a field value is stored: empty strings and lists as NULL.
func storedValue(v any) driver.Value {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
	case []string:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}
