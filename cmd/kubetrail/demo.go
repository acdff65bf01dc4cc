package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/simulate"
)

// demoPolicies are the demo's policies: kubetrail's defaults, with egress-watch
// on for billing, whose workloads have no business outside the cluster (those
// of payments, monitoring and data do).
const demoPolicies = `# kubetrail demo policies: the defaults, and egress watched in billing.
policies:
  - name: egress-watch
    description: Connections from billing to addresses the cluster does not know.
    rules: [Outbound Connection to Unknown IP]
    scope:
      namespaces: [billing]
`

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
			if o.policyFile == "" {
				if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
					return err
				}
				o.policyFile = filepath.Join(o.dataDir, "demo-policies.yaml")
				if err := os.WriteFile(o.policyFile, []byte(demoPolicies), 0o600); err != nil {
					return err
				}
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
			sink := &historySink{Gatherer: simulate.NewGatherer(demoSink{client: client, cluster: cfg.Cluster}, 50000, 5000), historyEnd: cfg.Start.Add(history), historyDone: historyDone}
			simDone := make(chan error, 1)
			started := time.Now()
			go func() {
				_, err := simulate.Run(cmd.Context(), cfg, sink)
				if errors.Is(err, context.Canceled) {
					err = nil
				}
				if err == nil {
					err = sink.SetDirect(cmd.Context())
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
	fmt.Fprintf(out, "Explorer: %s/  (sign in with the token)\n", srv.url)
	fmt.Fprintf(out, "API:      %s/api/v1/openapi.json\n", srv.url)
	fmt.Fprintf(out, "Token:    %s\n\n", srv.token)
	fmt.Fprintf(out, "Somewhere in this history, at %s, %s (from %s) ran kubectl exec into %s/%s.\n",
		inc.Time.Format(time.RFC3339), inc.User, inc.SourceIP, inc.Namespace, inc.Pod)
	fmt.Fprintln(out, "Find out what happened, in another terminal (the CLI finds this server by itself):")
	for _, q := range simulate.Queries {
		fmt.Fprintf(out, "  # %s\n  kubetrail query '%s'\n", q.Title, q.Filter)
	}
	fmt.Fprintln(out, "  # the sessions john.doe opened with kubectl exec, then one of them whole: who, and every command and connection")
	fmt.Fprintln(out, "  kubetrail sessions 'ka.user.name = john.doe'")
	fmt.Fprintln(out, "  kubetrail session SESSION_ID")
	fmt.Fprintln(out, "  # where tcpdump ran, by host and container")
	fmt.Fprintln(out, "  kubetrail scopes --by host 'evt.type = execve and proc.name = tcpdump'")
	fmt.Fprintln(out, "  # what the policies raised (Falco's rules and kubetrail's), then the activity around one of them")
	fmt.Fprintln(out, "  kubetrail events")
	fmt.Fprintln(out, "  kubetrail event POLICY_EVENT_ID")
	fmt.Fprintln(out, "\nOr with curl:")
	fmt.Fprintf(out, "  curl -H 'Authorization: Bearer %s' '%s/api/v1/events?since=24h&filter=proc.name%%3Dtcpdump'\n\n", srv.token, srv.url)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
}

// demoSink plays the simulator through the server's public ingest endpoints.
type demoSink struct {
	client  *kthttp.Client
	cluster string // the simulated cluster: its audit webhook says so, as ?cluster=
}

func (d demoSink) Audit(ctx context.Context, eventList []byte) error {
	_, err := d.client.SendAudit(ctx, d.cluster, eventList)
	return err
}

func (d demoSink) Batch(ctx context.Context, b kubetrail.Batch) error {
	_, err := d.client.SendBatch(ctx, &b)
	return err
}

// historySink gathers the history into large batches, and from the first event
// past the history on passes everything on as it comes, telling the demo so.
type historySink struct {
	*simulate.Gatherer
	historyEnd  time.Time
	historyDone chan struct{}
	once        sync.Once
}

func (h *historySink) markHistoryDone() { h.once.Do(func() { close(h.historyDone) }) }

func (h *historySink) Batch(ctx context.Context, b kubetrail.Batch) error {
	if len(b.Events) > 0 && !b.Events[0].Time.Before(h.historyEnd) {
		if err := h.Gatherer.SetDirect(ctx); err != nil {
			return err
		}
		h.markHistoryDone()
	}
	return h.Gatherer.Batch(ctx, b)
}
