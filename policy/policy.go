// Package policy raises policy events as the trail is ingested: it loads Falco
// rule files (kubetrail's defaults, embedded, and the user's), groups their rules
// into policies with a scope and actions, and evaluates every event on the rules
// that can match it.
package policy

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/notify"
	"github.com/kubetrail/kubetrail/rules"
)

// The rule files kubetrail ships: Falco's stable rules and its k8saudit
// plugin's rules, unchanged (their LICENSE and SOURCE.txt are beside them), and
// kubetrail's own.
//
//go:embed rules/falco/falco_rules.yaml rules/k8saudit/k8s_audit_rules.yaml rules/kubetrail_rules.yaml
var embedded embed.FS

// DefaultRuleFiles are the embedded rule files, in the order they are read.
var DefaultRuleFiles = []string{
	"rules/falco/falco_rules.yaml",
	"rules/k8saudit/k8s_audit_rules.yaml",
	"rules/kubetrail_rules.yaml",
}

// EgressRule is kubetrail's rule for connections out of the cluster. It is in no
// default policy's scope but egress-watch's, which is off until given the
// namespaces that should not reach the internet: in most clusters some
// workloads rightly do.
const EgressRule = "Outbound Connection to Unknown IP"

// DefaultPolicies are the policies used unless a policy file says otherwise.
func DefaultPolicies() []kubetrail.Policy {
	return []kubetrail.Policy{
		{Name: "falco", Description: "Falco's stable rules, on every command, connection and file change.",
			Enabled: true, Files: []string{"falco_rules.yaml"}},
		// Two of the plugin's rules are left to a policy that asks for them:
		// Disallowed K8s User fires on every request of every user not on a list
		// that starts with minikube's; Attach/Exec Pod fires only on the
		// ResponseStarted stage, and kubetrail's Kubectl Exec or Attach into Pod
		// covers what it does once per request, at any stage, debug containers too.
		{Name: "falco-k8s-audit", Description: "The rules of Falco's k8saudit plugin, on every Kubernetes API request.",
			Enabled: true, Files: []string{"k8s_audit_rules.yaml"}, Exclude: []string{"Disallowed K8s User", "Attach/Exec Pod"}},
		{Name: "kubetrail", Description: "kubetrail's own rules: network tools in containers, shell history wiped, downloads run, kubectl exec and attach.",
			Enabled: true, Files: []string{"kubetrail_rules.yaml"}, Exclude: []string{EgressRule}},
		{Name: "egress-watch", Description: "Connections to addresses the cluster does not know, from the namespaces in its scope. Give it a scope to turn it on.",
			Enabled: false, Rules: []string{EgressRule}},
	}
}

// localPolicy covers the rules of the files given on the command line when no
// policy file places them.
const localPolicy = "local"

// Options say where rules and policies come from.
type Options struct {
	// RuleFiles are Falco rule files, or directories of them (*.yaml and *.yml in
	// name order), read after the embedded ones.
	RuleFiles []string
	// PolicyFile holds policies and actions. Policies named as a default one
	// replace it; "defaults: false" drops the defaults.
	PolicyFile string
}

// Set is a loaded, compiled set of policies, ready to evaluate.
type Set struct {
	Policies []kubetrail.Policy
	Rules    []kubetrail.RuleStatus
	Warnings []string
	Actions  []notify.Config
	// Files names the rule files read, in order.
	Files []string

	engine  *rules.Engine
	members map[*rules.Compiled][]member
}

type member struct {
	policy   *kubetrail.Policy
	minRank  int // the least priority rank that raises; len(rules.Priorities) for all
	severity string
	repeat   time.Duration
}

// DefaultRuleFileContents returns the embedded rule files, in the order the
// server reads them, named by their base names.
func DefaultRuleFileContents() ([]rules.NamedFile, error) {
	var files []rules.NamedFile
	for _, name := range DefaultRuleFiles {
		data, err := embedded.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("embedded rules: %w", err)
		}
		files = append(files, rules.NamedFile{Name: path.Base(name), Data: data})
	}
	return files, nil
}

// Load reads rule files and policies and compiles them. Every error names the
// file, and where it can, the line and the rule or policy.
func Load(opts Options) (*Set, error) {
	files, err := DefaultRuleFileContents()
	if err != nil {
		return nil, err
	}
	var local []string
	for _, p := range opts.RuleFiles {
		paths, err := ruleFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range paths {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, kubetrail.Errorf(kubetrail.EINVALID, "read rule file: %v", err)
			}
			files = append(files, rules.NamedFile{Name: f, Data: data})
			local = append(local, filepath.Base(f))
		}
	}
	rs, err := rules.Load(files...)
	if err != nil {
		return nil, err
	}
	eng, err := rules.Compile(rs)
	if err != nil {
		return nil, err
	}
	policies := DefaultPolicies()
	if len(local) > 0 {
		policies = append(policies, kubetrail.Policy{Name: localPolicy, Enabled: true, Files: local,
			Description: "Every rule of the rule files given to the server."})
	}
	var actions []notify.Config
	if opts.PolicyFile != "" {
		cfg, err := ReadConfig(opts.PolicyFile)
		if err != nil {
			return nil, err
		}
		if !cfg.Defaults {
			policies = nil
		}
		for _, p := range cfg.Policies {
			if i := slices.IndexFunc(policies, func(q kubetrail.Policy) bool { return q.Name == p.Name }); i >= 0 {
				policies[i] = p
			} else {
				policies = append(policies, p)
			}
		}
		actions = cfg.Actions
	}
	s := &Set{Policies: policies, Warnings: rs.Warnings, Actions: actions, engine: eng, members: map[*rules.Compiled][]member{}}
	for _, f := range files {
		s.Files = append(s.Files, f.Name)
	}
	if err := s.bind(opts.PolicyFile); err != nil {
		return nil, err
	}
	return s, nil
}

// ruleFiles expands a path: a file is itself, a directory its *.yaml and *.yml
// files in name order.
func ruleFiles(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "rule file: %v", err)
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "rule directory: %v", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	return out, nil
}

// bind checks the policies and places each enabled rule in the policies that
// select it.
func (s *Set) bind(policyFile string) error {
	where := policyFile
	if where == "" {
		where = "default policies"
	}
	actions := map[string]bool{}
	for _, a := range s.Actions {
		actions[a.Name] = true
	}
	statusOf := map[*rules.Rule]*kubetrail.RuleStatus{}
	for _, st := range s.engine.Status {
		s.Rules = append(s.Rules, kubetrail.RuleStatus{Name: st.Rule.Name, File: path.Base(st.Rule.File), Source: st.Rule.Source,
			Priority: st.Rule.Priority, Tags: st.Rule.Tags, Enabled: st.Enabled, Reason: st.Reason, Missing: st.Missing})
	}
	for i, st := range s.engine.Status {
		statusOf[st.Rule] = &s.Rules[i]
	}
	seen := map[string]bool{}
	for i := range s.Policies {
		p := &s.Policies[i]
		item := "policy " + strconv.Quote(p.Name)
		if p.Name == "" {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "a policy needs a name")
		}
		if seen[p.Name] {
			return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s is defined twice", item)
		}
		seen[p.Name] = true
		m := member{policy: p, minRank: len(rules.Priorities), repeat: kubetrail.DefaultRepeatAfter}
		if p.RepeatAfter != "" {
			d, err := time.ParseDuration(p.RepeatAfter)
			if err != nil || d < 0 {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s: repeatAfter %q: want a duration such as 10m, or 0s to raise every repeat", item, p.RepeatAfter)
			}
			m.repeat = d
		}
		if p.MinPriority != "" {
			r := rank(p.MinPriority)
			if r < 0 {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s: minPriority %q: want one of %s", item, p.MinPriority, strings.Join(rules.Priorities, ", "))
			}
			m.minRank = r
		}
		if p.Severity != "" {
			if rank(p.Severity) < 0 {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s: severity %q: want one of %s", item, p.Severity, strings.Join(rules.Priorities, ", "))
			}
			m.severity = strings.ToUpper(p.Severity)
		}
		for _, a := range p.Actions {
			if !actions[a] {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s names action %q, which is not defined", item, a)
			}
		}
		for _, pat := range slices.Concat(p.Scope.Clusters, p.Scope.Namespaces, p.Scope.Workloads, p.Scope.Nodes) {
			if _, err := path.Match(pat, ""); err != nil {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s: scope pattern %q is malformed", item, pat)
			}
		}
		for _, name := range slices.Concat(p.Rules, p.Exclude) {
			if !slices.ContainsFunc(s.engine.Status, func(st rules.Status) bool { return st.Rule.Name == name }) {
				return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s names rule %q, which no rule file defines", item, name)
			}
		}
		if !p.Enabled {
			continue
		}
		for _, src := range []string{rules.SourceSyscall, rules.SourceK8sAudit} {
			for _, c := range s.engine.Rules(src) {
				if selects(p, c.Rule) {
					s.members[c] = append(s.members[c], m)
					st := statusOf[c.Rule]
					st.Policies = append(st.Policies, p.Name)
				}
			}
		}
	}
	for i := range s.Rules {
		if st := &s.Rules[i]; st.Enabled && len(st.Policies) == 0 {
			st.Enabled, st.Reason = false, "no enabled policy selects it"
		}
	}
	return nil
}

// selects reports whether a policy takes a rule.
func selects(p *kubetrail.Policy, r *rules.Rule) bool {
	if slices.Contains(p.Exclude, r.Name) {
		return false
	}
	return slices.Contains(p.Rules, r.Name) ||
		slices.Contains(p.Files, path.Base(r.File)) ||
		slices.ContainsFunc(p.Tags, func(t string) bool { return slices.Contains(r.Tags, t) })
}

// rank places a priority: 0 is EMERGENCY, the most severe; -1 when unknown.
func rank(priority string) int {
	return slices.Index(rules.Priorities, strings.ToUpper(priority))
}

// inScope reports whether the trigger happened within a scope.
func inScope(sc *kubetrail.Scope, e *kubetrail.Event) bool {
	return matchAny(sc.Clusters, e.Cluster) && matchAny(sc.Namespaces, e.Namespace) && matchAny(sc.Nodes, e.Node) &&
		(len(sc.Workloads) == 0 || e.WorkloadName != "" &&
			(matchAny(sc.Workloads, e.WorkloadName) || matchAny(sc.Workloads, e.WorkloadKind+"/"+e.WorkloadName)))
}

func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// Config is what a policy file holds.
type Config struct {
	// Defaults keeps the default policies (unless a policy replaces one by name).
	Defaults bool
	Policies []kubetrail.Policy
	Actions  []notify.Config
}

// ReadConfig reads a policy file:
//
//	defaults: true          # keep the default policies (the default)
//	actions:
//	  - name: soc
//	    type: webhook
//	    url: https://hooks.example.com/kubetrail
//	    format: slack
//	policies:
//	  - name: egress-watch  # replaces the default of that name
//	    rules: [Outbound Connection to Unknown IP]
//	    scope: {namespaces: [billing]}
//	    actions: [soc]
func ReadConfig(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "read policy file: %v", err)
	}
	return ParseConfig(file, data)
}

// ParseConfig reads a policy file's content; file names it in errors.
func ParseConfig(file string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, kubetrail.ErrorAt(kubetrail.EINVALID, file, "not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	cfg := &Config{Defaults: true}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, kubetrail.ErrorAt(kubetrail.EINVALID, fmt.Sprintf("%s:%d", file, top.Line), "a policy file is a mapping with policies: and actions:")
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		at := fmt.Sprintf("%s:%d", file, key.Line)
		switch key.Value {
		case "defaults":
			if err := val.Decode(&cfg.Defaults); err != nil {
				return nil, kubetrail.ErrorAt(kubetrail.EINVALID, at, "defaults: want true or false")
			}
		case "policies", "actions":
			if val.Kind != yaml.SequenceNode {
				return nil, kubetrail.ErrorAt(kubetrail.EINVALID, at, "%s: want a list", key.Value)
			}
			for _, item := range val.Content {
				where := fmt.Sprintf("%s:%d", file, item.Line)
				if key.Value == "policies" {
					p, err := decodePolicy(item)
					if err != nil {
						return nil, kubetrail.ErrorAt(kubetrail.EINVALID, where, "%v", err)
					}
					cfg.Policies = append(cfg.Policies, p)
					continue
				}
				var a notify.Config
				if err := decodeStrict(item, &a); err != nil {
					return nil, kubetrail.ErrorAt(kubetrail.EINVALID, where, "action: %v", err)
				}
				if _, err := notify.New(a); err != nil {
					return nil, kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s", kubetrail.ErrorMessage(err))
				}
				cfg.Actions = append(cfg.Actions, a)
			}
		default:
			return nil, kubetrail.ErrorAt(kubetrail.EINVALID, at, "unknown key %q (want defaults, policies or actions)", key.Value)
		}
	}
	return cfg, nil
}

func decodePolicy(n *yaml.Node) (kubetrail.Policy, error) {
	var p struct {
		kubetrail.Policy
		Enabled *bool `json:"enabled"`
	}
	if err := decodeStrict(n, &p); err != nil {
		name := ""
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "name" {
					name = " " + strconv.Quote(n.Content[i+1].Value)
				}
			}
		}
		return kubetrail.Policy{}, fmt.Errorf("policy%s: %v", name, err)
	}
	p.Policy.Enabled = p.Enabled == nil || *p.Enabled
	return p.Policy, nil
}

// decodeStrict decodes a YAML node through JSON, refusing unknown keys, so that
// the JSON tags of the API's types are the file's keys too.
func decodeStrict(n *yaml.Node, v any) error {
	var generic any
	if err := n.Decode(&generic); err != nil {
		return err
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
