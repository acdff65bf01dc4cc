package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/simulate"
)

// The demo's incident, played through the server's public endpoints, reads as
// one session from the CLI: john.doe's kubectl exec, with every command and
// connection he ran in the pod, each carrying his name and address.
func TestIncidentReadsAsOneSession(t *testing.T) {
	srv := startTestServer(t)
	client := kthttp.NewClient(srv.url, srv.token)
	cfg := simulate.Config{Seed: 3, Start: time.Now().Add(-20 * time.Minute).Truncate(time.Second), History: 12 * time.Minute, Duration: time.Nanosecond, Rate: 5}
	g := simulate.NewGatherer(demoSink{client: client, cluster: "demo"}, 20000, 5000)
	if _, err := simulate.Run(context.Background(), cfg, g); err != nil {
		t.Fatal(err)
	}
	if err := g.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	info := simulate.Incident(cfg)

	out, _, err := run(t, "sessions", "--since", "1h", "-o", "json", "ka.user.name = john.doe")
	if err != nil {
		t.Fatal(err)
	}
	var sessions []kubetrail.Session
	if err := json.Unmarshal([]byte(out), &sessions); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(sessions) != 1 {
		t.Fatalf("john.doe's sessions: %d, want 1\n%s", len(sessions), out)
	}
	s := sessions[0]
	if r := s.Request; r == nil || r.UserName != info.User || r.SourceIPs[0] != info.SourceIP || strings.Join(r.UserGroups, ",") != strings.Join(info.Groups, ",") ||
		s.PodName != info.Pod || s.Namespace != info.Namespace || s.WorkloadName != info.Deployment || s.EntryName != "bash" {
		t.Fatalf("session: %+v, request %+v", s, s.Request)
	}

	out, _, err = run(t, "session", "-o", "json", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var tr kubetrail.Trace
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatal(err)
	}
	var cmds []string
	outbound := 0
	for _, e := range tr.Events {
		if e.Audit.UserName != info.User || e.SessionID != s.ID {
			t.Errorf("%s %s: user %q session %q", e.Type, e.Process.Name, e.Audit.UserName, e.SessionID)
		}
		if e.Type == "execve" && e.Process.Name != "bash" && e.Process.ParentName == "bash" {
			cmds = append(cmds, e.Process.Cmdline())
		}
		if e.Category == kubetrail.CategoryNetwork && e.Network.ServerIP == info.ExternalIP {
			outbound++
		}
	}
	if strings.Join(cmds, "\n") != strings.Join(info.Commands, "\n") {
		t.Errorf("commands in the session:\n%s\nwant:\n%s", strings.Join(cmds, "\n"), strings.Join(info.Commands, "\n"))
	}
	if outbound < 3 || tr.Request == nil || tr.Request.SessionID != s.ID {
		t.Errorf("%d connections to %s, request %+v", outbound, info.ExternalIP, tr.Request)
	}

	// The tree form says who, and lists the download.
	out, _, err = run(t, "session", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Who:    john.doe (groups devs, system:authenticated) from 66.249.64.55", "curl -sSLo /tmp/x.tgz", "shred -u /root/.bash_history"} {
		if !strings.Contains(out, want) {
			t.Errorf("session tree lacks %q:\n%s", want, out)
		}
	}
	// A session id that does not exist is a clear error.
	if _, _, err := run(t, "session", "nope"); err == nil || !strings.Contains(err.Error(), "no session nope") {
		t.Errorf("unknown session: %v", err)
	}
}

// The demo's policies turn the incident into policy events an analyst starts
// from: the shell, the kubectl exec, the capture tool, the connections home,
// the history wiped, the tool kit run; and each leads to its activity.
func TestDemoIncidentRaisesPolicyEvents(t *testing.T) {
	policies := filepath.Join(t.TempDir(), "demo-policies.yaml")
	if err := os.WriteFile(policies, []byte(demoPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startTestServer(t, func(o *serverOptions) { o.policyFile = policies })
	client := kthttp.NewClient(srv.url, srv.token)
	cfg := simulate.Config{Seed: 3, Start: time.Now().Add(-30 * time.Minute).Truncate(time.Second), History: 25 * time.Minute, Duration: time.Nanosecond, Rate: 5}
	g := simulate.NewGatherer(demoSink{client: client, cluster: "demo"}, 20000, 5000)
	if _, err := simulate.Run(context.Background(), cfg, g); err != nil {
		t.Fatal(err)
	}
	if err := g.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	info := simulate.Incident(cfg)
	page, err := client.PolicyEvents(context.Background(), kthttp.Query{Since: time.Hour, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string][]kubetrail.Event{}
	for _, e := range page.Events {
		byRule[e.Alert.Rule] = append(byRule[e.Alert.Rule], e)
	}
	for _, rule := range []string{"Terminal shell in container", "Kubectl Exec or Attach into Pod", "Network Tool Launched in Container",
		"Outbound Connection to Unknown IP", "Shell History Deleted or Shredded"} {
		if len(byRule[rule]) == 0 {
			t.Errorf("no %q policy event (raised: %d events)", rule, len(page.Events))
		}
	}
	if len(page.Events) > 40 {
		t.Errorf("%d policy events in 25 minutes", len(page.Events))
	}
	// A policy event on a request keeps who made it.
	for _, e := range byRule["Kubectl Exec or Attach into Pod"] {
		if e.PodName == info.Pod && (e.Audit.UserName != info.User || !slices.Contains(e.Audit.SourceIPs, info.SourceIP)) {
			t.Errorf("exec policy event: user %q, source %v", e.Audit.UserName, e.Audit.SourceIPs)
		}
	}
	if page, err := client.PolicyEvents(context.Background(), kthttp.Query{Since: time.Hour, Filter: `ka.user.name = "` + info.User + `" and policy.source = k8s_audit`}); err != nil || len(page.Events) == 0 {
		t.Errorf("user filter finds no policy event on %s's requests: %v", info.User, err)
	}
	// The shell's policy event carries john.doe, through the session, and opens
	// on the activity around it: his commands in the pod.
	shells := byRule["Terminal shell in container"]
	if len(shells) == 0 {
		return
	}
	shell := shells[0]
	if shell.Audit.UserName != info.User || shell.PodName != info.Pod {
		t.Errorf("shell policy event: user %q pod %q", shell.Audit.UserName, shell.PodName)
	}
	act, err := client.Activity(context.Background(), shell.ID(), 5*time.Minute, 5*time.Minute, 500)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, e := range act.Events {
		if e.Category == kubetrail.CategoryProcess && e.SessionID == shell.SessionID {
			cmds = append(cmds, e.Process.Name)
		}
	}
	for _, want := range []string{"bash", "curl", "tar", "gzip", "shred"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("activity around the shell lacks %s: %v", want, cmds)
		}
	}
}
