package duckdb

import (
	"fmt"
	"strings"

	"github.com/kubetrail/kubetrail"
)

// compile turns a filter into a SQL boolean expression and its parameters. Every
// value the user wrote becomes a parameter; only field expressions from the
// reference and fixed operators are spliced into the text.
func compile(e kubetrail.Expr) (string, []any, error) {
	c := &compiler{}
	if err := c.expr(e, false); err != nil {
		return "", nil, err
	}
	return c.b.String(), c.args, nil
}

type compiler struct {
	b    strings.Builder
	args []any
}

// expr writes e. Under a NOT, a comparison on a missing field (NULL) must count as
// false before it is negated, as in Falco, so negated comparisons are wrapped in
// coalesce; elsewhere NULL already filters like false and the bare comparison keeps
// DuckDB's filter pushdown.
func (c *compiler) expr(e kubetrail.Expr, negated bool) error {
	switch x := e.(type) {
	case kubetrail.True:
		c.b.WriteString("TRUE")
	case kubetrail.And:
		return c.junction(x.Terms, " AND ", negated)
	case kubetrail.Or:
		return c.junction(x.Terms, " OR ", negated)
	case kubetrail.Not:
		c.b.WriteString("(NOT ")
		if err := c.expr(x.X, !negated); err != nil {
			return err
		}
		c.b.WriteString(")")
	case kubetrail.Comparison:
		if negated {
			c.b.WriteString("coalesce(")
		}
		if err := c.comparison(x); err != nil {
			return err
		}
		if negated {
			c.b.WriteString(", FALSE)")
		}
	default:
		return fmt.Errorf("compile filter: unexpected node %T", e)
	}
	return nil
}

func (c *compiler) junction(terms []kubetrail.Expr, op string, negated bool) error {
	if len(terms) == 0 {
		if op == " AND " {
			c.b.WriteString("TRUE")
		} else {
			c.b.WriteString("FALSE")
		}
		return nil
	}
	c.b.WriteString("(")
	for i, t := range terms {
		if i > 0 {
			c.b.WriteString(op)
		}
		if err := c.expr(t, negated); err != nil {
			return err
		}
	}
	c.b.WriteString(")")
	return nil
}

func (c *compiler) param(v any) string {
	c.args = append(c.args, v)
	return "?"
}

func (c *compiler) params(vs []any) string {
	ps := make([]string, len(vs))
	for i, v := range vs {
		ps[i] = c.param(v)
	}
	return strings.Join(ps, ", ")
}

func (c *compiler) comparison(x kubetrail.Comparison) error {
	f := kubetrail.LookupField(x.Field)
	if f == nil {
		return kubetrail.Errorf(kubetrail.EINVALID, "unknown field %q", x.Field)
	}
	col, err := fieldSQL(f.Name)
	if err != nil {
		return err
	}
	if f.Linked {
		return c.linkedComparison(f, col, x)
	}
	return c.compare(f, col, x)
}

// linkedComparison compares a linked field both where it is stored and across
// the session link: the user of a request, and of every event of the session it
// started; the session of an event, and of the request that started it.
func (c *compiler) linkedComparison(f *kubetrail.Field, col string, x kubetrail.Comparison) error {
	scol, ok := linkedColumns[f.Name]
	if !ok {
		return fmt.Errorf("linked field %s has no sessions column", f.Name)
	}
	if f.AppliesTo(kubetrail.CategoryK8s) {
		// Stored on requests, and on the policy events requests raised.
		c.b.WriteString("((evt_category IN ('k8s', 'policy') AND ")
		if err := c.compare(f, col, x); err != nil {
			return err
		}
		c.b.WriteString(") OR (evt_category <> 'k8s' AND proc_id IN (SELECT id FROM processes WHERE session_id IN (SELECT id FROM sessions WHERE ")
	} else {
		c.b.WriteString("((evt_category <> 'k8s' AND ")
		if err := c.compare(f, col, x); err != nil {
			return err
		}
		// A request (or a policy event it raised, which keeps its audit ID) is
		// linked to the session it started.
		c.b.WriteString(") OR (evt_category IN ('k8s', 'policy') AND ka_auditid IN (SELECT req_audit_id FROM sessions WHERE ")
	}
	if err := c.compareColumn(f, scol, x); err != nil {
		return err
	}
	if f.AppliesTo(kubetrail.CategoryK8s) {
		c.b.WriteString("))))")
	} else {
		c.b.WriteString(")))")
	}
	return nil
}

// compare writes the comparison x on the SQL expression col of field f.
func (c *compiler) compare(f *kubetrail.Field, col string, x kubetrail.Comparison) error {
	if d := dimensionOf(f.Name); d != nil {
		// Answered from the dimension's table first: which rows match, then the
		// events that point to them. A row lacking the field matches no comparison,
		// and an event with no row (a Kubernetes request has no process) matches
		// none either, as in Falco.
		fmt.Fprintf(&c.b, "(%s IN (SELECT id FROM %s WHERE ", d.idColumn, d.table)
		defer c.b.WriteString("))")
	}
	return c.compareColumn(f, col, x)
}

// compareColumn writes the comparison x on the SQL expression col itself.
func (c *compiler) compareColumn(f *kubetrail.Field, col string, x kubetrail.Comparison) error {
	if x.Op == kubetrail.OpExists {
		if f.Type == kubetrail.TypeString && f.Derived {
			// Derived strings may compute to '' rather than NULL.
			fmt.Fprintf(&c.b, "(%s IS NOT NULL AND %s <> '')", col, col)
		} else {
			fmt.Fprintf(&c.b, "(%s IS NOT NULL)", col)
		}
		return nil
	}
	if len(x.Values) == 0 {
		return kubetrail.Errorf(kubetrail.EINVALID, "%s %s needs a value", x.Field, x.Op)
	}
	if f.Type == kubetrail.TypeStrings {
		return c.listComparison(col, x)
	}
	v := x.Values[0]
	switch x.Op {
	case kubetrail.OpEq:
		fmt.Fprintf(&c.b, "(%s = %s)", col, c.param(v))
	case kubetrail.OpNe:
		fmt.Fprintf(&c.b, "(%s <> %s)", col, c.param(v))
	case kubetrail.OpLt, kubetrail.OpLe, kubetrail.OpGt, kubetrail.OpGe:
		fmt.Fprintf(&c.b, "(%s %s %s)", col, x.Op, c.param(v))
	case kubetrail.OpIn, kubetrail.OpIntersects:
		fmt.Fprintf(&c.b, "(%s IN (%s))", col, c.params(x.Values))
	case kubetrail.OpContains:
		fmt.Fprintf(&c.b, "contains(%s, %s)", col, c.param(v))
	case kubetrail.OpIContains:
		fmt.Fprintf(&c.b, "contains(lower(%s), %s)", col, c.param(strings.ToLower(fmt.Sprint(v))))
	case kubetrail.OpStartswith:
		fmt.Fprintf(&c.b, "starts_with(%s, %s)", col, c.param(v))
	case kubetrail.OpEndswith:
		fmt.Fprintf(&c.b, "ends_with(%s, %s)", col, c.param(v))
	case kubetrail.OpGlob:
		fmt.Fprintf(&c.b, "(%s GLOB %s)", col, c.param(v))
	default:
		return kubetrail.Errorf(kubetrail.EINVALID, "operator %s does not apply to %s", x.Op, x.Field)
	}
	return nil
}

// listComparison applies an operator to a list field: true when some element
// matches, which is how Falco treats fields that hold several values.
func (c *compiler) listComparison(col string, x kubetrail.Comparison) error {
	strs := make([]string, len(x.Values))
	for i, v := range x.Values {
		strs[i] = fmt.Sprint(v)
	}
	switch x.Op {
	case kubetrail.OpEq:
		fmt.Fprintf(&c.b, "list_contains(%s, %s)", col, c.param(strs[0]))
	case kubetrail.OpNe:
		fmt.Fprintf(&c.b, "(NOT list_contains(%s, %s))", col, c.param(strs[0]))
	case kubetrail.OpIn, kubetrail.OpIntersects:
		fmt.Fprintf(&c.b, "list_has_any(%s, %s::VARCHAR[])", col, c.param(strs))
	case kubetrail.OpContains:
		fmt.Fprintf(&c.b, "list_bool_or(list_transform(%s, x -> contains(x, %s)))", col, c.param(strs[0]))
	case kubetrail.OpIContains:
		fmt.Fprintf(&c.b, "list_bool_or(list_transform(%s, x -> contains(lower(x), %s)))", col, c.param(strings.ToLower(strs[0])))
	case kubetrail.OpStartswith:
		fmt.Fprintf(&c.b, "list_bool_or(list_transform(%s, x -> starts_with(x, %s)))", col, c.param(strs[0]))
	case kubetrail.OpEndswith:
		fmt.Fprintf(&c.b, "list_bool_or(list_transform(%s, x -> ends_with(x, %s)))", col, c.param(strs[0]))
	case kubetrail.OpGlob:
		fmt.Fprintf(&c.b, "list_bool_or(list_transform(%s, x -> x GLOB %s))", col, c.param(strs[0]))
	default:
		return kubetrail.Errorf(kubetrail.EINVALID, "operator %s does not apply to the list field %s", x.Op, x.Field)
	}
	return nil
}
