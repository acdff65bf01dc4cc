// Package duckdb keeps the audit trail in an embedded DuckDB database: one wide,
// typed, time-ordered events table that DuckDB compresses column by column, and
// a compiler from the filter AST to parameterised SQL.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kubetrail/kubetrail"
)

// Store is a kubetrail.EventStore and kubetrail.InventoryStore on DuckDB.
type Store struct {
	path string
	db   *sql.DB

	// DuckDB allows one writer at a time per database; writes are serialised here
	// on a dedicated connection so that the appender and the transaction share it.
	writeMu sync.Mutex
	wconn   *sql.Conn
	dims    []*dimState // one per dimension, in the order of dimensions

	// newestNs is the time of the newest event stored (Unix nanoseconds), kept
	// as batches commit: searches with no end to their window start there.
	newestNs atomic.Int64

	// MatchWindow is how far apart an exec request and the start of its session
	// may be; kubetrail.DefaultMatchWindow when zero. Set it before writing.
	MatchWindow time.Duration
}

// sawNewest raises the newest event's time to t.
func (s *Store) sawNewest(t time.Time) {
	ns := t.UnixNano()
	for {
		cur := s.newestNs.Load()
		if ns <= cur || s.newestNs.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// newest returns the time of the newest event stored.
func (s *Store) newest() time.Time { return time.Unix(0, s.newestNs.Load()).UTC() }

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// New databases use the newest storage format: its compression (dictionary with
	// FSST, roaring validity masks) keeps a fifth less on disk than the default,
	// which stays readable by DuckDB 1.0.
	//
	// The write-ahead log is folded into the database every 256 MB rather than
	// DuckDB's 16 MB: each checkpoint recompresses the row group still being
	// filled, so frequent ones rewrite the same rows several times. Measured with
	// BenchmarkIngest: 57k events/s at 16 MB, 82k at 256 MB. The cost is a longer
	// log replay after a crash, still seconds.
	connector, err := duckdb.NewConnector(path+"?storage_compatibility_version=latest&checkpoint_threshold=256MB", nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := sql.OpenDB(connector)
	s := &Store{path: path, db: db}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, schemaSQL()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := s.db.ExecContext(ctx, `INSERT INTO meta VALUES ('schema', ?)`, schemaVersion); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	case v != schemaVersion:
		return kubetrail.Errorf(kubetrail.ECONFLICT, "%s holds schema version %s, this kubetrail reads version %s", s.path, v, schemaVersion)
	}
	for _, d := range dimensions {
		ds := &dimState{dimension: d}
		if err := ds.load(ctx, s.db); err != nil {
			return err
		}
		s.dims = append(s.dims, ds)
	}
	var newest sql.NullTime
	if err := s.db.QueryRowContext(ctx, "SELECT max(evt_time) FROM events").Scan(&newest); err != nil {
		return fmt.Errorf("read the newest event's time: %w", err)
	}
	if newest.Valid {
		s.newestNs.Store(newest.Time.UnixNano())
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open write connection: %w", err)
	}
	s.wconn = conn
	return nil
}

// Close checkpoints and closes the database, after any write in progress.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var errs []error
	if s.wconn != nil {
		if _, err := s.wconn.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %w", err))
		}
		errs = append(errs, s.wconn.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// Write stores a batch atomically. See kubetrail.EventStore for the dedupe rules.
func (s *Store) Write(ctx context.Context, events []kubetrail.Event) (kubetrail.WriteResult, error) {
	return s.WriteBatch(ctx, events, nil)
}

// WriteBatch stores events and inventory observations in one transaction: an
// agent's batch is stored whole or not at all.
func (s *Store) WriteBatch(ctx context.Context, events []kubetrail.Event, inventory []kubetrail.InventoryObject) (kubetrail.WriteResult, error) {
	var res kubetrail.WriteResult
	if len(events) == 0 && len(inventory) == 0 {
		return res, nil
	}
	if err := validate(events); err != nil {
		return res, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	if _, err := s.wconn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			// The context may be the reason we are here; roll back regardless of it.
			s.wconn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()

	keep, marks, err := s.newRuntimeEvents(ctx, events, &res)
	if err != nil {
		return res, err
	}
	audits, err := s.newAuditStages(ctx, events, &res)
	if err != nil {
		return res, err
	}
	keep = append(keep, audits...)
	policies, err := s.newPolicyEvents(ctx, events, &res)
	if err != nil {
		return res, err
	}
	keep = append(keep, policies...)
	// Time order within a batch helps DuckDB's per-block min/max skip blocks.
	slices.SortStableFunc(keep, func(a, b *kubetrail.Event) int { return a.Time.Compare(b.Time) })
	ids := make([][]int64, len(dimensions))
	for i, d := range s.dims {
		var added []string
		var err error
		ids[i], added, err = d.assign(s.wconn, keep)
		defer func() {
			if !committed {
				d.forget(added)
			}
		}()
		if err != nil {
			return res, err
		}
	}
	if err := s.append(ctx, keep, ids); err != nil {
		return res, err
	}
	if err := s.updateSessions(ctx, keep); err != nil {
		return res, err
	}
	// A batch whose events were all stored before is a retry: its inventory was
	// stored with them.
	if len(events) == 0 || len(keep) > 0 {
		if err := s.insertInventory(ctx, inventory); err != nil {
			return res, err
		}
	}
	for stream, seq := range marks {
		if _, err := s.wconn.ExecContext(ctx,
			`INSERT INTO streams VALUES (?, ?, now()) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
			stream, int64(seq)); err != nil {
			return res, fmt.Errorf("record stream mark: %w", err)
		}
	}
	if _, err := s.wconn.ExecContext(ctx, "COMMIT"); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	committed = true
	if len(keep) > 0 {
		s.sawNewest(keep[len(keep)-1].Time) // keep is in time order
	}
	res.Raised = len(policies)
	for _, e := range policies {
		res.RaisedIDs = append(res.RaisedIDs, e.ID())
	}
	res.Stored = len(keep) - res.Updated - res.Raised
	return res, nil
}

// validate checks what the store relies on; decoders check more, with positions.
func validate(events []kubetrail.Event) error {
	last := map[string]uint64{}
	for i := range events {
		e := &events[i]
		where := fmt.Sprintf("events[%d]", i)
		if !e.Category.Valid() {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "unknown category %q", e.Category)
		}
		if e.Time.IsZero() {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "evt.time is missing")
		}
		switch e.Category {
		case kubetrail.CategoryK8s:
			if e.Audit.AuditID == "" {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "ka.auditid is missing")
			}
			continue
		case kubetrail.CategoryPolicy:
			// A policy event is identified by its trigger, policy and rule, not by a
			// stream: it has none.
			a := &e.Alert
			for _, f := range []struct{ name, value string }{
				{"policy.name", a.Policy}, {"policy.rule", a.Rule}, {"policy.trigger", a.Trigger},
				{"policy.priority", a.Priority}, {"policy.source", a.Source},
			} {
				if f.value == "" {
					return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s is missing", f.name)
				}
			}
			if a.Source != "syscall" && a.Source != "k8s_audit" {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "policy.source %q is not syscall or k8s_audit", a.Source)
			}
			continue
		}
		if err := kubetrail.ValidStream(e.Stream); err != nil {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%v", err)
		}
		if e.Seq == 0 {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "evt.seq must be 1 or more")
		}
		if prev, ok := last[e.Stream]; ok && e.Seq <= prev {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "evt.seq %d of stream %s does not follow %d: a stream's events must be in increasing order", e.Seq, e.Stream, prev)
		}
		last[e.Stream] = e.Seq
	}
	return nil
}

// newRuntimeEvents keeps the runtime events above their stream's mark and returns
// the new marks.
func (s *Store) newRuntimeEvents(ctx context.Context, events []kubetrail.Event, res *kubetrail.WriteResult) ([]*kubetrail.Event, map[string]uint64, error) {
	marks := map[string]uint64{}
	var keep []*kubetrail.Event
	for i := range events {
		e := &events[i]
		if e.Category == kubetrail.CategoryK8s || e.Category == kubetrail.CategoryPolicy {
			continue
		}
		mark, ok := marks[e.Stream]
		if !ok {
			var seq int64
			err := s.wconn.QueryRowContext(ctx, `SELECT seq FROM streams WHERE stream = ?`, e.Stream).Scan(&seq)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, nil, fmt.Errorf("read stream mark: %w", err)
			}
			mark = uint64(seq)
			marks[e.Stream] = mark
		}
		if e.Seq <= mark {
			res.Duplicates++
			continue
		}
		marks[e.Stream] = e.Seq
		keep = append(keep, e)
	}
	return keep, marks, nil
}

// newAuditStages keeps, per audit ID, the latest stage of the batch when it is
// later than the stored one, and deletes the stored one it replaces. All stages of
// a request share requestReceivedTimestamp, which bounds the lookup in time.
func (s *Store) newAuditStages(ctx context.Context, events []kubetrail.Event, res *kubetrail.WriteResult) ([]*kubetrail.Event, error) {
	latest := map[string]*kubetrail.Event{}
	var order []string
	for i := range events {
		e := &events[i]
		if e.Category != kubetrail.CategoryK8s {
			continue
		}
		prev, ok := latest[e.Audit.AuditID]
		switch {
		case !ok:
			latest[e.Audit.AuditID] = e
			order = append(order, e.Audit.AuditID)
		case kubetrail.AuditStageRank(e.Audit.Stage) > kubetrail.AuditStageRank(prev.Audit.Stage):
			latest[e.Audit.AuditID] = e
			res.Duplicates++
		default:
			res.Duplicates++
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	lo, hi := latest[order[0]].Time, latest[order[0]].Time
	ids := make([]string, 0, len(order))
	for _, id := range order {
		t := latest[id].Time
		if t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
		ids = append(ids, id)
	}
	rows, err := s.wconn.QueryContext(ctx,
		`SELECT ka_auditid, ka_stage, evt_time FROM events WHERE evt_category = 'k8s' AND evt_time BETWEEN ? AND ? AND list_contains(?::VARCHAR[], ka_auditid)`,
		lo, hi, ids)
	if err != nil {
		return nil, fmt.Errorf("look up stored audit stages: %w", err)
	}
	type storedStage struct {
		stage string
		time  time.Time
	}
	stored := map[string]storedStage{}
	for rows.Next() {
		var id, stage sql.NullString
		var at time.Time
		if err := rows.Scan(&id, &stage, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("look up stored audit stages: %w", err)
		}
		stored[id.String] = storedStage{stage.String, at}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	var keep []*kubetrail.Event
	for _, id := range order {
		e := latest[id]
		prev, ok := stored[id]
		if !ok {
			keep = append(keep, e)
			continue
		}
		if kubetrail.AuditStageRank(e.Audit.Stage) <= kubetrail.AuditStageRank(prev.stage) {
			res.Duplicates++
			continue
		}
		if _, err := s.wconn.ExecContext(ctx,
			`DELETE FROM events WHERE evt_category = 'k8s' AND evt_time = ? AND ka_auditid = ?`, prev.time, id); err != nil {
			return nil, fmt.Errorf("replace audit stage: %w", err)
		}
		res.Updated++
		keep = append(keep, e)
	}
	return keep, nil
}

// newPolicyEvents keeps the policy events whose id is neither stored nor earlier
// in the batch. A rule raises a policy event once per trigger and policy, so one
// seen again (the trigger's batch retried, a later stage of its audit event) is a
// duplicate. A policy event has its trigger's time, which bounds the lookup.
func (s *Store) newPolicyEvents(ctx context.Context, events []kubetrail.Event, res *kubetrail.WriteResult) ([]*kubetrail.Event, error) {
	var keep []*kubetrail.Event
	seen := map[string]bool{}
	var triggers []string
	var lo, hi time.Time
	for i := range events {
		e := &events[i]
		if e.Category != kubetrail.CategoryPolicy {
			continue
		}
		id := e.ID()
		if seen[id] {
			continue
		}
		seen[id] = true
		keep = append(keep, e)
		triggers = append(triggers, e.Alert.Trigger)
		if lo.IsZero() || e.Time.Before(lo) {
			lo = e.Time
		}
		if e.Time.After(hi) {
			hi = e.Time
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	rows, err := s.wconn.QueryContext(ctx,
		`SELECT policy_trigger, policy_name, policy_rule FROM events
		 WHERE evt_category = 'policy' AND evt_time BETWEEN ? AND ? AND list_contains(?::VARCHAR[], policy_trigger)`,
		lo.UTC(), hi.UTC(), slices.Compact(slices.Sorted(slices.Values(triggers))))
	if err != nil {
		return nil, fmt.Errorf("look up stored policy events: %w", err)
	}
	stored := map[string]bool{}
	for rows.Next() {
		var trigger, policy, rule sql.NullString
		if err := rows.Scan(&trigger, &policy, &rule); err != nil {
			rows.Close()
			return nil, fmt.Errorf("look up stored policy events: %w", err)
		}
		stored[kubetrail.PolicyEventID(trigger.String, policy.String, rule.String)] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("look up stored policy events: %w", err)
	}
	if len(stored) == 0 {
		return keep, nil
	}
	return slices.DeleteFunc(keep, func(e *kubetrail.Event) bool {
		if stored[e.ID()] {
			return true
		}
		return false
	}), nil
}

// append writes rows through DuckDB's appender on the write connection, inside the
// transaction Write opened.
func (s *Store) append(ctx context.Context, events []*kubetrail.Event, dimensionIDs [][]int64) error {
	if len(events) == 0 {
		return nil
	}
	return s.wconn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "events")
		if err != nil {
			return fmt.Errorf("open appender: %w", err)
		}
		nd := len(dimensions)
		row := make([]driver.Value, nd+len(columns))
		for i, e := range events {
			for j := range dimensions {
				if id := dimensionIDs[j][i]; id != 0 {
					row[j] = id
				} else {
					row[j] = nil
				}
			}
			rowValues(e, row[nd:])
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return fmt.Errorf("append event %s: %w", e.ID(), err)
			}
		}
		if err := a.Close(); err != nil {
			return fmt.Errorf("flush appender: %w", err)
		}
		return nil
	})
}

// rowValues fills row with e's column values. Fields that do not apply to the
// event's category, and empty strings and lists, are NULL: it costs nothing to
// store and makes a comparison on a missing field false, as in Falco.
func rowValues(e *kubetrail.Event, row []driver.Value) {
	for i := range columns {
		f := columns[i].field
		if !f.AppliesTo(e.Category) {
			row[i] = nil
			continue
		}
		switch v := f.Get(e).(type) {
		case time.Time:
			if v.IsZero() {
				row[i] = nil
			} else {
				row[i] = v.UTC()
			}
		default:
			row[i] = storedValue(v)
		}
	}
}

// DeleteBefore removes category c's events older than t.
func (s *Store) DeleteBefore(ctx context.Context, c kubetrail.Category, t time.Time) (int64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	r, err := s.wconn.ExecContext(ctx, `DELETE FROM events WHERE evt_category = ? AND evt_time < ?`, string(c), t)
	if err != nil {
		return 0, fmt.Errorf("delete %s events before %s: %w", c, t.Format(time.RFC3339), err)
	}
	return r.RowsAffected()
}

// Stats reports counts per category and the size of the database on disk.
func (s *Store) Stats(ctx context.Context) (kubetrail.Stats, error) {
	st := kubetrail.Stats{Events: map[kubetrail.Category]int64{}}
	rows, err := s.db.QueryContext(ctx, `SELECT evt_category::VARCHAR, count(*), min(evt_time), max(evt_time) FROM events GROUP BY 1`)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var n int64
		var lo, hi time.Time
		if err := rows.Scan(&c, &n, &lo, &hi); err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
		st.Events[kubetrail.Category(c)] = n
		if st.Oldest.IsZero() || lo.Before(st.Oldest) {
			st.Oldest = lo.UTC()
		}
		if hi.After(st.Newest) {
			st.Newest = hi.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	for _, p := range []string{s.path, s.path + ".wal"} {
		if fi, err := os.Stat(p); err == nil {
			st.Bytes += fi.Size()
		}
	}
	return st, nil
}
