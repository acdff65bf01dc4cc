package rules

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/filter"
)

// Status says what became of one rule.
type Status struct {
	Rule    *Rule
	Enabled bool
	// Reason says why a rule is disabled: switched off in its file, a source
	// kubetrail has no events of, or fields it cannot fill (Missing).
	Reason  string
	Missing []string
}

// Engine evaluates compiled rules on events. It is safe for concurrent use: it
// keeps no state of its own (ancestry comes with each Input).
type Engine struct {
	Status []Status
	// Missing counts, per field kubetrail cannot fill, the rules disabled for it.
	Missing map[string]int

	bySource map[string]*sourceIndex
}

// sourceIndex holds a source's enabled rules by the event types they can match,
// so that an event meets only the rules that may fire on it.
type sourceIndex struct {
	byType   map[string][]*Compiled
	anyType  []*Compiled
	compiled []*Compiled
}

// Compiled is one enabled rule, ready to evaluate.
type Compiled struct {
	Rule   *Rule
	match  func(*Input) bool
	output []outputPart
	types  []string // evt.type values it can match; nil for any
	order  int      // its place among the ruleset's rules
}

// Sources kubetrail evaluates rules of.
var sources = []string{SourceSyscall, SourceK8sAudit}

// Compile resolves the ruleset's macros and lists and compiles every rule. A
// syntax error, an undefined macro or a malformed exception in any rule, enabled
// or not, is an error naming the file, line and rule, as Falco refuses such a
// file; a rule that names fields kubetrail cannot fill is disabled with the
// fields named.
func Compile(rs *Ruleset) (*Engine, error) {
	c := &compiler{rs: rs, macros: map[string]*compiledMacro{}}
	eng := &Engine{Missing: map[string]int{}, bySource: map[string]*sourceIndex{}}
	for _, s := range sources {
		eng.bySource[s] = &sourceIndex{byType: map[string][]*Compiled{}}
	}
	for order, r := range rs.Rules {
		st := Status{Rule: r}
		idx := eng.bySource[r.Source]
		if idx == nil {
			st.Reason = fmt.Sprintf("source %s: kubetrail receives syscall and k8s_audit events only", r.Source)
			eng.Status = append(eng.Status, st)
			continue
		}
		expr, missing, err := c.condition(r)
		if err != nil {
			return nil, err
		}
		// Fields an output names that kubetrail cannot fill print as <NA>, as
		// Falco prints fields an event lacks.
		output := parseOutput(r.Output, r.Source)
		switch {
		case len(missing) > 0:
			st.Missing = missing
			st.Reason = "needs fields kubetrail cannot fill: " + strings.Join(missing, ", ")
			for _, f := range missing {
				eng.Missing[f]++
			}
		case !r.Enabled:
			st.Reason = "disabled in its rule file (enabled: false)"
		}
		if st.Reason != "" {
			eng.Status = append(eng.Status, st)
			continue
		}
		match, err := compileExpr(expr, r.Source)
		if err != nil {
			return nil, fileError(r.File, r.Line, "rule "+strconv.Quote(r.Name), "condition: %v", err)
		}
		cr := &Compiled{Rule: r, match: match, output: output, order: order}
		if r.Source == SourceSyscall {
			cr.types, _ = eventTypes(expr)
		}
		if cr.types == nil {
			idx.anyType = append(idx.anyType, cr)
		}
		for _, t := range cr.types {
			idx.byType[t] = append(idx.byType[t], cr)
		}
		idx.compiled = append(idx.compiled, cr)
		st.Enabled = true
		eng.Status = append(eng.Status, st)
	}
	return eng, nil
}

// Rules returns the enabled rules of a source.
func (e *Engine) Rules(source string) []*Compiled {
	if idx := e.bySource[source]; idx != nil {
		return idx.compiled
	}
	return nil
}

// Candidates returns the rules that may match an event of the source and
// type, in the order the files define them.
func (e *Engine) Candidates(source, evtType string) (typed, any []*Compiled) {
	idx := e.bySource[source]
	if idx == nil {
		return nil, nil
	}
	return idx.byType[evtType], idx.anyType
}

// Evaluate returns the rules the input matches, in file order.
func (e *Engine) Evaluate(in *Input) []*Compiled {
	typed, any := e.Candidates(in.Event.Source(), in.Event.Type)
	var out []*Compiled
	for _, c := range typed {
		if c.match(in) {
			out = append(out, c)
		}
	}
	for _, c := range any {
		if c.match(in) {
			out = append(out, c)
		}
	}
	if len(typed) > 0 && len(any) > 0 {
		sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	}
	return out
}

// Output fills a rule's output with the input's fields.
func (c *Compiled) Output(in *Input) string { return formatOutput(c.output, in) }

// ---- Conditions ----

type compiledMacro struct {
	expr    kubetrail.Expr
	missing []string
	err     error
	busy    bool
}

type compiler struct {
	rs     *Ruleset
	macros map[string]*compiledMacro // by source + "\x00" + name: fields differ by source
}

// condition parses a rule's condition with its exceptions folded in. missing lists
// the fields (its own and its macros') that kubetrail cannot fill for its source.
func (c *compiler) condition(r *Rule) (kubetrail.Expr, []string, error) {
	item := "rule " + strconv.Quote(r.Name)
	src := r.Condition
	exc := exceptionCondition(r)
	if exc != "" {
		src = "(" + src + ") and not (" + exc + ")"
	}
	var missing []string
	e, err := filter.ParseEnv(src, c.env(r.Source, &missing))
	if err != nil {
		where := "condition"
		if exc != "" {
			where = "condition with its exceptions"
		}
		return nil, nil, fileError(r.File, r.Line, item, "%s: %s", where, kubetrail.ErrorMessage(err))
	}
	missing = append(missing, signOnlyMisuse(e, r.Source)...)
	slices.Sort(missing)
	return e, slices.Compact(missing), nil
}

// signOnlyMisuse names the sign-only fields a condition compares otherwise than
// by their sign: for those the rule needs a value kubetrail does not have.
func signOnlyMisuse(e kubetrail.Expr, source string) []string {
	var out []string
	var walk func(kubetrail.Expr)
	walk = func(e kubetrail.Expr) {
		switch e := e.(type) {
		case kubetrail.And:
			for _, t := range e.Terms {
				walk(t)
			}
		case kubetrail.Or:
			for _, t := range e.Terms {
				walk(t)
			}
		case kubetrail.Not:
			walk(e.X)
		case kubetrail.Comparison:
			d := lookup(source, e.Field)
			if d == nil || !d.SignOnly || e.Op == kubetrail.OpExists {
				return
			}
			if len(e.Values) != 1 || e.ValueField != nil {
				out = append(out, e.Field+" (its value, beyond its sign)")
				return
			}
			v, _ := e.Values[0].(int64)
			switch {
			case v == 0 && (e.Op == kubetrail.OpGe || e.Op == kubetrail.OpLt),
				v == -1 && (e.Op == kubetrail.OpEq || e.Op == kubetrail.OpNe || e.Op == kubetrail.OpGt || e.Op == kubetrail.OpLe):
			default:
				out = append(out, e.Field+" (its value, beyond its sign)")
			}
		}
	}
	walk(e)
	return out
}

// env returns the parse environment of a source; fields kubetrail cannot fill are
// added to *missing.
func (c *compiler) env(source string, missing *[]string) *filter.Env {
	env := &filter.Env{
		Field: func(name, arg string, hasArg bool) (kubetrail.FieldType, error) {
			return fieldType(source, name, arg, hasArg)
		},
		List: func(name string) ([]string, bool) {
			items, ok := c.list(name, 0)
			return items, ok
		},
		Missing: func(f string) { *missing = append(*missing, f) },
	}
	env.Macro = func(name string) (kubetrail.Expr, bool, error) {
		m, ok := c.macro(source, name)
		if !ok {
			return nil, false, nil
		}
		if m.err != nil {
			return nil, true, m.err
		}
		*missing = append(*missing, m.missing...)
		return m.expr, true, nil
	}
	return env
}

// list returns a list's items with the names of other lists among them expanded.
func (c *compiler) list(name string, depth int) ([]string, bool) {
	l := c.rs.lists[name]
	if l == nil || depth > 32 {
		return nil, false
	}
	var out []string
	for _, it := range l.items {
		if sub, ok := c.list(it, depth+1); ok && it != name {
			out = append(out, sub...)
			continue
		}
		out = append(out, it)
	}
	return out, true
}

func (c *compiler) macro(source, name string) (*compiledMacro, bool) {
	def := c.rs.macros[name]
	if def == nil {
		return nil, false
	}
	key := source + "\x00" + name
	if m := c.macros[key]; m != nil {
		if m.busy {
			return &compiledMacro{err: fmt.Errorf("macro %s refers to itself", name)}, true
		}
		return m, true
	}
	m := &compiledMacro{busy: true}
	c.macros[key] = m
	e, err := filter.ParseEnv(def.condition, c.env(source, &m.missing))
	m.busy = false
	if err != nil {
		m.err = fmt.Errorf("(defined at %s:%d) %s", def.file, def.line, kubetrail.ErrorMessage(err))
		return m, true
	}
	m.expr = e
	return m, true
}

// exceptionCondition writes a rule's exceptions as one condition, true when any
// exception applies.
func exceptionCondition(r *Rule) string {
	var ors []string
	for _, e := range r.Exceptions {
		for _, tuple := range e.Values {
			var ands []string
			for i, f := range e.Fields {
				comp := e.Comps[i]
				v := tuple[i]
				switch comp {
				case "in", "pmatch", "intersects":
					if !strings.HasPrefix(v, "(") {
						v = "(" + v + ")" // a list's name, expanded by the parser
					}
				default:
					v = quoteValue(v)
				}
				ands = append(ands, f+" "+comp+" "+v)
			}
			ors = append(ors, "("+strings.Join(ands, " and ")+")")
		}
	}
	return strings.Join(ors, " or ")
}

// eventTypes returns the evt.type values a condition can be true for, or nil when
// it may be true for any. Like Falco's own analysis it is conservative: a negation
// or a comparison it cannot read allows any type.
func eventTypes(e kubetrail.Expr) ([]string, bool) {
	set, all := types(e)
	if all {
		return nil, false
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, true
}

func types(e kubetrail.Expr) (map[string]bool, bool) {
	switch e := e.(type) {
	case kubetrail.Comparison:
		if e.Field != "evt.type" || e.ValueField != nil {
			return nil, true
		}
		switch e.Op {
		case kubetrail.OpEq, kubetrail.OpIn, kubetrail.OpIntersects:
			set := map[string]bool{}
			for _, v := range e.Values {
				if s, ok := v.(string); ok {
					set[canonicalType(s)] = true
				}
			}
			return set, false
		}
		return nil, true
	case kubetrail.And:
		var acc map[string]bool
		all := true
		for _, t := range e.Terms {
			s, a := types(t)
			if a {
				continue
			}
			if all {
				acc, all = s, false
				continue
			}
			next := map[string]bool{}
			for k := range acc {
				if s[k] {
					next[k] = true
				}
			}
			acc = next
		}
		return acc, all
	case kubetrail.Or:
		acc := map[string]bool{}
		for _, t := range e.Terms {
			s, a := types(t)
			if a {
				return nil, true
			}
			for k := range s {
				acc[k] = true
			}
		}
		return acc, false
	}
	return nil, true
}
