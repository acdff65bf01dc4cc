package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/duckdb"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/k8s"
	"github.com/kubetrail/kubetrail/policy"
	"github.com/kubetrail/kubetrail/ui"
)

type serverOptions struct {
	listen     string
	tlsCert    string
	tlsKey     string
	dataDir    string
	cluster    string
	retention  map[kubetrail.Category]*time.Duration
	retainEach time.Duration
	// matchWindow bounds the time between an exec request and its session's start.
	matchWindow time.Duration
	// kubeconfig, or inCluster, lets the server watch the cluster's API for its
	// inventory (pods, services, nodes and the workloads behind pods).
	kubeconfig string
	inCluster  bool
	// ruleFiles and policyFile add Falco rule files and policies to the defaults.
	ruleFiles  []string
	policyFile string
}

func (o *serverOptions) flags(cmd *cobra.Command, defaultDataDir string) {
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:7070", "address to serve the API on")
	f.StringVar(&o.tlsCert, "tls-cert-file", "", "serve HTTPS with this certificate (PEM); with --tls-key-file")
	f.StringVar(&o.tlsKey, "tls-key-file", "", "private key (PEM) of --tls-cert-file")
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "directory of the embedded store and the admin token")
	f.StringVar(&o.cluster, "cluster-name", "default", "cluster name for audit events whose webhook URL carries no ?cluster=")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "watch the cluster (--cluster-name) through the API server this kubeconfig names, for the inventory that names connection peers and pods' workloads")
	f.BoolVar(&o.inCluster, "in-cluster", false, "watch the cluster the server runs in, with its service account (instead of --kubeconfig)")
	f.StringArrayVar(&o.ruleFiles, "rules", nil, "a Falco rule file, or a directory of them, read after kubetrail's own (repeatable); their rules run under the policy \"local\" unless --policies places them")
	f.StringVar(&o.policyFile, "policies", "", "a policy file: policies (rules, scope, priority, actions) and actions (webhook, syslog); see kubetrail rules --help. Reread, with the rule files, on SIGHUP or POST /api/v1/policies/reload")
	f.DurationVar(&o.matchWindow, "exec-match-window", kubetrail.DefaultMatchWindow, "how far apart a kubectl exec request and the start of the process it ran may be, either way (clock skew between control plane and nodes included)")
	def := kubetrail.DefaultRetention()
	o.retention = map[kubetrail.Category]*time.Duration{}
	for _, c := range kubetrail.Categories {
		d := def[c]
		o.retention[c] = &d
		f.DurationVar(o.retention[c], "retention-"+string(c), d, fmt.Sprintf("how long %s events are kept (0 keeps them forever)", c))
	}
	f.DurationVar(&o.retainEach, "retention-interval", time.Hour, "how often old events are removed")
}

func newServerCommand() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the kubetrail server on the embedded store",
		Long: `Run the kubetrail server: it receives the Kubernetes API server's audit webhook
(POST /api/v1/k8s-audit) and node agents' batches (POST /api/v1/events), keeps the
trail in an embedded DuckDB store under --data-dir, and answers queries.

Every endpoint but /healthz and /readyz requires the admin token, which the server
creates in --data-dir on first start (or takes from KUBETRAIL_ADMIN_TOKEN).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := startServer(cmd.Context(), &o, slog.Default())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "kubetrail server listening on %s (data in %s)\n", srv.url, o.dataDir)
			return srv.wait(cmd.Context())
		},
	}
	o.flags(cmd, defaultDataDir())
	return cmd
}

func defaultDataDir() string {
	if d := os.Getenv("KUBETRAIL_DATA_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".kubetrail", "data")
	}
	return "kubetrail-data"
}

// runningServer is a started server and what it needs to stop cleanly.
type runningServer struct {
	url      string
	token    string
	http     *kthttp.Server
	store    *duckdb.Store
	policies *policyService
	done     chan error
	stop     context.CancelFunc
}

func startServer(ctx context.Context, o *serverOptions, log *slog.Logger) (*runningServer, error) {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "--tls-cert-file and --tls-key-file go together")
	}
	var kube kubernetes.Interface
	if o.kubeconfig != "" || o.inCluster {
		var err error
		if kube, err = kubeClient(o.kubeconfig, o.inCluster); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	token, err := adminToken(o.dataDir)
	if err != nil {
		return nil, err
	}
	if o.matchWindow < 0 {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "--exec-match-window must not be negative, not %s", o.matchWindow)
	}
	store, err := duckdb.Open(ctx, filepath.Join(o.dataDir, "trail.duckdb"))
	if err != nil {
		return nil, err
	}
	store.MatchWindow = o.matchWindow
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerStoreMetrics(reg, store)
	pipeline, err := ingest.New(ctx, store, reg)
	if err != nil {
		store.Close()
		return nil, err
	}
	policies, err := newPolicyService(policy.Options{RuleFiles: o.ruleFiles, PolicyFile: o.policyFile}, reg, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	pipeline.SetPolicies(policies, policies)
	srv := &kthttp.Server{Store: store, Sessions: store, Pipeline: pipeline, Token: token, Cluster: o.cluster, Registry: reg, Log: log,
		TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, Policies: policies, Values: store, UI: ui.Handler()}
	addr, err := srv.Listen(o.listen)
	if err != nil {
		store.Close()
		return nil, err
	}
	scheme := "http://"
	if o.tlsCert != "" {
		scheme = "https://"
	}
	rs := &runningServer{url: scheme + addr.String(), token: token, http: srv, store: store, policies: policies, done: make(chan error, 1)}
	bg, stop := context.WithCancel(context.Background())
	rs.stop = stop
	retention := kubetrail.Retention{}
	for c, d := range o.retention {
		retention[c] = *d
	}
	go kubetrail.RunRetention(bg, retention, store, o.retainEach, log)
	go reloadOnHangup(bg, policies)
	if kube != nil {
		w := &k8s.Watcher{Cluster: o.cluster, Client: kube, Sink: pipeline, Log: log}
		go func() {
			if err := w.Run(bg); err != nil && bg.Err() == nil {
				log.Error("watch the cluster's API", "err", err)
			}
		}()
	}
	go func() { rs.done <- srv.Serve() }()
	if err := writeLocal(localServer{URL: rs.url, DataDir: o.dataDir, PID: os.Getpid()}); err != nil {
		log.Warn("could not record the local server for the CLI", "err", err)
	}
	return rs, nil
}

// kubeClient connects to the API server a kubeconfig names, or to the one the
// process runs under.
func kubeClient(kubeconfig string, inCluster bool) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if inCluster {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "connect to the Kubernetes API: %v", err)
	}
	cfg.UserAgent = "kubetrail/" + version
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "connect to the Kubernetes API: %v", err)
	}
	return client, nil
}

// wait serves until ctx ends, then shuts down in order: stop taking requests,
// finish those in flight, checkpoint and close the store.
func (rs *runningServer) wait(ctx context.Context) error {
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-rs.done:
	}
	rs.stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := errors.Join(serveErr, rs.http.Shutdown(shutdownCtx), rs.policies.Close(shutdownCtx), rs.store.Close())
	clearLocal(rs.url)
	return err
}

func registerStoreMetrics(reg *prometheus.Registry, store *duckdb.Store) {
	// Stats scans the category column; cache it so scrapes stay cheap. A scrape
	// reads the gauges concurrently, hence the lock.
	var (
		mu     sync.Mutex
		cached kubetrail.Stats
		at     time.Time
	)
	stats := func() kubetrail.Stats {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 15*time.Second {
			if st, err := store.Stats(context.Background()); err == nil {
				cached, at = st, time.Now()
			}
		}
		return cached
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kubetrail_store_bytes", Help: "Size of the embedded store on disk.",
	}, func() float64 { return float64(stats().Bytes) }))
	for _, c := range kubetrail.Categories {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kubetrail_store_events", Help: "Events held by the store, by category.", ConstLabels: prometheus.Labels{"category": string(c)},
		}, func() float64 { return float64(stats().Events[c]) }))
	}
}

// adminToken returns KUBETRAIL_ADMIN_TOKEN, or the token in the data dir, creating
// it on first start.
func adminToken(dataDir string) (string, error) {
	if t := os.Getenv("KUBETRAIL_ADMIN_TOKEN"); t != "" {
		if len(t) < 16 {
			return "", kubetrail.Errorf(kubetrail.EINVALID, "KUBETRAIL_ADMIN_TOKEN is %d characters; use at least 16", len(t))
		}
		return t, nil
	}
	path := filepath.Join(dataDir, "admin.token")
	data, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	b := make([]byte, 24)
	rand.Read(b)
	token := "kt_" + hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return token, nil
}

// localServer records the server running on this machine, so that the CLI finds it
// (and its token, in the data dir) without flags.
type localServer struct {
	URL     string `json:"url"`
	DataDir string `json:"dataDir"`
	PID     int    `json:"pid"`
}

func localFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".kubetrail", "local.json"), nil
}

func writeLocal(l localServer) error {
	path, err := localFile()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, _ := json.Marshal(l)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readLocal() (localServer, error) {
	var l localServer
	path, err := localFile()
	if err != nil {
		return l, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return l, err
	}
	return l, json.Unmarshal(data, &l)
}

// clearLocal forgets the local server if it is still the one recorded.
func clearLocal(url string) {
	if l, err := readLocal(); err == nil && l.URL == url {
		if path, err := localFile(); err == nil {
			os.Remove(path)
		}
	}
}

// clientFlags are the flags of every command that talks to a server.
type clientFlags struct {
	server string
	token  string
	caFile string
}

func (c *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.server, "server", os.Getenv("KUBETRAIL_SERVER"), "server URL (default: the local server, or $KUBETRAIL_SERVER)")
	cmd.Flags().StringVar(&c.token, "token", os.Getenv("KUBETRAIL_TOKEN"), "bearer token (default: the local server's admin token, or $KUBETRAIL_TOKEN)")
	cmd.Flags().StringVar(&c.caFile, "certificate-authority", os.Getenv("KUBETRAIL_CA_FILE"), "PEM file of the CA that signed an HTTPS server's certificate")
}

func (c *clientFlags) client() (*kthttp.Client, error) {
	server, token := c.server, c.token
	if server == "" {
		l, err := readLocal()
		if err != nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "no server given and no local server found; start one with 'kubetrail server' or 'kubetrail demo', or pass --server URL")
		}
		server = l.URL
		if token == "" {
			data, err := os.ReadFile(filepath.Join(l.DataDir, "admin.token"))
			if err != nil {
				return nil, fmt.Errorf("read the local server's token: %w", err)
			}
			token = strings.TrimSpace(string(data))
		}
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	if _, _, err := net.SplitHostPort(strings.SplitN(strings.SplitN(server, "://", 2)[1], "/", 2)[0]); err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "server %q: want a URL such as http://127.0.0.1:7070", server)
	}
	client := kthttp.NewClient(server, token)
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "--certificate-authority: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "--certificate-authority: %s holds no PEM certificate", c.caFile)
		}
		client.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return client, nil
}
