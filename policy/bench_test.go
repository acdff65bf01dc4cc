package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/policy"
	"github.com/kubetrail/kubetrail/simulate"
)

type batchSink struct{ batches [][]kubetrail.Event }

func (s *batchSink) Audit(context.Context, []byte) error { return nil }
func (s *batchSink) Batch(_ context.Context, b kubetrail.Batch) error {
	s.batches = append(s.batches, b.Events)
	return nil
}

// BenchmarkEvaluate measures the evaluator alone with the default policy set on
// the simulator's runtime events (commands, connections, file changes): what
// policies add to ingest, per event.
func BenchmarkEvaluate(b *testing.B) {
	sink := &batchSink{}
	cfg := simulate.Config{Seed: 7, Start: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), History: 20 * time.Minute,
		Rate: 200, Duration: time.Second}
	if _, err := simulate.Run(context.Background(), cfg, sink); err != nil {
		b.Fatal(err)
	}
	events := 0
	for _, batch := range sink.batches {
		events += len(batch)
	}
	set, err := policy.Load(policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ev, err := policy.NewEvaluator(set, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range sink.batches {
			ev.Evaluate(batch)
		}
	}
	b.ReportMetric(float64(events*b.N)/time.Since(start).Seconds(), "events/s")
}
