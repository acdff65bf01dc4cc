package cri

// A private containerd for tests: its root, state, socket and CNI config live in
// t.TempDir(), its images are built here (no registry), and everything it leaves
// behind (shims, mounts, cgroups) is removed when the test ends, passed or not.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
	busybox := findBusybox(t)

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
	pause := buildPause(t, dir)

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

	writeImages(t, images, busybox, pause)

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
	unmountUnder(t, c.dir)
	for _, top := range c.cgroups {
		removeCgroupTree(t, top)
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

// unmountUnder unmounts every mount point under dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			mp := unescapeMount(fields[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				points = append(points, mp)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mp, err)
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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

// removeCgroupTree removes a cgroup and its children (rmdir only: the files
// in a cgroup directory cannot be deleted).
func removeCgroupTree(t *testing.T, dir string) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(t, filepath.Join(dir, e.Name()))
		}
	}
	// A cgroup whose last process just died can be busy for a moment.
	for i := 0; ; i++ {
		err := syscall.Rmdir(dir)
		if err == nil || os.IsNotExist(err) {
			return
		}
		if i == 20 {
			t.Errorf("remove cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// findBusybox is Debian busybox-static's binary: it must be static to run in a
// root file system of its own.
func findBusybox(t *testing.T) string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p
		}
	}
	msg := "static busybox not found (apt-get install -y busybox-static)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// buildPause builds a static program that waits for a signal: the sandbox's
// "pause" process, which must exist because no registry is reachable.
func buildPause(t *testing.T, dir string) string {
	src := filepath.Join(dir, "pause-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module pause\n\ngo 1.21\n",
		"main.go": `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pause: %v\n%s", err, b)
	}
	return out
}

// writeImages writes an OCI image layout tar holding two one-layer images:
// testBusybox (busybox and its applets as links) and testPause (/pause).
func writeImages(t *testing.T, path, busybox, pause string) {
	blobs := map[string][]byte{}
	add := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return d, len(b)
	}
	image := func(name string, layer []byte, cfg map[string]any) map[string]any {
		layerDigest, layerSize := add(layer)
		cfg["architecture"], cfg["os"] = runtime.GOARCH, "linux"
		// The layer is not compressed, so its diff ID is its digest.
		cfg["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{layerDigest}}
		cfgDigest, cfgSize := add(mustJSON(t, cfg))
		manifest := map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": cfgSize},
			"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
		}
		mDigest, mSize := add(mustJSON(t, manifest))
		_, tag, _ := strings.Cut(name, ":")
		return map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mDigest, "size": mSize,
			"platform":    map[string]any{"architecture": runtime.GOARCH, "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
		}
	}
	bbLayer := layerTar(t, map[string]string{"bin/busybox": busybox},
		map[string]string{"bin/sh": "busybox", "bin/sleep": "busybox", "bin/ls": "busybox", "bin/cat": "busybox"})
	pauseLayer := layerTar(t, map[string]string{"pause": pause}, nil)
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{
			image(testBusybox, bbLayer, map[string]any{"config": map[string]any{"Cmd": []string{"/bin/sh"}, "Env": []string{"PATH=/bin"}}}),
			image(testPause, pauseLayer, map[string]any{"config": map[string]any{"Entrypoint": []string{"/pause"}}}),
		},
	}

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", mustJSON(t, index))
	for d, b := range blobs {
		put("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// layerTar is a layer with the given files (name -> file on this machine, made
// executable) and symlinks (name -> target), plus the directories they need.
func layerTar(t *testing.T, files, links map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdirs := func(name string) {
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range []string{"dev/", "proc/", "sys/", "tmp/", "etc/"} {
		dirs[strings.TrimSuffix(d, "/")] = true
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range sortedKeys(files) {
		b, err := os.ReadFile(files[name])
		if err != nil {
			t.Fatal(err)
		}
		mkdirs(name)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range sortedKeys(links) {
		mkdirs(name)
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: links[name], Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
