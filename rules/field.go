package rules

import (
	"encoding/json"

	"github.com/kubetrail/kubetrail"
)

// Kind is the type of the values a rule field extracts, as Falco types them.
type Kind int

const (
	KindString Kind = iota // compared as text
	KindInt                // a whole number: compared numerically, and "2" parses as 2
	KindBool               // true or false; Falco compares it with = and !=
	KindList               // a list of strings: exists, in (all in the set) and intersects (any)
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "a number"
	case KindBool:
		return "a boolean"
	case KindList:
		return "a list of strings"
	}
	return "a string"
}

// Arg says whether a field takes an argument in brackets (proc.aname[2],
// ka.uri.param[command], jevt.value[/stage]).
type Arg int

const (
	ArgNone     Arg = iota // no argument
	ArgIndex               // an optional non-negative index: proc.aname[2]
	ArgKey                 // a required key: ka.uri.param[command]
	ArgIndexReq            // a required index
)

// Value is one extracted value. Only the member of the field's Kind is set.
type Value struct {
	Str  string
	Int  int64
	Bool bool
	List []string
}

// FieldDef is one field a rule may name: Falco's name and meaning, filled from
// what kubetrail knows at ingest.
type FieldDef struct {
	Name string
	Kind Kind
	Arg  Arg
	// Source is the rule source whose events carry the field: "syscall",
	// "k8s_audit", or "" for both.
	Source string
	// AnyOf fields have several values at once (proc.aname without an index: all
	// the ancestors; fd.ip: both ends of a connection). Extract returns them as
	// List, and a comparison is true when it holds for any of them.
	AnyOf bool
	// Net fields hold an address compared with networks: values are CIDR
	// blocks ("10.0.0.0/8") or addresses, and = and in test membership.
	Net bool
	// SignOnly fields are known only by their sign (kubetrail knows that a file
	// or socket was opened, not its descriptor): a rule may compare them with 0
	// and -1 (fd.num>=0, fd.num=-1), and is disabled by any other comparison.
	SignOnly bool
	// Extract returns the field's value for the input. ok is false when the event
	// has no value for it (Falco cannot extract the field): every comparison on
	// it is then false, and "exists" is false. arg is the bracketed argument, ""
	// when there is none.
	Extract func(in *Input, arg string) (v Value, ok bool)
}

// Input is what a rule is evaluated on: one event and what ingest knows around it.
type Input struct {
	Event *kubetrail.Event
	// Tree finds the processes the event's process descends from; nil when
	// nothing is known of them.
	Tree ProcessTree
	// Writes finds which process wrote a file in a container; nil when nothing
	// is known of writes.
	Writes FileWrites

	audit       map[string]any
	auditParsed bool
	ancestors   []*kubetrail.Process
	ancDone     bool
}

// ProcessTree finds a node's processes by exec id.
type ProcessTree interface {
	Process(node, execID string) (*kubetrail.Process, bool)
}

// FileWrites finds the process that last wrote a file in a container, as the
// trail recorded it.
type FileWrites interface {
	Writer(containerID, path string) (writer *kubetrail.Process, ok bool)
}

// MaxAncestors bounds how far up a process's ancestry rules look.
const MaxAncestors = 20

// Audit returns the event's audit record (Audit.Raw) decoded as JSON, or nil when
// the event has none or it does not decode as an object. It is decoded once per
// input, and only when a rule needs it.
func (in *Input) Audit() map[string]any {
	if !in.auditParsed {
		in.auditParsed = true
		if in.Event != nil && len(in.Event.Audit.Raw) > 0 {
			var doc map[string]any
			if json.Unmarshal(in.Event.Audit.Raw, &doc) == nil {
				in.audit = doc
			}
		}
	}
	return in.audit
}

// Lineage returns the event's process's ancestors, the parent first, as far as
// the tree knows them; found once per input.
func (in *Input) Lineage() []*kubetrail.Process {
	if !in.ancDone {
		in.ancDone = true
		if in.Tree != nil && in.Event != nil {
			id := in.Event.Process.ParentExecID
			for id != "" && len(in.ancestors) < MaxAncestors {
				p, ok := in.Tree.Process(in.Event.Node, id)
				if !ok {
					break
				}
				in.ancestors = append(in.ancestors, p)
				id = p.ParentExecID
			}
		}
	}
	return in.ancestors
}
