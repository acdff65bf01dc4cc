package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// Sessions are kept in a table of their own, one row per session, updated as
// their events arrive: what the session is (its scope and entry process), how
// much happened in it, and the Kubernetes request that started it. Attribution
// is a function of what is stored, recomputed for a pod whenever a session
// entry or an exec request of that pod is written, in the same transaction:
// whichever half arrives last completes the pair, and writing either again
// changes nothing.
const sessionsSchema = `CREATE TABLE IF NOT EXISTS sessions (
  id VARCHAR PRIMARY KEY,
  cluster VARCHAR, node VARCHAR, namespace VARCHAR, workload_kind VARCHAR, workload_name VARCHAR,
  pod_name VARCHAR, pod_uid VARCHAR, container_id VARCHAR, container_name VARCHAR, image VARCHAR,
  entry_name VARCHAR, entry_argv VARCHAR[], entry_tty BIGINT, entry_exec_auditid VARCHAR,
  start TIMESTAMP_NS, "end" TIMESTAMP_NS, exit_code BIGINT,
  first TIMESTAMP_NS NOT NULL, last TIMESTAMP_NS NOT NULL,
  commands BIGINT NOT NULL, connections BIGINT NOT NULL, file_changes BIGINT NOT NULL,
  req_audit_id VARCHAR, req_time TIMESTAMP_NS, req_verb VARCHAR, req_subresource VARCHAR, req_user VARCHAR,
  req_groups VARCHAR[], req_impuser VARCHAR, req_sourceips VARCHAR[], req_useragent VARCHAR,
  req_candidates VARCHAR[]
);
CREATE TABLE IF NOT EXISTS session_attachments (
  audit_id VARCHAR PRIMARY KEY, session_id VARCHAR NOT NULL, time TIMESTAMP_NS NOT NULL, verb VARCHAR,
  user_name VARCHAR, user_groups VARCHAR[], impuser VARCHAR, sourceips VARCHAR[], useragent VARCHAR
);
`

// linkedColumns maps each linked field to its column in the sessions table.
var linkedColumns = map[string]string{
	"session.id":            "id",
	"ka.auditid":            "req_audit_id",
	"ka.user.name":          "req_user",
	"ka.user.groups":        "req_groups",
	"ka.impuser.name":       "req_impuser",
	"ka.verb":               "req_verb",
	"ka.target.subresource": "req_subresource",
	"ka.sourceips":          "req_sourceips",
	"ka.useragent":          "req_useragent",
}

// sessionDelta is what one batch adds to a session.
type sessionDelta struct {
	id                                 string
	scope                              *kubetrail.Event // the first event: where the session is
	entry                              *kubetrail.Event // the entry process' execve, if in the batch
	exit                               *kubetrail.Event // the entry process' exit, if in the batch
	first, last                        time.Time
	commands, connections, fileChanges int64
}

// podKey names a pod across clusters.
type podKey struct{ cluster, namespace, pod string }

type timeRange struct{ lo, hi time.Time }

func (r *timeRange) add(t time.Time) {
	if r.lo.IsZero() || t.Before(r.lo) {
		r.lo = t
	}
	if t.After(r.hi) {
		r.hi = t
	}
}

// updateSessions folds a batch's new events into the sessions table and re-runs
// attribution for the pods whose sessions or exec requests the batch brought.
func (s *Store) updateSessions(ctx context.Context, events []*kubetrail.Event) error {
	deltas := map[string]*sessionDelta{}
	var order []string
	touched := map[podKey]*timeRange{}
	touch := func(k podKey, t time.Time) {
		if touched[k] == nil {
			touched[k] = &timeRange{}
		}
		touched[k].add(t)
	}
	for _, e := range events {
		if e.Category == kubetrail.CategoryK8s {
			if sub := e.Audit.Subresource; (sub == "exec" || sub == "attach" || sub == "ephemeralcontainers") && e.Audit.Resource == "pods" {
				touch(podKey{e.Cluster, e.Audit.TargetNamespace, e.Audit.TargetName}, e.Time)
			}
			continue
		}
		// A policy event is about an event of the session, which counted already:
		// it neither adds to the session's counts nor moves its span.
		if e.SessionID == "" || e.Category == kubetrail.CategoryPolicy {
			continue
		}
		d := deltas[e.SessionID]
		if d == nil {
			d = &sessionDelta{id: e.SessionID, scope: e, first: e.Time, last: e.Time}
			deltas[e.SessionID] = d
			order = append(order, e.SessionID)
		}
		if e.Time.Before(d.first) {
			d.first = e.Time
		}
		if e.Time.After(d.last) {
			d.last = e.Time
		}
		entry := e.Process.ExecID == e.SessionID
		switch {
		case e.Category == kubetrail.CategoryProcess && e.Type == "execve":
			d.commands++
			// The entry is the first program the process ran: a shell that runs its
			// last command in its own place (sh -c '...; rm x') execs again with the
			// same exec id, and the request named the shell.
			if entry && d.entry == nil {
				d.entry = e
				touch(podKey{e.Cluster, e.Namespace, e.PodName}, e.Time)
			}
		case e.Category == kubetrail.CategoryProcess && e.Type == "exit":
			if entry {
				d.exit = e
			}
		case e.Category == kubetrail.CategoryNetwork:
			d.connections++
		case e.Category == kubetrail.CategoryFile:
			d.fileChanges++
		}
	}
	for chunk := range slices.Chunk(order, 200) {
		if err := s.upsertSessions(ctx, chunk, deltas); err != nil {
			return err
		}
	}
	// An entry's exit decides between sessions that started too close to tell
	// apart: re-run attribution around the session's start.
	for _, id := range order {
		d := deltas[id]
		if d.exit == nil || d.entry != nil {
			continue
		}
		var start sql.NullTime
		if err := s.wconn.QueryRowContext(ctx, `SELECT start FROM sessions WHERE id = ?`, id).Scan(&start); err != nil {
			return fmt.Errorf("read session %s: %w", id, err)
		}
		if start.Valid {
			touch(podKey{d.exit.Cluster, d.exit.Namespace, d.exit.PodName}, start.Time.UTC())
		}
	}
	keys := make([]podKey, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b podKey) int {
		return strings.Compare(a.cluster+"/"+a.namespace+"/"+a.pod, b.cluster+"/"+b.namespace+"/"+b.pod)
	})
	for _, k := range keys {
		if err := s.attribute(ctx, k, *touched[k]); err != nil {
			return err
		}
	}
	return nil
}

const sessionColumns = 23 // the columns upsertSessions writes, id to file_changes

func (s *Store) upsertSessions(ctx context.Context, ids []string, deltas map[string]*sessionDelta) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO sessions (id, cluster, node, namespace, workload_kind, workload_name, pod_name, pod_uid,
  container_id, container_name, image, entry_name, entry_argv, entry_tty, entry_exec_auditid, start, "end", exit_code, first, last,
  commands, connections, file_changes) VALUES `)
	args := make([]any, 0, len(ids)*sessionColumns)
	for i, id := range ids {
		d := deltas[id]
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?" + strings.Repeat(", ?", sessionColumns-1) + ")")
		sc := d.scope
		args = append(args, id, storedValue(sc.Cluster), storedValue(sc.Node), storedValue(sc.Namespace),
			storedValue(sc.WorkloadKind), storedValue(sc.WorkloadName), storedValue(sc.PodName), storedValue(sc.PodUID),
			storedValue(sc.ContainerID), storedValue(sc.ContainerName), storedValue(sc.Image()))
		if d.entry != nil {
			args = append(args, storedValue(d.entry.Process.Name), storedValue(d.entry.Process.Argv), d.entry.Process.TTY,
				storedValue(d.entry.Process.ExecAuditID), d.entry.Time.UTC())
		} else {
			args = append(args, nil, nil, nil, nil, nil)
		}
		if d.exit != nil {
			args = append(args, d.exit.Time.UTC(), d.exit.Process.ExitCode)
		} else {
			args = append(args, nil, nil)
		}
		args = append(args, d.first.UTC(), d.last.UTC(), d.commands, d.connections, d.fileChanges)
	}
	// A session's events come from one agent stream in order, so a later batch
	// only adds; the scope is the same on every event and is kept as first seen.
	b.WriteString(` ON CONFLICT (id) DO UPDATE SET
  pod_name = coalesce(sessions.pod_name, excluded.pod_name), namespace = coalesce(sessions.namespace, excluded.namespace),
  workload_kind = coalesce(sessions.workload_kind, excluded.workload_kind), workload_name = coalesce(sessions.workload_name, excluded.workload_name),
  container_name = coalesce(sessions.container_name, excluded.container_name), image = coalesce(sessions.image, excluded.image),
  entry_name = coalesce(sessions.entry_name, excluded.entry_name), entry_argv = coalesce(sessions.entry_argv, excluded.entry_argv),
  entry_tty = coalesce(sessions.entry_tty, excluded.entry_tty), start = coalesce(sessions.start, excluded.start),
  entry_exec_auditid = coalesce(sessions.entry_exec_auditid, excluded.entry_exec_auditid),
  "end" = coalesce(excluded."end", sessions."end"), exit_code = coalesce(excluded.exit_code, sessions.exit_code),
  first = least(sessions.first, excluded.first), last = greatest(sessions.last, excluded.last),
  commands = sessions.commands + excluded.commands, connections = sessions.connections + excluded.connections,
  file_changes = sessions.file_changes + excluded.file_changes`)
	if _, err := s.wconn.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("update sessions: %w", err)
	}
	return nil
}

// attribute re-runs matching for one pod around r. Candidates are read from
// twice the window either side (and, for kubectl debug, the time an ephemeral
// container may take to start), and only sessions starting within one window
// either side are rewritten, so that a session whose request lies just outside
// r is not unpaired for want of seeing it.
func (s *Store) attribute(ctx context.Context, k podKey, r timeRange) error {
	w := s.matchWindow()
	ephemeral := kubetrail.EphemeralStartWindow
	lo, hi := r.lo.Add(-2*w).UTC(), r.hi.Add(2*w+ephemeral).UTC()
	// A session is its container's init when no earlier session of the same
	// container exists: the container's own first process.
	rows, err := s.wconn.QueryContext(ctx,
		`SELECT id, container_name, entry_argv, start, "end", coalesce(req_audit_id, array_to_string(req_candidates, '?')), entry_exec_auditid,
		   NOT EXISTS (SELECT 1 FROM sessions o WHERE o.container_id = s.container_id AND o.start < s.start)
		 FROM sessions s
		 WHERE cluster IS NOT DISTINCT FROM ? AND namespace = ? AND pod_name = ? AND start BETWEEN ? AND ?`,
		storedValue(k.cluster), k.namespace, k.pod, lo, hi)
	if err != nil {
		return fmt.Errorf("read sessions to attribute: %w", err)
	}
	var cands []kubetrail.SessionCandidate
	current := map[string]string{}
	for rows.Next() {
		var id string
		var container, audit sql.NullString
		var argv any
		var start time.Time
		var end sql.NullTime
		var init bool
		var claim sql.NullString
		if err := rows.Scan(&id, &container, &argv, &start, &end, &audit, &claim, &init); err != nil {
			rows.Close()
			return fmt.Errorf("read sessions to attribute: %w", err)
		}
		c := kubetrail.SessionCandidate{ID: id, Cluster: k.cluster, Namespace: k.namespace, PodName: k.pod,
			ContainerName: container.String, Start: start.UTC(), ContainerInit: init, ClaimedAuditID: claim.String}
		if end.Valid {
			c.End = end.Time.UTC()
		}
		c.Argv = strs(argv)
		cands = append(cands, c)
		current[id] = audit.String
	}
	if err := rows.Close(); err != nil {
		return err
	}
	filter := kubetrail.And{Terms: []kubetrail.Expr{
		kubetrail.Comparison{Field: "evt.category", Op: kubetrail.OpEq, Values: []any{"k8s"}},
		kubetrail.Comparison{Field: "ka.target.resource", Op: kubetrail.OpEq, Values: []any{"pods"}},
		kubetrail.Comparison{Field: "ka.target.subresource", Op: kubetrail.OpIn, Values: []any{"exec", "attach", "ephemeralcontainers"}},
		kubetrail.Comparison{Field: "ka.target.namespace", Op: kubetrail.OpEq, Values: []any{k.namespace}},
		kubetrail.Comparison{Field: "ka.target.name", Op: kubetrail.OpEq, Values: []any{k.pod}},
	}}
	cond, args, err := where(kubetrail.Window{From: lo.Add(-ephemeral), To: r.hi.Add(2*w + time.Nanosecond)}, filter)
	if err != nil {
		return err
	}
	reqEvents, err := queryEvents(ctx, s.wconn, selectEvents("SELECT * FROM events WHERE "+cond, ""), args...)
	if err != nil {
		return fmt.Errorf("read exec requests to attribute: %w", err)
	}
	var reqs []kubetrail.ExecRequest
	byAudit := map[string]*kubetrail.Event{}
	for i := range reqEvents {
		e := &reqEvents[i]
		if e.Cluster != k.cluster {
			continue
		}
		byAudit[e.Audit.AuditID] = e
		r := kubetrail.ExecRequest{AuditID: e.Audit.AuditID, Cluster: e.Cluster, Namespace: e.Audit.TargetNamespace,
			PodName: e.Audit.TargetName, Container: e.Audit.ExecContainer, Command: e.Audit.ExecCommand,
			Subresource: e.Audit.Subresource, Verb: e.Audit.Verb, Time: e.Time, Code: e.Audit.ResponseCode}
		if e.Audit.Stage == "ResponseComplete" {
			r.End = e.Audit.StageTime // the stream closed: the process it ran has ended
		}
		reqs = append(reqs, r)
	}
	if err := s.attachments(ctx, k, reqs, byAudit); err != nil {
		return err
	}
	if len(cands) == 0 {
		return nil
	}
	pairs := kubetrail.MatchSessions(cands, reqs, w)
	rlo, rhi := r.lo.Add(-w), r.hi.Add(w+ephemeral)
	for _, c := range cands {
		if c.Start.Before(rlo) || c.Start.After(rhi) {
			continue
		}
		m, paired := pairs[c.ID]
		var candidates []string // the people an ambiguous session may be
		if m.Ambiguous() {
			for _, id := range append([]string{m.AuditID}, m.Alternatives...) {
				candidates = append(candidates, byAudit[id].Audit.UserName)
			}
			slices.Sort(candidates)
			candidates = slices.Compact(candidates)
		}
		state := m.AuditID
		if candidates != nil {
			state = strings.Join(candidates, "?")
		}
		if state == current[c.ID] {
			continue
		}
		if !paired || candidates != nil {
			if _, err := s.wconn.ExecContext(ctx, `UPDATE sessions SET req_audit_id = NULL, req_time = NULL, req_verb = NULL,
				req_subresource = NULL, req_user = NULL, req_groups = NULL, req_impuser = NULL, req_sourceips = NULL,
				req_useragent = NULL, req_candidates = ? WHERE id = ?`, storedValue(candidates), c.ID); err != nil {
				return fmt.Errorf("unpair session %s: %w", c.ID, err)
			}
			continue
		}
		e := byAudit[m.AuditID]
		if _, err := s.wconn.ExecContext(ctx, `UPDATE sessions SET req_audit_id = ?, req_time = ?, req_verb = ?,
			req_subresource = ?, req_user = ?, req_groups = ?, req_impuser = ?, req_sourceips = ?, req_useragent = ?,
			req_candidates = NULL WHERE id = ?`,
			m.AuditID, e.Time.UTC(), storedValue(e.Audit.Verb), storedValue(e.Audit.Subresource), storedValue(e.Audit.UserName),
			storedValue(e.Audit.UserGroups), storedValue(e.Audit.ImpUserName), storedValue(e.Audit.SourceIPs),
			storedValue(e.Audit.UserAgent), c.ID); err != nil {
			return fmt.Errorf("pair session %s with request %s: %w", c.ID, m.AuditID, err)
		}
	}
	return nil
}

// attachments records which session each kubectl attach request among reqs
// joined: the running init of the container it named, however long before the
// request that started.
func (s *Store) attachments(ctx context.Context, k podKey, reqs []kubetrail.ExecRequest, byAudit map[string]*kubetrail.Event) error {
	var attaches []kubetrail.ExecRequest
	latest := time.Time{}
	for _, r := range reqs {
		if r.Subresource == "attach" {
			attaches = append(attaches, r)
			if r.Time.After(latest) {
				latest = r.Time
			}
		}
	}
	if len(attaches) == 0 {
		return nil
	}
	rows, err := s.wconn.QueryContext(ctx, `SELECT id, container_name, start, "end" FROM sessions s
		WHERE cluster IS NOT DISTINCT FROM ? AND namespace = ? AND pod_name = ? AND start <= ?
		  AND NOT EXISTS (SELECT 1 FROM sessions o WHERE o.container_id = s.container_id AND o.start < s.start)`,
		storedValue(k.cluster), k.namespace, k.pod, latest.UTC())
	if err != nil {
		return fmt.Errorf("read the containers' sessions: %w", err)
	}
	var inits []kubetrail.SessionCandidate
	for rows.Next() {
		c := kubetrail.SessionCandidate{Cluster: k.cluster, Namespace: k.namespace, PodName: k.pod, ContainerInit: true}
		var container sql.NullString
		var end sql.NullTime
		if err := rows.Scan(&c.ID, &container, &c.Start, &end); err != nil {
			rows.Close()
			return fmt.Errorf("read the containers' sessions: %w", err)
		}
		c.ContainerName, c.Start, c.End = container.String, c.Start.UTC(), end.Time.UTC()
		if !end.Valid {
			c.End = time.Time{}
		}
		inits = append(inits, c)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	joined := kubetrail.MatchAttachments(inits, attaches)
	for _, r := range attaches {
		// Written again whenever the pod is re-attributed: the same row.
		if _, err := s.wconn.ExecContext(ctx, `DELETE FROM session_attachments WHERE audit_id = ?`, r.AuditID); err != nil {
			return fmt.Errorf("record an attach: %w", err)
		}
		id, ok := joined[r.AuditID]
		if !ok {
			continue
		}
		e := byAudit[r.AuditID]
		if _, err := s.wconn.ExecContext(ctx, `INSERT INTO session_attachments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.AuditID, id, e.Time.UTC(), storedValue(e.Audit.Verb), storedValue(e.Audit.UserName), storedValue(e.Audit.UserGroups),
			storedValue(e.Audit.ImpUserName), storedValue(e.Audit.SourceIPs), storedValue(e.Audit.UserAgent)); err != nil {
			return fmt.Errorf("record an attach: %w", err)
		}
	}
	return nil
}

// readAttachments fills in the sessions' attachments.
func (s *Store) readAttachments(ctx context.Context, sessions []kubetrail.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	ids := make([]string, len(sessions))
	byID := map[string]*kubetrail.Session{}
	for i := range sessions {
		ids[i] = sessions[i].ID
		byID[sessions[i].ID] = &sessions[i]
	}
	rows, err := s.db.QueryContext(ctx, `SELECT session_id, audit_id, time, verb, user_name, user_groups, impuser, sourceips, useragent
		FROM session_attachments WHERE list_contains(?::VARCHAR[], session_id) ORDER BY time`, ids)
	if err != nil {
		return fmt.Errorf("read attachments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a kubetrail.SessionRequest
		var verb, user, imp, ua sql.NullString
		var groups, ips any
		if err := rows.Scan(&id, &a.AuditID, &a.Time, &verb, &user, &groups, &imp, &ips, &ua); err != nil {
			return fmt.Errorf("read attachments: %w", err)
		}
		a.Time, a.Subresource = a.Time.UTC(), "attach"
		a.Verb, a.UserName, a.ImpUserName, a.UserAgent = verb.String, user.String, imp.String, ua.String
		a.UserGroups, a.SourceIPs = strs(groups), strs(ips)
		if ss := byID[id]; ss != nil {
			ss.Attachments = append(ss.Attachments, a)
		}
	}
	return rows.Err()
}

func (s *Store) matchWindow() time.Duration {
	if s.MatchWindow > 0 {
		return s.MatchWindow
	}
	return kubetrail.DefaultMatchWindow
}

const sessionSelect = `SELECT id, cluster, node, namespace, workload_kind, workload_name, pod_name, pod_uid, container_id,
  container_name, image, entry_name, entry_argv, entry_tty, entry_exec_auditid, start, "end", exit_code, first, last, commands, connections,
  file_changes, req_audit_id, req_time, req_verb, req_subresource, req_user, req_groups, req_impuser, req_sourceips,
  req_useragent, req_candidates FROM sessions`

func scanSessions(rows *sql.Rows) ([]kubetrail.Session, error) {
	defer rows.Close()
	var out []kubetrail.Session
	for rows.Next() {
		var ss kubetrail.Session
		var str [18]sql.NullString
		var claim sql.NullString
		var tty, exit sql.NullInt64
		var start, end, reqTime sql.NullTime
		var argv, groups, ips, candidates any // lists, or nil
		if err := rows.Scan(&ss.ID, &str[0], &str[1], &str[2], &str[3], &str[4], &str[5], &str[6], &str[7], &str[8], &str[9],
			&str[10], &argv, &tty, &claim, &start, &end, &exit, &ss.First, &ss.Last, &ss.Commands, &ss.Connections, &ss.FileChanges,
			&str[11], &reqTime, &str[12], &str[13], &str[14], &groups, &str[15], &ips, &str[16], &candidates); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		ss.Cluster, ss.Node, ss.Namespace, ss.WorkloadKind, ss.WorkloadName = str[0].String, str[1].String, str[2].String, str[3].String, str[4].String
		ss.PodName, ss.PodUID, ss.ContainerID, ss.ContainerName, ss.Image = str[5].String, str[6].String, str[7].String, str[8].String, str[9].String
		ss.EntryName, ss.EntryArgv, ss.EntryTTY, ss.EntryExecAuditID = str[10].String, strs(argv), tty.Int64, claim.String
		ss.First, ss.Last = ss.First.UTC(), ss.Last.UTC()
		if start.Valid {
			ss.Start = start.Time.UTC()
		}
		if end.Valid {
			ss.End = end.Time.UTC()
		}
		if exit.Valid {
			ss.ExitCode = &exit.Int64
		}
		ss.MaybeUsers = strs(candidates)
		if str[11].Valid {
			ss.Request = &kubetrail.SessionRequest{AuditID: str[11].String, Time: reqTime.Time.UTC(), Verb: str[12].String,
				Subresource: str[13].String, UserName: str[14].String, UserGroups: strs(groups), ImpUserName: str[15].String,
				SourceIPs: strs(ips), UserAgent: str[16].String}
		}
		out = append(out, ss)
	}
	return out, rows.Err()
}

// strs reads a VARCHAR[] value, which is nil for NULL.
func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// MaxTraceEvents bounds the events one trace returns; a longer session says it
// was cut (an implant beaconing for days is one session).
const MaxTraceEvents = 10000

// Sessions lists the sessions in which some event matches the filter in the
// window, most recent first.
func (s *Store) Sessions(ctx context.Context, q kubetrail.SessionQuery) ([]kubetrail.Session, error) {
	limit, err := pageLimit(q.Limit, 100, MaxLimit)
	if err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	// A session is in the window when its span overlaps it.
	if !q.Window.From.IsZero() {
		conds, args = append(conds, "last >= ?"), append(args, q.Window.From.UTC())
	}
	if !q.Window.To.IsZero() {
		conds, args = append(conds, "first < ?"), append(args, q.Window.To.UTC())
	}
	if _, all := q.Filter.(kubetrail.True); q.Filter != nil && !all {
		cond, fargs, err := where(q.Window, q.Filter)
		if err != nil {
			return nil, err
		}
		conds = append(conds, "id IN (SELECT session_id FROM processes WHERE session_id IS NOT NULL AND id IN (SELECT proc_id FROM events WHERE "+cond+"))")
		args = append(args, fargs...)
	}
	query := sessionSelect
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY coalesce(start, first) DESC, id LIMIT %d", limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	sessions, err := scanSessions(rows)
	if err != nil {
		return nil, err
	}
	return sessions, s.readAttachments(ctx, sessions)
}

// Trace returns a session and its events in time order, its policy events
// (which share their trigger's session, see the processes dimension) among them.
func (s *Store) Trace(ctx context.Context, id string) (*kubetrail.Trace, error) {
	rows, err := s.db.QueryContext(ctx, sessionSelect+" WHERE id = ?", id)
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	found, err := scanSessions(rows)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, kubetrail.Errorf(kubetrail.ENOTFOUND, "no session %s", id)
	}
	if err := s.readAttachments(ctx, found); err != nil {
		return nil, err
	}
	t := &kubetrail.Trace{Session: found[0]}
	// The session's span bounds the scan: rows are stored in time order, so
	// DuckDB skips every block outside it.
	inner := fmt.Sprintf(`SELECT * FROM events WHERE evt_time BETWEEN ? AND ? AND proc_id IN (SELECT id FROM processes WHERE session_id = ?)
		ORDER BY evt_time, evt_seq LIMIT %d`, MaxTraceEvents+1)
	events, err := queryEvents(ctx, s.db, selectEvents(inner, "ORDER BY e.evt_time, e.evt_seq"), t.Session.First, t.Session.Last, id)
	if err != nil {
		return nil, err
	}
	if len(events) > MaxTraceEvents {
		events, t.Truncated = events[:MaxTraceEvents], true
	}
	t.Events = events
	if r := t.Session.Request; r != nil {
		for i := range t.Events {
			r.ApplyTo(&t.Events[i])
		}
		// The request's time bounds the lookup to the blocks that hold it.
		reqs, err := queryEvents(ctx, s.db, selectEvents(`SELECT * FROM events WHERE evt_time = ? AND evt_category = 'k8s' AND ka_auditid = ? LIMIT 1`, ""),
			r.Time, r.AuditID)
		if err != nil {
			return nil, err
		}
		if len(reqs) == 1 {
			t.Request = &reqs[0]
			t.Request.SessionID = id
		}
	}
	return t, nil
}

// linkSessions fills in what events carry across session links: on a runtime
// or policy event, the request that started its session; on an exec request, the
// session it started.
func (s *Store) linkSessions(ctx context.Context, events []kubetrail.Event) error {
	var ids, audits []string
	for i := range events {
		e := &events[i]
		switch {
		case requestOfSession(e):
			audits = append(audits, e.Audit.AuditID)
		case e.SessionID != "":
			ids = append(ids, e.SessionID)
		}
	}
	if len(ids) == 0 && len(audits) == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, sessionSelect+` WHERE req_audit_id IS NOT NULL AND (list_contains(?::VARCHAR[], id) OR list_contains(?::VARCHAR[], req_audit_id))`,
		slices.Compact(slices.Sorted(slices.Values(ids))), audits)
	if err != nil {
		return fmt.Errorf("read linked sessions: %w", err)
	}
	found, err := scanSessions(rows)
	if err != nil {
		return err
	}
	byID := map[string]*kubetrail.Session{}
	byAudit := map[string]string{}
	for i := range found {
		byID[found[i].ID] = &found[i]
		byAudit[found[i].Request.AuditID] = found[i].ID
	}
	for i := range events {
		e := &events[i]
		if requestOfSession(e) {
			if id, ok := byAudit[e.Audit.AuditID]; ok {
				e.SessionID = id
			}
		} else if ss, ok := byID[e.SessionID]; ok {
			ss.Request.ApplyTo(e)
		}
	}
	return nil
}

// requestOfSession reports whether e is an exec or attach request, or a
// policy event raised on one (which keeps the request's audit ID): the session
// the request started is linked to it.
func requestOfSession(e *kubetrail.Event) bool {
	sub := e.Audit.Subresource == "exec" || e.Audit.Subresource == "attach" || e.Audit.Subresource == "ephemeralcontainers"
	return sub && e.Audit.AuditID != "" && (e.Category == kubetrail.CategoryK8s || e.Category == kubetrail.CategoryPolicy && e.SessionID == "")
}
