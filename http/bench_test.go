package http_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agentpb"
	"github.com/kubetrail/kubetrail/duckdb"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/policy"
	"github.com/kubetrail/kubetrail/simulate"
)

// recordSink keeps the agent batches it is given.
type recordSink struct{ out []*kubetrail.Batch }

func (r *recordSink) Audit(context.Context, []byte) error { return nil }

func (r *recordSink) Batch(_ context.Context, b kubetrail.Batch) error {
	r.out = append(r.out, &b)
	return nil
}

// BenchmarkIngest measures POST /api/v1/events into DuckDB on disk: the simulator's
// realistic event mix, encoded and zstd-compressed beforehand as agents would, sent
// by three agents (one per simulated node) at once. Each request is acknowledged
// only once its batch is committed. With policies=on the server evaluates the
// default policy set (Falco's stable and k8saudit rules, kubetrail's own) on every
// event and stores what they raise in the same transaction.
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{10000, 50000} {
		for _, policies := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d/policies=%s", size, map[bool]string{false: "off", true: "on"}[policies])
			b.Run(name, func(b *testing.B) { benchmarkIngest(b, size, policies) })
		}
	}
}

func benchmarkIngest(b *testing.B, batchSize int, policies bool) {
	total := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("KUBETRAIL_BENCH_INGEST_EVENTS")); err == nil && n > 0 {
		total = n
	}
	// The three simulated nodes' streams are gathered into batches of about
	// batchSize events each; inventory goes in batches of its own, as it comes.
	sink := &recordSink{}
	gather := simulate.NewGatherer(sink, 3*batchSize, 1<<30)
	cfg := simulate.Config{Seed: 7, Start: time.Now().Add(-2 * time.Hour).Truncate(time.Second), History: time.Hour,
		Rate: float64(total) / 3600, Duration: time.Second}
	if _, err := simulate.Run(context.Background(), cfg, gather); err != nil {
		b.Fatal(err)
	}
	if err := gather.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	bodies := map[string][][]byte{}
	var streams []string
	var events int
	for _, batch := range sink.out {
		raw, err := agentpb.Encode(batch)
		if err != nil {
			b.Fatal(err)
		}
		if bodies[batch.Stream] == nil {
			streams = append(streams, batch.Stream)
		}
		bodies[batch.Stream] = append(bodies[batch.Stream], enc.EncodeAll(raw, nil))
		events += len(batch.Events)
	}
	runtime.GC()
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		url, stop := benchServer(b, policies)
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(streams))
		for _, s := range streams {
			wg.Add(1)
			go func(list [][]byte) {
				defer wg.Done()
				for _, body := range list {
					req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/events", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Content-Type", agentpb.ContentType)
					req.Header.Set("Content-Encoding", "zstd")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}(bodies[s])
		}
		wg.Wait()
		elapsed += time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.StopTimer()
		stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(events*b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(events), "events/op")
}

func benchServer(b *testing.B, policies bool) (string, func()) {
	ctx := context.Background()
	store, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), "trail.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.New(ctx, store, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if policies {
		set, err := policy.Load(policy.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ev, err := policy.NewEvaluator(set, nil)
		if err != nil {
			b.Fatal(err)
		}
		p.SetPolicies(ev, nil)
	}
	srv := &kthttp.Server{Store: store, Sessions: store, Pipeline: p, Token: token, Registry: prometheus.NewRegistry()}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	return "http://" + addr.String(), func() {
		srv.Shutdown(ctx)
		store.Close()
	}
}
