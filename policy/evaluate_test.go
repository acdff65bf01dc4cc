package policy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

// A policy event identical to one raised less than repeatAfter before is held
// back; the same trigger sent again (a retried batch) is no repeat.
func TestRepeatAfter(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "beacon.yaml")
	os.WriteFile(rulesFile, []byte(`
- rule: Beacon
  condition: evt.type = connect and fd.sport = 443
  output: "%proc.name to %fd.sip:%fd.sport"
  priority: WARNING
`), 0o600)
	policies := filepath.Join(dir, "policies.yaml")
	os.WriteFile(policies, []byte("defaults: false\npolicies:\n  - {name: p, rules: [Beacon], repeatAfter: 1m}\n"), 0o600)
	set, err := Load(Options{RuleFiles: []string{rulesFile}, PolicyFile: policies})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := NewEvaluator(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	beacon := func(seq uint64, after time.Duration, container string) kubetrail.Event {
		return kubetrail.Event{Stream: "s", Seq: seq, Time: t0.Add(after), Category: kubetrail.CategoryNetwork, Type: "connect",
			ContainerID: container, Process: kubetrail.Process{Name: "kworker"},
			Network: kubetrail.Network{Direction: kubetrail.DirectionOutbound, ClientIP: "10.0.0.1", ClientPort: int64(40000 + seq), ServerIP: "185.220.101.47", ServerPort: 443}}
	}
	batch := []kubetrail.Event{beacon(1, 0, "c1"), beacon(2, 30*time.Second, "c1"), beacon(3, 40*time.Second, "c2"), beacon(4, 70*time.Second, "c1")}
	raised := ev.Evaluate(batch)
	var triggers []string
	for _, pe := range raised {
		triggers = append(triggers, pe.Alert.Trigger)
	}
	want := []string{"s/1", "s/3", "s/4"} // s/2 repeats s/1 within the minute; s/3 is another container
	if len(triggers) != len(want) || triggers[0] != want[0] || triggers[1] != want[1] || triggers[2] != want[2] {
		t.Fatalf("raised on %v, want %v", triggers, want)
	}
	if again := ev.Evaluate(batch); len(again) != 3 {
		t.Errorf("the batch retried raised %d policy events, want the same 3 (the store keeps them once)", len(again))
	}
}

// The evaluator's tables stay bounded and keep what is in use.
func TestGenerations(t *testing.T) {
	g := newGenerations[int, int](4)
	for i := range 4 {
		g.put(i, i)
	}
	g.put(4, 4) // the first generation is full: it becomes the previous one
	if _, ok := g.get(0); !ok {
		t.Fatal("lost an entry of the previous generation")
	}
	for i := 5; i < 12; i++ {
		g.put(i, i)
		g.get(0) // in use all along
	}
	if _, ok := g.get(1); ok {
		t.Error("kept an entry two generations old")
	}
	if _, ok := g.get(0); !ok {
		t.Error("lost an entry that was in use")
	}
	if n := len(g.cur) + len(g.prev); n > 8 {
		t.Errorf("%d entries for a bound of 4 per generation", n)
	}
}
