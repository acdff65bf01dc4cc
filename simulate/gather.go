package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/k8saudit"
)

// Gatherer is a Sink that gathers the simulator's per-second batches and webhook
// posts into large ones before passing them on, as an agent and an API server
// catching up after an outage would. Playing a day of history through it takes one
// request per tens of thousands of events instead of one per stream and second.
//
// Inventory is passed on at once: connections are named from the inventory as of
// their own time, so it may arrive early but never late. Once Direct is set, every
// call is passed on as it comes (for live play).
type Gatherer struct {
	Next       Sink
	EventBatch int // runtime events gathered before they are sent (all streams together)
	AuditBatch int // audit items gathered before they are sent
	pending    map[string]*kubetrail.Batch
	count      int
	audit      []json.RawMessage
	direct     atomic.Bool
}

// NewGatherer returns a Gatherer that sends to next in batches of the given sizes.
func NewGatherer(next Sink, eventBatch, auditBatch int) *Gatherer {
	return &Gatherer{Next: next, EventBatch: eventBatch, AuditBatch: auditBatch, pending: map[string]*kubetrail.Batch{}}
}

// SetDirect flushes what was gathered and passes every later call on as it comes.
func (g *Gatherer) SetDirect(ctx context.Context) error {
	if g.direct.Swap(true) {
		return nil
	}
	return g.Flush(ctx)
}

// Audit gathers the items of a webhook EventList.
func (g *Gatherer) Audit(ctx context.Context, eventList []byte) error {
	if g.direct.Load() {
		return g.Next.Audit(ctx, eventList)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(eventList, &list); err != nil {
		return fmt.Errorf("gather audit events: %w", err)
	}
	g.audit = append(g.audit, list.Items...)
	if len(g.audit) >= g.AuditBatch {
		return g.flushAudit(ctx)
	}
	return nil
}

// Batch gathers runtime events per stream and sends inventory at once.
func (g *Gatherer) Batch(ctx context.Context, b kubetrail.Batch) error {
	if g.direct.Load() {
		return g.Next.Batch(ctx, b)
	}
	if len(b.Inventory) > 0 {
		if err := g.Next.Batch(ctx, kubetrail.Batch{Stream: b.Stream, Inventory: b.Inventory}); err != nil {
			return err
		}
	}
	p := g.pending[b.Stream]
	if p == nil {
		p = &kubetrail.Batch{Stream: b.Stream}
		g.pending[b.Stream] = p
	}
	p.Events = append(p.Events, b.Events...)
	g.count += len(b.Events)
	if g.count >= g.EventBatch {
		return g.Flush(ctx)
	}
	return nil
}

// Flush sends everything gathered, streams in name order, then the audit items.
func (g *Gatherer) Flush(ctx context.Context) error {
	streams := make([]string, 0, len(g.pending))
	for s := range g.pending {
		streams = append(streams, s)
	}
	slices.Sort(streams)
	for _, s := range streams {
		if b := g.pending[s]; len(b.Events) > 0 {
			if err := g.Next.Batch(ctx, *b); err != nil {
				return err
			}
		}
		delete(g.pending, s)
	}
	g.count = 0
	return g.flushAudit(ctx)
}

func (g *Gatherer) flushAudit(ctx context.Context) error {
	if len(g.audit) == 0 {
		return nil
	}
	body := k8saudit.EncodeEventList(g.audit)
	g.audit = g.audit[:0]
	return g.Next.Audit(ctx, body)
}
