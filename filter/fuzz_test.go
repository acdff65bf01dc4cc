package filter

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kubetrail/kubetrail"
)

// FuzzParse checks that Parse never panics, that its errors are always the domain's
// EINVALID errors with a column, and that whatever it accepts prints with String as a
// condition that parses back to the same AST and prints the same again.
func FuzzParse(f *testing.F) {
	for _, s := range realistic {
		f.Add(s)
	}
	for _, s := range []string{
		``,
		`proc.name = a or proc.name = b and not (proc.name = c)`,
		`proc.cmdline = "a\"b\\c\nd\te\'f"`,
		`proc.name in ('x y', z, "")`,
		`proc.name = "and"`,
		`ka.uri = /api?watch=1`,
		`user.loginuid = -1`,
		`evt.time < 2026-11-27T01:00:00.5+01:00`,
		`proc.name glob "[bd]ash"`,
		`proc.aname[2] = x`,
		`(((proc.name exists)))`,
		`proc.name = "unterminated`,
		`proc.nam = x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var ke *kubetrail.Error
			if !errors.As(err, &ke) || ke.Code != kubetrail.EINVALID || !strings.HasPrefix(ke.Where, "column ") || ke.Message == "" {
				t.Fatalf("Parse(%q): error %#v is not an EINVALID *kubetrail.Error with a column", src, err)
			}
			return
		}
		s := String(e)
		back, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %#v\nString = %q, which does not parse: %v", src, e, s, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("Parse(%q) = %#v\nString = %q, which parses to %#v", src, e, s, back)
		}
		if s2 := String(back); s2 != s {
			t.Fatalf("String is not stable: %q then %q", s, s2)
		}
	})
}
