package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest server that records the bodies it accepts. fail decides,
// per request (numbered from 1), which status to answer instead of 200.
type server struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	got      [][]byte
}

func newServer(t *testing.T, fail func(n int64, body []byte) int) *server {
	srv := &server{}
	srv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if code := fail(srv.requests.Add(1), body); code != 0 {
			http.Error(w, http.StatusText(code), code)
			return
		}
		srv.mu.Lock()
		srv.got = append(srv.got, body)
		srv.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (srv *server) received() [][]byte {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return append([][]byte(nil), srv.got...)
}

// waitFor polls until the server has accepted n bodies.
func (srv *server) waitFor(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := srv.received(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("server accepted %d bodies, want %d", len(srv.received()), n)
	return nil
}

// post is a sender as the agent would write one: 2xx is stored, 400 and 413 are
// refusals of the batch itself, anything else may pass later.
func post(url string) func(ctx context.Context, payload []byte) error {
	return func(ctx context.Context, payload []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		switch {
		case resp.StatusCode < 300:
			return nil
		case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusRequestEntityTooLarge:
			return fmt.Errorf("%w: server answered %s", ErrPermanent, resp.Status)
		default:
			return fmt.Errorf("server answered %s", resp.Status)
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func fastShipper(s *Spool, send func(context.Context, []byte) error) *Shipper {
	sh := NewShipper(s, send, quietLog())
	sh.minBackoff, sh.maxBackoff = time.Millisecond, 10*time.Millisecond
	return sh
}

// run starts sh.Run and returns a function that cancels it and returns its error.
func run(t *testing.T, sh *Shipper) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

// TestShipperRetries has the server fail the first requests with 503: every record
// must then reach it exactly once and in order, records appended before and while
// the shipper runs alike, and none may remain in the spool.
func TestShipperRetries(t *testing.T) {
	const failures, n = 5, 50
	srv := newServer(t, func(i int64, _ []byte) int {
		if i <= failures {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	dir := t.TempDir()
	s := openT(t, dir, 1<<20, 4<<10)
	for i := range n / 2 {
		appendT(t, s, rec(i))
	}
	sh := fastShipper(s, post(srv.URL))
	stop := run(t, sh)
	for i := n / 2; i < n; i++ {
		appendT(t, s, rec(i))
		time.Sleep(time.Millisecond)
	}
	got := srv.waitFor(t, n)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if len(got) != n {
		t.Fatalf("server got %d bodies, want %d", len(got), n)
	}
	for i, p := range got {
		if !bytes.Equal(p, rec(i)) {
			t.Fatalf("body %d = %.30q, want %.30q", i, p, rec(i))
		}
	}
	var bytesSent int64
	for i := range n {
		bytesSent += int64(len(rec(i)))
	}
	if st := sh.Stats(); st != (ShipperStats{Sent: n, SentBytes: bytesSent, Retries: failures}) {
		t.Fatalf("Stats = %+v", st)
	}
	// Acked durably: nothing is replayed after a restart.
	s.Close()
	s = openT(t, dir, 1<<20, 4<<10)
	expectEmpty(t, s)
}

// TestShipperPermanent has the server refuse one batch with 400: it is set aside
// and the ones after it still arrive.
func TestShipperPermanent(t *testing.T) {
	srv := newServer(t, func(_ int64, body []byte) int {
		if bytes.HasPrefix(body, []byte("bad")) {
			return http.StatusBadRequest
		}
		return 0
	})
	s := openT(t, t.TempDir(), 1<<20, 1<<20)
	for _, p := range []string{"good 0", "bad 1", "good 2", "good 3"} {
		appendT(t, s, []byte(p))
	}
	sh := fastShipper(s, post(srv.URL))
	stop := run(t, sh)
	got := srv.waitFor(t, 3)
	stop()
	if fmt.Sprintf("%q", got) != `["good 0" "good 2" "good 3"]` {
		t.Fatalf("server got %q", got)
	}
	if st := sh.Stats(); st.Sent != 3 || st.Permanent != 1 || st.Retries != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	expectEmpty(t, s)
}

// TestShipperWakesOnAppend checks that an idle shipper sends a new record at once,
// without polling: with backoffs of an hour, only the Ready signal can wake it.
func TestShipperWakesOnAppend(t *testing.T) {
	srv := newServer(t, func(int64, []byte) int { return 0 })
	s := openT(t, t.TempDir(), 1<<20, 1<<20)
	sh := NewShipper(s, post(srv.URL), quietLog())
	sh.minBackoff, sh.maxBackoff = time.Hour, time.Hour
	stop := run(t, sh)
	for i := range 3 {
		time.Sleep(20 * time.Millisecond) // let it go idle
		start := time.Now()
		appendT(t, s, rec(i))
		srv.waitFor(t, i+1)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("record %d took %v to go out", i, d)
		}
	}
	stop()
}

func TestShipperStops(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		s := openT(t, t.TempDir(), 1<<20, 1<<20)
		stop := run(t, NewShipper(s, func(context.Context, []byte) error { return nil }, quietLog()))
		time.Sleep(10 * time.Millisecond)
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("backing off", func(t *testing.T) {
		srv := newServer(t, func(int64, []byte) int { return http.StatusServiceUnavailable })
		s := openT(t, t.TempDir(), 1<<20, 1<<20)
		appendT(t, s, []byte("x"))
		sh := NewShipper(s, post(srv.URL), quietLog())
		sh.minBackoff, sh.maxBackoff = time.Hour, time.Hour
		stop := run(t, sh)
		for sh.Stats().Retries == 0 {
			time.Sleep(time.Millisecond)
		}
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		if s.Len() != 1 {
			t.Fatal("the unsent record left the spool")
		}
	})
	t.Run("sending", func(t *testing.T) {
		s := openT(t, t.TempDir(), 1<<20, 1<<20)
		appendT(t, s, []byte("x"))
		sending := make(chan struct{})
		sh := NewShipper(s, func(ctx context.Context, _ []byte) error {
			close(sending)
			<-ctx.Done()
			return ctx.Err()
		}, quietLog())
		stop := run(t, sh)
		<-sending
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		if st := sh.Stats(); st.Retries != 0 || s.Len() != 1 {
			t.Fatalf("a cancelled send counted as %+v, Len %d", st, s.Len())
		}
	})
	t.Run("spool closed", func(t *testing.T) {
		s := openT(t, t.TempDir(), 1<<20, 1<<20)
		sh := NewShipper(s, func(context.Context, []byte) error { return nil }, quietLog())
		done := make(chan error, 1)
		go func() { done <- sh.Run(context.Background()) }()
		time.Sleep(10 * time.Millisecond)
		s.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Run = %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after Close")
		}
	})
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{100 * time.Millisecond, time.Second, 30 * time.Second} {
		lo, hi := d, time.Duration(0)
		for range 1000 {
			j := jitter(d)
			lo, hi = min(lo, j), max(hi, j)
		}
		if lo < d/2 || hi > d || hi-lo < d/4 {
			t.Fatalf("jitter(%v) spans [%v, %v]", d, lo, hi)
		}
	}
}
