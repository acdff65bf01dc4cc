package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

const siteRules = `
- rule: Site Tool Run
  desc: a tool the site forbids
  condition: evt.type = execve and proc.name = TOOL
  output: "%proc.name ran in %k8s.ns.name"
  priority: ERROR
`

// The server's rule files can be reloaded; a reload that fails says where and
// why, and leaves the policies in force, which go on raising policy events.
func TestReloadKeepsPoliciesOnError(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "site_rules.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(siteRules, "TOOL", "hydra", 1))
	srv := startTestServer(t, func(o *serverOptions) { o.ruleFiles = []string{file} })
	client := kthttp.NewClient(srv.url, srv.token)
	ruleOf := func(st kthttp.PolicyState, name string) *kubetrail.RuleStatus {
		i := slices.IndexFunc(st.Rules, func(r kubetrail.RuleStatus) bool { return r.Name == name })
		if i < 0 {
			return nil
		}
		return &st.Rules[i]
	}
	st, err := client.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := ruleOf(st, "Site Tool Run"); r == nil || !r.Enabled || !slices.Equal(r.Policies, []string{"local"}) {
		t.Fatalf("site rule: %+v", r)
	}

	write("- rule: Site Tool Run\n  condition: evt.type = execve and (proc.name = hydra\n  output: x\n  priority: ERROR\n")
	_, err = client.ReloadPolicies(ctx)
	if err == nil || kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Fatalf("reload of a broken file: %v", err)
	}
	for _, want := range []string{"site_rules.yaml:1", `rule "Site Tool Run"`, "unbalanced parenthesis"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	after, err := client.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := ruleOf(after, "Site Tool Run"); r == nil || !r.Enabled || len(after.Rules) != len(st.Rules) {
		t.Fatalf("after a failed reload the site rule is %+v", r)
	}

	// The rule in force still fires.
	now := time.Now().UTC()
	batch := &kubetrail.Batch{Stream: "node-1.test", Events: []kubetrail.Event{{Stream: "node-1.test", Seq: 1, Time: now,
		Category: kubetrail.CategoryProcess, Type: "execve", Cluster: "test", Node: "node-1", Namespace: "billing", PodName: "api-1",
		ContainerID: strings.Repeat("ab", 32), ContainerName: "app",
		Process: kubetrail.Process{Name: "hydra", ExePath: "/usr/bin/hydra", Argv: []string{"hydra", "-l", "admin", "ssh://10.0.0.5"}, PID: 42, ExecID: "e42"}}}}
	res, err := client.SendBatch(ctx, batch)
	if err != nil || res.Stored != 1 || res.Raised != 1 {
		t.Fatalf("send: %+v %v", res, err)
	}
	page, err := client.PolicyEvents(ctx, kthttp.Query{Filter: `policy.rule = "Site Tool Run"`, Since: time.Hour})
	if err != nil || len(page.Events) != 1 || page.Events[0].Alert.Output != "hydra ran in billing" {
		t.Fatalf("policy events: %+v %v", page.Events, err)
	}

	// A good file reloads.
	write(strings.Replace(siteRules, "TOOL", "medusa", 1) + strings.Replace(strings.Replace(siteRules, "Site Tool Run", "Site Tool Run Again", 1), "TOOL", "xmrig", 1))
	st, err = client.ReloadPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := ruleOf(st, "Site Tool Run Again"); r == nil || !r.Enabled {
		t.Fatalf("reloaded rules lack the new one: %+v", r)
	}
	batch.Events[0].Seq, batch.Events[0].Process.Name, batch.Events[0].Process.ExecID = 2, "xmrig", "e43"
	if res, err := client.SendBatch(ctx, batch); err != nil || res.Raised != 1 {
		t.Fatalf("send after the reload: %+v %v", res, err)
	}
	page, err = client.PolicyEvents(ctx, kthttp.Query{Filter: `policy.rule = "Site Tool Run Again"`, Since: time.Hour})
	if err != nil || len(page.Events) != 1 || page.Events[0].Alert.Output != "xmrig ran in billing" {
		t.Fatalf("policy events of the reloaded rule: %+v %v", page.Events, err)
	}
}
