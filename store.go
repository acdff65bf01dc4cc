package kubetrail

import (
	"context"
	"time"
)

// Window is a half-open time range [From, To). A zero bound is open.
type Window struct {
	From time.Time
	To   time.Time
}

// SearchQuery asks for events matching Filter in Window, newest first.
type SearchQuery struct {
	Filter Expr
	Window Window
	Limit  int
	// Cursor continues a previous page: the value of Page.Next.
	Cursor string
}

// Page is one page of search results.
type Page struct {
	Events []Event `json:"events"`
	// Next is the cursor for the following (older) page; empty when there is none.
	Next string `json:"next,omitempty"`
}

// Scope groupings: Kubernetes' own hierarchy, or the machines.
const (
	GroupByWorkload = "workload" // cluster → namespace → workload → pod
	GroupByHost     = "host"     // cluster → node → container
)

// ScopeQuery asks how many events matching Filter in Window fall in each scope.
type ScopeQuery struct {
	Filter  Expr
	Window  Window
	GroupBy string
}

// ScopeNode is one node of the scope tree with the number of matching events under it.
type ScopeNode struct {
	// Level is cluster, namespace, workload, pod, node or container.
	Level string `json:"level"`
	Name  string `json:"name"`
	// Kind qualifies a workload (Deployment, DaemonSet, ...); the container level
	// carries the image here.
	Kind string `json:"kind,omitempty"`
	// ID is the container ID at the container level.
	ID       string       `json:"id,omitempty"`
	Count    int64        `json:"count"`
	Children []*ScopeNode `json:"children,omitempty"`
}

// HistogramQuery asks for the number of matching events per time bucket.
type HistogramQuery struct {
	Filter Expr
	Window Window // both bounds are required
	Bucket time.Duration
}

// Bucket is one bar of a histogram; Counts holds the count per category.
type Bucket struct {
	Start  time.Time          `json:"start"`
	Total  int64              `json:"total"`
	Counts map[Category]int64 `json:"counts"`
}

// ValuesQuery asks for the commonest values of a field among the events
// matching Filter in Window, those starting with Prefix: what a filter bar
// completes.
type ValuesQuery struct {
	Field  string
	Prefix string
	Filter Expr
	Window Window
	Limit  int
}

// ValueCount is one value of a field and how many matching events have it.
type ValueCount struct {
	Value any   `json:"value"` // a string or a number, as the field's type
	Count int64 `json:"count"`
}

// ValueStore lists fields' values.
type ValueStore interface {
	Values(ctx context.Context, q ValuesQuery) ([]ValueCount, error)
}

// WriteResult says what a write did with its events.
type WriteResult struct {
	Stored     int `json:"stored"`     // new events
	Updated    int `json:"updated"`    // Kubernetes requests moved to a later stage
	Duplicates int `json:"duplicates"` // already stored (a retried batch, an older stage)
	// Raised counts the policy events the batch raised that were stored with
	// it; they are not among Stored, and a policy event raised before is
	// dropped without counting as a duplicate.
	Raised int `json:"raised,omitempty"`
	// RaisedIDs are the ids of those policy events, for the pipeline to hand
	// them (and no other) to the actions; not sent to clients.
	RaisedIDs []string `json:"-"`
}

// Stats describes what a store holds.
type Stats struct {
	Events map[Category]int64 `json:"events"`
	Bytes  int64              `json:"bytes"`
	Oldest time.Time          `json:"oldest,omitzero"`
	Newest time.Time          `json:"newest,omitzero"`
}

// EventStore keeps the audit trail. Write is atomic: either all of a batch is
// durable when it returns nil, or none of it is stored.
//
// Runtime events are identified by (Stream, Seq) and must arrive in Seq order per
// stream, as agents send them; an event at or below a stream's highest stored Seq
// is a duplicate. Kubernetes requests are identified by their audit ID: a later
// stage replaces an earlier one, an earlier or equal stage is a duplicate.
type EventStore interface {
	Write(ctx context.Context, events []Event) (WriteResult, error)
	Search(ctx context.Context, q SearchQuery) (Page, error)
	Event(ctx context.Context, id string) (*Event, error)
	Scopes(ctx context.Context, q ScopeQuery) ([]*ScopeNode, error)
	Histogram(ctx context.Context, q HistogramQuery) ([]Bucket, error)
	// DeleteBefore removes the events of category c older than t and says how many.
	DeleteBefore(ctx context.Context, c Category, t time.Time) (int64, error)
	Stats(ctx context.Context) (Stats, error)
}
