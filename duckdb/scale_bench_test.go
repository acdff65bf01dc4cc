package duckdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/duckdb"
	"github.com/kubetrail/kubetrail/filter"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/k8saudit"
	"github.com/kubetrail/kubetrail/simulate"
)

// The benchmark trail: the simulated cluster's day, from this fixed start.
var benchStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// pipelineSink writes the simulator's output through the ingest pipeline, as the
// server would.
type pipelineSink struct{ p *ingest.Pipeline }

func (s pipelineSink) Audit(ctx context.Context, body []byte) error {
	events, err := k8saudit.DecodeEventList(body, "demo")
	if err != nil {
		return err
	}
	_, err = s.p.WriteAudit(ctx, events)
	return err
}

func (s pipelineSink) Batch(ctx context.Context, b kubetrail.Batch) error {
	_, err := s.p.WriteBatch(ctx, &b)
	return err
}

// benchTrail returns a store holding about n events. One simulated day of up to
// 10M events is generated through the ingest pipeline; beyond that the day is
// copied to the days before it (new streams and audit IDs), as a longer retention
// would hold. Trails are kept in KUBETRAIL_BENCH_DIR between runs.
func benchTrail(b *testing.B, n int) *duckdb.Store {
	ctx := context.Background()
	dir := os.Getenv("KUBETRAIL_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "kubetrail-bench")
	}
	// The version in the name changes when the simulator's output does (v3:
	// processes carry sessions), so that an old trail is not measured by mistake.
	path := filepath.Join(dir, fmt.Sprintf("trail-v3-%d.duckdb", n))
	if _, err := os.Stat(path); err == nil {
		s, err := duckdb.Open(ctx, path)
		if err == nil {
			return s
		}
		b.Logf("rebuilding %s: %v", path, err)
		os.Remove(path)
		os.Remove(path + ".wal")
	}
	day := min(n, 10_000_000)
	s, err := duckdb.Open(ctx, path+".tmp")
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.New(ctx, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	sink := simulate.NewGatherer(pipelineSink{p}, 100000, 20000)
	// Rate is background activity; probes, pod starts and audit come on top (~8%).
	cfg := simulate.Config{Seed: 1, Start: benchStart, History: 24 * time.Hour, Rate: float64(day) / 86400 / 1.08, Duration: time.Second, BatchSize: 20000}
	if _, err := simulate.Run(ctx, cfg, sink); err != nil {
		b.Fatal(err)
	}
	if err := sink.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	total := int64(0)
	for _, c := range st.Events {
		total += c
	}
	b.Logf("generated %d events of one day through the pipeline in %s", total, time.Since(start).Round(time.Second))
	db := duckdb.DB(s)
	for k := 1; int64(k+1)*total <= int64(n)+total/2; k++ {
		q := fmt.Sprintf(`INSERT INTO events SELECT * REPLACE (evt_time - INTERVAL %[1]d DAY AS evt_time,
			ka_stage_time - INTERVAL %[1]d DAY AS ka_stage_time, evt_stream || '.d%[1]d' AS evt_stream, ka_auditid || '.d%[1]d' AS ka_auditid)
			FROM events WHERE evt_time >= '%[2]s' ORDER BY evt_time`, k, benchStart.Format(time.RFC3339))
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	os.Remove(path + ".tmp.wal")
	s, err = duckdb.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkQueries reports the p50 latency of the queries an analyst runs, on a
// trail of KUBETRAIL_BENCH_EVENTS events (default 1M; we report 10M and 50M), and
// the bytes the store takes per event.
func BenchmarkQueries(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("KUBETRAIL_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	s := benchTrail(b, n)
	defer s.Close()
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, c := range st.Events {
		total += c
	}
	b.Logf("trail: %d events, %d bytes on disk, %.1f bytes/event", total, st.Bytes, float64(st.Bytes)/float64(total))
	day := kubetrail.Window{From: benchStart, To: benchStart.Add(24 * time.Hour)}
	parse := func(f string) kubetrail.Expr {
		e, err := filter.Parse(f)
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	john, err := s.Sessions(ctx, kubetrail.SessionQuery{Window: day, Filter: parse("ka.user.name = john.doe")})
	if err != nil || len(john) != 1 {
		b.Fatalf("john.doe's session: %v, %d found", err, len(john))
	}
	queries := []struct {
		name string
		run  func() error
	}{
		{"session-trace-john-doe", func() error {
			t, err := s.Trace(ctx, john[0].ID)
			if err == nil && len(t.Events) < 20 {
				err = fmt.Errorf("john.doe's trace has %d events", len(t.Events))
			}
			return err
		}},
		{"sessions-john-doe", func() error {
			_, err := s.Sessions(ctx, kubetrail.SessionQuery{Window: day, Filter: parse("ka.user.name = john.doe")})
			return err
		}},
		{"seed-john-doe-network", func() error {
			_, err := s.Search(ctx, kubetrail.SearchQuery{Window: day, Limit: 100, Filter: parse("ka.user.name = john.doe and evt.category = network")})
			return err
		}},
		{"newest-page", func() error {
			_, err := s.Search(ctx, kubetrail.SearchQuery{Window: day, Limit: 100})
			return err
		}},
		{"newest-page-billing", func() error {
			_, err := s.Search(ctx, kubetrail.SearchQuery{Window: day, Limit: 100, Filter: parse("k8s.ns.name = billing")})
			return err
		}},
		{"scopes-workload-24h", func() error {
			_, err := s.Scopes(ctx, kubetrail.ScopeQuery{Window: day, GroupBy: kubetrail.GroupByWorkload})
			return err
		}},
		{"scopes-host-24h", func() error {
			_, err := s.Scopes(ctx, kubetrail.ScopeQuery{Window: day, GroupBy: kubetrail.GroupByHost})
			return err
		}},
		{"histogram-24h-1m", func() error {
			_, err := s.Histogram(ctx, kubetrail.HistogramQuery{Window: day, Bucket: time.Minute})
			return err
		}},
		{"seed-billing-unknown-ip", func() error {
			_, err := s.Search(ctx, kubetrail.SearchQuery{Window: day, Limit: 100, Filter: parse("k8s.ns.name = billing and net.direction = outbound and net.peer.kind = unknown")})
			return err
		}},
		{"seed-tcpdump", func() error {
			_, err := s.Search(ctx, kubetrail.SearchQuery{Window: day, Limit: 100, Filter: parse("proc.name = tcpdump")})
			return err
		}},
		{"seed-tcpdump-by-host", func() error {
			_, err := s.Scopes(ctx, kubetrail.ScopeQuery{Window: day, GroupBy: kubetrail.GroupByHost, Filter: parse("proc.name = tcpdump")})
			return err
		}},
		{"seed-john-doe", func() error {
			_, err := s.Search(ctx, kubetrail.SearchQuery{Window: day, Limit: 100, Filter: parse("ka.user.name = john.doe")})
			return err
		}},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var times []time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(st.Bytes)/float64(total), "bytes/event")
		})
	}
}
