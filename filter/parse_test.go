package filter

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

// cmp builds the Comparison the parser should produce.
func cmp(field, op string, values ...any) kubetrail.Comparison {
	if len(values) == 0 {
		values = nil // exists carries no values
	}
	return kubetrail.Comparison{Field: field, Op: op, Values: values}
}

func and(terms ...kubetrail.Expr) kubetrail.Expr { return kubetrail.And{Terms: terms} }
func or(terms ...kubetrail.Expr) kubetrail.Expr  { return kubetrail.Or{Terms: terms} }
func not(x kubetrail.Expr) kubetrail.Expr        { return kubetrail.Not{X: x} }

var (
	nameA = cmp("proc.name", "=", "a")
	nameB = cmp("proc.name", "=", "b")
	nameC = cmp("proc.name", "=", "c")
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want kubetrail.Expr
	}{
		{"empty", "", kubetrail.True{}},
		{"blank", " \t\r\n ", kubetrail.True{}},

		// Precedence: not > and > or, chains flattened, parentheses kept as nodes.
		{"and binds tighter than or", "proc.name = a or proc.name = b and proc.name = c", or(nameA, and(nameB, nameC))},
		{"and binds tighter than or, left", "proc.name = a and proc.name = b or proc.name = c", or(and(nameA, nameB), nameC)},
		{"not binds tighter than and", "not proc.name = a and proc.name = b", and(not(nameA), nameB)},
		{"not of a group", "not (proc.name = a and proc.name = b)", not(and(nameA, nameB))},
		{"group before and", "(proc.name = a or proc.name = b) and proc.name = c", and(or(nameA, nameB), nameC)},
		{"or chain", "proc.name = a or proc.name = b or proc.name = c", or(nameA, nameB, nameC)},
		{"and chain", "proc.name = a and proc.name = b and proc.name = c", and(nameA, nameB, nameC)},
		{"nested and kept", "(proc.name = a and proc.name = b) and proc.name = c", and(and(nameA, nameB), nameC)},
		{"nested and kept, right", "proc.name = a and (proc.name = b and proc.name = c)", and(nameA, and(nameB, nameC))},
		{"double not", "not not proc.name = a", not(not(nameA))},
		{"redundant parentheses", "((proc.name = a))", nameA},
		{"not without space before group", "not(proc.name = a)", not(nameA)},
		{"newlines as space", "proc.name = a\nand\tproc.name = b", and(nameA, nameB)},

		// Every operator.
		{"=", "proc.name = bash", cmp("proc.name", "=", "bash")},
		{"==", "proc.name == bash", cmp("proc.name", "=", "bash")},
		{"!=", "proc.name != bash", cmp("proc.name", "!=", "bash")},
		{"< string", "proc.name < m", cmp("proc.name", "<", "m")},
		{"<= string", "proc.name <= m", cmp("proc.name", "<=", "m")},
		{"> string", "proc.name > m", cmp("proc.name", ">", "m")},
		{">= string", "proc.name >= m", cmp("proc.name", ">=", "m")},
		{"in", "proc.name in (sh, bash)", cmp("proc.name", "in", "sh", "bash")},
		{"intersects on a scalar", "proc.name intersects (sh, bash)", cmp("proc.name", "intersects", "sh", "bash")},
		{"contains", "proc.cmdline contains curl", cmp("proc.cmdline", "contains", "curl")},
		{"icontains", "proc.cmdline icontains CURL", cmp("proc.cmdline", "icontains", "CURL")},
		{"startswith", "fd.name startswith /etc/", cmp("fd.name", "startswith", "/etc/")},
		{"endswith", "fd.name endswith .conf", cmp("fd.name", "endswith", ".conf")},
		{"glob", "fd.name glob /etc/*.conf", cmp("fd.name", "glob", "/etc/*.conf")},
		{"glob with a set", `proc.name glob "[bd]ash"`, cmp("proc.name", "glob", "[bd]ash")},
		{"exists", "proc.name exists", cmp("proc.name", "exists")},

		// Operators without spaces.
		{"= unspaced", "proc.name=bash", cmp("proc.name", "=", "bash")},
		{"!= unspaced", "proc.name!=bash", cmp("proc.name", "!=", "bash")},
		{"<= unspaced", "proc.pid<=5", cmp("proc.pid", "<=", int64(5))},
		{"in unspaced", "proc.name in(sh,bash)", cmp("proc.name", "in", "sh", "bash")},
		{"contains before a quote", `proc.cmdline contains"x y"`, cmp("proc.cmdline", "contains", "x y")},

		// Integers.
		{"int =", "proc.pid = 42", cmp("proc.pid", "=", int64(42))},
		{"int negative", "user.loginuid = -1", cmp("user.loginuid", "=", int64(-1))},
		{"int plus sign", "proc.pid = +7", cmp("proc.pid", "=", int64(7))},
		{"int quoted", `proc.pid = "42"`, cmp("proc.pid", "=", int64(42))},
		{"int max", "proc.pid = 9223372036854775807", cmp("proc.pid", "=", int64(9223372036854775807))},
		{"int !=", "fd.sport != 22", cmp("fd.sport", "!=", int64(22))},
		{"int <", "ka.response.code < 400", cmp("ka.response.code", "<", int64(400))},
		{"int >", "ka.response.code > 399", cmp("ka.response.code", ">", int64(399))},
		{"int >=", "proc.tty >= 1", cmp("proc.tty", ">=", int64(1))},
		{"int in", "fd.sport in (80, 443)", cmp("fd.sport", "in", int64(80), int64(443))},
		{"int intersects", "fd.sport intersects (80)", cmp("fd.sport", "intersects", int64(80))},
		{"int exists", "proc.exitcode exists", cmp("proc.exitcode", "exists")},

		// Times.
		{"time >=", "evt.time >= 2026-11-27T00:00:00Z", cmp("evt.time", ">=", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))},
		{"time offset to UTC", "evt.time < 2026-11-27T01:00:00+01:00", cmp("evt.time", "<", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))},
		{"time fraction", `ka.stage.time = "2026-11-27T00:00:00.5Z"`, cmp("ka.stage.time", "=", time.Date(2026, 11, 27, 0, 0, 0, 500000000, time.UTC))},
		{"time !=", "evt.time != 2026-11-27T00:00:00Z", cmp("evt.time", "!=", date("2026-11-27T00:00:00Z"))},
		{"time <=", "evt.time <= 2026-11-27T00:00:00Z", cmp("evt.time", "<=", date("2026-11-27T00:00:00Z"))},
		{"time >", "evt.time > 2026-11-27T00:00:00Z", cmp("evt.time", ">", date("2026-11-27T00:00:00Z"))},
		{"time exists", "evt.time exists", cmp("evt.time", "exists")},

		// List fields: scalar operators mean "some element".
		{"list =", "ka.user.groups = system:masters", cmp("ka.user.groups", "=", "system:masters")},
		{"list !=", "ka.user.groups != devs", cmp("ka.user.groups", "!=", "devs")},
		{"list in", "proc.argv in (-c, -e)", cmp("proc.argv", "in", "-c", "-e")},
		{"list intersects", "ka.user.groups intersects (devs, system:masters)", cmp("ka.user.groups", "intersects", "devs", "system:masters")},
		{"list contains", "proc.argv contains passwd", cmp("proc.argv", "contains", "passwd")},
		{"list icontains", "ka.exec.command icontains SH", cmp("ka.exec.command", "icontains", "SH")},
		{"list startswith", "ka.sourceips startswith 10.", cmp("ka.sourceips", "startswith", "10.")},
		{"list endswith", "proc.argv endswith .sh", cmp("proc.argv", "endswith", ".sh")},
		{"list glob", "proc.argv glob *.sh", cmp("proc.argv", "glob", "*.sh")},
		{"list exists", "ka.user.groups exists", cmp("ka.user.groups", "exists")},

		// Quoting.
		{"double quotes", `proc.cmdline = "sh -c id"`, cmp("proc.cmdline", "=", "sh -c id")},
		{"single quotes", `proc.cmdline = 'say "hi"'`, cmp("proc.cmdline", "=", `say "hi"`)},
		{"escapes", `proc.cmdline = "a\"b\\c\nd\te\'f"`, cmp("proc.cmdline", "=", "a\"b\\c\nd\te'f")},
		{"single-quoted escapes", `proc.cmdline = 'it\'s'`, cmp("proc.cmdline", "=", "it's")},
		{"empty string", `proc.name = ""`, cmp("proc.name", "=", "")},
		{"quoted keyword", `proc.name = "and"`, cmp("proc.name", "=", "and")},
		{"quoted punctuation", `proc.name = "(a, b)"`, cmp("proc.name", "=", "(a, b)")},
		{"raw newline in quotes", "proc.cmdline = \"a\nb\"", cmp("proc.cmdline", "=", "a\nb")},
		{"quoted list", `proc.name in ("a b", 'c', d)`, cmp("proc.name", "in", "a b", "c", "d")},

		// Bare words.
		{"bare path", "proc.exepath = /usr/bin/curl", cmp("proc.exepath", "=", "/usr/bin/curl")},
		{"bare ip", "fd.sip = 10.0.0.1", cmp("fd.sip", "=", "10.0.0.1")},
		{"bare dotted", "ka.user.name = john.doe", cmp("ka.user.name", "=", "john.doe")},
		{"bare slash", "ka.target.subresource = pods/exec", cmp("ka.target.subresource", "=", "pods/exec")},
		{"bare with = and ?", "ka.uri = /api?watch=1", cmp("ka.uri", "=", "/api?watch=1")},
		{"bare digits on a string field", "proc.name = 123", cmp("proc.name", "=", "123")},
		{"bare word operator-like", "proc.name = exists", cmp("proc.name", "=", "exists")},
		{"bare ends at )", "(proc.name = a)", nameA},
		{"one-element list", "proc.name in (sh)", cmp("proc.name", "in", "sh")},
		{"list without spaces", "proc.name in (a,b,c)", cmp("proc.name", "in", "a", "b", "c")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q)\n got %#v\nwant %#v", tt.src, got, tt.want)
			}
			checkRoundTrip(t, got)
		})
	}
}

// Realistic filters, as people write them; they must parse and round-trip.
var realistic = []string{
	`k8s.ns.name = billing and net.direction = outbound and net.peer.kind = unknown`,
	`proc.name = tcpdump`,
	`ka.user.name = john.doe`,
	`evt.category in (process, network) and not proc.name in (sh, bash)`,
	`ka.user.groups intersects (devs, system:masters)`,
	`fd.sip = 10.0.0.1`,
	`ka.uri startswith "/api/v1/namespaces/billing"`,
	`evt.time >= 2026-11-27T00:00:00Z`,
	`ka.target.resource = pods and ka.target.subresource in (exec, attach) and ka.verb = create`,
	`evt.category = process and proc.tty != 0 and container.id exists`,
	`(proc.pname = sh or proc.pname = bash) and proc.name in (curl, wget, nc)`,
	`evt.category = file and fs.path.name startswith /etc/ and not proc.name in (dpkg, apt)`,
	`net.direction = outbound and fd.sport in (22, 3389) and not fd.sip startswith "10."`,
	`ka.response.code >= 400 and ka.user.name != "system:kube-scheduler"`,
	`ka.exec.command contains sh and k8s.workload.kind = Deployment`,
	`evt.time >= 2026-11-27T00:00:00Z and evt.time < 2026-11-28T00:00:00Z`,
	`proc.exepath glob "/tmp/*"`,
}

func TestRealistic(t *testing.T) {
	for _, src := range realistic {
		e, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		checkRoundTrip(t, e)
	}
}

// Every field in the registry can be tested with exists; a new field type added to the
// registry without parser support would fail here.
func TestEveryFieldExists(t *testing.T) {
	for _, f := range kubetrail.Fields {
		if _, err := Parse(f.Name + " exists"); err != nil {
			t.Errorf("%s exists: %v", f.Name, err)
		}
		if _, ok := opsByType[f.Type]; !ok {
			t.Errorf("field %s has type %q, which the parser has no operators for", f.Name, f.Type)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x.", 25)
	tests := []struct {
		src    string
		column int
		msg    string
	}{
		// Lexing.
		{`proc.name = "bash`, 13, `unterminated string: the quote at column 13 is never closed`},
		{`proc.name = 'bash\'`, 13, `unterminated string: the quote at column 13 is never closed`},
		{`proc.name = "bash\`, 13, `unterminated string: the quote at column 13 is never closed`},
		{`proc.name = "a\qb"`, 15, `unknown escape in a quoted string: after a backslash write ", ', \, n or t`},
		{`proc.aname[2 = x`, 11, `unterminated field argument: "[" at column 11 is never closed by "]"`},

		// Fields.
		{`proc.nam = bash`, 1, `unknown field "proc.nam" (did you mean proc.name?)`},
		{`pod.name = x`, 1, `unknown field "pod.name" (did you mean k8s.pod.name?)`},
		{`x.y.z.w.v.u.t = 1`, 1, `unknown field "x.y.z.w.v.u.t"`},
		{`spawned_process`, 1, `unknown field "spawned_process"; fields are dotted names such as proc.name, and Falco macros and lists are not supported`},
		{`proc.aname[2] = bash`, 1, `unknown field "proc.aname[2]": no field takes an argument in brackets (did you mean proc.name?)`},
		{`ka.uri.param[command] = x`, 1, `unknown field "ka.uri.param[command]": no field takes an argument in brackets (did you mean ka.uri?)`},
		{`proc.name[1] = bash`, 1, `field proc.name takes no argument in brackets`},
		{`proc.name = a and ` + long + ` = 1`, 19, `unknown field "` + long[:40] + `…"`},

		// Operators.
		{`proc.name bash`, 11, `expected an operator after proc.name, got "bash"`},
		{`proc.name`, 10, `expected an operator after proc.name, got end of input`},
		{`proc.name ! bash`, 11, `expected an operator after proc.name, got "!"`},
		{`proc.name and proc.pid = 1`, 11, `expected an operator after proc.name, got "and"`},
		{`proc.name "bash"`, 11, `expected an operator after proc.name, got a quoted string`},
		{`proc.name pmatch (a)`, 11, `operator "pmatch" is not supported; the operators are =, !=, <, <=, >, >=, in, intersects, contains, icontains, startswith, endswith, glob and exists`},
		{`proc.pid contains 1`, 10, `operator "contains" does not apply to proc.pid (a whole number); it takes =, !=, <, <=, >, >=, in, intersects or exists`},
		{`evt.time in (2026-11-27T00:00:00Z)`, 10, `operator "in" does not apply to evt.time (a time); it takes =, !=, <, <=, >, >= or exists`},
		{`evt.time glob 2026*`, 10, `operator "glob" does not apply to evt.time (a time); it takes =, !=, <, <=, >, >= or exists`},
		{`ka.user.groups < devs`, 16, `operator "<" does not apply to ka.user.groups (a list of strings); it takes =, !=, in, intersects, contains, icontains, startswith, endswith, glob or exists`},

		// Values.
		{`proc.name = )`, 13, `unexpected ")"; expected a value`},
		{`proc.name = ,`, 13, `unexpected ","; expected a value`},
		{`proc.name =`, 12, `unexpected end of input; expected a value`},
		{`proc.name = and proc.pid = 1`, 13, `unexpected "and"; expected a value (quote it to use the word as a value)`},
		{`proc.name = (a, b)`, 13, `"=" takes a single value, not a list; use "in" to match any of several`},
		{`proc.name in bash`, 14, `"in" needs a list in parentheses, like (a, b), got "bash"`},
		{`proc.name in`, 13, `"in" needs a list in parentheses, like (a, b), got end of input`},
		{`proc.name in ()`, 15, `unexpected ")"; expected a value`},
		{`proc.name in (a, )`, 18, `unexpected ")"; expected a value`},
		{`proc.name in (a,, b)`, 17, `unexpected ","; expected a value`},
		{`proc.name in (a b)`, 17, `unexpected "b"; expected "," or ")"`},
		{`proc.name in ((a))`, 15, `unexpected "("; expected a value`},
		{`proc.name in (a, or)`, 18, `unexpected "or"; expected a value (quote it to use the word as a value)`},
		{`proc.name in (a, b`, 14, `unbalanced parenthesis: "(" at column 14 is never closed`},
		{`proc.name in (a,`, 14, `unbalanced parenthesis: "(" at column 14 is never closed`},
		{`proc.pid = 1.5`, 12, `proc.pid wants a whole number, got "1.5"`},
		{`proc.pid = abc`, 12, `proc.pid wants a whole number, got "abc"`},
		{`proc.pid = 0x10`, 12, `proc.pid wants a whole number, got "0x10"`},
		{`proc.pid = 9223372036854775808`, 12, `proc.pid wants a whole number, got "9223372036854775808", which is out of range`},
		{`fd.sport in (80, http)`, 18, `fd.sport wants a whole number, got "http"`},
		{`evt.time > yesterday`, 12, `evt.time wants a time in RFC 3339 form such as 2026-11-27T00:00:00Z, got "yesterday"`},
		{`evt.time > 2026-11-27`, 12, `evt.time wants a time in RFC 3339 form such as 2026-11-27T00:00:00Z, got "2026-11-27"`},
		{`evt.time > 0000-01-01T00:00:00+01:00`, 12, `evt.time wants a time in RFC 3339 form such as 2026-11-27T00:00:00Z, got "0000-01-01T00:00:00+01:00"`},
		{`proc.name glob "[ab"`, 16, `malformed glob pattern "[ab": use * and ? as wildcards, [...] for a set of characters (closed by "]") and \ to escape the character after it`},
		{`proc.argv glob a\`, 16, `malformed glob pattern "a\\": use * and ? as wildcards, [...] for a set of characters (closed by "]") and \ to escape the character after it`},

		// Structure.
		{`(proc.name = a`, 1, `unbalanced parenthesis: "(" at column 1 is never closed`},
		{`proc.name = a and (`, 19, `unbalanced parenthesis: "(" at column 19 is never closed`},
		{`(proc.name = a))`, 16, `unbalanced parenthesis: ")" at column 16 has no matching "("`},
		{`proc.name = a)`, 14, `unbalanced parenthesis: ")" at column 14 has no matching "("`},
		{`(proc.name = a proc.name = b)`, 16, `unexpected "proc.name"; expected "and", "or" or ")"`},
		{`proc.name = a and`, 15, `"and" needs a condition on its right`},
		{`proc.name = a or `, 15, `"or" needs a condition on its right`},
		{`not`, 1, `"not" needs a condition on its right`},
		{`proc.name = a and not`, 19, `"not" needs a condition on its right`},
		{`and proc.name = a`, 1, `"and" needs a condition on its left`},
		{`(or proc.name = a)`, 2, `"or" needs a condition on its left`},
		{`proc.name = a and or proc.name = b`, 19, `unexpected "or"; expected a condition after "and"`},
		{`proc.name = a and )`, 19, `unexpected ")"; expected a condition after "and"`},
		{`(not)`, 5, `unexpected ")"; expected a condition after "not"`},
		{`()`, 2, `unexpected ")"; expected a condition`},
		{`, proc.name = a`, 1, `unexpected ","; expected a condition`},
		{`"proc.name" = a`, 1, `unexpected a quoted string; expected a condition`},
		{`= bash`, 1, `unexpected "="; expected a condition`},
		{`proc.name = bash sh`, 18, `unexpected "sh"; expected "and", "or" or the end of the condition`},
		{`proc.name = a AND proc.name = b`, 15, `unexpected "AND"; expected "and", "or" or the end of the condition`},
		{`proc.name = "a"x`, 16, `unexpected "x"; expected "and", "or" or the end of the condition`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want an error", tt.src, e)
			}
			checkError(t, err, tt.column, tt.msg)
		})
	}
}

func checkError(t *testing.T, err error, column int, msg string) {
	t.Helper()
	var ke *kubetrail.Error
	if !errors.As(err, &ke) {
		t.Fatalf("error %v is a %T, want *kubetrail.Error", err, err)
	}
	if ke.Code != kubetrail.EINVALID {
		t.Errorf("code %q, want %q", ke.Code, kubetrail.EINVALID)
	}
	if want := "column " + strconv.Itoa(column); ke.Where != want {
		t.Errorf("where %q, want %q (message %q)", ke.Where, want, ke.Message)
	}
	if ke.Message != msg {
		t.Errorf("message\n got %s\nwant %s", ke.Message, msg)
	}
}

func TestLimits(t *testing.T) {
	// Nesting: MaxDepth levels parse, one more does not.
	deep := strings.Repeat("(", MaxDepth) + "proc.name = a" + strings.Repeat(")", MaxDepth)
	if _, err := Parse(deep); err != nil {
		t.Errorf("%d parentheses: %v", MaxDepth, err)
	}
	_, err := Parse("(" + deep + ")")
	checkError(t, err, MaxDepth+1, `the condition nests too deeply: more than 100 levels of parentheses and "not"`)

	nots := strings.Repeat("not ", MaxDepth) + "proc.name = a"
	if _, err := Parse(nots); err != nil {
		t.Errorf("%d nots: %v", MaxDepth, err)
	}
	_, err = Parse("not " + nots)
	checkError(t, err, 4*MaxDepth+1, `the condition nests too deeply: more than 100 levels of parentheses and "not"`)

	// Depth is nesting, not count: many groups side by side are fine.
	flat := strings.Repeat("(proc.name = a) or ", 2*MaxDepth) + "(proc.name = a)"
	if _, err := Parse(flat); err != nil {
		t.Errorf("flat groups: %v", err)
	}

	// Length: up to MaxLength parses, one byte more does not.
	term := "proc.pid = 1 or "
	big := strings.Repeat(term, MaxLength/len(term)-1) + "proc.pid = 1"
	big += strings.Repeat(" ", MaxLength-len(big))
	if _, err := Parse(big); err != nil {
		t.Errorf("%d bytes: %v", len(big), err)
	}
	_, err = Parse(big + " ")
	checkError(t, err, MaxLength+1, "the condition is 65537 bytes long; the limit is 65536")
}

func TestString(t *testing.T) {
	tests := []struct {
		name string
		expr kubetrail.Expr
		want string
	}{
		{"true", kubetrail.True{}, ""},
		{"nil", nil, ""},
		{"bare values", cmp("proc.exepath", "=", "/usr/bin/curl"), "proc.exepath = /usr/bin/curl"},
		{"quoted values", cmp("proc.cmdline", "=", "sh -c \"id\"\n\t\\"), `proc.cmdline = "sh -c \"id\"\n\t\\"`},
		{"keyword quoted", cmp("proc.name", "=", "or"), `proc.name = "or"`},
		{"empty quoted", cmp("proc.name", "!=", ""), `proc.name != ""`},
		{"leading quote quoted", cmp("proc.name", "=", "'x"), `proc.name = "'x"`},
		{"int", cmp("user.loginuid", "=", int64(-1)), "user.loginuid = -1"},
		{"time in UTC", cmp("evt.time", ">=", time.Date(2026, 11, 27, 1, 0, 0, 5, time.FixedZone("x", 3600))), "evt.time >= 2026-11-27T00:00:00.000000005Z"},
		{"list", cmp("proc.name", "in", "sh", "a b"), `proc.name in (sh, "a b")`},
		{"exists", cmp("proc.name", "exists"), "proc.name exists"},
		{"or in and", and(or(nameA, nameB), nameC), "(proc.name = a or proc.name = b) and proc.name = c"},
		{"and in or", or(and(nameA, nameB), nameC), "proc.name = a and proc.name = b or proc.name = c"},
		{"and in and", and(and(nameA, nameB), nameC), "(proc.name = a and proc.name = b) and proc.name = c"},
		{"or in or", or(nameA, or(nameB, nameC)), "proc.name = a or (proc.name = b or proc.name = c)"},
		{"not of and", not(and(nameA, nameB)), "not (proc.name = a and proc.name = b)"},
		{"not of not", not(not(nameA)), "not not proc.name = a"},
		{"not in and", and(not(nameA), nameB), "not proc.name = a and proc.name = b"},

		// Shapes Parse does not produce.
		{"and drops true", and(kubetrail.True{}, nameA, kubetrail.True{}), "proc.name = a"},
		{"and of trues", and(kubetrail.True{}), ""},
		{"or with true", and(nameA, or(nameB, kubetrail.True{})), "proc.name = a"},
		{"one-term or", and(or(nameA), nameB), "proc.name = a and proc.name = b"},
		{"empty or", or(), "()"},
		{"empty or in and", and(nameA, or()), "proc.name = a and (())"},
		{"not true", not(kubetrail.True{}), "not ()"},
		{"binary with two values", cmp("proc.name", "=", "a", "b"), "proc.name = (a, b)"},
		{"binary with none", kubetrail.Comparison{Field: "proc.name", Op: "="}, "proc.name = ()"},
		{"foreign value type", cmp("proc.name", "=", 3.5), "proc.name = 3.5"},
		{"pointer node", &kubetrail.And{}, "()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.expr); got != tt.want {
				t.Errorf("String(%#v)\n got %s\nwant %s", tt.expr, got, tt.want)
			}
		})
	}
}

// checkRoundTrip asserts that e, a result of Parse, prints as a condition that parses
// back to e.
func checkRoundTrip(t *testing.T, e kubetrail.Expr) {
	t.Helper()
	s := String(e)
	back, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(String(%#v)) = Parse(%q): %v", e, s, err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("Parse(String(e)) != e\n     e %#v\nString %q\n  back %#v", e, s, back)
	}
}
