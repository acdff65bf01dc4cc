package ebpf

import (
	"net"
	"os/exec"
	"testing"
	"time"
)

// The workload's slowdown with the sensor on: an exec storm and a connect storm,
// each timed with the sensor off and then on (its ring buffer drained as the
// agent would), in one run. Reported as the ratio on/off.
func BenchmarkOverhead(b *testing.B) {
	storms := []struct {
		name string
		n    int
		run  func(b *testing.B, n int)
	}{
		{"exec", 2000, execStorm},
		{"connect", 20000, connectStorm},
	}
	for _, st := range storms {
		b.Run(st.name, func(b *testing.B) {
			var off, on time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				st.run(b, st.n)
				off += time.Since(start)

				s, err := Load()
				if err != nil {
					b.Skipf("sensor: %v", err)
				}
				drained := make(chan int)
				go func() {
					n := 0
					for {
						if _, err := s.Read(); err != nil {
							drained <- n
							return
						}
						n++
					}
				}()
				start = time.Now()
				st.run(b, st.n)
				on += time.Since(start)
				time.Sleep(100 * time.Millisecond)
				lost, _, _ := s.Lost()
				s.Close()
				<-drained
				var l uint64
				for _, v := range lost {
					l += v
				}
				if l > 0 {
					b.Errorf("%d records lost", l)
				}
			}
			b.ReportMetric(float64(on)/float64(off), "on/off")
			b.ReportMetric(float64(st.n*b.N)/off.Seconds(), "ops/s-off")
			b.ReportMetric(float64(st.n*b.N)/on.Seconds(), "ops/s-on")
		})
	}
}

func execStorm(b *testing.B, n int) {
	for i := 0; i < n; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func connectStorm(b *testing.B, n int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
