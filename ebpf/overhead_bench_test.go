package ebpf

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/internal/testnode"
)

// The workload's slowdown with the sensor on: an exec storm and a connect storm,
// each timed with the sensor off, then on (its ring buffer drained as the agent
// would), then — where Debian's auditd is installed — with auditd recording
// execve and connect instead, in one run. Reported as ratios to off.
func BenchmarkOverhead(b *testing.B) {
	storms := []struct {
		name string
		n    int
		run  func(b *testing.B, n int)
	}{
		{"exec", 4000, execStorm},
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
			if audited, ok := withAuditd(b, func() { st.run(b, st.n) }); ok {
				b.ReportMetric(float64(audited)/(float64(off)/float64(b.N)), "auditd/off")
			}
		})
	}
}

// withAuditd times run with auditd recording every execve and connect (the rules
// a team would use for the same questions), or reports false when auditd cannot
// run here.
func withAuditd(b *testing.B, run func()) (time.Duration, bool) {
	if _, err := exec.LookPath("auditd"); err != nil {
		return 0, false
	}
	os.MkdirAll("/var/log/audit", 0o700)
	d := exec.Command("auditd", "-n", "-s", "enable")
	if err := d.Start(); err != nil {
		return 0, false
	}
	defer func() {
		exec.Command("auditctl", "-D").Run()
		exec.Command("auditctl", "-e", "0").Run()
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
	}()
	time.Sleep(300 * time.Millisecond)
	for _, args := range [][]string{{"-D"}, {"-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-S", "connect", "-k", "kubetrail-bench"}, {"-e", "1"}} {
		if out, err := exec.Command("auditctl", args...).CombinedOutput(); err != nil {
			b.Logf("auditctl %v: %v: %s", args, err, out)
			return 0, false
		}
	}
	start := time.Now()
	run()
	return time.Since(start), true
}

func execStorm(b *testing.B, n int) {
	for i := 0; i < n; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func connectStorm(b *testing.B, n int) {
	addr := testnode.ServeTCP(b, nil).String()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		// Close with a reset: a normal close leaves the connection in TIME_WAIT
		// for a minute, and tens of thousands of those make every later connect
		// search longer for a free port, so that whichever run comes later is
		// slower, sensor or not.
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}
