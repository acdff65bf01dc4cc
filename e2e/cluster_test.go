//go:build e2e

package e2e

// A real single-node Kubernetes cluster on this machine, for the test's life:
// etcd, kube-apiserver and kubelet (built from the k8s.io/kubernetes module that
// e2e/cluster pins), containerd with runc and a CNI bridge, and kubetrail's own
// server and node agent. No controller-manager or scheduler runs: the test makes
// the objects those would (service accounts, the ReplicaSet) and binds pods to
// the node itself.
//
// Everything lives in one work directory (kept when the test fails, with every
// daemon's log); what cannot (cgroups, the bridge, iptables chains, links in
// /var/log/containers) is removed by the cleanup, which runs however far the
// start got.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubetrail/kubetrail/internal/testnode"
)

const (
	clusterName = "e2e"
	// The pod network: a bridge and subnet of the test's own, so that nothing
	// else on the machine is touched. Pods reach each other over the bridge only.
	cniNetwork  = "kubetrail-e2e"
	cniBridge   = "kt-e2e0"
	podSubnet   = "10.244.93.0/24"
	serviceCIDR = "10.97.0.0/24"
)

// tools are the programs of the machine the cluster runs.
type tools struct {
	goBin, etcd, containerd, ctr, kubectl, busybox string
}

// unavailable skips the test when the machine lacks something it needs, except
// in CI (CI=true), which is expected to provide everything: there it fails.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// checkMachine finds what the cluster needs, or skips (fails in CI) saying what
// is missing.
func checkMachine(t *testing.T) tools {
	t.Helper()
	if runtime.GOOS != "linux" {
		unavailable(t, "the end-to-end test runs a kubelet and needs Linux, not %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		unavailable(t, "the end-to-end test runs a kubelet, containerd and the eBPF agent and needs root")
	}
	var tl tools
	var missing []string
	look := func(name, pkg string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, pkg))
		}
		return p
	}
	tl.goBin = look("go", "Go toolchain")
	tl.etcd = look("etcd", "etcd-server")
	tl.containerd = look("containerd", "containerd")
	tl.ctr = look("ctr", "containerd")
	look("containerd-shim-runc-v2", "containerd")
	look("runc", "runc")
	look("iptables", "iptables")
	look("ip", "iproute2")
	tl.kubectl = look("kubectl", "kubectl")
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat("/usr/lib/cni/" + plugin); err != nil {
			missing = append(missing, "/usr/lib/cni/"+plugin+" (containernetworking-plugins)")
		}
	}
	bb, err := testnode.StaticBusybox()
	if err != nil {
		missing = append(missing, "static busybox (busybox-static)")
	}
	tl.busybox = bb
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		missing = append(missing, "kernel BTF at /sys/kernel/btf/vmlinux (the agent's eBPF sensor)")
	}
	if len(missing) > 0 {
		unavailable(t, "missing: %s (as root, e2e/deps.sh installs them)", strings.Join(missing, ", "))
	}
	// The API server reaches the kubelet by the node's host name, and the
	// kubelet listens on loopback only.
	host, _ := os.Hostname()
	addrs, err := net.LookupHost(host)
	loopback := false
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.IsLoopback() {
			loopback = true
		}
	}
	if !loopback {
		unavailable(t, "the host name %q must resolve to a loopback address (as in /etc/hosts: 127.0.0.1 %s), got %v %v", host, host, addrs, err)
	}
	for _, d := range kubepodsDirs() {
		if pids := cgroupPIDs(d); len(pids) > 0 {
			unavailable(t, "%s holds processes %v: another kubelet seems to run on this machine", d, pids)
		}
	}
	return tl
}

// cluster is the running cluster and what the cleanup needs to undo it.
type cluster struct {
	t     *testing.T
	tools tools
	repo  string // the kubetrail repository
	dir   string // the work directory
	logs  string
	node  string

	ports struct{ etcd, etcdPeer, apiserver, kubelet, server, agent int }

	apiserverBin, kubeletBin, kubetrailBin, pauseBin string

	pki             *pki
	certs           map[string]pair // by name: apiserver, admin, kubelet-client, ...
	saKey           pair            // service account token signing key (cert = public key)
	adminKubeconfig string
	userKubeconfigs map[string]string // token user name -> kubeconfig
	kube            kubernetes.Interface
	restConfig      *rest.Config

	serverURL, serverToken string
	serverHTTP             *http.Client // trusts the test's CA
	criSocket              string
	podLogs                string

	daemons map[string]*daemon
	cri     *grpc.ClientConn

	iptablesBefore iptablesState
	kubeletStarted bool
	// hostDirs are directories outside the work directory that the kubelet or
	// the CNI plugins create when missing; those the test made are removed
	// (when empty) at the end.
	hostDirs map[string]bool // path -> existed before
}

// createdHostDirs are created by the kubelet (/var/log/containers) and the CNI
// plugins (/var/lib/cni) when missing, whatever their configuration says.
var createdHostDirs = []string{"/var/log/containers", "/var/lib/cni/results", "/var/lib/cni"}

// token users of the API server: name -> groups.
var tokenUsers = map[string][]string{
	"john.doe": {"devs", "billing-team"},
	"jane":     {"devs"},
}

// startCluster brings the cluster up, or fails (skips) the test; its cleanup
// is registered first, so a half-started cluster is undone too.
func startCluster(t *testing.T) *cluster {
	tl := checkMachine(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Short, so that unix socket paths stay within 108 bytes.
	dir, err := os.MkdirTemp("", "kt-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	c := &cluster{t: t, tools: tl, repo: repo, dir: dir, logs: filepath.Join(dir, "logs"), node: strings.ToLower(host),
		daemons: map[string]*daemon{}, userKubeconfigs: map[string]string{}, hostDirs: map[string]bool{}}
	for _, d := range createdHostDirs {
		_, err := os.Stat(d)
		c.hostDirs[d] = err == nil
	}
	t.Cleanup(c.teardown)
	t.Logf("work directory %s", dir)

	phase := func(name string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%-45s %6.1fs", name, time.Since(start).Seconds())
	}
	phase("build kube-apiserver and kubelet (cached)", c.buildKube)
	phase("build kubetrail and pause", c.buildLocal)
	phase("certificates, configuration, images", c.configure)
	phase("start etcd", c.startEtcd)
	phase("start kube-apiserver", c.startAPIServer)
	phase("start kubetrail server", c.startServer)
	phase("start containerd, import images", c.startContainerd)
	phase("start kubelet, node Ready", c.startKubelet)
	phase("start kubetrail agent", c.startAgent)
	return c
}

// cacheDir holds the Kubernetes binaries between runs.
func cacheDir() string {
	if d := os.Getenv("KUBETRAIL_E2E_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "kubetrail-e2e-cache")
	}
	return filepath.Join(home, ".cache", "kubetrail-e2e")
}

// kubeVersion reads the Kubernetes release e2e/cluster/go.mod pins.
func kubeVersion(gomod string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s requires no k8s.io/kubernetes", gomod)
}

// buildKube builds kube-apiserver and kubelet from e2e/cluster into the cache,
// unless the cache already holds them for this version and these dependencies.
// One at a time: each build alone takes both cores of a small machine.
func (c *cluster) buildKube() error {
	modDir := filepath.Join(c.repo, "e2e", "cluster")
	version, err := kubeVersion(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(version, "v"), ".")
	if len(parts) < 2 {
		return fmt.Errorf("unexpected Kubernetes version %q in e2e/cluster/go.mod", version)
	}
	sum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return fmt.Errorf("read e2e/cluster/go.sum: %w", err)
	}
	h := sha256.Sum256(sum)
	stamp := version + " " + hex.EncodeToString(h[:8])
	// Without the version stamp the servers report v0.0.0-master+$Format:%H$,
	// which kubectl cannot parse.
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "k8s.io/component-base/version.gitVersion=" + version,
		"-X", "k8s.io/component-base/version.gitMajor=" + parts[0],
		"-X", "k8s.io/component-base/version.gitMinor=" + parts[1],
		"-X", "k8s.io/component-base/version.gitTreeState=clean",
		"-X", "k8s.io/client-go/pkg/version.gitVersion=" + version,
	}, " ")
	bin := filepath.Join(cacheDir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("create the build cache: %w", err)
	}
	for _, name := range []string{"kube-apiserver", "kubelet"} {
		out := filepath.Join(bin, name)
		if have, err := os.ReadFile(out + ".stamp"); err == nil && string(have) == stamp {
			if _, err := os.Stat(out); err == nil {
				continue
			}
		}
		c.t.Logf("building %s %s into %s (the first build takes minutes)", name, version, bin)
		start := time.Now()
		tmp := out + ".tmp"
		cmd := exec.Command(c.tools.goBin, "build", "-o", tmp, "-ldflags", ldflags, "k8s.io/kubernetes/cmd/"+name)
		cmd.Dir = modDir
		// Static, as Kubernetes releases them; no C toolchain needed.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", name, err, lastLines(string(b), 40))
		}
		if err := os.Rename(tmp, out); err != nil {
			return fmt.Errorf("install %s: %w", name, err)
		}
		if err := os.WriteFile(out+".stamp", []byte(stamp), 0o644); err != nil {
			return fmt.Errorf("stamp %s: %w", name, err)
		}
		c.t.Logf("built %s in %s", name, time.Since(start).Round(time.Second))
	}
	c.apiserverBin, c.kubeletBin = filepath.Join(bin, "kube-apiserver"), filepath.Join(bin, "kubelet")
	return nil
}

// buildLocal builds the kubetrail under test and the pause program.
func (c *cluster) buildLocal() error {
	bin := filepath.Join(c.dir, "bin")
	c.kubetrailBin, c.pauseBin = filepath.Join(bin, "kubetrail"), filepath.Join(bin, "pause")
	for _, b := range []struct {
		out, pkg string
		env      []string
	}{
		{c.kubetrailBin, "./cmd/kubetrail", nil},
		{c.pauseBin, "./internal/testnode/pause", []string{"CGO_ENABLED=0"}},
	} {
		cmd := exec.Command(c.tools.goBin, "build", "-o", b.out, b.pkg)
		cmd.Dir = c.repo
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, lastLines(string(out), 40))
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeKubeconfig writes a kubeconfig (JSON is YAML) for one server and user.
func writeKubeconfig(path, server, ca string, user map[string]any) error {
	cl := map[string]any{"server": server}
	if ca != "" {
		cl["certificate-authority"] = ca
	}
	return writeJSON(path, map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"clusters":        []any{map[string]any{"name": clusterName, "cluster": cl}},
		"users":           []any{map[string]any{"name": "user", "user": user}},
		"contexts":        []any{map[string]any{"name": clusterName, "context": map[string]any{"cluster": clusterName, "user": "user"}}},
		"current-context": clusterName,
	})
}

// configure writes every certificate, kubeconfig and configuration file, and
// the image archive.
func (c *cluster) configure() error {
	for _, d := range []string{"logs", "home", "etc", "kubelet", "pod-logs", "spool", "kubetrail", "containerd/cni", "cni-ipam"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for _, p := range []*int{&c.ports.etcd, &c.ports.etcdPeer, &c.ports.apiserver, &c.ports.kubelet, &c.ports.server, &c.ports.agent} {
		port, err := freePort()
		if err != nil {
			return err
		}
		*p = port
	}
	c.podLogs = c.path("pod-logs")
	c.criSocket = c.path("containerd", "containerd.sock")
	c.serverURL = fmt.Sprintf("https://127.0.0.1:%d", c.ports.server)
	c.serverToken = "kt_e2e_" + randomToken()
	apiURL := fmt.Sprintf("https://127.0.0.1:%d", c.ports.apiserver)

	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	c.pki = p
	type certSpec struct {
		name, cn string
		orgs     []string
		hosts    []string
		client   bool
	}
	certs := map[string]pair{}
	for _, s := range []certSpec{
		{"apiserver", "kube-apiserver", nil, []string{"127.0.0.1", "localhost", c.node, "kubernetes", "kubernetes.default", "kubernetes.default.svc"}, false},
		{"admin", "kubernetes-admin", []string{"system:masters"}, nil, true},
		// The node authorizer knows a kubelet by this name and group.
		{"kubelet-client", "system:node:" + c.node, []string{"system:nodes"}, nil, true},
		{"kubelet-serving", c.node, nil, []string{"127.0.0.1", "localhost", c.node}, false},
		// The API server's identity at the kubelet (for exec, logs, ...).
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, true},
		// kubetrail's server speaks HTTPS: over plain HTTP the API server's
		// webhook client (client-go's kubeconfig loader) drops the kubeconfig's
		// token, and every audit batch is refused with 401.
		{"kubetrail", "kubetrail", nil, []string{"127.0.0.1", "localhost"}, false},
	} {
		pr, err := p.issue(s.name, s.cn, s.orgs, s.hosts, s.client)
		if err != nil {
			return err
		}
		certs[s.name] = pr
	}
	sa, err := p.serviceAccountKey()
	if err != nil {
		return err
	}
	c.certs = certs
	c.saKey = sa
	caPEM, err := os.ReadFile(p.caFile())
	if err != nil {
		return fmt.Errorf("read the CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c.serverHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	// Token users, as the API server's --token-auth-file: token,user,uid,"groups".
	var tokens strings.Builder
	uid := 1000
	for _, name := range []string{"john.doe", "jane"} {
		tok := randomToken()
		uid++
		fmt.Fprintf(&tokens, "%s,%s,%d,\"%s\"\n", tok, name, uid, strings.Join(tokenUsers[name], ","))
		kc := c.path("etc", name+".kubeconfig")
		if err := writeKubeconfig(kc, apiURL, p.caFile(), map[string]any{"token": tok}); err != nil {
			return err
		}
		c.userKubeconfigs[name] = kc
	}
	if err := os.WriteFile(c.path("etc", "tokens.csv"), []byte(tokens.String()), 0o600); err != nil {
		return fmt.Errorf("write the token file: %w", err)
	}
	c.adminKubeconfig = c.path("etc", "admin.kubeconfig")
	if err := writeKubeconfig(c.adminKubeconfig, apiURL, p.caFile(), map[string]any{
		"client-certificate": certs["admin"].cert, "client-key": certs["admin"].key}); err != nil {
		return err
	}
	if err := writeKubeconfig(c.path("etc", "kubelet.kubeconfig"), apiURL, p.caFile(), map[string]any{
		"client-certificate": certs["kubelet-client"].cert, "client-key": certs["kubelet-client"].key}); err != nil {
		return err
	}
	// The audit webhook is a kubeconfig too: the cluster is kubetrail's receiver,
	// the user its admin token.
	if err := writeKubeconfig(c.path("etc", "audit-webhook.kubeconfig"),
		// The cluster is named in the path: the API server's webhook client drops
		// the URL's query.
		c.serverURL+"/api/v1/k8s-audit/"+clusterName, p.caFile(), map[string]any{"token": c.serverToken}); err != nil {
		return err
	}
	// exec and attach in full (they are what sessions are matched with; the
	// command is in the request URI), everything else at Metadata.
	if err := writeJSON(c.path("etc", "audit-policy.json"), map[string]any{
		"apiVersion": "audit.k8s.io/v1",
		"kind":       "Policy",
		"rules": []any{
			map[string]any{"level": "RequestResponse", "resources": []any{map[string]any{"group": "", "resources": []string{"pods/exec", "pods/attach"}}}},
			map[string]any{"level": "Metadata"},
		},
	}); err != nil {
		return err
	}

	c.restConfig = &rest.Config{
		Host:            apiURL,
		TLSClientConfig: rest.TLSClientConfig{CAFile: p.caFile(), CertFile: certs["admin"].cert, KeyFile: certs["admin"].key},
		UserAgent:       "kubetrail-e2e",
		QPS:             50,
		Burst:           100,
	}
	if c.kube, err = kubernetes.NewForConfig(c.restConfig); err != nil {
		return fmt.Errorf("client for the API server: %w", err)
	}

	if err := c.writeContainerdConfig(); err != nil {
		return err
	}
	if err := c.writeKubeletConfig(); err != nil {
		return err
	}
	return testnode.WriteImages(c.path("images.tar"), busyboxImage, pauseImage, c.tools.busybox, c.pauseBin)
}

func (c *cluster) writeContainerdConfig() error {
	cd := c.path("containerd")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %q
[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  disable_apparmor = true
  # Root here may lack CAP_SYS_RESOURCE, which the sandbox's default
  # oom_score_adj of -998 needs.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(cd, "root"), filepath.Join(cd, "state"), c.criSocket, c.criSocket+".ttrpc",
		filepath.Join(cd, "opt"), pauseImage, filepath.Join(cd, "runc"), filepath.Join(cd, "cni"))
	if err := os.WriteFile(filepath.Join(cd, "config.toml"), []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write the containerd config: %w", err)
	}
	// A bridge with the host as gateway; no masquerading (pods talk to each
	// other and to the host only), IP allocations kept in the work directory.
	return writeJSON(filepath.Join(cd, "cni", "10-kubetrail-e2e.conflist"), map[string]any{
		"cniVersion": "0.4.0",
		"name":       cniNetwork,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      cniBridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  []any{[]any{map[string]any{"subnet": podSubnet}}},
				"dataDir": c.path("cni-ipam"),
			},
		}},
	})
}

func (c *cluster) writeKubeletConfig() error {
	return writeJSON(c.path("etc", "kubelet.json"), map[string]any{
		"kind":              "KubeletConfiguration",
		"apiVersion":        "kubelet.config.k8s.io/v1beta1",
		"address":           "127.0.0.1",
		"port":              c.ports.kubelet,
		"readOnlyPort":      0,
		"healthzPort":       0,
		"tlsCertFile":       c.certs["kubelet-serving"].cert,
		"tlsPrivateKeyFile": c.certs["kubelet-serving"].key,
		"authentication": map[string]any{
			"x509":      map[string]any{"clientCAFile": c.pki.caFile()},
			"webhook":   map[string]any{"enabled": false},
			"anonymous": map[string]any{"enabled": false},
		},
		// Only the API server (system:masters, by certificate) calls it.
		"authorization":            map[string]any{"mode": "AlwaysAllow"},
		"cgroupDriver":             "cgroupfs",
		"containerRuntimeEndpoint": "unix://" + c.criSocket,
		"failSwapOn":               false,
		"podLogsDir":               c.podLogs,
		// A test machine's disk and memory may be fuller than the defaults allow.
		"evictionHard": map[string]string{
			"memory.available": "100Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%",
		},
		// The test's images are not in any registry: never collect them.
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"maxPods":                     20,
		"resolvConf":                  "/etc/resolv.conf",
	})
}

func (c *cluster) start(name string, env []string, argv ...string) (*daemon, error) {
	d, err := startDaemon(c.logs, name, env, argv...)
	if err != nil {
		return nil, err
	}
	c.daemons[name] = d
	return d, nil
}

func httpOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

var plainHTTP = &http.Client{Timeout: 2 * time.Second}

func (c *cluster) startEtcd() error {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcd)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdPeer)
	d, err := c.start("etcd", nil, c.tools.etcd,
		"--name", "e2e", "--data-dir", c.path("etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "e2e="+peer, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-outputs", "stderr")
	if err != nil {
		return err
	}
	return waitFor("etcd healthy", 30*time.Second, d, func() error { return httpOK(plainHTTP, client+"/health") })
}

func (c *cluster) startAPIServer() error {
	etc := func(f string) string { return c.path("etc", f) }
	d, err := c.start("kube-apiserver", nil, c.apiserverBin,
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.ports.etcd),
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.ports.apiserver),
		"--cert-dir="+c.path("pki"),
		"--tls-cert-file="+c.certs["apiserver"].cert,
		"--tls-private-key-file="+c.certs["apiserver"].key,
		"--client-ca-file="+c.pki.caFile(),
		"--token-auth-file="+etc("tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+c.saKey.cert,
		"--service-account-signing-key-file="+c.saKey.key,
		"--service-cluster-ip-range="+serviceCIDR,
		// No endpoints of its own to keep in the kubernetes Service: the
		// advertised address would not be reachable from pods anyway.
		"--endpoint-reconciler-type=none",
		// The kubelet listens on 127.0.0.1, which the node's host name resolves to.
		"--kubelet-preferred-address-types=Hostname,InternalIP",
		"--kubelet-certificate-authority="+c.pki.caFile(),
		"--kubelet-client-certificate="+c.certs["apiserver-kubelet-client"].cert,
		"--kubelet-client-key="+c.certs["apiserver-kubelet-client"].key,
		"--audit-policy-file="+etc("audit-policy.json"),
		"--audit-log-path="+c.path("logs", "audit.log"),
		"--audit-log-format=json",
		"--audit-webhook-config-file="+etc("audit-webhook.kubeconfig"),
		"--audit-webhook-mode=batch",
		"--audit-webhook-batch-max-wait=1s",
		// Retry a refused batch soon (default 10 s, growing): on the way out the
		// API server tries to deliver its last batch to a receiver already gone.
		"--audit-webhook-initial-backoff=200ms",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(c.restConfig)
	if err != nil {
		return fmt.Errorf("HTTP client for the API server: %w", err)
	}
	hc.Timeout = 5 * time.Second
	return waitFor("kube-apiserver ready", 60*time.Second, d, func() error { return httpOK(hc, c.restConfig.Host+"/readyz") })
}

func (c *cluster) startServer() error {
	d, err := c.start("kubetrail-server",
		// Its own HOME: the server records itself in ~/.kubetrail for the CLI,
		// which must not point a developer's CLI at this test's server.
		[]string{"KUBETRAIL_ADMIN_TOKEN=" + c.serverToken, "HOME=" + c.path("home")},
		c.kubetrailBin, "server",
		"--listen", fmt.Sprintf("127.0.0.1:%d", c.ports.server),
		"--tls-cert-file", c.certs["kubetrail"].cert,
		"--tls-key-file", c.certs["kubetrail"].key,
		"--data-dir", c.path("kubetrail"),
		"--cluster-name", clusterName,
		"--kubeconfig", c.adminKubeconfig)
	if err != nil {
		return err
	}
	return waitFor("kubetrail server ready", 30*time.Second, d, func() error { return httpOK(c.serverHTTP, c.serverURL+"/readyz") })
}

func (c *cluster) startContainerd() error {
	d, err := c.start("containerd", nil, c.tools.containerd, "--config", c.path("containerd", "config.toml"))
	if err != nil {
		return err
	}
	c.cri, err = grpc.NewClient("unix://"+c.criSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CRI client: %w", err)
	}
	rt := runtimeapi.NewRuntimeServiceClient(c.cri)
	err = waitFor("containerd's CRI answering", 30*time.Second, d, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
		return err
	})
	if err != nil {
		return err
	}
	if _, err := run(c.tools.ctr, "-n", "k8s.io", "-a", c.criSocket, "images", "import", c.path("images.tar")); err != nil {
		return fmt.Errorf("import the test images: %w", err)
	}
	return nil
}

func (c *cluster) startKubelet() error {
	c.iptablesBefore = readIptables()
	c.kubeletStarted = true
	d, err := c.start("kubelet", nil, c.kubeletBin,
		"--config", c.path("etc", "kubelet.json"),
		"--kubeconfig", c.path("etc", "kubelet.kubeconfig"),
		"--root-dir", c.path("kubelet"),
		"--hostname-override", c.node,
		"--v", "1")
	if err != nil {
		return err
	}
	return waitFor("node Ready", 90*time.Second, d, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := c.kube.CoreV1().Nodes().Get(ctx, c.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s Ready=%s: %s", c.node, cond.Status, cond.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", c.node)
	})
}

func (c *cluster) startAgent() error {
	d, err := c.start("kubetrail-agent", []string{"HOME=" + c.path("home")},
		c.kubetrailBin, "agent",
		"--server", c.serverURL, "--token", c.serverToken, "--certificate-authority", c.pki.caFile(),
		"--node", c.node, "--cluster-name", clusterName,
		"--cri-endpoint", "unix://"+c.criSocket,
		"--spool-dir", c.path("spool"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", c.ports.agent))
	if err != nil {
		return err
	}
	return waitFor("kubetrail agent healthy", 60*time.Second, d, func() error {
		return httpOK(plainHTTP, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.ports.agent))
	})
}

// stopDaemon stops one daemon if it was started. One that outlives grace is
// killed and the kill logged: slow to stop is no failure of the test.
func (c *cluster) stopDaemon(name string, grace time.Duration) error {
	d := c.daemons[name]
	if d == nil {
		return nil
	}
	killed, err := d.stop(grace)
	if killed {
		c.t.Logf("cleanup: %s did not end within %s of SIGTERM and was killed", name, grace)
	}
	return err
}

// deletePods force-deletes every pod in the namespaces and waits until the
// kubelet has stopped their containers (no process left in kubepods).
func (c *cluster) deletePods(namespaces ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zero := int64(0)
	var errs []error
	for _, ns := range namespaces {
		pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("list pods in %s: %w", ns, err))
			continue
		}
		for _, p := range pods.Items {
			if err := c.kube.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				errs = append(errs, fmt.Errorf("delete pod %s/%s: %w", ns, p.Name, err))
			}
		}
	}
	if d := c.daemons["kubelet"]; d != nil && d.running() {
		errs = append(errs, waitFor("the kubelet stopping the pods' containers", 45*time.Second, nil, func() error {
			for _, dir := range kubepodsDirs() {
				if pids := cgroupPIDs(dir); len(pids) > 0 {
					return fmt.Errorf("processes %v still in %s", pids, dir)
				}
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

// removeSandboxes removes every pod sandbox through the CRI: containerd stops
// their containers and shims and tears their network down (CNI DEL).
func (c *cluster) removeSandboxes() error {
	if c.cri == nil {
		return nil
	}
	rt := runtimeapi.NewRuntimeServiceClient(c.cri)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.Metadata.GetName(), err))
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.Metadata.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// teardown undoes the cluster, however far it got, in the order that leaves
// nothing behind: pods first (while the kubelet runs), then the daemons, then
// what they left on the host. Cleanup errors fail the test.
func (c *cluster) teardown() {
	t := c.t
	start := time.Now()
	check := func(what string, err error) {
		if err != nil {
			t.Errorf("cleanup: %s: %v", what, err)
		}
	}
	apiUp := c.daemons["kube-apiserver"] != nil && c.daemons["kube-apiserver"].running()
	if apiUp && c.daemons["kubelet"] != nil {
		check("delete pods", c.deletePods("billing"))
	}
	// kubetrail first, so that its server checkpoints its store (kept for
	// inspection when the test fails) while its watches are still answered.
	check("stop kubetrail agent", c.stopDaemon("kubetrail-agent", 10*time.Second))
	check("stop kubetrail server", c.stopDaemon("kubetrail-server", 30*time.Second))
	check("stop kubelet", c.stopDaemon("kubelet", 10*time.Second))
	if d := c.daemons["containerd"]; d != nil && d.running() {
		check("remove pod sandboxes", c.removeSandboxes())
	}
	if c.cri != nil {
		c.cri.Close()
	}
	check("stop containerd", c.stopDaemon("containerd", 10*time.Second))
	// Shims outlive containerd by design; any left belong to this test's
	// containerd, whose socket they name. So do processes left in kubepods.
	var leftover []int
	for _, pid := range processesWith("containerd-shim", c.criSocket) {
		leftover = append(leftover, pid)
	}
	for _, dir := range kubepodsDirs() {
		leftover = append(leftover, cgroupPIDs(dir)...)
	}
	for _, pid := range leftover {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(leftover) > 0 {
		t.Logf("cleanup: killed leftover processes %v", leftover)
		time.Sleep(500 * time.Millisecond)
	}
	check("stop kube-apiserver", c.stopDaemon("kube-apiserver", 15*time.Second))
	check("stop etcd", c.stopDaemon("etcd", 10*time.Second))

	check("unmount", testnode.UnmountAll(c.dir))
	for _, dir := range kubepodsDirs() {
		check("remove "+dir, testnode.RemoveCgroupTree(dir))
	}
	check("remove the CNI bridge", deleteLink(cniBridge))
	if c.kubeletStarted {
		check("remove the kubelet's iptables chains", removeKubeletChains(c.iptablesBefore))
	}
	check("remove /var/log/containers links", removeContainerLogLinks(c.podLogs))
	if results, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); len(results) > 0 {
		for _, r := range results {
			check("remove CNI result cache", os.Remove(r))
		}
	}
	for _, d := range createdHostDirs {
		if !c.hostDirs[d] {
			_ = os.Remove(d) // only if empty: something else may use it by now
		}
	}

	if t.Failed() {
		for _, name := range []string{"etcd", "kube-apiserver", "kubetrail-server", "containerd", "kubelet", "kubetrail-agent"} {
			if d := c.daemons[name]; d != nil {
				t.Logf("--- %s log (last 40 lines of %s) ---\n%s", name, d.log, d.tail(40))
			}
		}
		t.Logf("work directory kept for inspection: %s (logs in %s)", c.dir, c.logs)
	} else if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("cleanup: remove the work directory: %v", err)
	}
	t.Logf("%-45s %6.1fs", "teardown", time.Since(start).Seconds())
}
