package kubetrail

// Expr is a parsed filter: the one query AST every store compiles for its own
// back end. Package filter parses Falco's condition syntax into it; the parser has
// already checked that fields exist and values fit their types.
type Expr interface{ expr() }

// And is true when every term is.
type And struct{ Terms []Expr }

// Or is true when any term is.
type Or struct{ Terms []Expr }

// Not negates X.
type Not struct{ X Expr }

// Comparison operators.
const (
	OpEq         = "="
	OpNe         = "!="
	OpLt         = "<"
	OpLe         = "<="
	OpGt         = ">"
	OpGe         = ">="
	OpIn         = "in"
	OpIntersects = "intersects"
	OpContains   = "contains"
	OpIContains  = "icontains"
	OpStartswith = "startswith"
	OpEndswith   = "endswith"
	OpGlob       = "glob"
	OpExists     = "exists"

	// Operators of Falco's rule conditions, which stored fields do not take.
	OpPmatch      = "pmatch"      // the value is one of the listed paths or below one of them
	OpRegex       = "regex"       // the whole value matches the RE2 expression
	OpIGlob       = "iglob"       // glob, ignoring case
	OpBContains   = "bcontains"   // the bytes contain the hex-written bytes
	OpBStartswith = "bstartswith" // the bytes start with the hex-written bytes
	OpBEndswith   = "bendswith"   // the bytes end with the hex-written bytes
)

// Comparison applies Op to a field. Values holds one value for binary operators,
// the list for in and intersects, and nothing for exists. Each value has the Go type
// of the field: string, int64 or time.Time (lists compare element strings).
//
// In a rule condition a field may take an argument in brackets (Arg, as in
// proc.aname[2]; HasArg tells proc.aname[] from proc.aname), and the right side may
// be another field, val(proc.pname), named by ValueField instead of Values.
type Comparison struct {
	Field      string
	Arg        string
	HasArg     bool
	Op         string
	Values     []any
	ValueField *FieldRef
}

// FieldRef names a field, with its bracketed argument, on the right of a comparison.
type FieldRef struct {
	Field  string
	Arg    string
	HasArg bool
}

// True matches every event; it is the empty filter.
type True struct{}

func (And) expr()        {}
func (Or) expr()         {}
func (Not) expr()        {}
func (Comparison) expr() {}
func (True) expr()       {}
