//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is a long-running process of the cluster (etcd, the API server, ...),
// writing its output to its own log file.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed once the process has been reaped
}

// startDaemon starts argv in a session of its own (setsid), so that it is its
// own process group: a ^C on the test reaches the test only, whose cleanup then
// stops every daemon by its PID in order.
func startDaemon(logDir, name string, env []string, argv ...string) (*daemon, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", name, err)
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL; killed says it took
// SIGKILL.
func (d *daemon) stop(grace time.Duration) (killed bool, err error) {
	if !d.running() {
		return false, nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return false, nil
	case <-time.After(grace):
	}
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
		return true, nil
	case <-time.After(10 * time.Second):
		return true, fmt.Errorf("%s (pid %d) did not end after SIGKILL", d.name, d.cmd.Process.Pid)
	}
}

// tail is the end of the daemon's log.
func (d *daemon) tail(lines int) string {
	return tailFile(d.log, lines)
}

func tailFile(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	data = bytes.TrimRight(data, "\n")
	var all []string
	for _, l := range strings.Split(string(data), "\n") {
		// On its way out the API server reports every audit event of its
		// open watches as dropped, three lines each: noise in a tail.
		if strings.Contains(l, "AUDIT: id=") || strings.HasPrefix(l, "Impacted events") || strings.Contains(l, "Error in audit plugin 'buffered'") {
			continue
		}
		all = append(all, l)
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// freePort asks the kernel for a free loopback port. Another process could take
// it before the daemon binds it; on a test machine that is rare enough.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls check every interval until it returns nil, the daemon d (if
// any) exits, or timeout passes; the error then says which, with check's last
// error.
func waitFor(what string, timeout time.Duration, d *daemon, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if d != nil && !d.running() {
			return fmt.Errorf("%s: %s exited (%v): %w", what, d.name, d.cmd.ProcessState, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %w", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// processesWith lists the PIDs whose command line contains every one of subs
// (the shims of this test's containerd name its socket, for example).
func processesWith(subs ...string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		line := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

// run runs a short command and returns its combined output; the error carries
// the output, which is what explains a failure.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
