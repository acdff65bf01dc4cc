package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agent"
	"github.com/kubetrail/kubetrail/cgroup"
	"github.com/kubetrail/kubetrail/duckdb"
	"github.com/kubetrail/kubetrail/ebpf"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/ingest"

	"github.com/kubetrail/kubetrail/internal/testnode"
)

const token = "agent-test-token-0123456789"

// directSink sends each batch straight to the server.
type directSink struct{ c *kthttp.Client }

func (d directSink) Put(ctx context.Context, b *kubetrail.Batch) error {
	_, err := d.c.SendBatch(ctx, b)
	return err
}

func startServer(t *testing.T) *kthttp.Client {
	t.Helper()
	ctx := context.Background()
	store, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "trail.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.New(ctx, store, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := &kthttp.Server{Store: store, Sessions: store, Pipeline: p, Token: token, Registry: prometheus.NewRegistry()}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		srv.Shutdown(ctx)
		store.Close()
	})
	return kthttp.NewClient("http://"+addr.String(), token)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// kubeletCgroup makes a container cgroup laid out as the kubelet's cgroupfs driver
// does, under the cgroup v2 hierarchy, and removes it after the test.
func kubeletCgroup(t *testing.T, root string) (dir, podUID, containerID string) {
	t.Helper()
	u := randomHex(16)
	podUID = fmt.Sprintf("%s-%s-%s-%s-%s", u[0:8], u[8:12], u[12:16], u[16:20], u[20:32])
	containerID = randomHex(32)
	base := filepath.Join(root, "kubetrail-test-"+randomHex(4))
	dir = filepath.Join(base, "kubepods", "besteffort", "pod"+podUID, containerID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Innermost first; a cgroup can only be removed once empty.
		for d := dir; strings.HasPrefix(d, base); d = filepath.Dir(d) {
			os.Remove(d)
		}
	})
	return dir, podUID, containerID
}

// startAgent loads the real sensor with opts and runs an agent on it that sends
// to a real server. It returns the server's client, the cgroup v2 root, and stop,
// which ends the agent and returns what its Run returned.
func startAgent(t *testing.T, node string, opts ebpf.Options) (*kthttp.Client, string, func() error) {
	t.Helper()
	sensor, err := ebpf.LoadWith(opts)
	if err != nil {
		if os.Getenv("CI") == "true" || os.Geteuid() == 0 {
			t.Fatalf("eBPF sensor did not load: %v", err)
		}
		t.Skipf("needs root: %v", err)
	}
	t.Cleanup(func() { sensor.Close() })
	root, err := cgroup.V2Root()
	if err != nil {
		t.Fatalf("no cgroup v2 hierarchy: %v", err)
	}
	client := startServer(t)
	a, err := agent.New(agent.Config{Cluster: "test", Node: node, FlushInterval: 100 * time.Millisecond},
		sensor, cgroup.NewResolver(root), directSink{client}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(cancel) // runs before the sensor closes: a test that failed early still stops its agent
	return client, root, func() error {
		cancel()
		return <-done
	}
}

// The real sensor, a real cgroup laid out as a kubelet does, real processes, a
// real server: every event arrives with its container, process tree, argv and
// connection tuple.
func TestAgentEndToEnd(t *testing.T) {
	client, root, stop := startAgent(t, "node-1", ebpf.Options{})
	dir, podUID, containerID := kubeletCgroup(t, root)

	// A listener standing in for a download server.
	port := testnode.ServeTCP(t, []byte("payload\n")).Port
	work := t.TempDir()
	// The seed's sequence, in the container's cgroup: a shell that downloads,
	// unpacks, writes and removes.
	// The shell lingers a moment, as an interactive one would, so that the agent
	// reads its environment (KEP-6035's KUBERNETES_EXEC_AUDIT_ID) while it runs.
	chain := fmt.Sprintf(`sleep 0.5; cd %s && exec 3<>/dev/tcp/127.0.0.1/%d && cat <&3 > payload.txt && exec 3>&- && tar -cf bundle.tar payload.txt && rm bundle.tar && echo done`, work, port)
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec /bin/bash -c '%s'`, dir, chain))
	cmd.Env = append(os.Environ(), "KUBERNETES_EXEC_AUDIT_ID=6e9a0858-a11c-4449-b430-9fb49420c081")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run the chain: %v\n%s", err, out)
	}

	// Wait for the events to be stored.
	filter := fmt.Sprintf("container.id = %s", containerID)
	var events []kubetrail.Event
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		page, err := client.Search(context.Background(), kthttp.Query{Filter: filter, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		events = page.Events
		if hasAll(events) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !hasAll(events) {
		for _, e := range events {
			t.Logf("%s %s %s %v", e.Category, e.Type, e.Process.Name, e.Process.Argv)
		}
		t.Fatalf("missing events for container %s", containerID)
	}
	byName := map[string]kubetrail.Event{}
	for _, e := range events {
		if e.PodUID != podUID || e.Node != "node-1" || e.Cluster != "test" {
			t.Errorf("%s %s: pod %q node %q", e.Type, e.Process.Name, e.PodUID, e.Node)
		}
		if e.Type == "execve" {
			byName[e.Process.Name] = e
		}
	}
	bash := byName["bash"]
	if len(bash.Process.Argv) != 3 || bash.Process.Argv[2] != chain {
		t.Errorf("bash argv %q", bash.Process.Argv)
	}
	for _, name := range []string{"cat", "tar", "rm"} {
		e := byName[name]
		if e.Process.ParentExecID != bash.Process.ExecID || e.Process.ParentName != "bash" {
			t.Errorf("%s: parent exec %q (%s), want bash's %q", name, e.Process.ParentExecID, e.Process.ParentName, bash.Process.ExecID)
		}
	}
	// bash entered the container from outside it (its parent is the test, on the
	// host): it opens a session, and everything after it belongs to that.
	for _, e := range events {
		if e.SessionID != bash.Process.ExecID {
			t.Errorf("%s %s: session %q, want bash's exec id %q", e.Type, e.Process.Name, e.SessionID, bash.Process.ExecID)
		}
	}
	if bash.Process.ExecAuditID != "6e9a0858-a11c-4449-b430-9fb49420c081" {
		t.Errorf("bash: proc.exec_auditid %q, want the KUBERNETES_EXEC_AUDIT_ID of its environment", bash.Process.ExecAuditID)
	}
	if tar := byName["tar"]; strings.Join(tar.Process.Argv, " ") != "tar -cf bundle.tar payload.txt" || tar.Process.Cwd != work {
		t.Errorf("tar: argv %q cwd %q", tar.Process.Argv, tar.Process.Cwd)
	}
	files := map[string]string{}
	for _, e := range events {
		if e.Category == kubetrail.CategoryFile {
			files[e.Type+" "+e.File.Path] = e.Process.Name
		}
	}
	for want, by := range map[string]string{
		"open " + filepath.Join(work, "payload.txt"):  "bash", // the shell's redirection, before cat runs
		"open " + filepath.Join(work, "bundle.tar"):   "tar",
		"unlink " + filepath.Join(work, "bundle.tar"): "rm",
	} {
		if got, ok := files[want]; !ok || got != by {
			t.Errorf("file event %q by %q: got %q (all: %v)", want, by, got, files)
		}
	}
	for _, e := range events {
		if e.Type == "connect" {
			if e.Network.ServerIP != "127.0.0.1" || e.Network.ServerPort != int64(port) || e.Network.ClientPort == 0 ||
				e.Result != "SUCCESS" || e.Process.ExecID != bash.Process.ExecID {
				t.Errorf("connect: %+v %+v", e.Network, e.Process)
			}
		}
	}
}

func hasAll(events []kubetrail.Event) bool {
	want := map[string]bool{"execve bash": false, "execve cat": false, "execve tar": false, "execve rm": false, "connect bash": false,
		"open tar": false, "unlink rm": false}
	for _, e := range events {
		k := e.Type + " " + e.Process.Name
		if _, ok := want[k]; ok {
			want[k] = true
		}
	}
	for _, ok := range want {
		if !ok {
			return false
		}
	}
	return true
}

// Records the kernel cannot hand over are not silently gone: the trail holds a
// gap event saying how many of what were lost, where and when.
func TestAgentRecordsGaps(t *testing.T) {
	// A ring buffer smaller than one exec record: every exec is lost, and counted.
	client, _, stop := startAgent(t, "node-gap", ebpf.Options{RingBufferBytes: 4096})
	for i := 0; i < 5; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	var lost int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && lost < 5; time.Sleep(200 * time.Millisecond) {
		page, err := client.Search(context.Background(), kthttp.Query{Filter: "evt.category = gap and evt.type = exec and k8s.node.name = node-gap"})
		if err != nil {
			t.Fatal(err)
		}
		lost = 0
		for _, e := range page.Events {
			lost += e.Lost
		}
	}
	stop()
	if lost < 5 {
		t.Fatalf("gap events account for %d lost execs, want at least 5", lost)
	}
}

// The same in the container's own network namespace, as a pod has: the download
// server runs inside it too, and both ends of the connection are attributed.
func TestAgentInNetworkNamespace(t *testing.T) {
	for _, tool := range []string{"unshare", "ip", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed: %v", tool, err)
			}
			t.Skipf("%s is needed: %v", tool, err)
		}
	}
	client, root, stop := startAgent(t, "node-1", ebpf.Options{})
	dir, _, containerID := kubeletCgroup(t, root)

	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "payload.txt"), []byte("payload\n"), 0o644)
	script := filepath.Join(work, "inside.sh")
	os.WriteFile(script, []byte(`set -e
ip link set lo up
busybox httpd -f -p 127.0.0.1:18080 -h . &
server=$!
sleep 0.3
exec 3<>/dev/tcp/127.0.0.1/18080
printf 'GET /payload.txt HTTP/1.0\r\n\r\n' >&3
cat <&3 > got.txt
exec 3>&-
tar -cf got.tar got.txt
rm got.tar
kill $server
`), 0o755)
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs && cd %s && exec unshare -n /bin/bash %s`, dir, work, script))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run the chain: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(work, "got.txt")); !strings.Contains(string(got), "payload") {
		t.Fatalf("the download inside the namespace did not happen: %q", got)
	}
	var connect, accept, tar bool
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !(connect && accept && tar); time.Sleep(200 * time.Millisecond) {
		page, err := client.Search(context.Background(), kthttp.Query{Filter: "container.id = " + containerID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			switch {
			case e.Type == "connect" && e.Network.ServerPort == 18080 && e.Process.Name == "bash" && e.Result == "SUCCESS":
				connect = true
			case e.Type == "accept" && e.Network.ServerPort == 18080 && e.Process.Name == "busybox":
				accept = true
			case e.Type == "execve" && e.Process.Name == "tar" && e.Process.Cwd == work:
				tar = true
			}
		}
	}
	stop()
	if !connect || !accept || !tar {
		t.Fatalf("in the network namespace: connect %v, accept %v, tar %v", connect, accept, tar)
	}
}
