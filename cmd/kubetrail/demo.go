package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/simulate"
)

func newDemoCommand() *cobra.Command {
	var (
		o        serverOptions
		seed     int64
		history  time.Duration
		rate     float64
		duration time.Duration
		live     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a server on the embedded store, fed by a simulated cluster",
		Long: `Start a kubetrail server on the embedded store and a built-in simulator that plays a
realistic cluster through the server's public ingest endpoints (the audit webhook and
the agent protocol): 3 nodes, namespaces billing, frontend, payments, kube-system and
more, pod churn, east-west traffic, routine API requests, and one incident to find.

It first plays --history of past activity as fast as the server takes it, then keeps
the cluster running live until interrupted (or for --duration).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.dataDir == "" {
				dir, err := os.MkdirTemp("", "kubetrail-demo-")
				if err != nil {
					return err
				}
				o.dataDir = dir
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			srv, err := startServer(cmd.Context(), &o, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "kubetrail demo: server on %s, data in %s\n", srv.url, o.dataDir)
			fmt.Fprintf(out, "playing %s of cluster history (seed %d)...\n", history, seed)

			client := kthttp.NewClient(srv.url, srv.token)
			cfg := simulate.Config{Seed: seed, Cluster: "demo", Start: time.Now().Add(-history).Truncate(time.Second),
				History: history, Rate: rate, Duration: duration, Live: live}
			if !live && duration == 0 {
				cfg.Duration = time.Second // Duration 0 would play on at full speed until interrupted
			}
			historyDone := make(chan struct{})
			sink := &demoSink{client: client, historyEnd: cfg.Start.Add(history), historyDone: historyDone}
			simDone := make(chan error, 1)
			started := time.Now()
			go func() {
				_, err := simulate.Run(cmd.Context(), cfg, sink)
				if errors.Is(err, context.Canceled) {
					err = nil
				}
				if err == nil && !sink.live() {
					err = sink.flush(cmd.Context())
				}
				sink.markHistoryDone()
				simDone <- err
			}()
			select {
			case <-historyDone:
			case <-cmd.Context().Done():
			}
			if cmd.Context().Err() == nil {
				st, err := client.Stats(cmd.Context())
				if err != nil {
					return err
				}
				var total int64
				for _, n := range st.Events {
					total += n
				}
				fmt.Fprintf(out, "history played in %s: %d events stored\n\n", time.Since(started).Round(time.Millisecond), total)
				printDemoHelp(out, srv, simulate.Incident(cfg))
			}
			select {
			case err := <-simDone:
				if err != nil {
					srv.stop()
					srv.wait(context.Background())
					return fmt.Errorf("simulator: %w", err)
				}
				if !live {
					fmt.Fprintln(out, "the simulated cluster has stopped; the server keeps serving until Ctrl-C")
				}
			case <-cmd.Context().Done():
			}
			return srv.wait(cmd.Context())
		},
	}
	o.flags(cmd, "")
	cmd.Flags().Lookup("data-dir").Usage = "directory of the embedded store (default: a fresh temporary directory)"
	cmd.Flags().Int64Var(&seed, "seed", 1, "simulator seed: the same seed plays the same cluster")
	cmd.Flags().DurationVar(&history, "history", 6*time.Hour, "how much past activity to play before going live")
	cmd.Flags().Float64Var(&rate, "rate", 50, "runtime events per simulated second of background activity")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop the simulated cluster after this much time beyond the history (0: run until interrupted)")
	cmd.Flags().BoolVar(&live, "live", true, "after the history, keep the cluster running in real time")
	return cmd
}

func printDemoHelp(out io.Writer, srv *runningServer, inc simulate.IncidentInfo) {
	fmt.Fprintf(out, "API:    %s/api/v1/openapi.json\n", srv.url)
	fmt.Fprintf(out, "Token:  %s\n\n", srv.token)
	fmt.Fprintf(out, "Somewhere in this history, at %s, %s (from %s) ran kubectl exec into %s/%s.\n",
		inc.Time.Format(time.RFC3339), inc.User, inc.SourceIP, inc.Namespace, inc.Pod)
	fmt.Fprintln(out, "Find out what happened, in another terminal (the CLI finds this server by itself):")
	for _, q := range simulate.Queries {
		fmt.Fprintf(out, "  # %s\n  kubetrail query '%s'\n", q.Title, q.Filter)
	}
	fmt.Fprintln(out, "  # where tcpdump ran, by host and container")
	fmt.Fprintln(out, "  kubetrail scopes --by host 'proc.name = tcpdump'")
	fmt.Fprintln(out, "\nOr with curl:")
	fmt.Fprintf(out, "  curl -H 'Authorization: Bearer %s' '%s/api/v1/events?since=24h&filter=proc.name%%3Dtcpdump'\n\n", srv.token, srv.url)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}

// demoSink plays the simulator through the server's public ingest endpoints and
// notices when the history has been played. While it plays the history it gathers
// the simulator's small per-second batches into large ones, as an agent catching up
// after an outage would; once live, every batch goes out as it comes.
type demoSink struct {
	client      *kthttp.Client
	historyEnd  time.Time
	historyDone chan struct{}
	once        sync.Once

	pending      map[string]*kubetrail.Batch
	pendingCount int
	audit        []json.RawMessage
}

// Sizes of the batches the history is sent in.
const (
	demoEventBatch = 50000
	demoAuditBatch = 5000
)

func (d *demoSink) markHistoryDone() { d.once.Do(func() { close(d.historyDone) }) }

func (d *demoSink) live() bool {
	select {
	case <-d.historyDone:
		return true
	default:
		return false
	}
}

func (d *demoSink) Audit(ctx context.Context, eventList []byte) error {
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(eventList, &list); err != nil {
		return fmt.Errorf("simulator sent a bad EventList: %w", err)
	}
	d.audit = append(d.audit, list.Items...)
	if len(d.audit) >= demoAuditBatch || d.live() {
		return d.flushAudit(ctx)
	}
	return nil
}

func (d *demoSink) flushAudit(ctx context.Context) error {
	if len(d.audit) == 0 {
		return nil
	}
	_, err := d.client.SendAudit(ctx, eventList(rawItems(d.audit)))
	d.audit = d.audit[:0]
	return err
}

func rawItems(items []json.RawMessage) [][]byte {
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

func (d *demoSink) Batch(ctx context.Context, b kubetrail.Batch) error {
	if len(b.Events) > 0 && !b.Events[0].Time.Before(d.historyEnd) && !d.live() {
		d.markHistoryDone()
		if err := d.flush(ctx); err != nil {
			return err
		}
	}
	// Inventory goes out at once: connections are named by the inventory as of
	// their own time, so it may arrive early but never late.
	if len(b.Inventory) > 0 {
		if _, err := d.client.SendBatch(ctx, &kubetrail.Batch{Stream: b.Stream, Inventory: b.Inventory}); err != nil {
			return err
		}
	}
	if d.live() {
		if err := d.flushAudit(ctx); err != nil {
			return err
		}
		_, err := d.client.SendBatch(ctx, &kubetrail.Batch{Stream: b.Stream, Events: b.Events})
		return err
	}
	if d.pending == nil {
		d.pending = map[string]*kubetrail.Batch{}
	}
	p := d.pending[b.Stream]
	if p == nil {
		p = &kubetrail.Batch{Stream: b.Stream}
		d.pending[b.Stream] = p
	}
	p.Events = append(p.Events, b.Events...)
	d.pendingCount += len(b.Events)
	if d.pendingCount >= demoEventBatch {
		return d.flush(ctx)
	}
	return nil
}

// flush sends everything gathered, streams in a fixed order.
func (d *demoSink) flush(ctx context.Context) error {
	streams := make([]string, 0, len(d.pending))
	for s := range d.pending {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	for _, s := range streams {
		if b := d.pending[s]; len(b.Events) > 0 {
			if _, err := d.client.SendBatch(ctx, b); err != nil {
				return err
			}
		}
		delete(d.pending, s)
	}
	d.pendingCount = 0
	return d.flushAudit(ctx)
}
