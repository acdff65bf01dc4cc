package rules_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
	"github.com/kubetrail/kubetrail/rules"
)

const goodRules = `
- list: tools
  items: [tcpdump, nmap]
- macro: spawned
  condition: evt.type = execve
- rule: Tool run
  desc: a tool ran
  condition: spawned and proc.name in (tools)
  output: "%proc.name ran (%proc.cmdline)"
  priority: WARNING
`

// A rule file kubetrail cannot load is refused whole, with the file, the line
// and the rule or item named, and the ruleset it was added to is unchanged.
func TestMalformedRuleFiles(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // in the message
	}{
		{"not YAML", "- rule: x\n  condition: [unclosed\n", []string{"bad.yaml:", "not valid YAML"}},
		{"not a list", "rule: x\n", []string{"bad.yaml:1", "a YAML list"}},
		{"unknown item", "- rulez: x\n", []string{"bad.yaml:1", "unknown item"}},
		{"misspelt key", "- rule: Broken\n  condtion: evt.type = execve\n  output: x\n  priority: WARNING\n", []string{"bad.yaml:2", `rule "Broken"`, `unknown key "condtion"`}},
		{"missing output", "- rule: Broken\n  condition: evt.type = execve\n  priority: WARNING\n", []string{"bad.yaml:1", `rule "Broken"`, "output is missing"}},
		{"bad priority", "- rule: Broken\n  condition: evt.type = execve\n  output: x\n  priority: LOUD\n", []string{"bad.yaml:4", `rule "Broken"`, `priority "LOUD"`}},
		{"condition syntax", "\n\n- rule: Broken\n  condition: evt.type = execve and (proc.name = sh\n  output: x\n  priority: WARNING\n", []string{"bad.yaml:3", `rule "Broken"`, "unbalanced parenthesis"}},
		{"undefined macro", "- rule: Broken\n  condition: spawned_proces and proc.name = sh\n  output: x\n  priority: WARNING\n", []string{"bad.yaml:1", `rule "Broken"`, "spawned_proces"}},
		{"append to nothing", "- rule: Nowhere\n  condition: and proc.name = sh\n  append: true\n", []string{"bad.yaml:1", `rule "Nowhere"`, "no earlier item defines"}},
		{"macro loop", "- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: Loop\n  condition: a\n  output: x\n  priority: WARNING\n", []string{"bad.yaml:5", `rule "Loop"`, "refers to itself"}},
		{"exception arity", "- rule: Broken\n  condition: evt.type = execve\n  output: x\n  priority: WARNING\n  exceptions:\n    - name: e\n      fields: [proc.name, proc.pname]\n      values: [[sh]]\n", []string{"bad.yaml:8", `exception "e"`, "a tuple of 1 values for 2 fields"}},
		{"engine too new", "- required_engine_version: 9.0.0\n", []string{"bad.yaml:1", "needs engine version 9.0.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := rules.Load(rules.NamedFile{Name: "good.yaml", Data: []byte(goodRules)})
			if err != nil {
				t.Fatal(err)
			}
			err = rs.Add("bad.yaml", []byte(tc.file))
			if err != nil && (len(rs.Rules) != 1 || rs.Rules[0].Name != "Tool run" || len(rs.Files) != 1) {
				t.Errorf("a refused file changed the set: %d rules, files %v", len(rs.Rules), rs.Files)
			}
			if err == nil {
				_, err = rules.Compile(rs)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if kubetrail.ErrorCode(err) != kubetrail.EINVALID {
				t.Errorf("code %s, want invalid", kubetrail.ErrorCode(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// Overrides, appends and exceptions change rules as Falco's do.
func TestRuleOverrides(t *testing.T) {
	more := `
- list: tools
  items: [socat]
  append: true
- rule: Tool run
  condition: and not proc.pname = sshd
  override:
    condition: append
- rule: Tool run
  priority: CRITICAL
  override:
    priority: replace
- rule: Tool run
  exceptions:
    - name: ops_image
      fields: [container.image.repository, proc.name]
      comps: [=, in]
      values:
        - [registry.example.com/ops, [tcpdump, nmap]]
  override:
    exceptions: append
`
	rs, err := rules.Load(rules.NamedFile{Name: "good.yaml", Data: []byte(goodRules)}, rules.NamedFile{Name: "more.yaml", Data: []byte(more)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rules.Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.Rules[0]; r.Priority != "CRITICAL" || !strings.HasSuffix(r.Condition, "and not proc.pname = sshd") {
		t.Fatalf("rule after overrides: %+v", r)
	}
	ev := func(name, pname, image string) *rules.Input {
		e := &kubetrail.Event{Category: kubetrail.CategoryProcess, Type: "execve", ContainerID: "c0ffee", ImageRepository: image,
			Process: kubetrail.Process{Name: name, ParentName: pname, Argv: []string{name}}}
		return &rules.Input{Event: e}
	}
	tests := []struct {
		in   *rules.Input
		want bool
	}{
		{ev("socat", "bash", "app"), true},                         // appended to the list
		{ev("nmap", "sshd", "app"), false},                         // appended condition
		{ev("tcpdump", "bash", "registry.example.com/ops"), false}, // the exception
		{ev("socat", "bash", "registry.example.com/ops"), true},    // not in the exception's list
		{ev("curl", "bash", "app"), false},
	}
	for _, tc := range tests {
		got := len(eng.Evaluate(tc.in)) == 1
		if got != tc.want {
			t.Errorf("%s (parent %s, image %s): fired %v, want %v", tc.in.Event.Process.Name, tc.in.Event.Process.ParentName,
				tc.in.Event.ImageRepository, got, tc.want)
		}
	}
	out := eng.Rules("syscall")[0].Output(ev("nmap", "bash", "app"))
	if out != "nmap ran (nmap)" {
		t.Errorf("output %q", out)
	}
}

// The list of Falco's field names is the shared data's, so that a field
// kubetrail cannot fill is told from a misspelt one by Falco's own reference.
func TestFalcoFieldNames(t *testing.T) {
	var want []string
	for _, f := range []string{"falcosecurity-falco-website/supported-fields.json", "falcosecurity-plugins/k8saudit_supported_fields.json"} {
		var fields []struct{ Field string }
		if err := json.Unmarshal(sharedtest.Read(t, f), &fields); err != nil {
			t.Fatal(err)
		}
		for _, x := range fields {
			want = append(want, x.Field)
		}
	}
	want = append(want, "json.value", "json.obj", "json.rawtime")
	slices.Sort(want)
	want = slices.Compact(want)
	data, err := os.ReadFile("falco_fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			got = append(got, line)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("falco_fields.txt has %d names, the shared data %d", len(got), len(want))
	}
	// A misspelt field is refused; a real Falco field kubetrail lacks disables.
	rs, err := rules.Load(rules.NamedFile{Name: "f.yaml", Data: []byte(`
- rule: Reads
  condition: evt.is_open_read = true
  output: x
  priority: NOTICE
- rule: Typo
  condition: proc.nmae = sh
  output: x
  priority: NOTICE
`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rules.Compile(rs)
	if err == nil || !strings.Contains(err.Error(), `rule "Typo"`) || !strings.Contains(err.Error(), "unknown field proc.nmae") || !strings.Contains(err.Error(), "proc.name") {
		t.Errorf("misspelt field: %v", err)
	}
}
