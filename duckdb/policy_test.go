package duckdb

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/filter"
)

// policyOn returns the policy event a rule of policy raises on trigger: the
// trigger's time, type, scope and session, and no process, connection, file or
// request of its own.
func policyOn(trigger kubetrail.Event, policy, rule, priority string, tags ...string) kubetrail.Event {
	return kubetrail.NewPolicyEvent(&trigger, kubetrail.Alert{Policy: policy, Rule: rule, Priority: priority, Source: trigger.Source(), Tags: tags,
		Output: fmt.Sprintf("%s (%s %s)", rule, trigger.Process.Name, trigger.Audit.UserName)})
}

func search(t *testing.T, s *Store, f string) []kubetrail.Event {
	t.Helper()
	expr, err := filter.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.Search(context.Background(), kubetrail.SearchQuery{Filter: expr, Limit: 1000})
	if err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return page.Events
}

func TestPolicyEventReadBackEveryField(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	trigger := procEvent("node-1.a", 1, t0, "billing", "api-1", "bash", "bash")
	trigger.SessionID = "s-lone" // a session no request started: nothing is linked
	p := policyOn(trigger, "runtime", "Terminal shell in container", "WARNING", "container", "shell", "mitre_execution", "T1059")
	p.Alert.Output = "A shell was spawned in a container with an attached terminal\t(user=root\nshell=bash)"
	res, err := s.Write(ctx, []kubetrail.Event{trigger, p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 1 || res.Raised != 1 || res.Duplicates != 0 {
		t.Fatalf("%+v, want 1 stored and 1 raised", res)
	}
	id := p.ID()
	if !strings.HasPrefix(id, "policy/") || len(id) != len("policy/")+32 {
		t.Fatalf("id %q", id)
	}
	got, err := s.Event(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, p) {
		t.Errorf("read back differently:\n got %+v\nwant %+v", *got, p)
	}
	// The id SQL computes is Go's.
	var sqlID string
	if err := s.db.QueryRow(`SELECT ` + derivedSQL["evt.id"] + ` FROM events WHERE evt_category = 'policy'`).Scan(&sqlID); err != nil {
		t.Fatal(err)
	}
	if sqlID != id {
		t.Errorf("SQL id %s, Go id %s", sqlID, id)
	}
	if got := search(t, s, "evt.id = "+id); len(got) != 1 || !reflect.DeepEqual(got[0], p) {
		t.Errorf("search by id: %+v", got)
	}
	// A session keeps its counts: the policy event is about a command it counted.
	tr, err := s.Trace(ctx, "s-lone")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Session.Commands != 1 || len(tr.Events) != 2 || tr.Events[1].ID() != id {
		t.Errorf("trace: %d commands, events %v", tr.Session.Commands, ids(tr.Events))
	}

	for _, bad := range []string{"policy/" + strings.Repeat("0", 32), "policy/12"} {
		if _, err := s.Event(ctx, bad); kubetrail.ErrorCode(err) != kubetrail.ENOTFOUND {
			t.Errorf("%s: %v, want not found", bad, err)
		}
	}
	if _, err := s.Event(ctx, "policy/xyz"); kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Errorf("policy/xyz: %v, want invalid", err)
	}
}

func ids(events []kubetrail.Event) []string {
	out := make([]string, len(events))
	for i := range events {
		out[i] = events[i].ID()
	}
	return out
}

// A rule fires once per trigger and policy: the same policy event again, in the
// batch or in a later one (a retried batch, a later stage of a request), is
// dropped. It is not counted as a duplicate: what was sent again is its trigger.
func TestPolicyEventsAreStoredOnce(t *testing.T) {
	s, path := openTest(t)
	ctx := context.Background()
	sh := procEvent("s1", 1, t0, "billing", "p", "sh", "sh")
	shell := policyOn(sh, "runtime", "Terminal shell in container", "WARNING")
	req := kubetrail.Event{Time: t0.Add(time.Second), Category: kubetrail.CategoryK8s, Type: "create", Cluster: "c1",
		Audit: kubetrail.Audit{AuditID: "a1", Stage: "RequestReceived", Verb: "create", UserName: "john.doe", Resource: "pods", Subresource: "exec"}}
	exec := policyOn(req, "k8s", "Attach/Exec Pod", "NOTICE")
	later := req
	later.Audit.Stage, later.Audit.ResponseCode = "ResponseComplete", 101

	steps := []struct {
		name  string
		batch []kubetrail.Event
		want  kubetrail.WriteResult
	}{
		{"twice in a batch", []kubetrail.Event{sh, shell, shell, req, exec}, kubetrail.WriteResult{Stored: 2, Raised: 2}},
		{"batch retried", []kubetrail.Event{sh, shell, req, exec}, kubetrail.WriteResult{Duplicates: 2}},
		{"later stage", []kubetrail.Event{later, exec}, kubetrail.WriteResult{Updated: 1}},
		{"alone", []kubetrail.Event{shell}, kubetrail.WriteResult{}},
		{"another rule, another policy", []kubetrail.Event{
			policyOn(sh, "runtime", "Shell in a pod of billing", "ERROR"), policyOn(sh, "pci", "Terminal shell in container", "WARNING"), shell},
			kubetrail.WriteResult{Raised: 2}},
	}
	for _, st := range steps {
		res, err := s.Write(ctx, st.batch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if len(res.RaisedIDs) != res.Raised {
			t.Errorf("%s: %d raised, ids %v", st.name, res.Raised, res.RaisedIDs)
		}
		res.RaisedIDs = nil
		if !reflect.DeepEqual(res, st.want) {
			t.Errorf("%s: %+v, want %+v", st.name, res, st.want)
		}
	}
	// From disk too.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if res, err := s2.Write(ctx, []kubetrail.Event{shell, exec}); err != nil || res.Stored+res.Raised+res.Duplicates+res.Updated != 0 {
		t.Errorf("after a restart: %+v, %v", res, err)
	}
	st, err := s2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events[kubetrail.CategoryPolicy] != 4 {
		t.Errorf("stats %v, want 4 policy events", st.Events)
	}
}

func TestPolicyEventValidation(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	trigger := procEvent("s1", 1, t0, "billing", "p", "sh", "sh")
	for _, tc := range []struct {
		field string
		spoil func(*kubetrail.Alert)
		want  string
	}{
		{"policy.name", func(a *kubetrail.Alert) { a.Policy = "" }, "policy.name is missing"},
		{"policy.rule", func(a *kubetrail.Alert) { a.Rule = "" }, "policy.rule is missing"},
		{"policy.trigger", func(a *kubetrail.Alert) { a.Trigger = "" }, "policy.trigger is missing"},
		{"policy.priority", func(a *kubetrail.Alert) { a.Priority = "" }, "policy.priority is missing"},
		{"policy.source", func(a *kubetrail.Alert) { a.Source = "" }, "policy.source is missing"},
		{"policy.source value", func(a *kubetrail.Alert) { a.Source = "falco" }, `policy.source "falco" is not syscall or k8s_audit`},
	} {
		t.Run(tc.field, func(t *testing.T) {
			p := policyOn(trigger, "runtime", "Terminal shell in container", "WARNING")
			tc.spoil(&p.Alert)
			_, err := s.Write(ctx, []kubetrail.Event{trigger, p})
			if kubetrail.ErrorCode(err) != kubetrail.EINVALID || !strings.Contains(err.Error(), "events[1]") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid at events[1]: %s", err, tc.want)
			}
		})
	}
	if st, _ := s.Stats(ctx); len(st.Events) != 0 {
		t.Fatalf("refused batches left %v", st.Events)
	}
}

// A policy event keeps its trigger's session: it is in the session's trace,
// carries the user of the request that started it, and is found by that user;
// it counts as no command and matches no process filter.
func TestPolicyEventsInSessions(t *testing.T) {
	for _, order := range []string{"with their triggers", "in a batch of their own"} {
		t.Run(order, func(t *testing.T) {
			s, _ := openTest(t)
			ctx := context.Background()
			sc := newSessionScript()
			curl := sc.runtime[3] // john's curl
			if curl.Process.Name != "curl" {
				t.Fatalf("script changed: %+v", curl)
			}
			policies := []kubetrail.Event{
				policyOn(curl, "runtime", "Outbound download", "WARNING", "T1105"),
				policyOn(curl, "runtime", "Curl in container", "NOTICE"),
				policyOn(sc.audit[0], "k8s", "Attach/Exec Pod", "NOTICE"), // on john's request: no session of its own
			}
			batches := [][]kubetrail.Event{append(slices.Clone(sc.runtime), policies...), sc.audit}
			if order == "in a batch of their own" {
				batches = [][]kubetrail.Event{sc.audit, sc.runtime, policies}
			}
			for _, b := range batches {
				if _, err := s.Write(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			checkSessions(t, s, 1, policies[:2]...) // counts, users and filters of the script, with john's policy events

			got, err := s.Event(ctx, policies[0].ID())
			if err != nil {
				t.Fatal(err)
			}
			if got.SessionID != "s-john" || got.Audit.UserName != "john.doe" || got.Audit.AuditID != "a-john" || fmt.Sprint(got.Audit.SourceIPs) != "[66.249.64.55]" {
				t.Errorf("policy event without its session's request: %+v", got)
			}
			onRequest := search(t, s, "policy.trigger = audit/a-john")
			if len(onRequest) != 1 || onRequest[0].SessionID != "s-john" || onRequest[0].Audit.UserName != "john.doe" {
				t.Errorf("the policy event on john's request is not linked to his session: %+v", onRequest)
			}
			for _, tc := range []struct {
				filter string
				want   []string
			}{
				// The policy event on john's request keeps who made it, and is
				// linked to the session the request started.
				{"ka.user.name = john.doe and evt.category = policy", []string{policies[0].ID(), policies[1].ID(), policies[2].ID()}},
				{"ka.user.name = jane and evt.category = policy", nil},
				{"session.id = s-john and evt.category = policy", []string{policies[0].ID(), policies[1].ID(), policies[2].ID()}},
				{"policy.trigger = audit/a-john", []string{policies[2].ID()}},
				{"proc.name = curl", []string{curl.ID(), sc.runtime[4].ID()}},
				{"proc.cmdline contains curl", []string{curl.ID(), sc.runtime[4].ID()}},
			} {
				got := ids(search(t, s, tc.filter))
				slices.Sort(got)
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: got %v, want %v", tc.filter, got, want)
				}
			}
			expr, _ := filter.Parse("policy.priority = WARNING")
			found, err := s.Sessions(ctx, kubetrail.SessionQuery{Filter: expr})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || found[0].ID != "s-john" {
				t.Errorf("sessions with a WARNING: %+v", found)
			}
		})
	}
}

// Scopes and histograms count policy events as any other.
func TestPolicyEventsAreCounted(t *testing.T) {
	s, events := fixture(t)
	ctx := context.Background()
	w := kubetrail.Window{From: t0.Add(-time.Minute), To: t0.Add(time.Minute)}
	buckets, err := s.Histogram(ctx, kubetrail.HistogramQuery{Filter: kubetrail.True{}, Window: w, Bucket: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 1 || buckets[0].Counts[kubetrail.CategoryPolicy] != 3 || buckets[0].Total != int64(len(events)) {
		t.Errorf("histogram %+v", buckets)
	}
	expr, _ := filter.Parse("evt.category = policy")
	tree, err := s.Scopes(ctx, kubetrail.ScopeQuery{Filter: expr, Window: w, GroupBy: kubetrail.GroupByHost})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	var walk func(prefix string, nodes []*kubetrail.ScopeNode)
	walk = func(prefix string, nodes []*kubetrail.ScopeNode) {
		for _, n := range nodes {
			counts[prefix+n.Name] = n.Count
			walk(prefix+n.Name+"/", n.Children)
		}
	}
	walk("", tree)
	// The request's policy event is on no node; the others on their trigger's.
	want := map[string]int64{"c1": 3, "c1/": 1, "c1//app": 1, "c1/node-1": 1, "c1/node-1/app": 1, "c1/node-2": 1, "c1/node-2/": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("scopes by host: %v, want %v", counts, want)
	}
}

// Pages do not skip or repeat events of the same time: policy events share
// their trigger's, and events of a session carry its request's audit ID.
func TestSearchPagesThroughEqualTimes(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	sc := newSessionScript()
	curl := sc.runtime[3]
	batch := slices.Clone(sc.runtime)
	for i := range 5 {
		batch = append(batch, policyOn(curl, "runtime", fmt.Sprintf("rule %d", i), "NOTICE"))
	}
	batch = append(batch, policyOn(sc.audit[0], "k8s", "exec", "NOTICE"))
	for _, b := range [][]kubetrail.Event{sc.audit, batch} {
		if _, err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	all := search(t, s, "")
	want := len(sc.runtime) + 3 + 6 // runtime, three requests, policy events
	if len(all) != want {
		t.Fatalf("%d events, want %d", len(all), want)
	}
	for _, limit := range []int{1, 2, 3} {
		var seen []string
		q := kubetrail.SearchQuery{Limit: limit}
		for range 100 {
			page, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ids(page.Events)...)
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		if !slices.Equal(seen, ids(all)) {
			t.Errorf("pages of %d: %v\nwant %v", limit, seen, ids(all))
		}
	}
}
