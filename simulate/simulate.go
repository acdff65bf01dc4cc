// Package simulate plays a realistic, deterministic Kubernetes cluster against
// kubetrail's ingest endpoints, for `kubetrail demo` and for benchmarks.
//
// The simulator is a discrete-event simulation in simulated time. It plays one
// second at a time: scheduled happenings (pod starts and stops, probes, API
// traffic, the incident) run at their moment, and the background activity fills
// the second at Config.Rate events per second. Each node's agent stream gets its
// events in time order and sequence order; API requests go out as audit webhook
// bodies. Everything random comes from PCG generators seeded with Config.Seed, and
// nothing iterates a map or reads the wall clock while playing the history, so the
// same Config gives the same sink calls byte for byte.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/kubetrail/kubetrail"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Sink receives what the simulated cluster sends. It mirrors kubetrail's public
// ingest endpoints; the caller wires it to HTTP (or to a store, in tests and
// benchmarks). Slices handed to the sink are never touched again by the simulator.
type Sink interface {
	// Audit sends one audit webhook POST body: an audit.k8s.io/v1 EventList JSON
	// whose items carry no kind/apiVersion (exactly what kube-apiserver's webhook
	// backend sends).
	Audit(ctx context.Context, eventList []byte) error
	// Batch sends one agent batch (runtime events of one stream in Seq order, plus
	// inventory observations).
	Batch(ctx context.Context, b kubetrail.Batch) error
}

// Config says what to play.
type Config struct {
	Seed    int64
	Cluster string // default "demo"
	// Start is the simulated time of the first event of the history (e.g. now-24h).
	// A zero Start means Now()-History, which makes the output depend on the clock:
	// set it for reproducible runs.
	Start time.Time
	// History is how much simulated time to play as fast as the sink accepts before
	// going live (or stopping).
	History time.Duration
	// Rate is the background runtime events per simulated second (default 50).
	// Scheduled activity (probes, pod starts, the incident) comes on top.
	Rate float64
	// Duration is how much simulated time to play beyond the history; 0 means until
	// ctx is cancelled.
	Duration time.Duration
	// Live keeps playing after the history in real time: the simulated second
	// [t, t+1s) is played once Now() has passed t+1s. A history that ended in the
	// past is caught up at full speed, one that ends in the future is waited for.
	Live bool
	// Now is the clock of live mode (default time.Now). It must advance.
	Now func() time.Time
	// BatchSize caps the runtime events of one Batch (default 5000). A stream's
	// batch also never spans more than one simulated second.
	BatchSize int
	// Operators is how many kubectl exec sessions people open per simulated hour
	// besides the incident's (default none): shells and one-off commands in random
	// pods, some at the same moment in the same pod, some running the pod's probe
	// command.
	Operators float64
}

// Defaults.
const (
	DefaultCluster   = "demo"
	DefaultRate      = 50
	DefaultBatchSize = 5000
	// kube-apiserver's webhook backend sends at most 400 events per request by default
	// (--audit-webhook-batch-max-size).
	auditBatchMax = 400
)

// Stats counts what was sent.
type Stats struct {
	Process, Network, File int64 // runtime events by category
	Inventory              int64 // inventory observations
	Batches                int64 // Batch calls
	AuditEvents            int64 // audit EventList items (one per request stage)
	AuditRequests          int64 // distinct API requests (audit IDs)
	AuditPosts             int64 // Audit calls
	// End is the simulated time played up to.
	End time.Time
	// SessionUsers maps the session id (the entry's exec id) of every session a
	// person started with kubectl exec to that person: the truth attribution is
	// measured against. Probes and container inits are not in it.
	SessionUsers map[string]string
}

// Events returns the number of runtime events sent.
func (s Stats) Events() int64 { return s.Process + s.Network + s.File }

func (c Config) withDefaults() (Config, error) {
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Rate < 0 {
		return c, fmt.Errorf("simulate: negative rate %v", c.Rate)
	}
	if c.History < 0 || c.Duration < 0 {
		return c, errors.New("simulate: negative history or duration")
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Start.IsZero() {
		c.Start = c.Now().Add(-c.History).Truncate(time.Second)
	}
	c.Start = c.Start.UTC()
	if err := kubetrail.ValidStream(c.Cluster); err != nil {
		return c, fmt.Errorf("simulate: cluster name: %w", err)
	}
	return c, nil
}

// stream is one node agent's event stream and what it has gathered for its next batch.
type stream struct {
	name string
	seq  uint64
	last int64 // time of the last event, ns: events never go back in time
	buf  []kubetrail.Event
	inv  []kubetrail.InventoryObject
	hint int // capacity for the next buffer, from the last one's size
}

// action is something scheduled at a simulated moment.
type action struct {
	at  int64
	seq uint64 // insertion order breaks ties, for determinism
	fn  func(at int64)
}

// sim is one run.
type sim struct {
	cfg     Config
	sink    Sink
	ctx     context.Context
	c       *cluster
	streams []*stream

	start, histEnd int64

	// Separate generators per concern, so that, say, a different Rate leaves pod
	// names, API traffic and the incident as they were.
	topo  *rand.Rand // the initial cluster
	act   *rand.Rand // background runtime activity
	churn *rand.Rand // pods coming and going
	aud   *rand.Rand // API traffic
	inc   *rand.Rand // the incident
	ops   *rand.Rand // operators' kubectl exec sessions

	queue  []action
	qseq   uint64
	budget float64

	pickers
	internet []string // clients of the shop

	auditBuf []auditv1.Event
	api      apiState
	incident incidentPlan

	stats Stats
	err   error
}

func newRand(seed int64, purpose uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), purpose))
}

// newSim builds the cluster and its initial pods, and schedules everything that
// recurs. It sends nothing, so Incident can use it to name the incident's pod.
func newSim(cfg Config, sink Sink) *sim {
	s := &sim{
		cfg:   cfg,
		sink:  sink,
		start: cfg.Start.UnixNano(),
		topo:  newRand(cfg.Seed, 0x746f706f),
		act:   newRand(cfg.Seed, 0x61637469),
		churn: newRand(cfg.Seed, 0x63687572),
		aud:   newRand(cfg.Seed, 0x61756469),
		inc:   newRand(cfg.Seed, 0x696e6369),
		ops:   newRand(cfg.Seed, 0x6f707320),
	}
	s.stats.SessionUsers = map[string]string{}
	s.histEnd = s.start + int64(cfg.History)
	s.c = newCluster(cfg.Cluster, s.start, s.topo)
	for _, n := range s.c.nodes {
		st := &stream{name: cfg.Cluster + "-" + n.name + "-" + strconv.FormatInt(cfg.Seed, 10), hint: 64}
		n.stream = st
		n.host.tmpl.Stream = st.name
		s.streams = append(s.streams, st)
	}
	s.internet = make([]string, 256)
	for i := range s.internet {
		s.internet[i] = publicIP(s.topo)
	}
	s.startInitialPods()
	s.buildPickers()
	s.planChurn()
	s.planAPITraffic()
	s.planIncident()
	s.planOperators()
	return s
}

// Run plays the cluster into sink. It returns when the configured time is played,
// when the sink fails (with that error) or when ctx ends (with ctx.Err(); with
// Duration 0 that is the normal way to stop).
func Run(ctx context.Context, cfg Config, sink Sink) (Stats, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Stats{}, err
	}
	s := newSim(cfg, sink)
	s.ctx = ctx
	err = s.run()
	return s.stats, err
}

func (s *sim) run() error {
	// The agents' first batches are their initial inventory, before any event, so
	// that every address the events use is known when they arrive.
	s.initialInventory()
	for _, st := range s.streams {
		s.flush(st)
	}
	if s.err != nil {
		return s.err
	}
	end := int64(1<<63 - 1)
	if s.cfg.Duration > 0 {
		end = s.histEnd + int64(s.cfg.Duration)
	}
	for t := s.start; t < end; t += int64(time.Second) {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		tickEnd := min(t+int64(time.Second), end)
		if s.cfg.Live && t >= s.histEnd {
			if err := s.waitUntil(tickEnd); err != nil {
				return err
			}
		}
		s.playTick(t, tickEnd)
		for _, st := range s.streams {
			s.flush(st)
		}
		s.flushAudit()
		if s.err != nil {
			return s.err
		}
		s.stats.End = time.Unix(0, tickEnd).UTC()
	}
	return nil
}

// waitUntil blocks until the live clock reaches simulated time t.
func (s *sim) waitUntil(t int64) error {
	for {
		d := time.Duration(t - s.cfg.Now().UnixNano())
		if d <= 0 {
			return nil
		}
		timer := time.NewTimer(d)
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return s.ctx.Err()
		case <-timer.C:
		}
	}
}

// playTick plays the simulated interval [t0, t1): the background events are spread
// over it in time order, and scheduled actions run between them at their moment, so
// that every stream's events come out in time order without sorting.
func (s *sim) playTick(t0, t1 int64) {
	span := t1 - t0
	s.budget += s.cfg.Rate * float64(span) / float64(time.Second)
	n := int64(s.budget)
	s.budget -= float64(n)
	for i := int64(0); i < n && s.err == nil; {
		at := t0 + (i*span+s.act.Int64N(span))/n
		s.runDue(at)
		i += int64(s.background(at))
	}
	s.runDue(t1 - 1)
}

// after schedules fn at simulated time at.
func (s *sim) after(at int64, fn func(at int64)) {
	s.qseq++
	s.queue = append(s.queue, action{at: at, seq: s.qseq, fn: fn})
	// sift up
	q := s.queue
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].before(&q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (a *action) before(b *action) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// every runs fn at first and then every period (plus up to jitter) until fn
// returns false.
func (s *sim) every(first int64, period, jitter time.Duration, r *rand.Rand, fn func(at int64) bool) {
	var tick func(at int64)
	tick = func(at int64) {
		if !fn(at) {
			return
		}
		next := at + int64(period)
		if jitter > 0 {
			next += r.Int64N(int64(jitter))
		}
		s.after(next, tick)
	}
	s.after(first, tick)
}

// runDue runs every scheduled action due at or before t, in time order.
func (s *sim) runDue(t int64) {
	for len(s.queue) > 0 && s.queue[0].at <= t && s.err == nil {
		a := s.popAction()
		a.fn(a.at)
	}
}

func (s *sim) popAction() action {
	q := s.queue
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = action{}
	q = q[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(q) {
			break
		}
		m := l
		if r := l + 1; r < len(q) && q[r].before(&q[l]) {
			m = r
		}
		if !q[m].before(&q[i]) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	s.queue = q
	return top
}

// emit appends one event to the stream of the place's node, as a copy of the place's
// template stamped with time, sequence number, category and type. The returned
// pointer is valid until the next emit.
func (s *sim) emit(pl *place, at int64, cat kubetrail.Category, typ string) *kubetrail.Event {
	st := pl.node.stream
	if len(st.buf) >= s.cfg.BatchSize {
		s.flush(st)
	}
	if at < st.last {
		// Scheduled actions may place an event a little ahead (a connection's accept
		// a fraction of a millisecond after its connect); the stream never goes back.
		at = st.last
	}
	st.last = at
	st.buf = append(st.buf, pl.tmpl)
	e := &st.buf[len(st.buf)-1]
	st.seq++
	e.Seq = st.seq
	e.Time = time.Unix(0, at).UTC()
	e.Category = cat
	e.Type = typ
	switch cat {
	case kubetrail.CategoryProcess:
		s.stats.Process++
	case kubetrail.CategoryNetwork:
		s.stats.Network++
	case kubetrail.CategoryFile:
		s.stats.File++
	}
	return e
}

// observe queues an inventory observation with the batch of the node where it was made.
func (s *sim) observe(n *node, o kubetrail.InventoryObject) {
	o.Cluster = s.cfg.Cluster
	n.stream.inv = append(n.stream.inv, o)
}

// flush hands the stream's gathered events and observations to the sink, inventory
// first in the batch. The buffers go with the batch; new ones are made.
func (s *sim) flush(st *stream) {
	if s.err != nil || (len(st.buf) == 0 && len(st.inv) == 0) {
		return
	}
	b := kubetrail.Batch{Stream: st.name, Events: st.buf, Inventory: st.inv}
	// Size the next buffer from this one: a second of a busy stream needs thousands,
	// a quiet one a handful, and over-allocating per batch would dominate the cost.
	st.hint = min(s.cfg.BatchSize, max(16, len(st.buf)+len(st.buf)/8+8))
	st.buf = make([]kubetrail.Event, 0, st.hint)
	st.inv = nil
	s.stats.Batches++
	s.stats.Inventory += int64(len(b.Inventory))
	if err := s.sink.Batch(s.ctx, b); err != nil {
		s.err = fmt.Errorf("simulate: sending batch of stream %s: %w", st.name, err)
	}
}
