package duckdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/filter"
)

// sessionScript is one pod's story: two users exec the same shell into it 20 ms
// apart, each runs a command and one connects out; a liveness probe runs in it
// too; a third request is forbidden.
type sessionScript struct {
	runtime []kubetrail.Event
	audit   []kubetrail.Event
}

func newSessionScript() sessionScript {
	var sc sessionScript
	seq := uint64(0)
	ev := func(at time.Time, cat kubetrail.Category, typ, session, execID, name string, argv ...string) kubetrail.Event {
		seq++
		return kubetrail.Event{Stream: "node-1.s", Seq: seq, Time: at, Category: cat, Type: typ, Result: "SUCCESS",
			Cluster: "c1", Node: "node-1", Namespace: "billing", WorkloadKind: "Deployment", WorkloadName: "invoice-api",
			PodName: "invoice-api-1", PodUID: "uid-1", ContainerID: "c0ffee", ContainerName: "app", SessionID: session,
			Process: kubetrail.Process{Name: name, Argv: argv, PID: int64(seq), ExecID: execID}}
	}
	sc.runtime = []kubetrail.Event{
		ev(t0.Add(-900*time.Millisecond), kubetrail.CategoryProcess, "execve", "probe", "probe", "cat", "cat", "/tmp/healthy"),
		ev(t0.Add(85*time.Millisecond), kubetrail.CategoryProcess, "execve", "s-john", "s-john", "bash", "bash"),
		ev(t0.Add(101*time.Millisecond), kubetrail.CategoryProcess, "execve", "s-jane", "s-jane", "bash", "bash"),
		ev(t0.Add(5*time.Second), kubetrail.CategoryProcess, "execve", "s-john", "x-curl", "curl", "curl", "http://185.220.101.47/x"),
	}
	conn := ev(t0.Add(5*time.Second+30*time.Millisecond), kubetrail.CategoryNetwork, "connect", "s-john", "x-curl", "curl")
	conn.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.0.0.5", ClientPort: 40000, ServerIP: "185.220.101.47", ServerPort: 80}
	id := ev(t0.Add(6*time.Second), kubetrail.CategoryProcess, "execve", "s-jane", "x-id", "id", "id")
	exit := ev(t0.Add(9*time.Second), kubetrail.CategoryProcess, "exit", "s-jane", "s-jane", "bash")
	johnExit := ev(t0.Add(20*time.Second), kubetrail.CategoryProcess, "exit", "s-john", "s-john", "bash")
	sc.runtime = append(sc.runtime, conn, id, exit, johnExit)

	req := func(id, user string, at time.Time, code int64) kubetrail.Event {
		return kubetrail.Event{Time: at, Category: kubetrail.CategoryK8s, Type: "get", Cluster: "c1",
			Audit: kubetrail.Audit{AuditID: id, Stage: "ResponseStarted", StageTime: at, UserName: user, UserGroups: []string{"devs"},
				Verb: "get", URI: "/api/v1/namespaces/billing/pods/invoice-api-1/exec?command=bash&container=app&stdin=true&tty=true",
				Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "invoice-api-1",
				SourceIPs: []string{"66.249.64.55"}, UserAgent: "kubectl/v1.33.13", ResponseCode: code,
				ExecCommand: []string{"bash"}, ExecContainer: "app"}}
	}
	// The two shells started 16 ms apart for requests 20 ms apart: only the
	// streams closing as each shell exits tell whose is whose.
	complete := func(e kubetrail.Event, at time.Time) kubetrail.Event {
		e.Audit.Stage, e.Audit.StageTime = "ResponseComplete", at
		return e
	}
	john, jane := req("a-john", "john.doe", t0, 101), req("a-jane", "jane", t0.Add(20*time.Millisecond), 101)
	sc.audit = []kubetrail.Event{
		john, jane, req("a-mallory", "mallory", t0.Add(40*time.Millisecond), 403),
		complete(jane, t0.Add(9*time.Second+12*time.Millisecond)), complete(john, t0.Add(20*time.Second+9*time.Millisecond)),
	}
	return sc
}

func TestSessionsAttributedWhicheverHalfArrivesFirst(t *testing.T) {
	for _, order := range []string{"audit first", "runtime first", "interleaved", "twice"} {
		t.Run(order, func(t *testing.T) {
			s, path := openTest(t)
			ctx := context.Background()
			sc := newSessionScript()
			var batches [][]kubetrail.Event
			switch order {
			case "audit first":
				batches = [][]kubetrail.Event{sc.audit, sc.runtime}
			case "runtime first":
				// Audit batches wait up to 30 s in the API server: the session is
				// over before its request is stored.
				batches = [][]kubetrail.Event{sc.runtime, sc.audit}
			case "interleaved":
				batches = [][]kubetrail.Event{sc.audit[1:2], sc.runtime[:2], sc.audit[2:], sc.runtime[2:], sc.audit[:1]}
			case "twice":
				batches = [][]kubetrail.Event{sc.runtime, sc.audit, sc.runtime, sc.audit}
			}
			for _, b := range batches {
				if _, err := s.Write(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			checkSessions(t, s, 0)
			// And after a restart, from disk.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			checkSessions(t, s2, 0)
		})
	}
}

// checkSessions checks the script's sessions, users and filters; johnsPolicies
// are policy events stored on commands of john's session, which it must carry.
// checkSessions checks the script's sessions; johnsPolicies are policy events
// stored on john's session, and onJohnsRequest those raised on his exec request
// (which carry his name but are no part of the session's trace).
func checkSessions(t *testing.T, s *Store, onJohnsRequest int, johnsPolicies ...kubetrail.Event) {
	t.Helper()
	ctx := context.Background()
	all, err := s.Sessions(ctx, kubetrail.SessionQuery{Filter: kubetrail.True{}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ss := range all {
		user := "-"
		if ss.Request != nil {
			user = ss.Request.UserName
		}
		got[ss.ID] = user
	}
	want := map[string]string{"s-john": "john.doe", "s-jane": "jane", "probe": "-"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sessions → users: got %v, want %v", got, want)
	}

	tr, err := s.Trace(ctx, "s-john")
	if err != nil {
		t.Fatal(err)
	}
	ss := tr.Session
	if ss.Commands != 2 || ss.Connections != 1 || ss.EntryName != "bash" || !ss.Start.Equal(t0.Add(85*time.Millisecond)) ||
		ss.PodName != "invoice-api-1" || ss.WorkloadName != "invoice-api" || ss.Request.AuditID != "a-john" ||
		fmt.Sprint(ss.Request.SourceIPs) != "[66.249.64.55]" || fmt.Sprint(ss.Request.UserGroups) != "[devs]" {
		t.Errorf("john's session: %+v request %+v", ss, ss.Request)
	}
	if len(tr.Events) != 4+len(johnsPolicies) || tr.Request == nil || tr.Request.Audit.UserName != "john.doe" || tr.Request.SessionID != "s-john" {
		t.Fatalf("john's trace: %d events, request %+v", len(tr.Events), tr.Request)
	}
	for _, e := range tr.Events {
		if e.Audit.UserName != "john.doe" || e.Audit.AuditID != "a-john" {
			t.Errorf("trace event %s %s carries user %q", e.Type, e.Process.Name, e.Audit.UserName)
		}
	}
	jane, err := s.Trace(ctx, "s-jane")
	if err != nil {
		t.Fatal(err)
	}
	if jane.Session.End.IsZero() || jane.Session.ExitCode == nil || *jane.Session.ExitCode != 0 || jane.Session.Commands != 2 {
		t.Errorf("jane's session: %+v", jane.Session)
	}

	// Session-borne fields filter activity, and search results carry them.
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"ka.user.name = john.doe and evt.category = network", 1},
		{"ka.user.name = john.doe", 5 + len(johnsPolicies) + onJohnsRequest}, // the request itself, bash, curl, its connection and bash's exit
		{"ka.user.name = jane and evt.type = execve", 2},
		{"not ka.user.name exists and evt.category = process", 1}, // the probe
		{"ka.sourceips = 66.249.64.55 and proc.name = curl", 2},   // curl and its connection
		{"session.id = s-jane", 4},                                // three events and the request that started it
	} {
		expr, err := filter.Parse(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.Search(ctx, kubetrail.SearchQuery{Filter: expr, Limit: 100})
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if len(page.Events) != tc.want {
			t.Errorf("%s: %d events, want %d", tc.filter, len(page.Events), tc.want)
		}
		for _, e := range page.Events {
			if e.Category == kubetrail.CategoryNetwork && e.Audit.UserName != "john.doe" {
				t.Errorf("%s: connection without its user: %+v", tc.filter, e.Audit)
			}
		}
	}
	expr, _ := filter.Parse("proc.name = curl")
	found, err := s.Sessions(ctx, kubetrail.SessionQuery{Filter: expr})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ID != "s-john" {
		t.Errorf("sessions with curl: %+v", found)
	}
}

// A shell runs its last command in its own place (sh -c '...; rm x' execs rm
// with the same process): the session's entry stays the shell the request
// named, and the session stays paired with it.
func TestSessionEntryIsTheFirstProgram(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	ev := func(seq uint64, at time.Duration, name string, argv ...string) kubetrail.Event {
		return kubetrail.Event{Stream: "node-1.x", Seq: seq, Time: t0.Add(at), Category: kubetrail.CategoryProcess, Type: "execve", Result: "SUCCESS",
			Cluster: "c1", Node: "node-1", Namespace: "billing", PodName: "p1", ContainerID: "c0ffee", ContainerName: "app", SessionID: "s1",
			Process: kubetrail.Process{Name: name, Argv: argv, PID: 42, ExecID: "s1"}}
	}
	req := kubetrail.Event{Time: t0, Category: kubetrail.CategoryK8s, Type: "get", Cluster: "c1",
		Audit: kubetrail.Audit{AuditID: "a1", Stage: "ResponseStarted", StageTime: t0, UserName: "john.doe", Verb: "get", Resource: "pods",
			Subresource: "exec", TargetNamespace: "billing", TargetName: "p1", ResponseCode: 101, ExecCommand: []string{"sh", "-c", "wget x; rm y"}, ExecContainer: "app"}}
	for _, batch := range [][]kubetrail.Event{
		{ev(1, 80*time.Millisecond, "sh", "sh", "-c", "wget x; rm y")},
		{ev(2, 900*time.Millisecond, "rm", "rm", "y"), req},
	} {
		if _, err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := s.Trace(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Session.EntryName != "sh" || tr.Session.Request == nil || tr.Session.Request.UserName != "john.doe" || tr.Session.Commands != 2 {
		t.Errorf("session: entry %q %v, request %+v, %d commands", tr.Session.EntryName, tr.Session.EntryArgv, tr.Session.Request, tr.Session.Commands)
	}
}

// kubectl debug adds an ephemeral container: the request (a patch of
// pods/ephemeralcontainers, no command at the Metadata level) is paired with the
// new container's first process, seconds later, not with the app's.
func TestSessionOfKubectlDebug(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	ev := func(seq uint64, at time.Duration, container, name, session string, argv ...string) kubetrail.Event {
		return kubetrail.Event{Stream: "node-1.d", Seq: seq, Time: t0.Add(at), Category: kubetrail.CategoryProcess, Type: "execve", Result: "SUCCESS",
			Cluster: "c1", Node: "node-1", Namespace: "billing", PodName: "p1", ContainerID: "id-" + container, ContainerName: container, SessionID: session,
			Process: kubetrail.Process{Name: name, Argv: argv, PID: int64(seq), ExecID: session}}
	}
	patch := kubetrail.Event{Time: t0, Category: kubetrail.CategoryK8s, Type: "patch", Cluster: "c1",
		Audit: kubetrail.Audit{AuditID: "a-debug", Stage: "ResponseComplete", StageTime: t0.Add(20 * time.Millisecond), UserName: "john.doe", Verb: "patch",
			Resource: "pods", Subresource: "ephemeralcontainers", TargetNamespace: "billing", TargetName: "p1", ResponseCode: 200}}
	if _, err := s.Write(ctx, []kubetrail.Event{
		ev(1, -10*time.Minute, "app", "sleep", "s-app", "sleep", "3600"),
		ev(2, 4*time.Second, "debugger", "sh", "s-dbg", "sh"),
		ev(3, 5*time.Second, "app", "sh", "s-exec", "sh"), // an exec without a request, just after
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, []kubetrail.Event{patch}); err != nil {
		t.Fatal(err)
	}
	if got, want := attributions(t, s), map[string]string{"s-app": "-", "s-dbg": "kubectl debug by john.doe", "s-exec": "-"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// kubectl attach joins a container's running process: the container's own
// session records who attached and when, without becoming theirs.
func TestSessionAttachments(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	init := kubetrail.Event{Stream: "node-1.a", Seq: 1, Time: t0.Add(-time.Hour), Category: kubetrail.CategoryProcess, Type: "execve", Result: "SUCCESS",
		Cluster: "c1", Node: "node-1", Namespace: "billing", PodName: "p1", ContainerID: "id-app", ContainerName: "app", SessionID: "s-app",
		Process: kubetrail.Process{Name: "sh", Argv: []string{"sh"}, PID: 1, ExecID: "s-app"}}
	attach := kubetrail.Event{Time: t0, Category: kubetrail.CategoryK8s, Type: "get", Cluster: "c1",
		Audit: kubetrail.Audit{AuditID: "a-attach", Stage: "ResponseStarted", StageTime: t0, UserName: "bob", UserGroups: []string{"sre"}, Verb: "get",
			Resource: "pods", Subresource: "attach", TargetNamespace: "billing", TargetName: "p1", ResponseCode: 101, ExecContainer: "app",
			SourceIPs: []string{"10.8.0.22"}}}
	for _, b := range [][]kubetrail.Event{{init}, {attach}, {attach}} { // the second attach batch is a retry
		if _, err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := s.Trace(ctx, "s-app")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Session.Request != nil || len(tr.Session.Attachments) != 1 || tr.Session.Attachments[0].UserName != "bob" ||
		!tr.Session.Attachments[0].Time.Equal(t0) || tr.Session.Attachments[0].SourceIPs[0] != "10.8.0.22" {
		t.Errorf("session %+v, attachments %+v", tr.Session.Request, tr.Session.Attachments)
	}
}

// KEP-6035: two shells opened at the same moment, which the times cannot tell
// apart, each name their request in their environment; the store pairs them.
func TestSessionClaimsSettleWhatTimesCannot(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	ev := func(seq uint64, at time.Duration, session, claim string) kubetrail.Event {
		return kubetrail.Event{Stream: "node-1.k", Seq: seq, Time: t0.Add(at), Category: kubetrail.CategoryProcess, Type: "execve", Result: "SUCCESS",
			Cluster: "c1", Node: "node-1", Namespace: "billing", PodName: "p1", ContainerID: "c0ffee", ContainerName: "app", SessionID: session,
			Process: kubetrail.Process{Name: "bash", Argv: []string{"bash"}, PID: int64(seq), ExecID: session, ExecAuditID: claim}}
	}
	req := func(id, user string, at time.Duration) kubetrail.Event {
		return kubetrail.Event{Time: t0.Add(at), Category: kubetrail.CategoryK8s, Type: "get", Cluster: "c1",
			Audit: kubetrail.Audit{AuditID: id, Stage: "ResponseStarted", StageTime: t0.Add(at), UserName: user, Verb: "get", Resource: "pods",
				Subresource: "exec", TargetNamespace: "billing", TargetName: "p1", ResponseCode: 101, ExecCommand: []string{"bash"}, ExecContainer: "app"}}
	}
	if _, err := s.Write(ctx, []kubetrail.Event{ev(1, 80*time.Millisecond, "s1", "a-jane"), ev(2, 90*time.Millisecond, "s2", "a-john"),
		req("a-john", "john.doe", 0), req("a-jane", "jane", 5*time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if got, want := attributions(t, s), map[string]string{"s1": "kubectl exec by jane", "s2": "kubectl exec by john.doe"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// attributions says, for every stored session, who started it ("-" for nobody).
func attributions(t *testing.T, s *Store) map[string]string {
	t.Helper()
	all, err := s.Sessions(context.Background(), kubetrail.SessionQuery{Filter: kubetrail.True{}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ss := range all {
		got[ss.ID] = "-"
		if ss.Request != nil || len(ss.MaybeUsers) > 0 {
			got[ss.ID] = ss.Attribution()
		}
	}
	return got
}
