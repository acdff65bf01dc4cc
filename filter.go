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
)

// Comparison applies Op to a field. Values holds one value for binary operators,
// the list for in and intersects, and nothing for exists. Each value has the Go type
// of the field: string, int64 or time.Time (lists compare element strings).
type Comparison struct {
	Field  string
	Op     string
	Values []any
}

// True matches every event; it is the empty filter.
type True struct{}

func (And) expr()        {}
func (Or) expr()         {}
func (Not) expr()        {}
func (Comparison) expr() {}
func (True) expr()       {}
