package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/duckdb"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/k8saudit"
	"github.com/kubetrail/kubetrail/policy"
	"github.com/kubetrail/kubetrail/simulate"
)

// pipelineSink sends what the simulator plays through the ingest pipeline, with
// policies, into a real store, as the server does.
type pipelineSink struct {
	p      *ingest.Pipeline
	events int
}

func (s *pipelineSink) Audit(ctx context.Context, body []byte) error {
	events, err := k8saudit.DecodeEventList(body, "demo")
	if err != nil {
		return err
	}
	s.events += len(events)
	_, err = s.p.WriteAudit(ctx, events)
	return err
}

func (s *pipelineSink) Batch(ctx context.Context, b kubetrail.Batch) error {
	s.events += len(b.Events)
	_, err := s.p.WriteBatch(ctx, &b)
	return err
}

// storedPolicyEvents reads every policy event of the store, oldest first.
func storedPolicyEvents(t *testing.T, store *duckdb.Store) []kubetrail.Event {
	t.Helper()
	q := kubetrail.SearchQuery{Filter: kubetrail.Comparison{Field: "evt.category", Op: kubetrail.OpEq, Values: []any{"policy"}}, Limit: 1000}
	var out []kubetrail.Event
	for {
		page, err := store.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	slices.Reverse(out)
	return out
}

func writePolicies(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const billingEgress = `
policies:
  - name: egress-watch
    rules: [Outbound Connection to Unknown IP]
    scope: {namespaces: [billing]}
`

// TestIncidentRaisesPolicies plays the simulated cluster's incident through the
// default policies (with egress watched in billing) and checks that it raises
// what an analyst needs, and that routine traffic raises little.
func TestIncidentRaisesPolicies(t *testing.T) {
	set, err := policy.Load(policy.Options{PolicyFile: writePolicies(t, billingEgress)})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := policy.NewEvaluator(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "trail.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pipeline, err := ingest.New(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	pipeline.SetPolicies(ev, nil)
	cfg := simulate.Config{Seed: 7, Start: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), History: 25 * time.Minute, Duration: time.Second}
	sink := &pipelineSink{p: pipeline}
	g := simulate.NewGatherer(sink, 20000, 5000)
	if _, err := simulate.Run(ctx, cfg, g); err != nil {
		t.Fatal(err)
	}
	if err := g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	raised := storedPolicyEvents(t, store)
	inc := simulate.Incident(cfg)
	byRule := map[string][]kubetrail.Event{}
	for _, pe := range raised {
		byRule[pe.Alert.Rule] = append(byRule[pe.Alert.Rule], pe)
	}
	for rule, pes := range byRule {
		t.Logf("%4d  %-45s e.g. %s", len(pes), rule, pes[0].Alert.Output)
	}
	t.Logf("%d policy events for %d events", len(raised), sink.events)

	has := func(rule string, ok func(*kubetrail.Event) bool) {
		t.Helper()
		if !slices.ContainsFunc(byRule[rule], func(e kubetrail.Event) bool { return ok(&e) }) {
			t.Errorf("no %q event for the incident", rule)
		}
	}
	inPod := func(e *kubetrail.Event) bool { return e.Namespace == inc.Namespace && e.PodName == inc.Pod }
	has("Terminal shell in container", func(e *kubetrail.Event) bool {
		return inPod(e) && e.SessionID != "" && strings.Contains(e.Alert.Output, "command=bash")
	})
	has("Kubectl Exec or Attach into Pod", func(e *kubetrail.Event) bool {
		return inPod(e) && strings.Contains(e.Alert.Output, "by "+inc.User) && e.Alert.Source == "k8s_audit"
	})
	has("Network Tool Launched in Container", func(e *kubetrail.Event) bool {
		return e.Namespace == inc.TcpdumpNamespace && e.PodName == inc.TcpdumpPod && strings.Contains(e.Alert.Output, "tcpdump")
	})
	has(policy.EgressRule, func(e *kubetrail.Event) bool {
		return inPod(e) && strings.Contains(e.Alert.Output, inc.ExternalIP)
	})
	has("Shell History Deleted or Shredded", func(e *kubetrail.Event) bool {
		return inPod(e) && strings.Contains(e.Alert.Output, "shred")
	})
	has("Downloaded Program Executed in Container", func(e *kubetrail.Event) bool {
		return inPod(e) && strings.Contains(e.Alert.Output, "/tmp/x/pg_dump") && strings.Contains(e.Alert.Output, "written_by=tar")
	})
	// Nothing floods: routine traffic of 25 minutes (probes, churn, east-west
	// connections, API requests) raises at most a few dozen events.
	if len(raised) > 60 {
		t.Errorf("%d policy events in 25 minutes: routine traffic floods", len(raised))
	}
}
