package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
)

// Options tune a Dispatcher; the zero value is usable.
type Options struct {
	// QueueSize is how many batches wait per action; a batch that finds the
	// queue full is dropped. Default 256.
	QueueSize int
	// MaxAttempts is how many times a batch is tried before its events become
	// dead letters. Default 5.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the default backoff: the wait after attempt n
	// is about BaseDelay*2^(n-1), never more than MaxDelay (which also caps a
	// Retry-After the destination asks for). Defaults 500ms and 30s.
	BaseDelay, MaxDelay time.Duration
	// Backoff returns the wait after failed attempt n (from 1). Default
	// ExponentialBackoff(BaseDelay, MaxDelay).
	Backoff func(attempt int) time.Duration
	// Sleep waits d, or returns ctx's error when ctx ends first. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Route names the actions an event goes to (those of its policy). Nil sends
	// every event to every action.
	Route func(e *kubetrail.Event) []string
	// Metrics counts the deliveries. Dispatchers that replace each other (as
	// policies are reloaded) share one; nil makes the dispatcher its own,
	// registered on Registerer when that is not nil.
	Metrics    *Metrics
	Registerer prometheus.Registerer
	// Logger logs failures, dead letters and drops. Default slog.Default().
	Logger *slog.Logger
}

// Dispatcher delivers policy events to actions in the background. Each action
// has its own bounded queue and goroutine, so a slow destination delays only
// itself, and Dispatch never blocks ingest.
type Dispatcher struct {
	opts    Options
	log     *slog.Logger
	workers map[string]*worker
	order   []*worker
	ctx     context.Context // cancelled when Close gives up draining
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.RWMutex // guards closed against the queues being closed
	closed bool

	sent, failures, dead, dropped *prometheus.CounterVec
}

type worker struct {
	action   Action
	queue    chan []kubetrail.Event
	dropping atomic.Bool // since the last batch that found room

	sent, failures, dead, dropped prometheus.Counter
}

// Metrics are the delivery counters, by action.
type Metrics struct {
	sent, failures, dead, dropped *prometheus.CounterVec
}

// NewMetrics makes the delivery counters and registers them on reg when it is
// not nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_action_sent_total", Help: "Policy events an action delivered.",
		}, []string{"action"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_action_failures_total", Help: "Failed delivery attempts of an action (each retry counts).",
		}, []string{"action"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_action_dead_letters_total", Help: "Policy events an action gave up on: a permanent failure or the last attempt failed.",
		}, []string{"action"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_action_dropped_total", Help: "Policy events never tried: the action's queue was full, or the dispatcher closed before their turn.",
		}, []string{"action"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sent, m.failures, m.dead, m.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register action metrics: %w", err)
			}
		}
	}
	return m, nil
}

// NewDispatcher starts a goroutine per action. Two actions may not share a name.
func NewDispatcher(actions []Action, opts Options) (*Dispatcher, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 500 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 30 * time.Second
	}
	if opts.Backoff == nil {
		opts.Backoff = ExponentialBackoff(opts.BaseDelay, opts.MaxDelay)
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	d := &Dispatcher{
		opts:    opts,
		log:     opts.Logger,
		workers: make(map[string]*worker, len(actions)),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	m := opts.Metrics
	if m == nil {
		var err error
		if m, err = NewMetrics(opts.Registerer); err != nil {
			return nil, err
		}
	}
	d.sent, d.failures, d.dead, d.dropped = m.sent, m.failures, m.dead, m.dropped
	for _, a := range actions {
		if a == nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "notify: nil action")
		}
		if _, ok := d.workers[a.Name()]; ok {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "action %q: another action has the same name", a.Name())
		}
		n := a.Name()
		w := &worker{action: a, queue: make(chan []kubetrail.Event, opts.QueueSize),
			sent: d.sent.WithLabelValues(n), failures: d.failures.WithLabelValues(n),
			dead: d.dead.WithLabelValues(n), dropped: d.dropped.WithLabelValues(n)}
		d.workers[n] = w
		d.order = append(d.order, w)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, w := range d.order {
		d.wg.Add(1)
		go d.run(w)
	}
	return d, nil
}

// Dispatch queues the policy events among events for their actions (by
// Options.Route, else all) and returns at once. Events of other categories are
// ignored. A batch that finds an action's queue full is dropped and counted.
// It reports whether every batch was queued.
func (d *Dispatcher) Dispatch(events []kubetrail.Event) bool {
	if d.opts.Route == nil {
		var policy []kubetrail.Event
		for i := range events {
			if events[i].Category == kubetrail.CategoryPolicy {
				policy = append(policy, events[i])
			}
		}
		if len(policy) == 0 {
			return true
		}
		ok := true
		for _, w := range d.order {
			ok = d.enqueue(w, policy) && ok
		}
		return ok
	}
	byAction := make(map[string][]kubetrail.Event)
	var names []string
	for i := range events {
		e := &events[i]
		if e.Category != kubetrail.CategoryPolicy {
			continue
		}
		for _, n := range d.opts.Route(e) {
			if _, seen := byAction[n]; !seen {
				names = append(names, n)
			}
			byAction[n] = append(byAction[n], *e)
		}
	}
	ok := true
	for _, n := range names {
		ok = d.dispatchTo(n, byAction[n]) && ok
	}
	return ok
}

// DispatchTo queues events for the named action and returns at once. It
// reports false when the batch was dropped: the queue was full, the dispatcher
// is closed or no action has that name.
func (d *Dispatcher) DispatchTo(action string, events []kubetrail.Event) bool {
	if len(events) == 0 {
		return true
	}
	return d.dispatchTo(action, slices.Clone(events))
}

// dispatchTo queues a batch the dispatcher owns.
func (d *Dispatcher) dispatchTo(action string, batch []kubetrail.Event) bool {
	w, ok := d.workers[action]
	if !ok {
		d.log.Warn("policy events for an unknown action dropped", "action", action, "events", len(batch))
		return false
	}
	return d.enqueue(w, batch)
}

func (d *Dispatcher) enqueue(w *worker, batch []kubetrail.Event) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	name := w.action.Name()
	if d.closed {
		w.dropped.Add(float64(len(batch)))
		d.log.Warn("policy events dropped: dispatcher closed", "action", name, "events", len(batch))
		return false
	}
	select {
	case w.queue <- batch:
		if w.dropping.Swap(false) {
			d.log.Info("action queue has room again", "action", name)
		}
		return true
	default:
		w.dropped.Add(float64(len(batch)))
		if !w.dropping.Swap(true) {
			d.log.Warn("action queue full: dropping policy events until it has room", "action", name, "events", len(batch), "queue", cap(w.queue))
		}
		return false
	}
}

func (d *Dispatcher) run(w *worker) {
	defer d.wg.Done()
	for batch := range w.queue {
		if d.ctx.Err() != nil {
			w.dropped.Add(float64(len(batch)))
			continue
		}
		d.deliver(w, batch)
	}
}

// deliver tries batch until it is delivered, fails permanently or runs out of
// attempts. Events delivered by a partly failed attempt are not sent again.
func (d *Dispatcher) deliver(w *worker, batch []kubetrail.Event) {
	name := w.action.Name()
	pending := batch
	for attempt := 1; ; attempt++ {
		err := w.action.Send(d.ctx, pending)
		n := delivered(err, len(pending))
		w.sent.Add(float64(n))
		pending = pending[n:]
		if err == nil || len(pending) == 0 {
			if attempt > 1 {
				d.log.Info("policy events delivered after retrying", "action", name, "attempts", attempt)
			}
			return
		}
		w.failures.Inc()
		last := IsPermanent(err) || attempt >= d.opts.MaxAttempts || d.ctx.Err() != nil
		if last {
			w.dead.Add(float64(len(pending)))
			reason := "attempts exhausted"
			switch {
			case IsPermanent(err):
				reason = "permanent failure"
			case d.ctx.Err() != nil:
				reason = "shutting down"
			}
			d.log.Error("policy events not delivered", "action", name, "events", len(pending), "attempts", attempt, "reason", reason, "err", err)
			return
		}
		wait := d.opts.Backoff(attempt)
		if ra := retryAfter(err); ra > wait {
			wait = min(ra, d.opts.MaxDelay)
		}
		d.log.Warn("policy event delivery failed; retrying", "action", name, "events", len(pending), "attempt", attempt, "retry_in", wait, "err", err)
		if err := d.opts.Sleep(d.ctx, wait); err != nil {
			w.dead.Add(float64(len(pending)))
			d.log.Error("policy events not delivered", "action", name, "events", len(pending), "attempts", attempt, "reason", "shutting down", "err", err)
			return
		}
	}
}

// Close stops accepting events and delivers what is queued until ctx ends;
// then it abandons the rest (in-flight events become dead letters, queued ones
// are counted as dropped) and returns ctx's error. It closes actions that are
// io.Closers.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for _, w := range d.order {
		close(w.queue)
	}
	d.mu.Unlock()

	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("notify: close: queued policy events abandoned: %w", ctx.Err())
		d.cancel()
		<-done
	}
	d.cancel()
	var errs []error
	for _, w := range d.order {
		if c, ok := w.action.(io.Closer); ok {
			if cerr := c.Close(); cerr != nil {
				errs = append(errs, fmt.Errorf("action %q: close: %w", w.action.Name(), cerr))
			}
		}
	}
	return errors.Join(append([]error{err}, errs...)...)
}

// ExponentialBackoff returns waits that double from base, capped at limit,
// each drawn uniformly from its upper half ("equal jitter") so that actions
// failing together do not retry in step.
func ExponentialBackoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		if d <= 1 {
			return d
		}
		half := d / 2
		return half + rand.N(d-half+1)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
