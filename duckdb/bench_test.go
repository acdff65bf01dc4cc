package duckdb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

// BenchmarkWrite measures the store alone: batches of 10,000 mixed runtime events
// appended in one transaction each.
func BenchmarkStoreWrite(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 10000
	events := make([]kubetrail.Event, batch)
	seq := uint64(0)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range events {
			seq++
			e := procEvent("bench", seq, start.Add(time.Duration(seq)*time.Microsecond), "billing", fmt.Sprintf("api-%d", j%50), "sh", "sh", "-c", "echo hello")
			if j%2 == 1 {
				e.Category = kubetrail.CategoryNetwork
				e.Type = "connect"
				e.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.0.0.1", ClientPort: int64(30000 + j), ServerIP: "10.96.0.10", ServerPort: 53, PeerKind: "service", PeerName: "kube-dns", PeerNamespace: "kube-system"}
			}
			events[j] = e
		}
		if _, err := s.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
