package ebpf

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/internal/testnode"
)

// loadOrSkip loads the real sensor. It fails when CI runs as root and eBPF does
// not work, rather than skipping: CI must prove the sensor.
func loadOrSkip(t *testing.T) *Sensor {
	t.Helper()
	s, err := Load()
	if err != nil {
		if os.Getenv("CI") == "true" || os.Geteuid() == 0 {
			t.Fatalf("eBPF sensor did not load: %v", err)
		}
		t.Skipf("eBPF sensor needs root: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// collect reads records until match has seen what it wants or the time is up.
func collect(t *testing.T, s *Sensor, d time.Duration, match func(Record) bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := s.Read()
			if err != nil {
				return
			}
			if match(r) {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal("timed out waiting for the sensor's records")
	}
}

func TestSensorSeesExecExitAndConnections(t *testing.T) {
	s := loadOrSkip(t)
	port := testnode.ServeTCP(t, nil).Port
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	script := "exec 3<>/dev/tcp/127.0.0.1/" + strconv.Itoa(port) + "; exec 3>&-; " +
		"(exec 4<>/dev/tcp/127.0.0.1/" + strconv.Itoa(closedPort) + ") 2>/dev/null; " +
		"/bin/echo kubetrail-sensor-test 'an argument with spaces'; exit 7"
	cmd := exec.Command("/bin/bash", "-c", script)
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bashPID := uint32(cmd.Process.Pid)
	go cmd.Wait()

	// UDP: a connected socket (as glibc's resolver uses) and an unconnected one.
	udpConn, err := net.Dial("udp", "127.0.0.1:5353")
	if err != nil {
		t.Fatal(err)
	}
	udpConn.Write([]byte("q1"))
	udpConn.Write([]byte("q2")) // the same peer again: not reported twice
	udpPort := udpConn.LocalAddr().(*net.UDPAddr).Port
	udpConn.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.WriteTo([]byte("q3"), &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5354})
	pcPort := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()

	var execBash, execEcho, connOK, connRefused, accepted, exit bool
	var udpConnected, udpSendto int
	collect(t, s, 10*time.Second, func(r Record) bool {
		switch {
		case r.Kind == KindExec && r.PID == bashPID && r.Comm == "bash":
			execBash = len(r.Argv) == 3 && r.Argv[2] == script && r.Filename == "/bin/bash" && r.CgroupID != 0 && r.StartNS != 0
		case r.Kind == KindExec && r.Comm == "echo" && r.PPID == bashPID:
			execEcho = len(r.Argv) == 3 && r.Argv[1] == "kubetrail-sensor-test" && r.Argv[2] == "an argument with spaces"
		case r.Kind == KindConnect && r.PID == bashPID && int(r.Dst.Port()) == port:
			connOK = r.Errno == 0 && r.Src.Addr().String() == "127.0.0.1" && r.Src.Port() != 0
		case r.Kind == KindConnect && int(r.Dst.Port()) == closedPort:
			connRefused = r.Errno == 111
		case r.Kind == KindAccept && int(r.Dst.Port()) == port && r.PID == uint32(os.Getpid()):
			accepted = r.Src.Port() != 0
		case r.Kind == KindExit && r.PID == bashPID:
			exit = r.ExitCode == 7
		case r.Kind == KindConnect && r.Protocol == 17 && r.Dst.Port() == 5353 && int(r.Src.Port()) == udpPort:
			udpConnected++
		case r.Kind == KindConnect && r.Protocol == 17 && r.Dst.Port() == 5354 && int(r.Src.Port()) == pcPort:
			udpSendto++
		}
		return execBash && execEcho && connOK && connRefused && accepted && exit && udpConnected == 1 && udpSendto == 1
	})
	lost, _, err := s.Lost()
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range lost {
		if n != 0 {
			t.Errorf("%d %s records lost", n, k)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// Excluded prefixes keep the stream bounded, but never hide a write that only
// passes through them on its way elsewhere.
func TestSensorExclusionsCannotBeDodged(t *testing.T) {
	s := loadOrSkip(t)
	if err := s.SetExcludes([]string{"/dev", "/proc"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	target := dir + "/escaped"
	dodge := "/dev/.." + target
	script := "echo x > /dev/null; echo y > " + dodge + "; echo z > /proc/self/cwd/viaproc"
	cmd := exec.Command("/bin/bash", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var sawNull, sawDodge, sawProc bool
	deadline := time.After(3 * time.Second)
	records := make(chan Record)
	go func() {
		for {
			r, err := s.Read()
			if err != nil {
				close(records)
				return
			}
			records <- r
		}
	}()
loop:
	for {
		select {
		case r, ok := <-records:
			if !ok {
				break loop
			}
			if r.Kind != KindFile {
				continue
			}
			switch r.Path {
			case "/dev/null":
				sawNull = true
			case dodge:
				sawDodge = true
			case "/proc/self/cwd/viaproc":
				sawProc = true
			}
			if sawDodge && sawProc {
				break loop
			}
		case <-deadline:
			break loop
		}
	}
	if sawNull {
		t.Error("a write to /dev/null was recorded despite the exclusion")
	}
	if !sawDodge || !sawProc {
		t.Errorf("writes through excluded prefixes went unrecorded: via /dev/..: %v, via /proc/self: %v", sawDodge, sawProc)
	}
}
