// Package filter reads kubetrail filters, which are written in Falco's condition
// syntax, into the kubetrail.Expr AST, and prints an Expr back as a condition.
//
// A condition reads as in a Falco rule:
//
//	k8s.ns.name = billing and not proc.name in (sh, bash)
//
// Grammar, loosest binding first; "and", "or" and "not" are case-sensitive and all
// binary operators associate to the left:
//
//	condition  = and { "or" and }
//	and        = unary { "and" unary }
//	unary      = "not" unary | "(" condition ")" | comparison
//	comparison = FIELD "exists"
//	           | FIELD ("in" | "intersects") "(" value { "," value } ")"
//	           | FIELD op value
//	op         = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "icontains"
//	           | "startswith" | "endswith" | "glob"
//	value      = a quoted string ('...' or "...", with \" \' \\ \n \t escapes)
//	           | a bare word, which runs until whitespace, "(", ")" or ","
//
// Parse checks every field against kubetrail.Fields and every value against its
// field's type, so the stores that compile the AST need not.
package filter

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

const (
	// MaxLength caps the input, so that one request cannot make the parser (and the
	// store behind it) do unbounded work.
	MaxLength = 64 << 10
	// MaxDepth caps how deeply parentheses and "not" nest. The parser recurses once per
	// level, so without a cap "((((...)" could exhaust the stack.
	MaxDepth = 100
)

// Parse reads a condition. An empty or all-blank condition is kubetrail.True{}.
//
// Errors are *kubetrail.Error with code EINVALID and Where "column N", N being the
// 1-based byte offset of the offending token in the whole input (newlines count as one
// byte). When the input stops short, N is one past its end, except for an unclosed "("
// and for "and", "or" or "not" missing their right side: there N points at that token,
// the one the message is about.
func Parse(src string) (kubetrail.Expr, error) { return parse(src, nil) }

// Env widens the language for Falco's rule conditions: the fields are the rule
// engine's (Falco's names, some taking an argument in brackets), bare names are
// macros, list names in a value list stand for their items, and the operators
// pmatch, regex, iglob, bcontains, bstartswith and bendswith and val(field) on the
// right are allowed. On a list field, "in" then means that every element is in
// the set, as in Falco.
type Env struct {
	// Field returns the type of a field, given its bracketed argument; an error
	// wrapping ErrNotSupplied when it is a field the engine cannot fill.
	Field func(name, arg string, hasArg bool) (kubetrail.FieldType, error)
	// Macro returns a macro's condition; ok is false when no macro has the name.
	Macro func(name string) (e kubetrail.Expr, ok bool, err error)
	// List returns a list's items; ok is false when no list has the name.
	List func(name string) (items []string, ok bool)
	// Missing, when set, is told each field Field does not supply, and parsing
	// goes on, so that a rule can be loaded disabled with all of them named.
	Missing func(field string)
}

// ErrNotSupplied marks a field an Env knows of but cannot fill.
var ErrNotSupplied = errors.New("field not supplied")

// ParseEnv reads a rule condition in env. Errors are as Parse's.
func ParseEnv(src string, env *Env) (kubetrail.Expr, error) { return parse(src, env) }

func parse(src string, env *Env) (kubetrail.Expr, error) {
	if len(src) > MaxLength {
		return nil, errAt(MaxLength, "the condition is %d bytes long; the limit is %d", len(src), MaxLength)
	}
	p := &parser{lex: lexer{src: src, keepEscapes: env != nil}, env: env}
	first, err := p.peek(condMode)
	if err != nil {
		return nil, err
	}
	if first.kind == tEOF {
		return kubetrail.True{}, nil
	}
	e, err := p.parseOr(nil)
	if err != nil {
		return nil, err
	}
	t, err := p.next(condMode)
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case tEOF:
		return e, nil
	case tRParen:
		return nil, errAt(t.pos, `unbalanced parenthesis: ")" at column %d has no matching "("`, t.pos+1)
	}
	return nil, errAt(t.pos, `unexpected %s; expected "and", "or" or the end of the condition`, describe(t))
}

func errAt(pos int, format string, args ...any) error {
	return kubetrail.ErrorAt(kubetrail.EINVALID, "column "+strconv.Itoa(pos+1), format, args...)
}

// ---- Lexer ----

type tokKind int

const (
	tEOF    tokKind = iota
	tLParen         // (
	tRParen         // )
	tComma          // ,
	tOp             // a symbolic operator: = == != < <= > >=
	tWord           // a bare word: a field name, a keyword or an unquoted value
	tString         // a quoted string; text holds its decoded value
	tOther          // a character that starts no token where it stands, such as a lone "!"
)

type token struct {
	kind     tokKind
	text     string
	pos, end int // byte offsets of the token's first byte and of the byte after it
}

// mode tells the lexer where the parser stands, because that decides what a bare word
// is. Falco lets values go unquoted (proc.name = bash, ka.uri = /api?watch=1), so in
// value position a word runs until whitespace, "(", ")" or ","; elsewhere a word also
// stops at quotes and operator characters, so that proc.name=bash is three tokens.
type mode int

const (
	condMode mode = iota
	valueMode
)

type lexer struct {
	src string
	pos int
	// keepEscapes keeps a backslash before a character that is no escape, as
	// Falco's rule parser does ("\ " is a backslash and a space); filters refuse it.
	keepEscapes bool
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// Symbolic operators, longest first so that "<=" is not read as "<" followed by "=".
var symbolicOps = []string{"==", "!=", "<=", ">=", "=", "<", ">"}

func (l *lexer) next(m mode) (token, error) {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start == len(l.src) {
		return token{kind: tEOF, pos: start, end: start}, nil
	}
	single := func(k tokKind) (token, error) {
		l.pos++
		return token{kind: k, text: l.src[start:l.pos], pos: start, end: l.pos}, nil
	}
	switch c := l.src[start]; {
	case c == '(':
		return single(tLParen)
	case c == ')':
		return single(tRParen)
	case c == ',':
		return single(tComma)
	case c == '"' || c == '\'':
		return l.quoted()
	case m == valueMode:
		for l.pos < len(l.src) && !isSpace(l.src[l.pos]) && strings.IndexByte("(),", l.src[l.pos]) < 0 {
			l.pos++
		}
		return token{kind: tWord, text: l.src[start:l.pos], pos: start, end: l.pos}, nil
	case strings.IndexByte("=!<>", c) >= 0:
		for _, op := range symbolicOps {
			if strings.HasPrefix(l.src[start:], op) {
				l.pos += len(op)
				return token{kind: tOp, text: op, pos: start, end: l.pos}, nil
			}
		}
		return single(tOther)
	}
	return l.condWord()
}

// condWord reads a field name or keyword. A bracketed argument, as in Falco's
// proc.aname[2] or ka.uri.param[command], belongs to the word whatever it contains,
// so that the parser can name the whole field in its error.
func (l *lexer) condWord() (token, error) {
	start := l.pos
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if isSpace(c) || strings.IndexByte(`(),'"=!<>`, c) >= 0 {
			break
		}
		if c == '[' {
			end := strings.IndexByte(l.src[l.pos:], ']')
			if end < 0 {
				return token{}, errAt(l.pos, `unterminated field argument: "[" at column %d is never closed by "]"`, l.pos+1)
			}
			l.pos += end
		}
		l.pos++
	}
	return token{kind: tWord, text: l.src[start:l.pos], pos: start, end: l.pos}, nil
}

// quoted reads a string in single or double quotes. Bytes other than the backslash and
// the closing quote are taken as they are, newlines and invalid UTF-8 included.
func (l *lexer) quoted() (token, error) {
	start, q := l.pos, l.src[l.pos]
	var b strings.Builder
	for l.pos++; l.pos < len(l.src); l.pos++ {
		switch c := l.src[l.pos]; c {
		case q:
			l.pos++
			return token{kind: tString, text: b.String(), pos: start, end: l.pos}, nil
		case '\\':
			if l.pos+1 == len(l.src) {
				break // a backslash cannot end the input: the loop ends and reports it
			}
			l.pos++
			switch e := l.src[l.pos]; e {
			case '"', '\'', '\\':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				if l.keepEscapes {
					b.WriteByte('\\')
					b.WriteByte(e)
					continue
				}
				return token{}, errAt(l.pos-1, `unknown escape in a quoted string: after a backslash write ", ', \, n or t`)
			}
		default:
			b.WriteByte(c)
		}
	}
	return token{}, errAt(start, "unterminated string: the quote at column %d is never closed", start+1)
}

// describe names a token for an error message.
func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "a quoted string"
	}
	return quote(t.text)
}

// quote quotes s for a message, cut short so that a long input cannot make a long error.
func quote(s string) string {
	const limit = 40
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strconv.Quote(s)
}

// ---- Parser ----

type parser struct {
	lex   lexer
	depth int
	env   *Env // nil for filters on stored fields
}

func (p *parser) next(m mode) (token, error) { return p.lex.next(m) }

func (p *parser) peek(m mode) (token, error) {
	save := p.lex.pos
	t, err := p.lex.next(m)
	p.lex.pos = save
	return t, err
}

func isWord(t token, w string) bool { return t.kind == tWord && t.text == w }

// Keywords cannot be bare values: in "proc.name = and ..." the value was most likely
// forgotten. Quoting one makes it a value.
func isKeyword(t token) bool { return isWord(t, "and") || isWord(t, "or") || isWord(t, "not") }

// parseOr and parseAnd collect a chain of one operator into one node, so that
// "a and b and c" is And{a, b, c}. A parenthesised chain stays a node of its own, which
// keeps Parse(String(x)) equal to x. after is the token before the condition, "(" or a
// keyword, or nil at the start; error messages use it.
func (p *parser) parseOr(after *token) (kubetrail.Expr, error) {
	return p.parseChain(after, "or", p.parseAnd, func(ts []kubetrail.Expr) kubetrail.Expr { return kubetrail.Or{Terms: ts} })
}

func (p *parser) parseAnd(after *token) (kubetrail.Expr, error) {
	return p.parseChain(after, "and", p.parseUnary, func(ts []kubetrail.Expr) kubetrail.Expr { return kubetrail.And{Terms: ts} })
}

func (p *parser) parseChain(after *token, keyword string, term func(*token) (kubetrail.Expr, error), node func([]kubetrail.Expr) kubetrail.Expr) (kubetrail.Expr, error) {
	x, err := term(after)
	if err != nil {
		return nil, err
	}
	terms := []kubetrail.Expr{x}
	for {
		t, err := p.peek(condMode)
		if err != nil {
			return nil, err
		}
		if !isWord(t, keyword) {
			break
		}
		p.lex.pos = t.end
		y, err := term(&t)
		if err != nil {
			return nil, err
		}
		terms = append(terms, y)
	}
	if len(terms) == 1 {
		return x, nil
	}
	return node(terms), nil
}

func (p *parser) parseUnary(after *token) (kubetrail.Expr, error) {
	t, err := p.next(condMode)
	if err != nil {
		return nil, err
	}
	switch {
	case isWord(t, "not"):
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseUnary(&t)
		if err != nil {
			return nil, err
		}
		return kubetrail.Not{X: x}, nil

	case t.kind == tLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseOr(&t)
		if err != nil {
			return nil, err
		}
		c, err := p.next(condMode)
		if err != nil {
			return nil, err
		}
		switch c.kind {
		case tRParen:
			return x, nil
		case tEOF:
			return nil, unclosed(t)
		}
		return nil, errAt(c.pos, `unexpected %s; expected "and", "or" or ")"`, describe(c))

	case isWord(t, "and") || isWord(t, "or"):
		if after == nil || after.kind == tLParen {
			return nil, errAt(t.pos, "%q needs a condition on its left", t.text)
		}

	case t.kind == tWord:
		return p.parseComparison(t)

	case t.kind == tEOF && after != nil:
		if after.kind == tLParen {
			return nil, unclosed(*after)
		}
		// Point at the keyword: it is what lacks its operand.
		return nil, errAt(after.pos, "%q needs a condition on its right", after.text)
	}
	if after != nil && after.kind == tWord {
		return nil, errAt(t.pos, "unexpected %s; expected a condition after %q", describe(t), after.text)
	}
	return nil, errAt(t.pos, "unexpected %s; expected a condition", describe(t))
}

func unclosed(open token) error {
	return errAt(open.pos, `unbalanced parenthesis: "(" at column %d is never closed`, open.pos+1)
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > MaxDepth {
		return errAt(t.pos, `the condition nests too deeply: more than %d levels of parentheses and "not"`, MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// Operators each field type accepts. On a list field (TypeStrings) the scalar
// operators mean "some element matches", and "in" means "some element is in the
// list", which is what "intersects" says; on a scalar field "intersects" is "in".
var opsByType = map[kubetrail.FieldType][]string{
	kubetrail.TypeString: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpLt, kubetrail.OpLe, kubetrail.OpGt, kubetrail.OpGe,
		kubetrail.OpIn, kubetrail.OpIntersects, kubetrail.OpContains, kubetrail.OpIContains,
		kubetrail.OpStartswith, kubetrail.OpEndswith, kubetrail.OpGlob, kubetrail.OpExists},
	kubetrail.TypeInt: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpLt, kubetrail.OpLe, kubetrail.OpGt, kubetrail.OpGe,
		kubetrail.OpIn, kubetrail.OpIntersects, kubetrail.OpExists},
	kubetrail.TypeTime: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpLt, kubetrail.OpLe, kubetrail.OpGt, kubetrail.OpGe,
		kubetrail.OpExists},
	kubetrail.TypeStrings: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpIn, kubetrail.OpIntersects,
		kubetrail.OpContains, kubetrail.OpIContains, kubetrail.OpStartswith, kubetrail.OpEndswith,
		kubetrail.OpGlob, kubetrail.OpExists},
}

var typeNames = map[kubetrail.FieldType]string{
	kubetrail.TypeString:  "a string",
	kubetrail.TypeInt:     "a whole number",
	kubetrail.TypeTime:    "a time",
	kubetrail.TypeStrings: "a list of strings",
	kubetrail.TypeBool:    "true or false",
}

// Operators spelled as words, and Falco operators kubetrail does not offer (told
// apart so that the error says "not supported" rather than "not an operator").
var (
	wordOps        = []string{"in", "intersects", "contains", "icontains", "startswith", "endswith", "glob", "exists"}
	unsupportedOps = []string{"bcontains", "bstartswith", "bendswith", "iglob", "pmatch", "regex"}
	ruleOnlyOps    = unsupportedOps // the operators rule conditions add to filters
)

// Operators each field type accepts in a rule condition. On a list field "in"
// means every element is in the set and intersects that some element is, as in
// Falco; the other string operators mean that some element matches (Falco's
// engine refuses them only when such a comparison is reached, which its own rule
// files rely on).
var ruleOpsByType = map[kubetrail.FieldType][]string{
	kubetrail.TypeString: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpLt, kubetrail.OpLe, kubetrail.OpGt, kubetrail.OpGe,
		kubetrail.OpIn, kubetrail.OpIntersects, kubetrail.OpContains, kubetrail.OpIContains,
		kubetrail.OpStartswith, kubetrail.OpEndswith, kubetrail.OpGlob, kubetrail.OpIGlob, kubetrail.OpPmatch,
		kubetrail.OpRegex, kubetrail.OpBContains, kubetrail.OpBStartswith, kubetrail.OpBEndswith, kubetrail.OpExists},
	kubetrail.TypeInt: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpLt, kubetrail.OpLe, kubetrail.OpGt, kubetrail.OpGe,
		kubetrail.OpIn, kubetrail.OpIntersects, kubetrail.OpExists},
	kubetrail.TypeBool: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpIn, kubetrail.OpIntersects, kubetrail.OpExists},
	kubetrail.TypeStrings: {kubetrail.OpEq, kubetrail.OpNe, kubetrail.OpIn, kubetrail.OpIntersects,
		kubetrail.OpContains, kubetrail.OpIContains, kubetrail.OpStartswith, kubetrail.OpEndswith,
		kubetrail.OpGlob, kubetrail.OpIGlob, kubetrail.OpPmatch, kubetrail.OpRegex, kubetrail.OpExists},
}

// fieldInfo is the field a comparison names, resolved from the stored fields or
// the Env.
type fieldInfo struct {
	name    string
	typ     kubetrail.FieldType
	arg     string
	hasArg  bool
	missing bool // the Env does not supply it; parsing goes on so that all are named
}

func (p *parser) parseComparison(f token) (kubetrail.Expr, error) {
	if p.env != nil && p.env.Macro != nil && isIdentifier(f.text) {
		m, ok, err := p.env.Macro(f.text)
		if err != nil {
			return nil, errAt(f.pos, "macro %s: %v", f.text, err)
		}
		if ok {
			return m, nil
		}
	}
	field, err := p.lookupField(f)
	if err != nil {
		return nil, err
	}
	opTok, err := p.next(condMode)
	if err != nil {
		return nil, err
	}
	op := ""
	switch {
	case opTok.kind == tOp && opTok.text == "==":
		op = kubetrail.OpEq
	case opTok.kind == tOp:
		op = opTok.text
	case opTok.kind == tWord && slices.Contains(wordOps, opTok.text):
		op = opTok.text
	case opTok.kind == tWord && p.env != nil && slices.Contains(ruleOnlyOps, opTok.text):
		op = opTok.text
	case opTok.kind == tWord && slices.Contains(unsupportedOps, opTok.text):
		return nil, errAt(opTok.pos, "operator %q is not supported; the operators are =, !=, <, <=, >, >=, in, intersects, contains, icontains, startswith, endswith, glob and exists", opTok.text)
	default:
		if p.env != nil && p.env.Macro != nil && isIdentifier(f.text) && field.missing {
			return nil, errAt(f.pos, "undefined macro or field %s", quote(f.text))
		}
		return nil, errAt(opTok.pos, "expected an operator after %s, got %s", field.name, describe(opTok))
	}
	ops := opsByType[field.typ]
	if p.env != nil {
		ops = ruleOpsByType[field.typ]
	}
	if !field.missing && !slices.Contains(ops, op) {
		return nil, errAt(opTok.pos, "operator %q does not apply to %s (%s); it takes %s", op, field.name, typeName(field.typ), orList(ops))
	}

	c := kubetrail.Comparison{Field: field.name, Arg: field.arg, HasArg: field.hasArg, Op: op}
	switch op {
	case kubetrail.OpExists:
		return c, nil
	case kubetrail.OpIn, kubetrail.OpIntersects, kubetrail.OpPmatch:
		c.Values, err = p.parseList(field, op)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	t, err := p.next(valueMode)
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case tWord, tString:
		if t.kind == tWord && t.text == "val" && p.env != nil {
			if open, err := p.peek(valueMode); err == nil && open.kind == tLParen {
				c.ValueField, err = p.parseFieldRef(field)
				if err != nil {
					return nil, err
				}
				return c, nil
			}
		}
		v, err := value(field, op, t)
		if err != nil {
			return nil, err
		}
		c.Values = []any{v}
		return c, nil
	case tLParen:
		return nil, errAt(t.pos, `%q takes a single value, not a list; use "in" to match any of several`, op)
	}
	return nil, errAt(t.pos, "unexpected %s; expected a value", describe(t))
}

// parseFieldRef reads "(field)" after val: a comparison with another field of the
// same event, which must have the left side's type.
func (p *parser) parseFieldRef(left fieldInfo) (*kubetrail.FieldRef, error) {
	open, err := p.next(valueMode)
	if err != nil {
		return nil, err
	}
	name, err := p.lex.condWord()
	if err != nil {
		return nil, err
	}
	name.pos = open.end
	for name.pos < len(p.lex.src) && isSpace(p.lex.src[name.pos]) {
		name.pos++
	}
	f, err := p.lookupField(name)
	if err != nil {
		return nil, err
	}
	if !f.missing && !left.missing && f.typ != left.typ {
		return nil, errAt(name.pos, "val(%s) is %s, but %s is %s", f.name, typeName(f.typ), left.name, typeName(left.typ))
	}
	closing, err := p.next(condMode)
	if err != nil {
		return nil, err
	}
	if closing.kind != tRParen {
		return nil, errAt(closing.pos, `unexpected %s; expected ")" closing val(`, describe(closing))
	}
	return &kubetrail.FieldRef{Field: f.name, Arg: f.arg, HasArg: f.hasArg}, nil
}

func (p *parser) parseList(field fieldInfo, op string) ([]any, error) {
	open, err := p.next(valueMode)
	if err != nil {
		return nil, err
	}
	if open.kind != tLParen {
		return nil, errAt(open.pos, "%q needs a list in parentheses, like (a, b), got %s", op, describe(open))
	}
	var values []any
	add := func(t token) error {
		if t.kind == tWord && p.env != nil && p.env.List != nil {
			// A bare word naming a Falco list stands for its items.
			if items, ok := p.env.List(t.text); ok {
				for _, it := range items {
					// Falco puts a list's items into the condition as they are
					// written, so an item in quotes ('"10.0.0.0/8"') is a quoted value.
					if len(it) >= 2 && (it[0] == '"' || it[0] == '\'') && it[len(it)-1] == it[0] {
						if q, err := (&lexer{src: it, keepEscapes: true}).quoted(); err == nil && q.end == len(it) {
							it = q.text
						}
					}
					v, err := value(field, op, token{kind: tString, text: it, pos: t.pos, end: t.end})
					if err != nil {
						return errAt(t.pos, "list %s: %v", t.text, kubetrail.ErrorMessage(err))
					}
					values = append(values, v)
				}
				return nil
			}
		}
		v, err := value(field, op, t)
		if err != nil {
			return err
		}
		values = append(values, v)
		return nil
	}
	for {
		t, err := p.next(valueMode)
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case tWord, tString:
			if err := add(t); err != nil {
				return nil, err
			}
		case tRParen:
			if p.env != nil && len(values) == 0 {
				// Falco allows an empty list, (), which nothing is in: rule files
				// leave lists empty for users to append to.
				return values, nil
			}
			return nil, errAt(t.pos, "unexpected %s; expected a value", describe(t))
		case tEOF:
			return nil, unclosed(open)
		default:
			return nil, errAt(t.pos, "unexpected %s; expected a value", describe(t))
		}

		sep, err := p.next(valueMode)
		if err != nil {
			return nil, err
		}
		switch sep.kind {
		case tRParen:
			return values, nil
		case tComma:
			continue
		case tEOF:
			return nil, unclosed(open)
		}
		return nil, errAt(sep.pos, `unexpected %s; expected "," or ")"`, describe(sep))
	}
}

// isIdentifier reports whether s can name a Falco macro or list.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func (p *parser) lookupField(t token) (fieldInfo, error) {
	name, arg, hasArg := t.text, "", false
	if i := strings.IndexByte(name, '['); i >= 0 {
		name, arg, hasArg = t.text[:i], strings.TrimSuffix(t.text[i+1:], "]"), true
	}
	if p.env != nil {
		typ, err := p.env.Field(name, arg, hasArg)
		switch {
		case errors.Is(err, ErrNotSupplied) && p.env.Missing != nil:
			p.env.Missing(name)
			return fieldInfo{name: name, typ: kubetrail.TypeString, arg: arg, hasArg: hasArg, missing: true}, nil
		case err != nil:
			return fieldInfo{}, errAt(t.pos, "%s", kubetrail.ErrorMessage(err))
		}
		return fieldInfo{name: name, typ: typ, arg: arg, hasArg: hasArg}, nil
	}
	if hasArg {
		// Falco has fields that take an argument; no stored field does.
		if kubetrail.LookupField(name) != nil {
			return fieldInfo{}, errAt(t.pos, "field %s takes no argument in brackets", name)
		}
		return fieldInfo{}, errAt(t.pos, "unknown field %s: no field takes an argument in brackets%s", quote(t.text), didYouMean(name))
	}
	f := kubetrail.LookupField(name)
	if f == nil {
		return fieldInfo{}, errAt(t.pos, "unknown field %s%s", quote(name), didYouMean(name))
	}
	return fieldInfo{name: f.Name, typ: f.Type}, nil
}

func didYouMean(name string) string {
	if s := kubetrail.SuggestField(name); s != "" {
		return " (did you mean " + s + "?)"
	}
	if !strings.Contains(name, ".") {
		// Most likely a Falco macro or list name such as spawned_process.
		return "; fields are dotted names such as proc.name, and Falco macros and lists are not supported"
	}
	return ""
}

// value converts a value token to the Go type of its field.
func value(field fieldInfo, op string, t token) (any, error) {
	if isKeyword(t) && t.kind == tWord {
		return nil, errAt(t.pos, "unexpected %q; expected a value (quote it to use the word as a value)", t.text)
	}
	switch op {
	case kubetrail.OpRegex:
		if _, err := regexp.Compile(t.text); err != nil {
			return nil, errAt(t.pos, "malformed regular expression %s: %v", quote(t.text), err)
		}
		return t.text, nil
	case kubetrail.OpBContains, kubetrail.OpBStartswith, kubetrail.OpBEndswith:
		b, err := hex.DecodeString(t.text)
		if err != nil {
			return nil, errAt(t.pos, "%s wants bytes written in hex, such as 7f454c46, got %s", op, quote(t.text))
		}
		return string(b), nil
	}
	switch field.typ {
	case kubetrail.TypeString, kubetrail.TypeStrings:
		if op == kubetrail.OpGlob || op == kubetrail.OpIGlob {
			// path.Match checks the whole pattern's syntax even when it fails to match.
			if _, err := path.Match(t.text, ""); err != nil {
				return nil, errAt(t.pos, `malformed glob pattern %s: use * and ? as wildcards, [...] for a set of characters (closed by "]") and \ to escape the character after it`, quote(t.text))
			}
		}
		return t.text, nil
	case kubetrail.TypeBool:
		switch strings.ToLower(t.text) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return nil, errAt(t.pos, "%s wants true or false, got %s", field.name, quote(t.text))
	case kubetrail.TypeInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return nil, errAt(t.pos, "%s wants a whole number, got %s, which is out of range", field.name, quote(t.text))
		} else if err != nil {
			return nil, errAt(t.pos, "%s wants a whole number, got %s", field.name, quote(t.text))
		}
		return n, nil
	case kubetrail.TypeTime:
		tm, err := time.Parse(time.RFC3339Nano, t.text)
		// A year outside 0-9999 once in UTC (0000-01-01T00:00:00+01:00) has no RFC 3339
		// spelling, so String could not print it back.
		if y := tm.UTC().Year(); err != nil || y < 0 || y > 9999 {
			return nil, errAt(t.pos, "%s wants a time in RFC 3339 form such as 2026-11-27T00:00:00Z, got %s", field.name, quote(t.text))
		}
		return tm.UTC(), nil
	}
	return nil, errAt(t.pos, "field %s has type %q, which filters cannot compare", field.name, field.typ)
}

func typeName(t kubetrail.FieldType) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return string(t)
}

// orList joins ["a", "b", "c"] as "a, b or c".
func orList(list []string) string {
	switch len(list) {
	case 0:
		return "no operator"
	case 1:
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}

// ---- Printer ----

// String prints e as a condition that Parse reads back into an equal Expr: values are
// left bare where that is safe and quoted otherwise, and parentheses are added only
// where precedence needs them (an And or Or nested in one of its own kind keeps its
// parentheses, so that the nesting survives).
//
// ASTs that Parse does not produce are simplified where the meaning allows: a True
// term is dropped from an And, an Or with a True term is True, and an And or Or of one
// term is that term. True prints as the empty condition. What the condition language
// cannot say at all (an Or of no terms, "not" of True, types Parse never produces)
// prints as "()", which Parse rejects, rather than as something that would match
// different events.
func String(e kubetrail.Expr) string {
	e = normalize(e)
	if isTrue(e) {
		return ""
	}
	var b strings.Builder
	write(&b, e, precOr)
	return b.String()
}

func normalize(e kubetrail.Expr) kubetrail.Expr {
	switch e := e.(type) {
	case nil:
		return kubetrail.True{}
	case kubetrail.And:
		var terms []kubetrail.Expr
		for _, t := range e.Terms {
			if t = normalize(t); !isTrue(t) {
				terms = append(terms, t)
			}
		}
		switch len(terms) {
		case 0:
			return kubetrail.True{}
		case 1:
			return terms[0]
		}
		return kubetrail.And{Terms: terms}
	case kubetrail.Or:
		var terms []kubetrail.Expr
		for _, t := range e.Terms {
			if t = normalize(t); isTrue(t) {
				return t
			}
			terms = append(terms, t)
		}
		if len(terms) == 1 {
			return terms[0]
		}
		return kubetrail.Or{Terms: terms}
	case kubetrail.Not:
		return kubetrail.Not{X: normalize(e.X)}
	}
	return e
}

func isTrue(e kubetrail.Expr) bool {
	_, ok := e.(kubetrail.True)
	return ok
}

// Binding strength, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precAtom
)

func precedence(e kubetrail.Expr) int {
	switch e.(type) {
	case kubetrail.Or:
		return precOr
	case kubetrail.And:
		return precAnd
	case kubetrail.Not:
		return precNot
	}
	return precAtom
}

// write prints e where an expression binding at least as tightly as need is wanted,
// in parentheses if e binds more loosely.
func write(b *strings.Builder, e kubetrail.Expr, need int) {
	if precedence(e) < need {
		b.WriteByte('(')
		write(b, e, precOr)
		b.WriteByte(')')
		return
	}
	switch e := e.(type) {
	case kubetrail.Or:
		if len(e.Terms) == 0 {
			b.WriteString("()")
		}
		for i, t := range e.Terms {
			if i > 0 {
				b.WriteString(" or ")
			}
			write(b, t, precAnd) // an Or inside an Or keeps its parentheses
		}
	case kubetrail.And:
		for i, t := range e.Terms {
			if i > 0 {
				b.WriteString(" and ")
			}
			write(b, t, precNot)
		}
	case kubetrail.Not:
		b.WriteString("not ")
		write(b, e.X, precNot)
	case kubetrail.Comparison:
		writeComparison(b, e)
	default:
		b.WriteString("()")
	}
}

func writeField(b *strings.Builder, name, arg string, hasArg bool) {
	b.WriteString(name)
	if hasArg {
		b.WriteByte('[')
		b.WriteString(arg)
		b.WriteByte(']')
	}
}

func writeComparison(b *strings.Builder, c kubetrail.Comparison) {
	writeField(b, c.Field, c.Arg, c.HasArg)
	b.WriteByte(' ')
	b.WriteString(c.Op)
	switch {
	case c.Op == kubetrail.OpExists:
		return
	case c.ValueField != nil:
		b.WriteString(" val(")
		writeField(b, c.ValueField.Field, c.ValueField.Arg, c.ValueField.HasArg)
		b.WriteByte(')')
	case c.Op == kubetrail.OpIn || c.Op == kubetrail.OpIntersects || c.Op == kubetrail.OpPmatch || len(c.Values) != 1:
		// A binary operator with other than one value prints as a list too, which
		// Parse rejects, rather than silently dropping values.
		b.WriteString(" (")
		for i, v := range c.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(formatValue(v))
		}
		b.WriteByte(')')
	default:
		b.WriteByte(' ')
		b.WriteString(formatValue(c.Values[0]))
	}
}

func formatValue(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case int64:
		return strconv.FormatInt(v, 10)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		s = fmt.Sprint(v)
	}
	if bare(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c) // any other byte reads back as itself
		}
	}
	b.WriteByte('"')
	return b.String()
}

// bare reports whether s can be printed unquoted. Parse would take more bare (anything
// up to whitespace, "(", ")" or ","), but quoting all else keeps the output plain to read.
func bare(s string) bool {
	if s == "" || s == "and" || s == "or" || s == "not" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_./:@-+*?~%=", c) >= 0) {
			return false
		}
	}
	return true
}
