// Package ingest is the one path every event takes into the trail: decoded
// batches from the agent protocol and the audit webhook or log files are enriched
// (the remote end of each connection named from the inventory history) and
// written to the store, atomically per batch.
package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
)

// Store is what the pipeline writes to.
type Store interface {
	kubetrail.EventStore
	kubetrail.InventoryStore
	// WriteBatch stores events and inventory in one transaction.
	WriteBatch(ctx context.Context, events []kubetrail.Event, inventory []kubetrail.InventoryObject) (kubetrail.WriteResult, error)
}

// Policies raise policy events for a batch of enriched events (package policy).
type Policies interface {
	Evaluate(events []kubetrail.Event) []kubetrail.Event
}

// Notifier hands stored policy events to the actions that deliver them; it must
// not block (package notify).
type Notifier interface {
	Dispatch(events []kubetrail.Event) bool
}

// Pipeline enriches batches, raises policy events and stores both.
type Pipeline struct {
	store     Store
	peers     *PeerIndex
	workloads *workloadIndex
	policies  Policies
	notifier  Notifier

	events   *prometheus.CounterVec
	dupes    *prometheus.CounterVec
	refused  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a pipeline over store, with its peer index loaded from the stored
// inventory history. Metrics are registered on reg when it is not nil.
func New(ctx context.Context, store Store, reg prometheus.Registerer) (*Pipeline, error) {
	p := &Pipeline{
		store:     store,
		peers:     NewPeerIndex(),
		workloads: newWorkloadIndex(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_ingest_events_total", Help: "New events stored, by source.",
		}, []string{"source"}),
		dupes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_ingest_duplicate_events_total", Help: "Events received again and not stored twice (retried batches, earlier audit stages).",
		}, []string{"source"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_ingest_refused_batches_total", Help: "Batches refused whole, by source and reason code.",
		}, []string{"source", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kubetrail_ingest_batch_seconds", Help: "Time to enrich and durably store one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"source"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.events, p.dupes, p.refused, p.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register ingest metrics: %w", err)
			}
		}
	}
	inv, err := store.Inventory(ctx, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("load inventory history: %w", err)
	}
	p.observe(inv)
	return p, nil
}

// SetPolicies makes the pipeline evaluate policies on every batch, and hand the
// policy events it stores to notifier (which may be nil). Call it before the
// pipeline is used.
func (p *Pipeline) SetPolicies(policies Policies, notifier Notifier) {
	p.policies, p.notifier = policies, notifier
}

// withPolicyEvents returns the events and the policy events they raise, to be
// stored in one write: a batch and what it raised are kept together or not at all.
func (p *Pipeline) withPolicyEvents(events []kubetrail.Event) (all, raised []kubetrail.Event) {
	if p.policies == nil {
		return events, nil
	}
	raised = p.policies.Evaluate(events)
	if len(raised) == 0 {
		return events, nil
	}
	all = make([]kubetrail.Event, 0, len(events)+len(raised))
	return append(append(all, events...), raised...), raised
}

// notify hands the policy events a write stored to the actions: not those the
// store already had (a batch retried, a later stage of a request), which were
// delivered when first stored.
func (p *Pipeline) notify(raised []kubetrail.Event, res kubetrail.WriteResult, err error) {
	if err != nil || len(res.RaisedIDs) == 0 || p.notifier == nil {
		return
	}
	stored := make(map[string]bool, len(res.RaisedIDs))
	for _, id := range res.RaisedIDs {
		stored[id] = true
	}
	var deliver []kubetrail.Event
	for i := range raised {
		if stored[raised[i].ID()] {
			deliver = append(deliver, raised[i])
		}
	}
	p.notifier.Dispatch(deliver)
}

// observe teaches the indexes inventory observations.
func (p *Pipeline) observe(objs []kubetrail.InventoryObject) {
	p.peers.Observe(objs)
	p.workloads.observe(objs)
}

// WriteInventory stores observations of the cluster's objects made outside an
// agent batch (the API watcher); the indexes learn them first, as with a batch.
func (p *Pipeline) WriteInventory(ctx context.Context, objs []kubetrail.InventoryObject) error {
	p.observe(objs)
	return p.store.WriteInventory(ctx, objs)
}

// Sources of batches, as metrics label them.
const (
	SourceAgent = "agent"
	SourceAudit = "k8s_audit"
)

// Refused counts a batch that could not be decoded; decoding happens before the
// pipeline sees it.
func (p *Pipeline) Refused(source string, err error) {
	p.refused.WithLabelValues(source, kubetrail.ErrorCode(err)).Inc()
}

// WriteBatch stores an agent batch: its inventory first, so that the batch's own
// connections can be named by it, then its events.
func (p *Pipeline) WriteBatch(ctx context.Context, b *kubetrail.Batch) (kubetrail.WriteResult, error) {
	start := time.Now()
	// The batch's own connections are named with its inventory, so the index
	// learns it first. Should the write then fail, the index knows observations the
	// store does not: harmless, since observing them again (the retry) changes
	// nothing, and the store is what the index is rebuilt from.
	p.observe(b.Inventory)
	p.resolvePeers(b.Events)
	p.workloads.name(b.Events)
	events, raised := p.withPolicyEvents(b.Events)
	res, err := p.store.WriteBatch(ctx, events, b.Inventory)
	p.account(SourceAgent, res, err)
	p.notify(raised, res, err)
	p.duration.WithLabelValues(SourceAgent).Observe(time.Since(start).Seconds())
	return res, err
}

// WriteAudit stores Kubernetes audit events.
func (p *Pipeline) WriteAudit(ctx context.Context, events []kubetrail.Event) (kubetrail.WriteResult, error) {
	start := time.Now()
	events, raised := p.withPolicyEvents(events)
	res, err := p.write(ctx, SourceAudit, events)
	p.notify(raised, res, err)
	p.duration.WithLabelValues(SourceAudit).Observe(time.Since(start).Seconds())
	return res, err
}

func (p *Pipeline) write(ctx context.Context, source string, events []kubetrail.Event) (kubetrail.WriteResult, error) {
	res, err := p.store.Write(ctx, events)
	p.account(source, res, err)
	return res, err
}

// account counts a write's outcome in the metrics.
func (p *Pipeline) account(source string, res kubetrail.WriteResult, err error) {
	if err != nil {
		p.refused.WithLabelValues(source, kubetrail.ErrorCode(err)).Inc()
		return
	}
	p.events.WithLabelValues(source).Add(float64(res.Stored))
	p.dupes.WithLabelValues(source).Add(float64(res.Duplicates))
}

// resolvePeers names the remote end of each connection the sender left unnamed.
func (p *Pipeline) resolvePeers(events []kubetrail.Event) {
	for i := range events {
		e := &events[i]
		if e.Category != kubetrail.CategoryNetwork || e.Network.PeerKind != "" {
			continue
		}
		peer, ok := p.peers.Resolve(e.Cluster, e.Network.RemoteIP(), e.Time)
		if !ok {
			continue
		}
		e.Network.PeerKind, e.Network.PeerNamespace, e.Network.PeerName, e.Network.PeerWorkload =
			peer.Kind, peer.Namespace, peer.Name, peer.Workload
	}
}
