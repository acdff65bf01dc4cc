package rules

import (
	"strconv"
	"strings"
)

// outputPart is a piece of a rule's output: literal text, or a field to fill.
type outputPart struct {
	text  string
	field *FieldDef
	arg   string
	name  string // the field as written, for one kubetrail cannot fill
}

// notAvailable is what Falco prints for a field the event has no value for.
const notAvailable = "<NA>"

// parseOutput splits an output into text and %field references. A field
// kubetrail cannot fill is kept and prints as <NA>.
func parseOutput(out, source string) []outputPart {
	var parts []outputPart
	// Falco expands %container.info to the container's id and name unless told otherwise.
	out = strings.ReplaceAll(out, "%container.info", "container_id=%container.id container_name=%container.name")
	var lit strings.Builder
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c != '%' || i+1 == len(out) || !isFieldChar(out[i+1]) {
			lit.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(out) && isFieldChar(out[j]) {
			j++
		}
		name := strings.TrimRight(out[i+1:j], ".")
		j = i + 1 + len(name)
		arg, hasArg := "", false
		if j < len(out) && out[j] == '[' {
			if end := strings.IndexByte(out[j:], ']'); end > 0 {
				arg, hasArg = out[j+1:j+end], true
				j += end + 1
			}
		}
		if lit.Len() > 0 {
			parts = append(parts, outputPart{text: lit.String()})
			lit.Reset()
		}
		p := outputPart{name: out[i+1 : j], arg: arg}
		if d := lookup(source, name); d != nil && checkArg(d, arg, hasArg) == nil {
			p.field = d
		}
		parts = append(parts, p)
		i = j - 1
	}
	if lit.Len() > 0 {
		parts = append(parts, outputPart{text: lit.String()})
	}
	return parts
}

func isFieldChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.'
}

func formatOutput(parts []outputPart, in *Input) string {
	var b strings.Builder
	for _, p := range parts {
		if p.field == nil {
			if p.name == "" {
				b.WriteString(p.text)
			} else {
				b.WriteString(notAvailable)
			}
			continue
		}
		v, ok := p.field.Extract(in, p.arg)
		if !ok {
			b.WriteString(notAvailable)
			continue
		}
		switch {
		case p.field.Kind == KindList || p.field.AnyOf && p.arg == "":
			if p.arg != "" && len(v.List) == 1 {
				b.WriteString(v.List[0])
			} else {
				b.WriteString("(" + strings.Join(v.List, ",") + ")")
			}
		case p.field.Kind == KindInt:
			b.WriteString(strconv.FormatInt(v.Int, 10))
		case p.field.Kind == KindBool:
			b.WriteString(boolString(v.Bool))
		default:
			b.WriteString(v.Str)
		}
	}
	return b.String()
}
