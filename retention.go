package kubetrail

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Retention says how long each category of event is kept.
type Retention map[Category]time.Duration

// DefaultRetention keeps commands and API requests 90 days, connections and file
// changes 30 days: the first two are what an investigation starts from; the last
// two are the bulk of the volume. Policy events are kept a year: they are few (one
// per rule match), they say on their own what happened (the rule's output, the
// scope, the session and so the user), and "has this fired before?" is asked of
// months past, after their triggers are gone.
func DefaultRetention() Retention {
	return Retention{
		CategoryProcess: 90 * 24 * time.Hour,
		CategoryK8s:     90 * 24 * time.Hour,
		CategoryNetwork: 30 * 24 * time.Hour,
		CategoryFile:    30 * 24 * time.Hour,
		CategoryGap:     90 * 24 * time.Hour,
		CategoryPolicy:  365 * 24 * time.Hour,
	}
}

// Enforce deletes what is older than the retention allows, as of now. A zero or
// negative duration keeps a category forever.
func (r Retention) Enforce(ctx context.Context, store EventStore, now time.Time) (map[Category]int64, error) {
	deleted := map[Category]int64{}
	for _, c := range Categories {
		d := r[c]
		if d <= 0 {
			continue
		}
		n, err := store.DeleteBefore(ctx, c, now.Add(-d))
		if err != nil {
			return deleted, fmt.Errorf("retention of %s events: %w", c, err)
		}
		deleted[c] = n
	}
	return deleted, nil
}

// RunRetention enforces r every interval until ctx ends, logging what it removed.
func RunRetention(ctx context.Context, r Retention, store EventStore, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		deleted, err := r.Enforce(ctx, store, time.Now())
		if err != nil && ctx.Err() == nil {
			log.Error("retention failed", "err", err)
		}
		for c, n := range deleted {
			if n > 0 {
				log.Info("retention removed old events", "category", c, "events", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
