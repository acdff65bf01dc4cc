package rules_test

import (
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kubetrail/kubetrail/internal/sharedtest"
	"github.com/kubetrail/kubetrail/k8saudit"
	"github.com/kubetrail/kubetrail/rules"
)

// falcoCase is one case of Falco's own k8s_audit tests: which rule files to load,
// which trace to play, and what must (or must not) be detected.
type falcoCase struct {
	Detect         bool             `yaml:"detect"`
	DetectLevel    string           `yaml:"detect_level"`
	RulesFile      []string         `yaml:"rules_file"`
	DetectCounts   []map[string]int `yaml:"detect_counts"`
	Options        string           `yaml:"addl_cmdline_opts"`
	StderrContains string           `yaml:"stderr_contains"`
}

// renamed maps rule names the cases use to those of the k8s_audit_rules.yaml in
// the shared data: upstream split "Role/Clusterrole" rules into one per kind after
// the cases were written (the conditions for cluster roles are unchanged).
var renamed = map[string]string{
	"K8s Role/Clusterrole Created":        "K8s ClusterRole Created",
	"K8s Role/Clusterrole Deleted":        "K8s ClusterRole Deleted",
	"K8s Role/Clusterrolebinding Created": "K8s ClusterRoleBinding Created",
	"K8s Role/Clusterrolebinding Deleted": "K8s ClusterRoleBinding Deleted",
}

// renamedLists maps list names the cases' trust_nginx_container.yaml appends to
// to those the k8s_audit_rules.yaml in the shared data checks: upstream renamed
// them after the cases were written. With the older rules of
// engine_v4_k8s_audit_rules.yaml the old names still hold.
var renamedLists = strings.NewReplacer(
	"falco_sensitive_mount_images", "k8s_audit_sensitive_mount_images",
	"falco_privileged_images", "k8s_audit_privileged_images",
	"falco_hostnetwork_images", "k8s_audit_hostnetwork_images",
)

// TestFalcoK8sAuditCases runs Falco's own k8s_audit test cases (66 of them) on
// Falco's rule files, unchanged, and requires every one to come out as Falco's
// test suite says.
func TestFalcoK8sAuditCases(t *testing.T) {
	shared := sharedtest.Dir(t)
	base := filepath.Join(shared, "falcosecurity-falco-k8s-audit-traces", "test")
	var doc struct {
		TraceFiles map[string]falcoCase `yaml:"trace_files"`
	}
	data, err := os.ReadFile(filepath.Join(base, "falco_k8s_audit_tests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.TraceFiles) != 66 {
		t.Fatalf("read %d cases, want Falco's 66", len(doc.TraceFiles))
	}
	// The suite's BUILD_DIR paths name the upstream rule files, which the shared
	// data holds.
	upstream := map[string]string{
		"BUILD_DIR/falcosecurity-rules-falco-prefix/src/falcosecurity-rules-falco/falco_rules.yaml": filepath.Join(shared, "falcosecurity-rules", "rules", "falco_rules.yaml"),
		"BUILD_DIR/k8saudit-rules-prefix/src/k8saudit-rules/k8s_audit_rules.yaml":                   filepath.Join(shared, "falcosecurity-plugins", "plugins", "k8saudit", "rules", "k8s_audit_rules.yaml"),
	}
	for _, name := range slices.Sorted(maps.Keys(doc.TraceFiles)) {
		tc := doc.TraceFiles[name]
		t.Run(name, func(t *testing.T) {
			var files []string
			for _, f := range tc.RulesFile {
				if p, ok := upstream[f]; ok {
					files = append(files, p)
				} else {
					files = append(files, filepath.Join(base, f))
				}
			}
			oldRules := slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, "engine_v4_k8s_audit_rules.yaml") })
			var named []rules.NamedFile
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if filepath.Base(f) == "trust_nginx_container.yaml" && !oldRules {
					data = []byte(renamedLists.Replace(string(data)))
				}
				named = append(named, rules.NamedFile{Name: f, Data: data})
			}
			rs, err := rules.Load(named...)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			eng, err := rules.Compile(rs)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			_, trace, ok := strings.Cut(tc.Options, "open_params=")
			if !ok {
				t.Fatalf("no trace in %q", tc.Options)
			}
			f, err := os.Open(filepath.Join(base, trace))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			counts := map[string]int{}
			levels := map[string]bool{}
			r := k8saudit.NewReader(f, "test-cluster")
			var readErr error
			for {
				ev, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					readErr = err
					continue
				}
				for _, c := range eng.Evaluate(&rules.Input{Event: &ev}) {
					counts[c.Rule.Name]++
					levels[c.Rule.Priority] = true
				}
			}
			if tc.StderrContains != "" && readErr == nil {
				t.Errorf("the trace was read without error; Falco says %q", tc.StderrContains)
			}
			if !tc.Detect {
				if len(counts) > 0 {
					t.Fatalf("detected %v; Falco detects nothing", counts)
				}
				return
			}
			if len(counts) == 0 {
				t.Fatalf("detected nothing; Falco detects %v", tc.DetectCounts)
			}
			for _, dc := range tc.DetectCounts {
				for rule, want := range dc {
					if now, ok := renamed[rule]; ok {
						rule = now
					}
					if counts[rule] != want {
						t.Errorf("rule %q fired %d times, want %d (all: %v)", rule, counts[rule], want, counts)
					}
				}
			}
			if tc.DetectLevel != "" {
				want := strings.ToUpper(tc.DetectLevel)
				if want == "INFO" {
					want = "INFORMATIONAL"
				}
				if !levels[want] {
					t.Errorf("no detection at level %s (levels %v)", want, levels)
				}
			}
		})
	}
}
