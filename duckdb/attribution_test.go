package duckdb_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/duckdb"
	"github.com/kubetrail/kubetrail/filter"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/simulate"
)

// heldSink delivers one half of the simulator's output as it comes and holds
// the other back until release: the audit log after everything the nodes saw
// (a webhook batch that waited), or before it (agents that were slow).
type heldSink struct {
	pipelineSink
	hold    string // "audit", "runtime" or ""
	audits  [][]byte
	batches []kubetrail.Batch
}

func (h *heldSink) Audit(ctx context.Context, body []byte) error {
	if h.hold == "audit" {
		h.audits = append(h.audits, body)
		return nil
	}
	return h.pipelineSink.Audit(ctx, body)
}

func (h *heldSink) Batch(ctx context.Context, b kubetrail.Batch) error {
	if h.hold == "runtime" {
		h.batches = append(h.batches, b)
		return nil
	}
	return h.pipelineSink.Batch(ctx, b)
}

func (h *heldSink) release(ctx context.Context) error {
	for _, a := range h.audits {
		if err := h.pipelineSink.Audit(ctx, a); err != nil {
			return err
		}
	}
	for _, b := range h.batches {
		if err := h.pipelineSink.Batch(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

type attribution struct {
	sessions, commands     int // people's sessions played; commands stored in any session
	correct, wrong, missed int
	// ambiguous counts commands of sessions left unattributed because several
	// people's requests fit them equally well, the right one among them.
	ambiguous int
}

func (a attribution) precision() float64 {
	if a.correct+a.wrong == 0 {
		return 1
	}
	return float64(a.correct) / float64(a.correct+a.wrong)
}

func (a attribution) recall() float64 {
	if a.correct+a.missed+a.ambiguous == 0 {
		return 1
	}
	return float64(a.correct) / float64(a.correct+a.missed+a.ambiguous)
}

// measureAttribution plays cfg into a fresh store with one half held back as hold
// says, then checks every command stored in a session against who really ran it.
func measureAttribution(tb testing.TB, cfg simulate.Config, hold string) attribution {
	ctx := context.Background()
	s, err := duckdb.Open(ctx, filepath.Join(tb.TempDir(), "trail.duckdb"))
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	p, err := ingest.New(ctx, s, nil)
	if err != nil {
		tb.Fatal(err)
	}
	sink := &heldSink{pipelineSink: pipelineSink{p}, hold: hold}
	g := simulate.NewGatherer(sink, 20000, 5000)
	st, err := simulate.Run(ctx, cfg, g)
	if err != nil {
		tb.Fatal(err)
	}
	if err := g.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := sink.release(ctx); err != nil {
		tb.Fatal(err)
	}
	res := attribution{sessions: len(st.SessionUsers)}
	all, err := s.Sessions(ctx, kubetrail.SessionQuery{Filter: kubetrail.True{}, Limit: duckdb.MaxLimit})
	if err != nil {
		tb.Fatal(err)
	}
	maybe := map[string][]string{}
	for _, ss := range all {
		maybe[ss.ID] = ss.MaybeUsers
	}
	expr, err := filter.Parse("evt.type = execve and session.id exists")
	if err != nil {
		tb.Fatal(err)
	}
	q := kubetrail.SearchQuery{Filter: expr, Limit: duckdb.MaxLimit}
	for {
		page, err := s.Search(ctx, q)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range page.Events {
			res.commands++
			truth, got := st.SessionUsers[e.SessionID], e.Audit.UserName
			switch {
			case got != "" && got == truth:
				res.correct++
			case got != "":
				res.wrong++
				tb.Logf("wrong: %s %v at %s in %s/%s attributed to %s, truth %q", e.Process.Name, e.Process.Argv, e.Time.Format(time.StampMilli), e.Namespace, e.PodName, got, truth)
			case truth != "" && slices.Contains(maybe[e.SessionID], truth):
				res.ambiguous++
			case truth != "":
				res.missed++
				tb.Logf("missed: %s %v at %s in %s/%s, truth %q", e.Process.Name, e.Process.Argv, e.Time.Format(time.StampMilli), e.Namespace, e.PodName, truth)
			}
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	return res
}

// Every command of every session a person started is attributed to that person,
// and no probe's to anyone, whichever half of the trail arrives first.
func TestAttributionOnSimulator(t *testing.T) {
	cfg := simulate.Config{Seed: 11, Start: benchStart, History: 40 * time.Minute, Rate: 5, Duration: time.Second, Operators: 300}
	for _, hold := range []string{"", "audit", "runtime"} {
		a := measureAttribution(t, cfg, hold)
		// Sessions started and ended within milliseconds of another's with the
		// same command in the same pod are left ambiguous, never guessed; they
		// are a few in a hundred here, where people exec at the same moment often.
		if a.sessions < 150 || a.wrong != 0 || a.missed != 0 || a.ambiguous > a.correct/20 {
			t.Errorf("hold %q: %d sessions, %d commands: %d right, %d wrong, %d missed, %d ambiguous", hold, a.sessions, a.commands, a.correct, a.wrong, a.missed, a.ambiguous)
		}
	}
}

// BenchmarkAttribution reports precision and recall of command → user
// attribution on six simulated hours with 200 operator sessions an hour (some
// simultaneous in one pod, some running the pod's probe command) beside exec
// probes every 10 s, with the audit log in order, late, or early.
func BenchmarkAttribution(b *testing.B) {
	cfg := simulate.Config{Seed: 5, Start: benchStart, History: 6 * time.Hour, Rate: 20, Duration: time.Second, Operators: 200}
	for _, hold := range []string{"", "audit", "runtime"} {
		name := map[string]string{"": "in-order", "audit": "audit-late", "runtime": "audit-early"}[hold]
		b.Run(name, func(b *testing.B) {
			var a attribution
			for i := 0; i < b.N; i++ {
				a = measureAttribution(b, cfg, hold)
			}
			b.ReportMetric(100*a.precision(), "precision-%")
			b.ReportMetric(100*a.recall(), "recall-%")
			b.ReportMetric(float64(a.sessions), "people-sessions")
			b.ReportMetric(float64(a.commands), "commands")
			b.ReportMetric(float64(a.ambiguous), "ambiguous-commands")
		})
	}
}
