package spool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// ErrPermanent marks a send failure that retrying cannot fix: the server refused
// the batch itself (kubetrail answers 400 "invalid" or 413 "too_large" for a batch
// that fails validation, and it will fail the same way every time). A sender
// returns it wrapped, keeping the server's reason:
//
//	return fmt.Errorf("%w: %w", spool.ErrPermanent, err)
//
// The Shipper then sets the record aside (logs it, counts it, acknowledges it)
// instead of retrying it forever: a record that can never be accepted would
// otherwise block every record behind it, and the spool would fill up and drop
// good batches to keep the one bad one. Anything else (network errors, 5xx, 429,
// 401 while a token is rotated) is retried, since it may pass later.
var ErrPermanent = errors.New("permanent send failure")

// Backoff between failed sends: the first wait is about minBackoff, each failure
// doubles it up to maxBackoff, and a success starts over.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Shipper drains a Spool into a sender, oldest record first: Peek, send, Ack.
type Shipper struct {
	spool *Spool
	send  func(ctx context.Context, payload []byte) error
	log   *slog.Logger

	minBackoff, maxBackoff time.Duration // the constants; tests shorten them

	sent, sentBytes, retries, permanent atomic.Int64
}

// ShipperStats are the Shipper's counters since it was created, for metrics.
type ShipperStats struct {
	Sent      int64 // records the server accepted (and that were then acked)
	SentBytes int64 // their payload bytes
	Retries   int64 // failed sends that will be retried
	Permanent int64 // records set aside because the server refused them (ErrPermanent)
}

// NewShipper returns a Shipper that sends s's records with send. send must return
// nil only once the server has stored the payload durably, and an error wrapping
// ErrPermanent for a payload the server will never accept. log may be nil.
func NewShipper(s *Spool, send func(ctx context.Context, payload []byte) error, log *slog.Logger) *Shipper {
	if log == nil {
		log = slog.Default()
	}
	return &Shipper{spool: s, send: send, log: log, minBackoff: minBackoff, maxBackoff: maxBackoff}
}

// Stats returns the counters.
func (sh *Shipper) Stats() ShipperStats {
	return ShipperStats{Sent: sh.sent.Load(), SentBytes: sh.sentBytes.Load(),
		Retries: sh.retries.Load(), Permanent: sh.permanent.Load()}
}

// Run sends records until ctx is done, returning ctx's error, or until the spool
// is closed, returning ErrClosed. When the spool is empty it waits for Append;
// when a send fails it waits with exponential backoff and jitter, and sends the
// oldest record again. Only one Run may use a spool at a time.
func (sh *Shipper) Run(ctx context.Context) error {
	var backoff time.Duration // zero while things go well
	wait := func() error {
		backoff = sh.nextBackoff(backoff)
		return sleep(ctx, jitter(backoff))
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		payload, err := sh.spool.Peek()
		switch {
		case err == io.EOF:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case _, ok := <-sh.spool.Ready():
				if !ok {
					return ErrClosed
				}
			}
			continue
		case errors.Is(err, ErrClosed):
			return err
		case err != nil:
			// A disk error: it may clear up (space freed, a transient EIO), and there is
			// nothing else useful to do meanwhile.
			sh.log.Error("spool read failed", "err", err)
			if err := wait(); err != nil {
				return err
			}
			continue
		}

		sendErr := sh.send(ctx, payload)
		switch {
		case sendErr == nil:
		case ctx.Err() != nil:
			// Cancelled mid-send: not the server's fault, and not a retry.
			return ctx.Err()
		case errors.Is(sendErr, ErrPermanent):
			sh.permanent.Add(1)
			sh.log.Error("server refused a batch for good; setting it aside", "bytes", len(payload), "err", sendErr)
		default:
			sh.retries.Add(1)
			sh.log.Warn("sending a batch failed; will retry", "bytes", len(payload), "pending", sh.spool.Len(),
				"backoff", sh.nextBackoff(backoff), "err", sendErr)
			if err := wait(); err != nil {
				return err
			}
			continue
		}

		if err := sh.spool.Ack(); err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			// The record stays first and is sent again after the wait: a duplicate,
			// which the server discards, rather than a loss.
			sh.log.Error("spool ack failed", "err", err)
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		if sendErr == nil {
			sh.sent.Add(1)
			sh.sentBytes.Add(int64(len(payload)))
		}
		// The server answered, so it is up: the next failure starts a fresh backoff.
		backoff = 0
	}
}

// nextBackoff doubles d within [minBackoff, maxBackoff].
func (sh *Shipper) nextBackoff(d time.Duration) time.Duration {
	return min(max(2*d, sh.minBackoff), sh.maxBackoff)
}

// jitter spreads a wait over [d/2, d], so that agents that lost the server at the
// same moment do not all come back at the same moment, while the wait still grows
// with every failure.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
