package cri

// A private containerd for tests: its root, state, socket and CNI config live in
// t.TempDir(), its images are built here (no registry), and everything it leaves
// behind (shims, mounts, cgroups) is removed when the test ends, passed or not.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubetrail/kubetrail/internal/testnode"
)

const (
	testBusybox = "kubetrail.test/busybox:1"
	testPause   = "kubetrail.test/pause:1"
)

// containerd is a running private containerd.
type containerd struct {
	dir      string // everything of this instance is under it
	socket   string
	endpoint string
	cmd      *exec.Cmd
	log      string
	rt       runtimeapi.RuntimeServiceClient
	img      runtimeapi.ImageServiceClient
	conn     *grpc.ClientConn
	stopped  bool
	// cgroups are the cgroup directories the test created, removed last.
	cgroups []string
}

// needTool finds a program; a missing one skips the test, except in CI, which
// is expected to install it.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found (apt-get install -y %s)", name, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startContainerd starts containerd with the CRI plugin and the test images
// imported into its k8s.io namespace.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("containerd tests need root")
		}
		t.Skip("containerd tests need root")
	}
	bin := needTool(t, "containerd", "containerd")
	ctrBin := needTool(t, "ctr", "containerd")
	needTool(t, "runc", "runc")
	needTool(t, "containerd-shim-runc-v2", "containerd")
	busybox, err := testnode.StaticBusybox()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}

	// t.TempDir is short enough for the socket's path to fit in sun_path
	// (108 bytes) unless the test's name is very long.
	dir := t.TempDir()
	c := &containerd{dir: dir, socket: filepath.Join(dir, "c.sock"), log: filepath.Join(dir, "containerd.log")}
	c.endpoint = "unix://" + c.socket
	// Registered before anything can fail, so a half-started containerd is
	// still cleaned up.
	t.Cleanup(func() { c.cleanup(t) })

	for _, d := range []string{"root", "state", "cni", "opt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  disable_apparmor = true
  # The sandbox asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE; root
  # on a development machine or CI runner may lack it (runc then fails with
  # "can't get final child's PID from pipe"). This keeps it at containerd's own.
  restrict_oom_score_adj = true
  sandbox_image = %[6]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.socket, c.socket+".ttrpc",
		filepath.Join(dir, "opt"), testPause, filepath.Join(dir, "cni"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// Build the images while containerd starts.
	images := filepath.Join(dir, "images.tar")
	pause, err := testnode.BuildPause(dir)
	if err != nil {
		t.Fatal(err)
	}

	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Its own process group, so ^C on the test does not reach it before the
	// cleanup does, and so the cleanup can kill it by pid.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}

	if err := testnode.WriteImages(images, testBusybox, testPause, busybox, pause); err != nil {
		t.Fatal(err)
	}

	c.conn, err = grpc.NewClient(c.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.rt, c.img = runtimeapi.NewRuntimeServiceClient(c.conn), runtimeapi.NewImageServiceClient(c.conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || c.exited() {
			t.Fatalf("containerd's CRI did not answer: %v\n%s", err, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, err := exec.Command(ctrBin, "-n", "k8s.io", "-a", c.socket, "images", "import", images).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images import: %v\n%s\n%s", err, out, c.logTail())
	}
	return c
}

func (c *containerd) exited() bool {
	var ws syscall.WaitStatus
	pid, _ := syscall.Wait4(c.cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	if pid == c.cmd.Process.Pid {
		c.stopped = true
	}
	return c.stopped
}

func (c *containerd) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return "--- containerd log (tail) ---\n" + string(b)
}

// stop ends containerd (only: its shims survive it, as in production).
func (c *containerd) stop() {
	if c.cmd == nil || c.cmd.Process == nil || c.stopped {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.stopped = true
}

// cleanup removes the sandboxes through the CRI (which stops their shims), then
// stops containerd, kills any shim of this instance still running, unmounts
// what is mounted under its directory, removes the cgroups it made and the
// directory itself.
func (c *containerd) cleanup(t *testing.T) {
	if c.rt != nil && !c.stopped {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if sbs, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, sb := range sbs.GetItems() {
				_, _ = c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetId()})
				_, _ = c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetId()})
			}
		}
		cancel()
	}
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.stop()
	c.killShims(t)
	// Containers outlive their shims: delete what runc still knows of them
	// (its state is outside c.dir) and kill what still runs in the pod cgroups.
	for _, top := range c.cgroups {
		killCgroupTree(t, top)
	}
	if err := testnode.UnmountAll(c.dir); err != nil {
		t.Error(err)
	}
	for _, top := range c.cgroups {
		if err := testnode.RemoveCgroupTree(top); err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.Log(c.logTail())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("remove %s: %v", c.dir, err)
	}
}

// killShims kills the shims started by this containerd: they are the processes
// whose command line names its socket.
func (c *containerd) killShims(t *testing.T) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(c.socket)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		t.Logf("killing leftover process %d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// cgroupParent makes the pod's cgroupfs parent path and registers the removal of
// every cgroup directory the test creates under it (and of its ancestors that
// did not exist before), in every hierarchy, for when containerd is gone.
func (c *containerd) cgroupParent(podUID string) string {
	parent := "/kubepods/besteffort/pod" + podUID
	var roots []string
	candidates, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range append(candidates, "/sys/fs/cgroup") {
		// A hierarchy's root has cgroup.procs; /sys/fs/cgroup itself is one
		// only in pure cgroup v2.
		if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
			roots = append(roots, r)
		}
	}
	// The first of kubepods, kubepods/besteffort, ... that does not exist yet
	// is where this test's cgroups begin, per hierarchy.
	for _, r := range roots {
		p := r
		for _, seg := range strings.Split(strings.Trim(parent, "/"), "/") {
			p = filepath.Join(p, seg)
			if _, err := os.Stat(p); os.IsNotExist(err) {
				c.cgroups = append(c.cgroups, p)
				break
			}
		}
	}
	return parent
}

// killCgroupTree deletes the runc containers named by the cgroups under dir (the
// leaves are container IDs) and kills any process left in them.
func killCgroupTree(t *testing.T, dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if isImageID(d.Name()) { // 64 hex digits: a container's cgroup
			if out, err := exec.Command("runc", "--root", "/run/containerd/runc/k8s.io", "delete", "--force", d.Name()).CombinedOutput(); err == nil {
				t.Logf("deleted leftover container %s", d.Name())
			} else if !bytes.Contains(out, []byte("not exist")) {
				t.Logf("runc delete %s: %v: %s", d.Name(), err, out)
			}
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				t.Logf("killing leftover process %d in %s", pid, p)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}
