package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agent"
	"github.com/kubetrail/kubetrail/cgroup"
	"github.com/kubetrail/kubetrail/ebpf"
)

// TestMain lets the test binary double as the storm it measures: run with
// KT_FILE_STORM=N it creates N files in the working directory, as fast as it can,
// in a process of its own (so that the agent's CPU use can be told apart).
func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv("KT_FILE_STORM")); err == nil {
		for i := 0; i < n; i++ {
			f, err := os.OpenFile("f"+strconv.Itoa(i%1000), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				os.Exit(1)
			}
			f.Close()
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// countSink counts the events the agent hands over.
type countSink struct{ n atomic.Int64 }

func (c *countSink) Put(_ context.Context, b *kubetrail.Batch) error {
	c.n.Add(int64(len(b.Events)))
	return nil
}

// BenchmarkSustained drives the real sensor and agent with a file-creation storm
// from another process and reports the events per second the agent turned into
// batches, the records lost, and the agent's own CPU and memory.
func BenchmarkSustained(b *testing.B) {
	for _, rate := range []int{0, 10000, 1000} {
		name := "max"
		if rate > 0 {
			name = fmt.Sprintf("%d-per-s", rate)
		}
		b.Run(name, func(b *testing.B) { sustained(b, rate) })
	}
}

func sustained(b *testing.B, rate int) {
	sensor, err := ebpf.Load()
	if err != nil {
		b.Skipf("sensor: %v", err)
	}
	defer sensor.Close()
	root, err := cgroup.V2Root()
	if err != nil {
		b.Skip(err)
	}
	sink := &countSink{}
	a, err := agent.New(agent.Config{Cluster: "bench", Node: "node-1", BatchEvents: 5000, FlushInterval: 100 * time.Millisecond},
		sensor, cgroup.NewResolver(root), sink, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	dir := b.TempDir()
	self, _ := os.Executable()

	const perStorm = 200000
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if rate == 0 {
			// Two storms at once, one per core: as fast as this machine creates files.
			var cmds []*exec.Cmd
			for j := 0; j < 2; j++ {
				cmd := exec.Command(self)
				cmd.Dir, cmd.Env = dir, append(os.Environ(), "KT_FILE_STORM="+strconv.Itoa(perStorm))
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				cmds = append(cmds, cmd)
			}
			for _, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			continue
		}
		// A steady rate: bursts of rate/10 files every 100 ms for 3 s.
		for tick := 0; tick < 30; tick++ {
			t := time.Now()
			cmd := exec.Command(self)
			cmd.Dir, cmd.Env = dir, append(os.Environ(), "KT_FILE_STORM="+strconv.Itoa(rate/10))
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(100*time.Millisecond - time.Since(t))
		}
	}
	time.Sleep(300 * time.Millisecond) // the last poll and flush
	elapsed := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cancel()
	<-done
	lost, _, _ := sensor.Lost()
	var l uint64
	for _, v := range lost {
		l += v
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	events := sink.n.Load()
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(l), "lost")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "agent-cpu-%")
	b.ReportMetric(float64(rssKiB())/1024, "agent-rss-MiB")
}

func rssKiB() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
