package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/notify"
)

// sleeps records the waits asked of it and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func linear(attempt int) time.Duration { return time.Duration(attempt) * time.Millisecond }

func newDispatcher(t *testing.T, reg *prometheus.Registry, s *sleeps, opts notify.Options, actions ...notify.Action) *notify.Dispatcher {
	t.Helper()
	opts.Registerer = reg
	opts.Backoff = linear
	if s != nil {
		opts.Sleep = s.sleep
	}
	d, err := notify.NewDispatcher(actions, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func closeDispatcher(t *testing.T, d *notify.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDispatcherRetries(t *testing.T) {
	rcv := &receiver{statuses: []int{503, 503}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	s := &sleeps{}
	d := newDispatcher(t, reg, s, notify.Options{}, newWebhook(t, srv.URL, "json", nil))
	if !d.Dispatch(policyEvents(2)) {
		t.Fatal("batch not queued")
	}
	closeDispatcher(t, d)
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, b := range reqs {
		var p struct{ Events []any }
		if json.Unmarshal(b, &p); len(p.Events) != 2 {
			t.Errorf("request %d carries %d events, want the batch of 2", i, len(p.Events))
		}
	}
	if got := counter(t, reg, "kubetrail_action_sent_total", "hook"); got != 2 {
		t.Errorf("sent %v, want 2", got)
	}
	if got := counter(t, reg, "kubetrail_action_failures_total", "hook"); got != 2 {
		t.Errorf("failures %v, want 2", got)
	}
	if got := counter(t, reg, "kubetrail_action_dead_letters_total", "hook"); got != 0 {
		t.Errorf("dead letters %v, want 0", got)
	}
	if len(s.d) != 2 || s.d[0] != time.Millisecond || s.d[1] != 2*time.Millisecond {
		t.Errorf("waits %v, want the backoff's 1ms 2ms", s.d)
	}
}

func TestDispatcherPermanent(t *testing.T) {
	rcv := &receiver{statuses: []int{400}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	d := newDispatcher(t, reg, &sleeps{}, notify.Options{}, newWebhook(t, srv.URL, "json", nil))
	d.Dispatch(policyEvents(2))
	closeDispatcher(t, d)
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("%d requests, want 1: a 400 is not retried", n)
	}
	if got := counter(t, reg, "kubetrail_action_dead_letters_total", "hook"); got != 2 {
		t.Errorf("dead letters %v, want 2", got)
	}
	if got := counter(t, reg, "kubetrail_action_sent_total", "hook"); got != 0 {
		t.Errorf("sent %v, want 0", got)
	}
}

func TestDispatcherServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	reg := prometheus.NewRegistry()
	s := &sleeps{}
	d := newDispatcher(t, reg, s, notify.Options{MaxAttempts: 4}, newWebhook(t, url, "json", nil))
	d.Dispatch(policyEvents(3))
	closeDispatcher(t, d)
	if got := counter(t, reg, "kubetrail_action_failures_total", "hook"); got != 4 {
		t.Errorf("failures %v, want 4 attempts", got)
	}
	if got := counter(t, reg, "kubetrail_action_dead_letters_total", "hook"); got != 3 {
		t.Errorf("dead letters %v, want 3", got)
	}
	if len(s.d) != 3 {
		t.Errorf("waits %v, want 3 between 4 attempts", s.d)
	}
}

func TestDispatcherRetryAfter(t *testing.T) {
	rcv := &receiver{statuses: []int{429, 429}, header: http.Header{"Retry-After": {"3"}}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	s := &sleeps{}
	d := newDispatcher(t, reg, s, notify.Options{MaxDelay: 2 * time.Second}, newWebhook(t, srv.URL, "json", nil))
	d.Dispatch(policyEvents(1))
	closeDispatcher(t, d)
	if len(s.d) != 2 || s.d[0] != 2*time.Second {
		t.Errorf("waits %v, want Retry-After capped at MaxDelay (2s)", s.d)
	}
	if got := counter(t, reg, "kubetrail_action_sent_total", "hook"); got != 1 {
		t.Errorf("sent %v, want 1", got)
	}
}

// A retry after a partly delivered batch sends only the rest.
func TestDispatcherPartial(t *testing.T) {
	rcv := &receiver{statuses: []int{200, 502}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	d := newDispatcher(t, reg, &sleeps{}, notify.Options{}, newWebhook(t, srv.URL, "slack", nil))
	d.Dispatch(policyEvents(notify.SlackAttachments + 5))
	closeDispatcher(t, d)
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var last struct{ Attachments []any }
	json.Unmarshal(reqs[2], &last)
	if len(last.Attachments) != 5 {
		t.Errorf("retry carried %d events, want the 5 not delivered", len(last.Attachments))
	}
	if got := counter(t, reg, "kubetrail_action_sent_total", "hook"); got != notify.SlackAttachments+5 {
		t.Errorf("sent %v", got)
	}
}

// blocking is an action whose Send waits for release (or its context).
type blocking struct {
	name    string
	started chan int
	release chan struct{}
	mu      sync.Mutex
	got     [][]kubetrail.Event
}

func newBlocking(name string) *blocking {
	return &blocking{name: name, started: make(chan int, 100), release: make(chan struct{})}
}

func (b *blocking) Name() string { return b.name }

func (b *blocking) Send(ctx context.Context, events []kubetrail.Event) error {
	b.started <- len(events)
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.got = append(b.got, events)
	b.mu.Unlock()
	return nil
}

func TestDispatcherQueueFull(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newBlocking("slow")
	d := newDispatcher(t, reg, nil, notify.Options{QueueSize: 1}, a)
	d.Dispatch(policyEvents(1))
	<-a.started // the worker holds the first batch
	if !d.Dispatch(policyEvents(2)) {
		t.Fatal("second batch not queued")
	}
	start := time.Now()
	for range 100 {
		if d.Dispatch(policyEvents(3)) {
			t.Fatal("a batch was queued in a full queue")
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("dispatching to a full queue took %v", el)
	}
	if got := counter(t, reg, "kubetrail_action_dropped_total", "slow"); got != 300 {
		t.Errorf("dropped %v, want 300", got)
	}
	close(a.release)
	closeDispatcher(t, d)
	if got := counter(t, reg, "kubetrail_action_sent_total", "slow"); got != 3 {
		t.Errorf("sent %v, want 3", got)
	}
	if d.Dispatch(policyEvents(1)) {
		t.Error("queued after Close")
	}
}

func TestDispatcherCloseDeadline(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newBlocking("stuck")
	d := newDispatcher(t, reg, nil, notify.Options{}, a)
	d.Dispatch(policyEvents(2))
	<-a.started
	d.Dispatch(policyEvents(3))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); err == nil {
		t.Fatal("Close met a stuck action and said nothing")
	}
	if got := counter(t, reg, "kubetrail_action_dead_letters_total", "stuck"); got != 2 {
		t.Errorf("dead letters %v, want the 2 in flight", got)
	}
	if got := counter(t, reg, "kubetrail_action_dropped_total", "stuck"); got != 3 {
		t.Errorf("dropped %v, want the 3 queued", got)
	}
}

func TestDispatcherRoute(t *testing.T) {
	a, b := newBlocking("a"), newBlocking("b")
	close(a.release)
	close(b.release)
	d := newDispatcher(t, prometheus.NewRegistry(), nil, notify.Options{
		Route: func(e *kubetrail.Event) []string {
			if e.Alert.Policy == "baseline" {
				return []string{"a", "b"}
			}
			return []string{"b"}
		},
	}, a, b)
	events := policyEvents(3)
	events[1].Alert.Policy = "strict"
	events = append(events, kubetrail.Event{Category: kubetrail.CategoryProcess}) // not a policy event: ignored
	if !d.Dispatch(events) {
		t.Error("batches not queued")
	}
	if d.DispatchTo("nowhere", events[:1]) {
		t.Error("queued for an unknown action")
	}
	closeDispatcher(t, d)
	count := func(x *blocking) (n int) {
		for _, g := range x.got {
			n += len(g)
		}
		return n
	}
	if count(a) != 2 || count(b) != 3 {
		t.Errorf("a got %d events, b %d; want 2 and 3", count(a), count(b))
	}
}

func TestDispatcherDuplicateNames(t *testing.T) {
	_, err := notify.NewDispatcher([]notify.Action{newBlocking("x"), newBlocking("x")}, notify.Options{})
	if kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Errorf("err %v", err)
	}
}

func TestExponentialBackoff(t *testing.T) {
	b := notify.ExponentialBackoff(500*time.Millisecond, 30*time.Second)
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{{1, 250 * time.Millisecond, 500 * time.Millisecond}, {2, 500 * time.Millisecond, time.Second},
		{4, 2 * time.Second, 4 * time.Second}, {7, 15 * time.Second, 30 * time.Second}, {60, 15 * time.Second, 30 * time.Second}} {
		for range 50 {
			if d := b(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("attempt %d: wait %v not in [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}
