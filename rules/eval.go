package rules

import (
	"cmp"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/kubetrail/kubetrail"
)

// predicate is a compiled condition.
type predicate = func(*Input) bool

// compileExpr turns a parsed condition into a predicate. Comparisons follow
// Falco: a field the event has no value for makes every comparison on it false
// (so "not f = x" is then true), and a list field is "in" a set when every
// element is.
func compileExpr(e kubetrail.Expr, source string) (predicate, error) {
	switch e := e.(type) {
	case kubetrail.True:
		return func(*Input) bool { return true }, nil
	case kubetrail.Not:
		x, err := compileExpr(e.X, source)
		if err != nil {
			return nil, err
		}
		return func(in *Input) bool { return !x(in) }, nil
	case kubetrail.And:
		terms, err := compileTerms(e.Terms, source)
		if err != nil {
			return nil, err
		}
		if len(terms) == 2 {
			a, b := terms[0], terms[1]
			return func(in *Input) bool { return a(in) && b(in) }, nil
		}
		return func(in *Input) bool {
			for _, t := range terms {
				if !t(in) {
					return false
				}
			}
			return true
		}, nil
	case kubetrail.Or:
		terms, err := compileTerms(e.Terms, source)
		if err != nil {
			return nil, err
		}
		return func(in *Input) bool {
			for _, t := range terms {
				if t(in) {
					return true
				}
			}
			return false
		}, nil
	case kubetrail.Comparison:
		return compileComparison(e, source)
	}
	return nil, fmt.Errorf("cannot evaluate %T", e)
}

func compileTerms(es []kubetrail.Expr, source string) ([]predicate, error) {
	out := make([]predicate, len(es))
	for i, t := range es {
		p, err := compileExpr(t, source)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

type extractor = func(*Input) (Value, bool)

func bindField(source, name, arg string) (*FieldDef, extractor, error) {
	def := lookup(source, name)
	if def == nil {
		return nil, nil, fmt.Errorf("field %s is not available to %s rules", name, source)
	}
	ex := def.Extract
	return def, func(in *Input) (Value, bool) { return ex(in, arg) }, nil
}

func compileComparison(c kubetrail.Comparison, source string) (predicate, error) {
	def, get, err := bindField(source, c.Field, c.Arg)
	if err != nil {
		return nil, err
	}
	if c.Op == kubetrail.OpExists {
		return func(in *Input) bool { _, ok := get(in); return ok }, nil
	}
	if c.ValueField != nil {
		odef, other, err := bindField(source, c.ValueField.Field, c.ValueField.Arg)
		if err != nil {
			return nil, err
		}
		if odef.Kind != def.Kind {
			return nil, fmt.Errorf("val(%s) has another type than %s", c.ValueField.Field, c.Field)
		}
		if def.AnyOf && !c.HasArg || odef.AnyOf && !c.ValueField.HasArg {
			return nil, fmt.Errorf("val() cannot compare %s or %s, which hold several values at once", c.Field, c.ValueField.Field)
		}
		return func(in *Input) bool {
			a, ok := get(in)
			if !ok {
				return false
			}
			b, ok := other(in)
			if !ok {
				return false
			}
			switch def.Kind {
			case KindInt:
				return compareInt(c.Op, a.Int, b.Int)
			case KindBool:
				return compareString(c.Op, boolString(a.Bool), boolString(b.Bool))
			case KindList:
				return compareLists(c.Op, a.List, b.List)
			}
			return compareString(c.Op, a.Str, b.Str)
		}, nil
	}
	isType := c.Field == "evt.type"
	switch def.Kind {
	case KindInt:
		vals := make([]int64, 0, len(c.Values))
		for _, v := range c.Values {
			n, ok := v.(int64)
			if !ok {
				return nil, fmt.Errorf("%s wants a number, got %v", c.Field, v)
			}
			vals = append(vals, n)
		}
		if c.Op == kubetrail.OpIn || c.Op == kubetrail.OpIntersects {
			return func(in *Input) bool {
				v, ok := get(in)
				return ok && slices.Contains(vals, v.Int)
			}, nil
		}
		if len(vals) != 1 {
			return nil, fmt.Errorf("%s %s takes one value", c.Field, c.Op)
		}
		want := vals[0]
		op := c.Op
		return func(in *Input) bool {
			v, ok := get(in)
			return ok && compareInt(op, v.Int, want)
		}, nil
	case KindBool:
		set := stringSet(c.Values)
		op := c.Op
		return func(in *Input) bool {
			v, ok := get(in)
			if !ok {
				return false
			}
			_, in_ := set[boolString(v.Bool)]
			if op == kubetrail.OpNe {
				return !in_
			}
			return in_
		}, nil
	case KindList:
		if c.Op != kubetrail.OpIn && c.Op != kubetrail.OpIntersects && !c.HasArg {
			// Another operator on a list: true when some element matches.
			test, err := stringTest(c, false)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool {
				v, ok := get(in)
				if !ok {
					return false
				}
				for _, s := range v.List {
					if test(s) {
						return true
					}
				}
				return false
			}, nil
		}
		if c.HasArg {
			break // one element, compared as a string below
		}
		set := stringSet(c.Values)
		all := c.Op == kubetrail.OpIn
		return func(in *Input) bool {
			v, ok := get(in)
			if !ok {
				return false
			}
			for _, s := range v.List {
				_, hit := set[s]
				if all && !hit {
					return false
				}
				if !all && hit {
					return true
				}
			}
			return all
		}, nil
	}
	// Strings, and one element of a list field given an index.
	var test func(string) bool
	if def.Net {
		test, err = netTest(c)
	} else {
		test, err = stringTest(c, isType)
	}
	if err != nil {
		return nil, err
	}
	if def.AnyOf && !c.HasArg || def.Kind == KindList {
		// Several values at once (proc.aname with no index, fd.ip, an indexed
		// element of a list field, which may itself hold several): true when
		// the comparison holds for one of them, and for != when it holds for
		// all of them (fd.ip != 127.0.0.1: neither end is).
		all := c.Op == kubetrail.OpNe
		return func(in *Input) bool {
			v, ok := get(in)
			if !ok || len(v.List) == 0 {
				return false
			}
			for _, s := range v.List {
				if test(s) != all {
					return !all
				}
			}
			return all
		}, nil
	}
	if isType {
		// kubetrail records each family of system calls under one name (open for
		// open, openat and openat2), so a rule's names are read the same way.
		return func(in *Input) bool {
			v, ok := get(in)
			return ok && test(canonicalType(v.Str))
		}, nil
	}
	return func(in *Input) bool {
		v, ok := get(in)
		return ok && test(v.Str)
	}, nil
}

// netTest compiles a comparison of an address with networks: = and in test
// membership of any of the blocks (an address alone is a block of one), != its
// absence.
func netTest(c kubetrail.Comparison) (func(string) bool, error) {
	var nets []netip.Prefix
	for _, v := range c.Values {
		s := fmt.Sprint(v)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%s wants networks such as 10.0.0.0/8 or addresses, got %q", c.Field, s)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		nets = append(nets, pfx.Masked())
	}
	member := func(s string) bool {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, n := range nets {
			if n.Contains(a) {
				return true
			}
		}
		return false
	}
	switch c.Op {
	case kubetrail.OpEq, kubetrail.OpIn, kubetrail.OpIntersects:
		return member, nil
	case kubetrail.OpNe:
		return func(s string) bool { return !member(s) }, nil
	}
	return nil, fmt.Errorf("%s takes =, != and in", c.Field)
}

// stringTest compiles a comparison's operator and values into a test of one
// string.
func stringTest(c kubetrail.Comparison, isType bool) (func(string) bool, error) {
	values := make([]string, 0, len(c.Values))
	for _, v := range c.Values {
		s := fmt.Sprint(v)
		if isType {
			s = canonicalType(s)
		}
		values = append(values, s)
	}
	switch c.Op {
	case kubetrail.OpIn, kubetrail.OpIntersects:
		set := make(map[string]struct{}, len(values))
		for _, v := range values {
			set[v] = struct{}{}
		}
		return func(s string) bool { _, hit := set[s]; return hit }, nil
	case kubetrail.OpPmatch:
		prefixes := make([]string, len(values))
		for i, v := range values {
			prefixes[i] = strings.TrimSuffix(v, "/")
		}
		return func(s string) bool { return pathMatch(s, prefixes) }, nil
	}
	if len(values) != 1 {
		return nil, fmt.Errorf("%s %s takes one value", c.Field, c.Op)
	}
	want := values[0]
	switch c.Op {
	case kubetrail.OpGlob, kubetrail.OpIGlob, kubetrail.OpRegex:
		re, err := patternRegexp(c.Op, want)
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	case kubetrail.OpIContains:
		lw := strings.ToLower(want)
		return func(s string) bool { return strings.Contains(strings.ToLower(s), lw) }, nil
	}
	op := c.Op
	return func(s string) bool { return compareString(op, s, want) }, nil
}

func stringSet(values []any) map[string]struct{} {
	set := make(map[string]struct{}, len(values))
	for _, v := range values {
		set[fmt.Sprint(v)] = struct{}{}
	}
	return set
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// ordered applies a comparison operator to two ordered values; ok is false for
// an operator that does not order.
func ordered[T cmp.Ordered](op string, a, b T) (result, ok bool) {
	switch op {
	case kubetrail.OpEq:
		return a == b, true
	case kubetrail.OpNe:
		return a != b, true
	case kubetrail.OpLt:
		return a < b, true
	case kubetrail.OpLe:
		return a <= b, true
	case kubetrail.OpGt:
		return a > b, true
	case kubetrail.OpGe:
		return a >= b, true
	}
	return false, false
}

func compareInt(op string, a, b int64) bool {
	r, _ := ordered(op, a, b)
	return r
}

func compareString(op, a, b string) bool {
	if r, ok := ordered(op, a, b); ok {
		return r
	}
	switch op {
	case kubetrail.OpContains, kubetrail.OpBContains:
		return strings.Contains(a, b)
	case kubetrail.OpIContains:
		return strings.Contains(strings.ToLower(a), strings.ToLower(b))
	case kubetrail.OpStartswith, kubetrail.OpBStartswith:
		return strings.HasPrefix(a, b)
	case kubetrail.OpEndswith, kubetrail.OpBEndswith:
		return strings.HasSuffix(a, b)
	}
	return false
}

func compareLists(op string, a, b []string) bool {
	switch op {
	case kubetrail.OpIn:
		for _, x := range a {
			if !slices.Contains(b, x) {
				return false
			}
		}
		return true
	case kubetrail.OpIntersects:
		for _, x := range a {
			if slices.Contains(b, x) {
				return true
			}
		}
	}
	return false
}

// pathMatch is Falco's pmatch: the path is one of the prefixes or below one.
func pathMatch(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") || pre == "" && strings.HasPrefix(p, "/") {
			return true
		}
	}
	return false
}

// patternRegexp compiles a glob (Falco's: * and ? match any character, "/"
// included, and [...] a set) or a regular expression matching the whole value.
func patternRegexp(op, pattern string) (*regexp.Regexp, error) {
	if op == kubetrail.OpRegex {
		return regexp.Compile(`^(?:` + pattern + `)$`)
	}
	var b strings.Builder
	if op == kubetrail.OpIGlob {
		b.WriteString("(?i)")
	}
	b.WriteByte('^')
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString("(?s:.*)")
		case '?':
			b.WriteString("(?s:.)")
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			set := pattern[i+1 : i+1+end]
			if strings.HasPrefix(set, "!") {
				set = "^" + set[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(set, `\`, `\\`) + "]")
			i += end + 1
		case '\\':
			if i+1 < len(pattern) {
				i++
				b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteByte('$')
	return regexp.Compile(b.String())
}

// canonicalType names a system call as kubetrail records it: one name per family.
func canonicalType(t string) string {
	switch t {
	case "openat", "openat2", "creat", "open_by_handle_at":
		return "open"
	case "unlinkat":
		return "unlink"
	case "renameat", "renameat2":
		return "rename"
	case "mkdirat":
		return "mkdir"
	case "fchmod", "fchmodat":
		return "chmod"
	case "fchown", "fchownat", "lchown":
		return "chown"
	case "execveat":
		return "execve"
	case "accept4":
		return "accept"
	case "procexit":
		return "exit"
	}
	return t
}
