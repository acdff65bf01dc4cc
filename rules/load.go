// Package rules runs Falco's rule files, unchanged, on the trail's events as
// they are ingested.
//
// A Ruleset is read from one or more files in order, as Falco reads them: lists,
// macros and rules, later definitions replacing earlier ones, "append: true" and
// "override:" extending them, "enabled:" switching a rule on or off. Macros and
// lists are resolved once every file is read, so a file loaded later can redefine
// a macro that an earlier file's rules use (that is how Falco's own tests allow
// an image or a user).
//
// Conditions are parsed by package filter, the grammar of kubetrail's filters,
// widened with what rules need (macros, lists, pmatch, proc.aname[N], val()).
// Fields are Falco's, with Falco's meaning, filled from what kubetrail knows when
// an event arrives (see Fields). A rule naming a field kubetrail cannot fill is
// loaded disabled, with the fields named, rather than evaluated wrongly.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kubetrail/kubetrail"
)

// EngineVersion is the Falco rules engine version whose rule files kubetrail
// reads: a file requiring a later one is refused, as Falco refuses it.
const EngineVersion = "0.57.0"

// Plugins whose fields kubetrail supplies, and the version it stands in for.
var suppliedPlugins = map[string]string{
	"k8saudit": "0.18.0", // the ka.* and jevt.* fields, from the audit events kubetrail receives
	"json":     "0.7.0",  // jevt.value[...] on audit events
	// container.id, .name and .image*, from the agent's CRI lookups; the plugin's
	// other fields (container.privileged, mounts) are not filled, and rules that
	// name them are disabled.
	"container": "0.4.0",
}

// Sources kubetrail has events for.
const (
	SourceSyscall  = "syscall"
	SourceK8sAudit = "k8s_audit"
)

// Priorities, most severe first, as Falco spells them.
var Priorities = []string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}

// Rule is one rule as the files define it, after appends and overrides.
type Rule struct {
	Name      string
	Desc      string
	Condition string
	Output    string
	Priority  string // one of Priorities
	Source    string
	Tags      []string
	Enabled   bool
	// Where the rule was (last) defined, for messages.
	File string
	Line int
	// Exceptions are folded into Condition when the rule is compiled.
	Exceptions []Exception
}

// Exception is one of a rule's exceptions: the rule does not fire when every
// field compares as given with one tuple of Values.
type Exception struct {
	Name   string
	Fields []string
	Comps  []string
	Values [][]string
	single bool // fields was a single field, and values a list of values
}

type macro struct {
	name, condition, file string
	line                  int
}

type list struct {
	name  string
	items []string
}

// Ruleset is what a sequence of rule files defines.
type Ruleset struct {
	Rules  []*Rule
	macros map[string]*macro
	lists  map[string]*list
	// Warnings are things Falco would accept that kubetrail notes: a plugin it
	// does not stand in for, for example.
	Warnings []string
	// Files names the files read, in order, and the rules each defined.
	Files []FileRules
}

// FileRules names the rules one file defines or redefines.
type FileRules struct {
	File  string
	Rules []string
}

func newRuleset() *Ruleset {
	return &Ruleset{macros: map[string]*macro{}, lists: map[string]*list{}}
}

// Load reads rule files given as name and content, in order.
func Load(files ...NamedFile) (*Ruleset, error) {
	rs := newRuleset()
	for _, f := range files {
		if err := rs.Add(f.Name, f.Data); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// NamedFile is a rule file's name (for messages) and content.
type NamedFile struct {
	Name string
	Data []byte
}

// fileError is a refusal of a rule file: where (file:line) and, when it is about
// one item, which.
func fileError(file string, line int, item, format string, args ...any) error {
	where := file
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	msg := fmt.Sprintf(format, args...)
	if item != "" {
		msg = item + ": " + msg
	}
	return kubetrail.ErrorAt(kubetrail.EINVALID, where, "%s", msg)
}

// Add reads one more rule file into the set. On error the set is left as it was
// before the call.
func (rs *Ruleset) Add(file string, data []byte) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			rs.Files = append(rs.Files, FileRules{File: file})
			return nil // an empty file defines nothing
		}
		return fileError(file, yamlErrorLine(err), "", "not valid YAML: %s", yamlErrorText(err))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
		rs.Files = append(rs.Files, FileRules{File: file})
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.SequenceNode {
		return fileError(file, top.Line, "", "a rule file is a YAML list of items (- rule:, - macro:, - list:), not %s", nodeKind(top))
	}
	// Work on a copy, so that a bad file changes nothing.
	next := rs.clone()
	fr := FileRules{File: file}
	for _, item := range top.Content {
		name, err := next.addItem(file, item)
		if err != nil {
			return err
		}
		if name != "" && !slices.Contains(fr.Rules, name) {
			fr.Rules = append(fr.Rules, name)
		}
	}
	next.Files = append(next.Files, fr)
	*rs = *next
	return nil
}

func (rs *Ruleset) clone() *Ruleset {
	c := &Ruleset{macros: map[string]*macro{}, lists: map[string]*list{},
		Warnings: slices.Clone(rs.Warnings), Files: slices.Clone(rs.Files)}
	for _, r := range rs.Rules {
		cp := *r
		cp.Tags = slices.Clone(r.Tags)
		cp.Exceptions = slices.Clone(r.Exceptions)
		c.Rules = append(c.Rules, &cp)
	}
	for k, m := range rs.macros {
		cp := *m
		c.macros[k] = &cp
	}
	for k, l := range rs.lists {
		c.lists[k] = &list{name: l.name, items: slices.Clone(l.items)}
	}
	return c
}

// mapping reads a YAML mapping node into key → value node, refusing duplicate keys.
func mapping(file string, n *yaml.Node, item string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fileError(file, n.Line, item, "want a mapping of keys to values, got %s", nodeKind(n))
	}
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, dup := m[k.Value]; dup {
			return nil, fileError(file, k.Line, item, "key %q given twice", k.Value)
		}
		m[k.Value] = n.Content[i+1]
	}
	return m, nil
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return "the scalar " + strconv.Quote(n.Value)
}

func scalar(file string, n *yaml.Node, item, key string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fileError(file, n.Line, item, "%s: want a string, got %s", key, nodeKind(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func boolean(file string, n *yaml.Node, item, key string) (bool, error) {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fileError(file, n.Line, item, "%s: want true or false, got %s", key, nodeKind(n))
}

func stringList(file string, n *yaml.Node, item, key string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fileError(file, n.Line, item, "%s: want a list, got %s", key, nodeKind(n))
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return nil, fileError(file, c.Line, item, "%s: want a list of strings, got %s in it", key, nodeKind(c))
		}
		out = append(out, c.Value)
	}
	return out, nil
}

// Keys each kind of item may have; anything else is refused, since a misspelt key
// (condtion:) would otherwise be silently ignored.
var itemKeys = map[string][]string{
	"rule": {"rule", "desc", "condition", "output", "priority", "source", "tags", "enabled", "exceptions", "append", "override",
		"warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration"},
	"macro": {"macro", "condition", "append", "override"},
	"list":  {"list", "items", "append", "override"},
}

// addItem reads one item of a file. It returns the rule's name for a rule item.
func (rs *Ruleset) addItem(file string, n *yaml.Node) (string, error) {
	m, err := mapping(file, n, "")
	if err != nil {
		return "", err
	}
	switch {
	case m["required_engine_version"] != nil:
		return "", checkEngineVersion(file, m["required_engine_version"])
	case m["required_plugin_versions"] != nil:
		return "", rs.checkPlugins(file, m["required_plugin_versions"])
	case m["rule"] != nil:
		return rs.addRule(file, n, m)
	case m["macro"] != nil:
		return "", rs.addMacro(file, n, m)
	case m["list"] != nil:
		return "", rs.addList(file, n, m)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "", fileError(file, n.Line, "", "unknown item with keys %s: want - rule:, - macro:, - list:, - required_engine_version: or - required_plugin_versions:", strings.Join(keys, ", "))
}

func checkKeys(file string, n *yaml.Node, kind, item string) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(itemKeys[kind], k.Value) {
			return fileError(file, k.Line, item, "unknown key %q for a %s (keys: %s)", k.Value, kind, strings.Join(itemKeys[kind], ", "))
		}
	}
	return nil
}

// checkEngineVersion refuses a file that needs a later engine. Falco writes the
// version as a semantic version ("0.57.0") or, in older files, as one number (the
// minor version of 0.x).
func checkEngineVersion(file string, n *yaml.Node) error {
	want := n.Value
	if !strings.Contains(want, ".") {
		want = "0." + want + ".0"
	}
	w, err := parseVersion(want)
	if err != nil {
		return fileError(file, n.Line, "required_engine_version", "%q is not a version", n.Value)
	}
	have, _ := parseVersion(EngineVersion)
	if compareVersions(w, have) > 0 {
		return fileError(file, n.Line, "required_engine_version", "the file needs engine version %s; kubetrail reads rules of engine version %s", n.Value, EngineVersion)
	}
	return nil
}

func (rs *Ruleset) checkPlugins(file string, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fileError(file, n.Line, "required_plugin_versions", "want a list, got %s", nodeKind(n))
	}
	for _, p := range n.Content {
		m, err := mapping(file, p, "required_plugin_versions")
		if err != nil {
			return err
		}
		names := []*yaml.Node{p}
		if alts := m["alternatives"]; alts != nil && alts.Kind == yaml.SequenceNode {
			names = append(names, alts.Content...)
		}
		ok := false
		var first string
		for _, alt := range names {
			am, err := mapping(file, alt, "required_plugin_versions")
			if err != nil {
				return err
			}
			name, version := "", ""
			if am["name"] != nil {
				name = am["name"].Value
			}
			if am["version"] != nil {
				version = am["version"].Value
			}
			if first == "" {
				first = name
			}
			have, known := suppliedPlugins[name]
			if !known {
				continue
			}
			w, err := parseVersion(version)
			if err != nil {
				return fileError(file, alt.Line, "required_plugin_versions", "plugin %s: %q is not a version", name, version)
			}
			h, _ := parseVersion(have)
			// Plugins follow semantic versions: the same major version, and at least the minor.
			if w[0] == h[0] && compareVersions(w, h) <= 0 {
				ok = true
			}
		}
		if !ok {
			rs.Warnings = append(rs.Warnings, fmt.Sprintf("%s:%d: plugin %s is required; kubetrail does not stand in for it, so rules naming its fields are disabled", file, p.Line, first))
		}
	}
	return nil
}

func parseVersion(s string) ([3]int, error) {
	var v [3]int
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".")
	if len(parts) == 0 || len(parts) > 3 {
		return v, fmt.Errorf("bad version %q", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("bad version %q", s)
		}
		v[i] = n
	}
	return v, nil
}

func compareVersions(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// overrides reads "append: true" or "override: {key: append|replace}" into the
// set of keys appended and replaced.
func overrides(file string, m map[string]*yaml.Node, item string, appendable, replaceable []string) (appendKeys, replaceKeys []string, err error) {
	if a := m["append"]; a != nil {
		on, err := boolean(file, a, item, "append")
		if err != nil {
			return nil, nil, err
		}
		if on {
			if m["override"] != nil {
				return nil, nil, fileError(file, a.Line, item, "append and override cannot both be given")
			}
			for _, k := range appendable {
				if m[k] != nil {
					appendKeys = append(appendKeys, k)
				}
			}
			return appendKeys, nil, nil
		}
	}
	o := m["override"]
	if o == nil {
		return nil, nil, nil
	}
	om, err := mapping(file, o, item+": override")
	if err != nil {
		return nil, nil, err
	}
	for k, v := range om {
		how := v.Value
		switch {
		case how == "append" && slices.Contains(appendable, k):
			appendKeys = append(appendKeys, k)
		case how == "replace" && slices.Contains(replaceable, k):
			replaceKeys = append(replaceKeys, k)
		case how != "append" && how != "replace":
			return nil, nil, fileError(file, v.Line, item, "override of %s: want append or replace, got %q", k, how)
		default:
			return nil, nil, fileError(file, v.Line, item, "%s cannot be overridden with %s", k, how)
		}
		if m[k] == nil {
			return nil, nil, fileError(file, v.Line, item, "override names %s, but the item does not give it", k)
		}
	}
	slices.Sort(appendKeys)
	slices.Sort(replaceKeys)
	return appendKeys, replaceKeys, nil
}

// itemHead reads how a list or macro item starts: its name (which names the
// item in messages), keys it may have, and the key it must have.
func itemHead(file string, n *yaml.Node, m map[string]*yaml.Node, kind, body string) (name, item string, err error) {
	if name, err = scalar(file, m[kind], "", kind); err != nil {
		return "", "", err
	}
	item = kind + " " + strconv.Quote(name)
	if err := checkKeys(file, n, kind, item); err != nil {
		return "", "", err
	}
	if m[body] == nil {
		return "", "", fileError(file, n.Line, item, "%s is missing", body)
	}
	return name, item, nil
}

func (rs *Ruleset) addList(file string, n *yaml.Node, m map[string]*yaml.Node) error {
	name, item, err := itemHead(file, n, m, "list", "items")
	if err != nil {
		return err
	}
	items, err := stringList(file, m["items"], item, "items")
	if err != nil {
		return err
	}
	app, _, err := overrides(file, m, item, []string{"items"}, []string{"items"})
	if err != nil {
		return err
	}
	if len(app) > 0 {
		prev := rs.lists[name]
		if prev == nil {
			// Falco accepts this (its own tests append to lists of other files
			// that may not be loaded): the append defines the list.
			rs.Warnings = append(rs.Warnings, fmt.Sprintf("%s:%d: %s appends to a list no earlier file defines; it defines it", file, n.Line, item))
			rs.lists[name] = &list{name: name, items: items}
			return nil
		}
		prev.items = append(prev.items, items...)
		return nil
	}
	rs.lists[name] = &list{name: name, items: items}
	return nil
}

func (rs *Ruleset) addMacro(file string, n *yaml.Node, m map[string]*yaml.Node) error {
	name, item, err := itemHead(file, n, m, "macro", "condition")
	if err != nil {
		return err
	}
	cond, err := scalar(file, m["condition"], item, "condition")
	if err != nil {
		return err
	}
	app, _, err := overrides(file, m, item, []string{"condition"}, []string{"condition"})
	if err != nil {
		return err
	}
	if len(app) > 0 {
		prev := rs.macros[name]
		if prev == nil {
			return fileError(file, n.Line, item, "appends to a macro that no earlier item defines")
		}
		prev.condition += " " + cond
		return nil
	}
	rs.macros[name] = &macro{name: name, condition: cond, file: file, line: m["condition"].Line}
	return nil
}

func (rs *Ruleset) rule(name string) *Rule {
	for _, r := range rs.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func (rs *Ruleset) addRule(file string, n *yaml.Node, m map[string]*yaml.Node) (string, error) {
	name, err := scalar(file, m["rule"], "", "rule")
	if err != nil {
		return "", err
	}
	item := "rule " + strconv.Quote(name)
	if err := checkKeys(file, n, "rule", item); err != nil {
		return "", err
	}
	if name == "" {
		return "", fileError(file, n.Line, "", "a rule needs a name")
	}
	app, repl, err := overrides(file, m, item,
		[]string{"condition", "exceptions", "output", "desc", "tags"},
		[]string{"condition", "exceptions", "output", "desc", "priority", "tags", "enabled", "source"})
	if err != nil {
		return "", err
	}
	prev := rs.rule(name)
	if len(app) > 0 || len(repl) > 0 {
		if prev == nil {
			return "", fileError(file, n.Line, item, "appends to or overrides a rule that no earlier item defines")
		}
		return name, rs.amendRule(file, prev, m, item, app, repl)
	}
	// "- rule: X / enabled: false" on its own switches an existing rule.
	if prev != nil && m["condition"] == nil && m["enabled"] != nil && len(m) == 2 {
		on, err := boolean(file, m["enabled"], item, "enabled")
		if err != nil {
			return "", err
		}
		prev.Enabled = on
		return name, nil
	}
	r := &Rule{Name: name, Source: SourceSyscall, Enabled: true, File: file, Line: n.Line}
	for _, k := range []string{"condition", "output", "priority"} {
		if m[k] == nil {
			return "", fileError(file, n.Line, item, "%s is missing", k)
		}
	}
	if err := setRuleKeys(file, r, m, item, []string{"condition", "output", "desc", "priority", "tags", "enabled", "source", "exceptions"}, false); err != nil {
		return "", err
	}
	if prev != nil {
		*prev = *r // a rule defined again replaces the earlier one, in its place
	} else {
		rs.Rules = append(rs.Rules, r)
	}
	return name, nil
}

func (rs *Ruleset) amendRule(file string, r *Rule, m map[string]*yaml.Node, item string, app, repl []string) error {
	if err := setRuleKeys(file, r, m, item, repl, false); err != nil {
		return err
	}
	return setRuleKeys(file, r, m, item, app, true)
}

// setRuleKeys sets (or, with appending, extends) the given keys of r from m.
func setRuleKeys(file string, r *Rule, m map[string]*yaml.Node, item string, keys []string, appending bool) error {
	for _, k := range keys {
		v := m[k]
		if v == nil {
			continue
		}
		switch k {
		case "condition", "output", "desc":
			s, err := scalar(file, v, item, k)
			if err != nil {
				return err
			}
			s = strings.TrimSpace(s)
			dst := map[string]*string{"condition": &r.Condition, "output": &r.Output, "desc": &r.Desc}[k]
			if appending && *dst != "" {
				*dst += " " + s
			} else {
				*dst = s
			}
		case "priority":
			s, err := scalar(file, v, item, k)
			if err != nil {
				return err
			}
			p, ok := normalizePriority(s)
			if !ok {
				return fileError(file, v.Line, item, "priority %q: want one of %s", s, strings.Join(Priorities, ", "))
			}
			r.Priority = p
		case "source":
			s, err := scalar(file, v, item, k)
			if err != nil {
				return err
			}
			r.Source = s
		case "tags":
			tags, err := stringList(file, v, item, k)
			if err != nil {
				return err
			}
			if appending {
				r.Tags = append(r.Tags, tags...)
			} else {
				r.Tags = tags
			}
		case "enabled":
			on, err := boolean(file, v, item, k)
			if err != nil {
				return err
			}
			r.Enabled = on
		case "exceptions":
			ex, err := exceptions(file, v, item)
			if err != nil {
				return err
			}
			if appending {
				r.Exceptions = appendExceptions(r.Exceptions, ex)
			} else {
				r.Exceptions = ex
			}
		}
	}
	return nil
}

// appendExceptions adds exceptions; one with a name already present adds its
// values to that one, as Falco does.
func appendExceptions(have, add []Exception) []Exception {
	for _, a := range add {
		i := slices.IndexFunc(have, func(e Exception) bool { return e.Name == a.Name })
		if i < 0 {
			have = append(have, a)
			continue
		}
		have[i].Values = append(have[i].Values, a.Values...)
	}
	return have
}

func normalizePriority(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case "INFO":
		u = "INFORMATIONAL"
	case "WARN":
		u = "WARNING"
	case "EMERG":
		u = "EMERGENCY"
	case "CRIT":
		u = "CRITICAL"
	case "ERR":
		u = "ERROR"
	}
	return u, slices.Contains(Priorities, u)
}

// exceptions reads a rule's exceptions: name, fields (one or a list), comps (one
// or a list, "=" by default) and values (a list of tuples, or of values when
// fields is one field).
func exceptions(file string, n *yaml.Node, item string) ([]Exception, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fileError(file, n.Line, item, "exceptions: want a list, got %s", nodeKind(n))
	}
	var out []Exception
	for _, en := range n.Content {
		m, err := mapping(file, en, item+": exception")
		if err != nil {
			return nil, err
		}
		var e Exception
		if m["name"] == nil {
			return nil, fileError(file, en.Line, item, "an exception needs a name")
		}
		e.Name = m["name"].Value
		where := fmt.Sprintf("%s: exception %q", item, e.Name)
		if f := m["fields"]; f == nil {
			return nil, fileError(file, en.Line, where, "fields is missing")
		} else if f.Kind == yaml.ScalarNode {
			e.Fields, e.single = []string{f.Value}, true
		} else if e.Fields, err = stringList(file, f, where, "fields"); err != nil {
			return nil, err
		}
		if c := m["comps"]; c == nil {
			for range e.Fields {
				e.Comps = append(e.Comps, "=")
			}
		} else if c.Kind == yaml.ScalarNode {
			e.Comps = []string{c.Value}
			for len(e.Comps) < len(e.Fields) {
				e.Comps = append(e.Comps, c.Value)
			}
		} else if e.Comps, err = stringList(file, c, where, "comps"); err != nil {
			return nil, err
		}
		if len(e.Comps) != len(e.Fields) {
			return nil, fileError(file, en.Line, where, "%d fields but %d comps", len(e.Fields), len(e.Comps))
		}
		if v := m["values"]; v != nil {
			if v.Kind != yaml.SequenceNode {
				return nil, fileError(file, v.Line, where, "values: want a list, got %s", nodeKind(v))
			}
			for _, t := range v.Content {
				var tuple []string
				switch {
				case e.single && t.Kind == yaml.ScalarNode:
					tuple = []string{t.Value}
				case e.single && t.Kind == yaml.SequenceNode:
					// One field compared with "in": the value is itself a list.
					items, err := stringList(file, t, where, "values")
					if err != nil {
						return nil, err
					}
					tuple = []string{"(" + joinValues(items) + ")"}
				case t.Kind == yaml.SequenceNode:
					for _, x := range t.Content {
						switch x.Kind {
						case yaml.ScalarNode:
							tuple = append(tuple, x.Value)
						case yaml.SequenceNode:
							items, err := stringList(file, x, where, "values")
							if err != nil {
								return nil, err
							}
							tuple = append(tuple, "("+joinValues(items)+")")
						default:
							return nil, fileError(file, x.Line, where, "values: want values or lists, got %s", nodeKind(x))
						}
					}
				default:
					return nil, fileError(file, t.Line, where, "values: want a list of tuples, got %s", nodeKind(t))
				}
				if len(tuple) != len(e.Fields) {
					return nil, fileError(file, t.Line, where, "a tuple of %d values for %d fields", len(tuple), len(e.Fields))
				}
				e.Values = append(e.Values, tuple)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func joinValues(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = quoteValue(it)
	}
	return strings.Join(q, ", ")
}

// quoteValue writes a value so that the condition parser reads it back as it is.
func quoteValue(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n(),'\"\\") && s != "and" && s != "or" && s != "not" {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// yamlErrorLine finds the line in a YAML error ("yaml: line 12: ...").
func yamlErrorLine(err error) int {
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		rest := s[i+5:]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(rest[:j]); err == nil {
			return n
		}
	}
	return 0
}

func yamlErrorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "line ") {
		s = s[i+2:]
	}
	return s
}
