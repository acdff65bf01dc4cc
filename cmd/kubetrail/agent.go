package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agent"
	"github.com/kubetrail/kubetrail/cgroup"
	"github.com/kubetrail/kubetrail/cri"
	"github.com/kubetrail/kubetrail/ebpf"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/spool"
)

func newAgentCommand() *cobra.Command {
	var (
		c clientFlags
		o agentOptions
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: record commands and connections in containers and ship them",
		Long: `Run kubetrail's node agent (one per node, as a DaemonSet would). It loads the eBPF
sensor, records every program executed, every TCP connection opened or accepted and
every file written, created, removed, renamed or re-permissioned, names the container
of each from its cgroup, and ships the events to the server.

Batches are written to an on-disk spool before they are sent, so that a server
that is down or slow loses nothing: they are sent oldest first once it is back,
and the server stores a retried batch once. When the spool is full the oldest
batches are dropped and counted. Records the kernel could not hand over in time
are counted per CPU and per kind (metrics at --listen).

Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.node == "" {
				return kubetrail.ErrorAt(kubetrail.EINVALID, "--node", "the node name is required (default: the host name, which could not be read)")
			}
			if c.server == "" {
				return kubetrail.ErrorAt(kubetrail.EINVALID, "--server", "the server URL is required (or $KUBETRAIL_SERVER)")
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			o.client = client
			return runAgent(cmd.Context(), o, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
		},
	}
	host, _ := os.Hostname()
	c.register(cmd)
	cmd.Flags().StringVar(&o.node, "node", envOr("KUBETRAIL_NODE", host), "node name stamped on every event ($KUBETRAIL_NODE)")
	cmd.Flags().StringVar(&o.cluster, "cluster-name", envOr("KUBETRAIL_CLUSTER", "default"), "cluster name stamped on every event")
	cmd.Flags().StringVar(&o.spoolDir, "spool-dir", "/var/lib/kubetrail-agent/spool", "directory of the on-disk spool")
	cmd.Flags().Int64Var(&o.spoolSize, "spool-size", 1<<30, "bytes the spool may hold before it drops the oldest batches")
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:7071", "address of /metrics and /healthz")
	cmd.Flags().IntVar(&o.batch, "batch-events", 5000, "events per batch at most")
	cmd.Flags().DurationVar(&o.interval, "flush-interval", time.Second, "how long events wait for a batch at most")
	cmd.Flags().StringVar(&o.criEndpoint, "cri-endpoint", "unix:///run/containerd/containerd.sock", "the container runtime's CRI socket, which names pods, containers and images (containerd or CRI-O); empty to go without")
	cmd.Flags().StringSliceVar(&o.excludes, "exclude-path", agent.DefaultExcludePaths, "path prefixes whose file changes are not recorded (at most 8)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type agentOptions struct {
	client    *kthttp.Client
	node      string
	cluster   string
	spoolDir  string
	spoolSize int64
	listen    string
	batch     int
	interval  time.Duration
	excludes  []string
	// criEndpoint is the container runtime's CRI socket; empty for none.
	criEndpoint string
}

// spoolSink encodes batches into the spool.
type spoolSink struct {
	client *kthttp.Client
	spool  *spool.Spool
	events *prometheus.CounterVec
}

func (s spoolSink) Put(_ context.Context, b *kubetrail.Batch) error {
	body, err := s.client.EncodeBatch(b)
	if err != nil {
		return err
	}
	if err := s.spool.Append(body); err != nil {
		return err
	}
	for i := range b.Events {
		s.events.WithLabelValues(string(b.Events[i].Category), b.Events[i].Type).Inc()
	}
	return nil
}

func runAgent(ctx context.Context, o agentOptions, log *slog.Logger) error {
	sensor, err := ebpf.Load()
	if err != nil {
		return err
	}
	defer sensor.Close()
	if err := sensor.SetExcludes(o.excludes); err != nil {
		return kubetrail.ErrorAt(kubetrail.EINVALID, "--exclude-path", "%v", err)
	}
	root, err := cgroup.V2Root()
	if err != nil {
		return fmt.Errorf("find the cgroup v2 hierarchy: %w", err)
	}
	sp, err := spool.Open(o.spoolDir, o.spoolSize)
	if err != nil {
		return fmt.Errorf("open the spool: %w", err)
	}
	defer sp.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubetrail_agent_events_total", Help: "Events recorded, by category and type."}, []string{"category", "type"})
	reg.MustRegister(events)
	lostDesc := prometheus.NewDesc("kubetrail_agent_lost_records_total", "Kernel records that did not fit in the ring buffer, by kind and CPU.", []string{"kind", "cpu"}, nil)
	reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) {
		_, perCPU, err := sensor.Lost()
		if err != nil {
			return
		}
		for k, vals := range perCPU {
			for cpu, v := range vals {
				ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.CounterValue, float64(v), k.String(), fmt.Sprint(cpu))
			}
		}
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kubetrail_agent_spool_bytes", Help: "Bytes waiting in the spool."},
		func() float64 { return float64(sp.Bytes()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kubetrail_agent_spool_dropped_batches_total", Help: "Batches dropped because the spool was full."},
		func() float64 { n, _ := sp.Dropped(); return float64(n) }))

	send := func(ctx context.Context, payload []byte) error {
		_, err := o.client.SendEncodedBatch(ctx, payload)
		switch kubetrail.ErrorCode(err) {
		case kubetrail.EINVALID, kubetrail.ETOOLARGE:
			// The server will refuse this batch every time: set it aside.
			return fmt.Errorf("%w: %v", spool.ErrPermanent, err)
		}
		return err
	}
	shipper := spool.NewShipper(sp, send, log)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kubetrail_agent_sent_batches_total", Help: "Batches the server acknowledged."},
		func() float64 { return float64(shipper.Stats().Sent) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kubetrail_agent_send_retries_total", Help: "Sends retried after an error."},
		func() float64 { return float64(shipper.Stats().Retries) }))

	cfg := agent.Config{Cluster: o.cluster, Node: o.node, BatchEvents: o.batch, FlushInterval: o.interval, ExcludePaths: o.excludes}
	if o.criEndpoint != "" {
		pods, err := cri.Dial(ctx, o.criEndpoint)
		if err != nil {
			return kubetrail.ErrorAt(kubetrail.EINVALID, "--cri-endpoint", "%v", err)
		}
		defer pods.Close()
		cfg.Pods = pods
		// Learn the running containers now and then, so that lookups are answered
		// from memory and containers gone by the time their events are read are
		// still named. A runtime that is down is logged, not fatal.
		go func() {
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				if err := pods.Refresh(ctx); err != nil && ctx.Err() == nil {
					log.Warn("list the container runtime's containers", "endpoint", o.criEndpoint, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	a, err := agent.New(cfg,
		sensor, cgroup.NewResolver(root), spoolSink{client: o.client, spool: sp, events: events}, log)
	if err != nil {
		return err
	}

	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kubetrail_agent_invalid_events_total", Help: "Events dropped because the server would refuse them."},
		func() float64 { return float64(a.Invalid.Load()) }))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	log.Info("agent running", "node", o.node, "cluster", o.cluster, "stream", a.Stream(), "server", o.client.URL, "spool", o.spoolDir, "metrics", ln.Addr().String())

	shipCtx, stopShipping := context.WithCancel(context.WithoutCancel(ctx))
	shipped := make(chan error, 1)
	go func() { shipped <- shipper.Run(shipCtx) }()
	// When ctx ends, Run stops the sensor and drains it before it returns.
	runErr := a.Run(ctx)
	// Give the shipper a moment to send what the last flush spooled; what it does
	// not send stays in the spool for the next start.
	for deadline := time.Now().Add(5 * time.Second); sp.Len() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stopShipping()
	if err := <-shipped; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, spool.ErrClosed) {
		log.Warn("shipper stopped", "err", err)
	}
	return runErr
}

// collectorFunc is a prometheus.Collector from a function. It describes nothing,
// which makes it an unchecked collector: its metrics are read at each scrape.
type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

func (f collectorFunc) Describe(chan<- *prometheus.Desc) {}
