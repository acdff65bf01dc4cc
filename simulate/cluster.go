package simulate

import (
	"math/rand/v2"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// The cluster the simulator plays: a small production cluster of three nodes running
// a web shop (frontend → billing/payments → data), its monitoring and logging, and
// the usual kube-system pieces. The tables below are data, not code, so that the
// demo's cluster can be read in one place.

// cmd is one program the simulator runs: the file executed and its argument vector.
// name is the process name when it differs from the executed file's base name (a
// program started through a symlink or an interpreter).
type cmd struct {
	exe  string
	argv []string
	name string
}

// spawnSpec is a program a workload starts now and then as part of its normal work
// (an image converter, a PDF renderer), and the file it writes. '#' in the argv and
// in writes is replaced by one number per variant so the output names vary.
type spawnSpec struct {
	cmd
	writes string
}

// spec describes one workload.
type spec struct {
	ns, kind, name string
	replicas       int    // Deployments and StatefulSets; DaemonSets run one pod per node, CronJobs one per run
	image          string // repository:tag
	container      string
	port           int // port the main process listens on; 0 when it serves nothing
	svcPort        int // port of its ClusterIP Service; 0 for none
	svcName        string
	hostNetwork    bool
	httpProbe      bool // the kubelet probes it over HTTP
	main           cmd
	uid            int64
	user           string
	cwd            string
	files          []string // paths the main process writes now and then ('#' varies)
	spawn          []spawnSpec
	probe          []cmd // exec liveness probe: each program is the child of the previous
	every          time.Duration
	runFor         [2]time.Duration // CronJob: how long a job pod runs, min and max
	egress         []string         // addresses outside the cluster it talks to ("ip:port")
}

const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindCronJob     = "CronJob"
)

// Addresses outside the cluster. They are in no inventory, so the server names them
// "unknown"; the incident's one must stand out among them.
const (
	apiServerIP   = "10.0.0.10" // managed control plane endpoint, not a node of ours
	vpcResolverIP = "10.0.0.2"  // the VPC's DNS resolver CoreDNS forwards to
	bastionIP     = "10.0.0.5"  // ssh jump host the operators come from
	ciRunnerIP    = "10.0.2.15" // CI runner VM, outside the cluster
	kubeDNSIP     = "10.96.0.10"
	kubernetesIP  = "10.96.0.1"
)

func goService(ns, name string, replicas int, image string, port, svcPort int, args ...string) spec {
	exe := "/app/" + name
	return spec{ns: ns, kind: kindDeployment, name: name, replicas: replicas, image: image, container: "app",
		port: port, svcPort: svcPort, httpProbe: port != 0,
		main: cmd{exe: exe, argv: append([]string{exe}, args...)}, uid: 65532, user: "nonroot", cwd: "/app"}
}

var javaExe = "/opt/java/openjdk/bin/java"

var pgIsReady = cmd{exe: "/usr/lib/postgresql/16/bin/pg_isready", argv: []string{"pg_isready", "-U", "postgres", "-h", "127.0.0.1", "-p", "5432"}}

// specs is the cluster's workloads. Order matters only for determinism.
var specs = []spec{
	// kube-system
	{ns: "kube-system", kind: kindDeployment, name: "coredns", replicas: 2, image: "registry.k8s.io/coredns/coredns:v1.11.3", container: "coredns",
		port: 53, svcPort: 53, svcName: "kube-dns", httpProbe: true,
		main: cmd{exe: "/coredns", argv: []string{"/coredns", "-conf", "/etc/coredns/Corefile"}}, uid: 65532, user: "nonroot", cwd: "/"},
	{ns: "kube-system", kind: kindDeployment, name: "metrics-server", replicas: 1, image: "registry.k8s.io/metrics-server/metrics-server:v0.7.2", container: "metrics-server",
		port: 10250, svcPort: 443, httpProbe: true,
		main: cmd{exe: "/metrics-server", argv: []string{"/metrics-server", "--cert-dir=/tmp", "--secure-port=10250", "--kubelet-preferred-address-types=InternalIP", "--metric-resolution=15s"}},
		uid:  1000, cwd: "/", files: []string{"/tmp/apiserver-#.crt"}},
	{ns: "kube-system", kind: kindDaemonSet, name: "kube-proxy", image: "registry.k8s.io/kube-proxy:v1.33.1", container: "kube-proxy", hostNetwork: true,
		main: cmd{exe: "/usr/local/bin/kube-proxy", argv: []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf"}}, uid: 0, user: "root", cwd: "/"},

	// ingress-nginx
	{ns: "ingress-nginx", kind: kindDeployment, name: "ingress-nginx-controller", replicas: 2, image: "registry.k8s.io/ingress-nginx/controller:v1.11.2", container: "controller",
		port: 443, svcPort: 443, httpProbe: true,
		main: cmd{exe: "/usr/bin/nginx", argv: []string{"nginx", "-c", "/etc/nginx/nginx.conf"}}, uid: 101, user: "www-data", cwd: "/etc/nginx",
		files: []string{"/tmp/nginx/client-body/00000000#"}},

	// frontend
	{ns: "frontend", kind: kindDeployment, name: "web", replicas: 3, image: "registry.example.com/frontend/web:2.14.0", container: "app",
		port: 8080, svcPort: 80, httpProbe: true,
		main: cmd{exe: "/usr/sbin/nginx", argv: []string{"nginx", "-g", "daemon off;"}}, uid: 101, user: "nginx", cwd: "/",
		files: []string{"/var/cache/nginx/proxy_temp/1/00/00000#"}},
	{ns: "frontend", kind: kindDeployment, name: "storefront-bff", replicas: 3, image: "registry.example.com/frontend/storefront-bff:4.2.0", container: "app",
		port: 3000, svcPort: 80, httpProbe: true,
		main: cmd{exe: "/usr/local/bin/node", argv: []string{"node", "dist/server.js"}}, uid: 1000, user: "node", cwd: "/app",
		files: []string{"/tmp/bff-cache-#.json"}},
	goService("frontend", "search-api", 2, "registry.example.com/frontend/search-api:0.19.3", 8080, 80, "--config=/etc/search-api/config.yaml"),
	{ns: "frontend", kind: kindDeployment, name: "image-resizer", replicas: 2, image: "registry.example.com/frontend/image-resizer:1.3.7", container: "app",
		port: 8000, svcPort: 80, httpProbe: true,
		main: cmd{exe: "/usr/local/bin/python3.12", argv: []string{"/usr/local/bin/python3", "/usr/local/bin/gunicorn", "-w", "4", "-b", "0.0.0.0:8000", "resizer.app:app"}, name: "gunicorn"},
		uid:  1000, user: "app", cwd: "/srv", files: []string{"/tmp/upload-#.jpg"},
		spawn: []spawnSpec{{cmd: cmd{exe: "/usr/bin/convert-im6.q16", name: "convert", argv: []string{"convert", "/tmp/upload-#.jpg", "-resize", "1200x1200>", "-quality", "82", "/tmp/resized-#.webp"}}, writes: "/tmp/resized-#.webp"}}},

	// billing
	{ns: "billing", kind: kindDeployment, name: "invoice-api", replicas: 3, image: "registry.example.com/billing/invoice-api:1.8.2", container: "app",
		port: 8080, svcPort: 80, httpProbe: true,
		main: cmd{exe: javaExe, argv: []string{"java", "-XX:MaxRAMPercentage=75.0", "-jar", "/app/invoice-api.jar"}}, uid: 0, user: "root", cwd: "/app",
		files: []string{"/app/logs/invoice-api.log", "/tmp/tomcat.8080.#/work/Tomcat/localhost/ROOT/upload_#.tmp"}},
	{ns: "billing", kind: kindDeployment, name: "billing-worker", replicas: 2, image: "registry.example.com/billing/billing-worker:1.8.2", container: "app",
		main: cmd{exe: "/usr/local/bin/python3.11", argv: []string{"/usr/local/bin/python", "/usr/local/bin/celery", "-A", "billing", "worker", "--loglevel=INFO", "--concurrency=4"}, name: "celery"},
		uid:  1000, user: "app", cwd: "/app", files: []string{"/tmp/celery-#.tmp"}},
	{ns: "billing", kind: kindDeployment, name: "invoice-renderer", replicas: 2, image: "registry.example.com/billing/invoice-renderer:2.0.1", container: "app",
		port: 8080, svcPort: 80, httpProbe: true,
		main: cmd{exe: "/app/invoice-renderer", argv: []string{"/app/invoice-renderer"}}, uid: 1000, user: "app", cwd: "/app",
		files: []string{"/tmp/invoice-#.html"},
		spawn: []spawnSpec{{cmd: cmd{exe: "/usr/local/bin/wkhtmltopdf", argv: []string{"wkhtmltopdf", "--quiet", "--page-size", "A4", "/tmp/invoice-#.html", "/tmp/invoice-#.pdf"}}, writes: "/tmp/invoice-#.pdf"}}},
	goService("billing", "tax-calculator", 2, "registry.example.com/billing/tax-calculator:0.9.12", 8080, 80),
	goService("billing", "notification-sender", 1, "registry.example.com/billing/notification-sender:1.2.0", 0, 0, "--smtp-relay=smtp-relay.internal:25"),

	// payments
	goService("payments", "payments-api", 3, "registry.example.com/payments/payments-api:3.4.1", 8080, 80, "serve", "--listen=:8080"),
	{ns: "payments", kind: kindDeployment, name: "fraud-check", replicas: 2, image: "registry.example.com/payments/fraud-check:2.7.0", container: "app",
		port: 8000, svcPort: 80, httpProbe: true,
		main: cmd{exe: "/usr/local/bin/python3.12", argv: []string{"/usr/local/bin/python3", "/usr/local/bin/gunicorn", "-w", "2", "-b", "0.0.0.0:8000", "fraud.api:app"}, name: "gunicorn"},
		uid:  1000, user: "app", cwd: "/srv", files: []string{"/tmp/score-#.json"}},
	{ns: "payments", kind: kindDeployment, name: "ledger", replicas: 2, image: "registry.example.com/payments/ledger:5.1.0", container: "app",
		port: 8080, svcPort: 80, httpProbe: true,
		main: cmd{exe: javaExe, argv: []string{"java", "-Xms512m", "-Xmx1g", "-jar", "/app/ledger.jar"}}, uid: 0, user: "root", cwd: "/app",
		files: []string{"/app/logs/ledger.log", "/tmp/ledger-export-#.csv"}},
	goService("payments", "refund-service", 1, "registry.example.com/payments/refund-service:1.0.4", 8080, 80),
	func() spec {
		s := goService("payments", "payments-gateway", 2, "registry.example.com/payments/payments-gateway:2.2.9", 8443, 443)
		s.egress = []string{"54.187.174.169:443", "54.187.216.72:443"} // the card processor's API
		return s
	}(),

	// data
	{ns: "data", kind: kindDeployment, name: "pgbouncer", replicas: 2, image: "docker.io/bitnami/pgbouncer:1.23.1", container: "pgbouncer",
		port: 6432, svcPort: 5432,
		main: cmd{exe: "/opt/bitnami/pgbouncer/bin/pgbouncer", argv: []string{"pgbouncer", "/opt/bitnami/pgbouncer/conf/pgbouncer.ini"}}, uid: 1001, cwd: "/"},
	{ns: "data", kind: kindStatefulSet, name: "postgres", replicas: 1, image: "docker.io/library/postgres:16.3", container: "postgres",
		port: 5432, svcPort: 5432,
		main: cmd{exe: "/usr/lib/postgresql/16/bin/postgres", argv: []string{"postgres"}}, uid: 999, user: "postgres", cwd: "/",
		files: []string{"/var/lib/postgresql/data/pg_wal/00000001000000000000004#", "/var/lib/postgresql/data/base/16384/2#"},
		probe: []cmd{pgIsReady}},
	{ns: "data", kind: kindStatefulSet, name: "redis", replicas: 3, image: "docker.io/library/redis:7.2.5", container: "redis",
		port: 6379, svcPort: 6379,
		main: cmd{exe: "/usr/local/bin/redis-server", argv: []string{"redis-server *:6379"}}, uid: 999, user: "redis", cwd: "/data",
		files: []string{"/data/appendonlydir/appendonly.aof.1.incr.aof", "/data/temp-#.rdb"},
		probe: []cmd{{exe: "/usr/bin/dash", name: "sh", argv: []string{"/bin/sh", "-c", "redis-cli ping"}}, {exe: "/usr/local/bin/redis-cli", argv: []string{"redis-cli", "ping"}}}},
	{ns: "data", kind: kindStatefulSet, name: "kafka", replicas: 3, image: "docker.io/bitnami/kafka:3.7.1", container: "kafka",
		port: 9092, svcPort: 9092,
		main: cmd{exe: javaExe, argv: []string{"java", "-Xmx1g", "-Xms1g", "-server", "kafka.Kafka", "/opt/bitnami/kafka/config/server.properties"}}, uid: 1001, cwd: "/",
		files: []string{"/bitnami/kafka/data/invoices-#/00000000000000000000.log", "/bitnami/kafka/data/payments-#/00000000000000000000.index"}},

	// monitoring
	{ns: "monitoring", kind: kindDeployment, name: "prometheus-server", replicas: 1, image: "quay.io/prometheus/prometheus:v2.53.1", container: "prometheus",
		port: 9090, svcPort: 9090, httpProbe: true,
		main: cmd{exe: "/bin/prometheus", argv: []string{"/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=15d"}},
		uid:  65534, user: "nobody", cwd: "/prometheus", files: []string{"/prometheus/wal/0000#", "/prometheus/chunks_head/00001#"}},
	{ns: "monitoring", kind: kindDeployment, name: "grafana", replicas: 1, image: "docker.io/grafana/grafana:11.1.3", container: "grafana",
		port: 3000, svcPort: 80, httpProbe: true,
		main: cmd{exe: "/usr/share/grafana/bin/grafana", argv: []string{"grafana", "server", "--homepath=/usr/share/grafana", "--config=/etc/grafana/grafana.ini"}},
		uid:  472, user: "grafana", cwd: "/usr/share/grafana", files: []string{"/var/lib/grafana/grafana.db-journal"}},
	{ns: "monitoring", kind: kindDeployment, name: "kube-state-metrics", replicas: 1, image: "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0", container: "kube-state-metrics",
		port: 8080, svcPort: 8080, httpProbe: true,
		main: cmd{exe: "/kube-state-metrics", argv: []string{"/kube-state-metrics", "--port=8080", "--telemetry-port=8081"}}, uid: 65534, user: "nobody", cwd: "/"},
	{ns: "monitoring", kind: kindDeployment, name: "blackbox-exporter", replicas: 1, image: "quay.io/prometheus/blackbox-exporter:v0.25.0", container: "blackbox-exporter",
		port: 9115, svcPort: 9115,
		main: cmd{exe: "/bin/blackbox_exporter", argv: []string{"/bin/blackbox_exporter", "--config.file=/config/blackbox.yaml"}}, uid: 65534, user: "nobody", cwd: "/",
		egress: []string{"93.184.215.14:443"}}, // probes the shop's public endpoint
	{ns: "monitoring", kind: kindStatefulSet, name: "alertmanager", replicas: 1, image: "quay.io/prometheus/alertmanager:v0.27.0", container: "alertmanager",
		port: 9093, svcPort: 9093,
		main: cmd{exe: "/bin/alertmanager", argv: []string{"/bin/alertmanager", "--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"}},
		uid:  65534, user: "nobody", cwd: "/alertmanager", files: []string{"/alertmanager/nflog", "/alertmanager/silences"}},
	{ns: "monitoring", kind: kindDaemonSet, name: "node-exporter", image: "quay.io/prometheus/node-exporter:v1.8.2", container: "node-exporter", hostNetwork: true,
		port: 9100,
		main: cmd{exe: "/bin/node_exporter", argv: []string{"/bin/node_exporter", "--path.rootfs=/host", "--web.listen-address=:9100"}}, uid: 65534, user: "nobody", cwd: "/"},

	// logging
	{ns: "logging", kind: kindStatefulSet, name: "loki", replicas: 1, image: "docker.io/grafana/loki:3.1.1", container: "loki",
		port: 3100, svcPort: 3100,
		main: cmd{exe: "/usr/bin/loki", argv: []string{"/usr/bin/loki", "-config.file=/etc/loki/config.yaml"}}, uid: 10001, cwd: "/",
		files: []string{"/var/loki/wal/0000#", "/var/loki/chunks/fake/#"}},
	{ns: "logging", kind: kindDaemonSet, name: "fluent-bit", image: "cr.fluentbit.io/fluent/fluent-bit:3.1.6", container: "fluent-bit",
		port: 2020,
		main: cmd{exe: "/fluent-bit/bin/fluent-bit", argv: []string{"/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/conf/fluent-bit.conf"}}, uid: 0, user: "root", cwd: "/",
		files: []string{"/var/fluent-bit/state/flb_container.db", "/var/fluent-bit/state/flb_container.db-journal"}},

	// CronJobs: short-lived job pods every few minutes.
	{ns: "billing", kind: kindCronJob, name: "invoice-reconcile", image: "registry.example.com/billing/invoice-reconcile:1.8.2", container: "reconcile",
		every: 5 * time.Minute, runFor: [2]time.Duration{55 * time.Second, 110 * time.Second},
		main: cmd{exe: "/app/invoice-reconcile", argv: []string{"/app/invoice-reconcile", "--window=5m"}}, uid: 65532, user: "nonroot", cwd: "/app"},
	{ns: "payments", kind: kindCronJob, name: "settlement-export", image: "registry.example.com/payments/settlement-export:2.3.0", container: "export",
		every: 15 * time.Minute, runFor: [2]time.Duration{70 * time.Second, 120 * time.Second},
		main: cmd{exe: "/usr/local/bin/python3.12", argv: []string{"python", "-m", "settlement.export", "--since=15m"}, name: "python"}, uid: 1000, user: "app", cwd: "/srv",
		files: []string{"/tmp/settlement-#.csv"}, egress: []string{"198.51.100.20:22"}}, // the bank's SFTP drop
	{ns: "data", kind: kindCronJob, name: "postgres-backup", image: "registry.example.com/data/pg-backup:16-1.4.0", container: "backup",
		every: time.Hour, runFor: [2]time.Duration{150 * time.Second, 220 * time.Second},
		main: cmd{exe: "/usr/bin/dash", name: "sh", argv: []string{"/bin/sh", "/usr/local/bin/backup.sh"}}, uid: 999, user: "postgres", cwd: "/backup",
		spawn: []spawnSpec{
			{cmd: cmd{exe: "/usr/lib/postgresql/16/bin/pg_dump", argv: []string{"pg_dump", "-h", "postgres-0.postgres.data.svc", "-U", "backup", "-Fc", "-f", "/backup/billing-#.dump", "billing"}}, writes: "/backup/billing-#.dump"},
			{cmd: cmd{exe: "/usr/bin/gzip", argv: []string{"gzip", "-9", "/backup/billing-#.dump"}}, writes: "/backup/billing-#.dump.gz"},
		},
		egress: []string{"52.217.160.72:443"}}, // the backup bucket
	{ns: "frontend", kind: kindCronJob, name: "sitemap-generator", image: "registry.example.com/frontend/sitemap-generator:1.1.0", container: "generator",
		every: 30 * time.Minute, runFor: [2]time.Duration{60 * time.Second, 90 * time.Second},
		main: cmd{exe: "/usr/local/bin/node", argv: []string{"node", "generate.js", "--out=/tmp/sitemap.xml"}}, uid: 1000, user: "node", cwd: "/app",
		files: []string{"/tmp/sitemap-#.xml"}},
}

// edgeSpec is one kind of east-west call: client workload to server workload. direct
// calls go to a pod IP (headless services: kafka brokers, the postgres primary), the
// others to the Service's cluster IP, which kube-proxy translates.
type edgeSpec struct {
	from, to string // "namespace/workload"; to "api" is the kubernetes Service
	weight   int
	direct   bool
}

var edgeSpecs = []edgeSpec{
	{"ingress-nginx/ingress-nginx-controller", "frontend/web", 0, true}, // weight 0: played by the ingress activity
	{"frontend/web", "frontend/storefront-bff", 30, false},
	{"frontend/web", "frontend/search-api", 10, false},
	{"frontend/web", "frontend/image-resizer", 6, false},
	{"frontend/storefront-bff", "billing/invoice-api", 10, false},
	{"frontend/storefront-bff", "payments/payments-api", 12, false},
	{"frontend/storefront-bff", "frontend/search-api", 8, false},
	{"frontend/storefront-bff", "data/redis", 14, false},
	{"frontend/search-api", "data/redis", 6, false},
	{"frontend/search-api", "data/pgbouncer", 4, false},
	{"frontend/image-resizer", "data/redis", 2, false},
	{"billing/invoice-api", "payments/payments-api", 8, false},
	{"billing/invoice-api", "billing/tax-calculator", 6, false},
	{"billing/invoice-api", "data/pgbouncer", 10, false},
	{"billing/invoice-api", "data/kafka", 6, true},
	{"billing/invoice-api", "billing/invoice-renderer", 3, false},
	{"billing/billing-worker", "data/kafka", 8, true},
	{"billing/billing-worker", "data/pgbouncer", 5, false},
	{"billing/billing-worker", "billing/invoice-renderer", 3, false},
	{"billing/notification-sender", "data/kafka", 4, true},
	{"payments/payments-api", "payments/fraud-check", 8, false},
	{"payments/payments-api", "payments/ledger", 8, false},
	{"payments/payments-api", "data/pgbouncer", 8, false},
	{"payments/payments-api", "data/kafka", 5, true},
	{"payments/payments-api", "payments/payments-gateway", 4, false},
	{"payments/fraud-check", "data/redis", 6, false},
	{"payments/ledger", "data/postgres", 6, true},
	{"payments/ledger", "data/kafka", 3, true},
	{"payments/refund-service", "payments/ledger", 2, false},
	{"payments/refund-service", "data/kafka", 2, true},
	{"data/pgbouncer", "data/postgres", 14, true},
	{"monitoring/grafana", "monitoring/prometheus-server", 2, false},
	{"monitoring/grafana", "logging/loki", 1, false},
	{"monitoring/prometheus-server", "monitoring/alertmanager", 1, false},
	{"monitoring/kube-state-metrics", "api", 1, false},
	{"kube-system/coredns", "api", 1, false},
	{"logging/fluent-bit", "logging/loki", 6, false},
	{"billing/invoice-reconcile", "data/pgbouncer", 3, false},
	{"billing/invoice-reconcile", "payments/payments-api", 1, false},
	{"payments/settlement-export", "payments/ledger", 2, false},
	{"frontend/sitemap-generator", "frontend/search-api", 2, false},
	{"data/postgres-backup", "data/postgres", 2, true},
}

// node is one machine of the cluster, with its agent's stream.
type node struct {
	idx     int
	name    string
	uid     string
	ip      string
	boot    int64 // simulated boot time, ns; exec ids count from it
	stream  *stream
	nextPID int64
	nextIP  int // last host byte handed out in the node's pod CIDR
	ipUsed  [256]bool
	ipStr   [256]string // "10.244.<idx>.<n>", built once
	pods    []*pod      // running on this node, in creation order

	// Long-running host processes (started before the simulation).
	host        place
	systemd     kubetrail.Process
	containerd  kubetrail.Process
	kubelet     kubetrail.Process
	sshd        kubetrail.Process
	journald    kubetrail.Process
	journalPath string
}

// place is where runtime events happen: a container or a node's host, with the event
// every event there starts from. Events are copies of tmpl with the moment's fields
// set, which keeps the per-event work to a struct copy.
type place struct {
	tmpl kubetrail.Event
	ip   string // the address connections from here start from
	node *node
	// sessions holds, in a container, the session of each process not started
	// by the runtime itself (those open their own, as the agent sees it); nil on
	// a host.
	sessions map[string]string
}

// sessionOf says which session process p of the place belongs to, as the agent
// would stamp it.
func (pl *place) sessionOf(p *kubetrail.Process) string {
	if pl.sessions == nil {
		return ""
	}
	if s, ok := pl.sessions[p.ExecID]; ok {
		return s
	}
	return p.ExecID
}

// workload is one Deployment, StatefulSet, DaemonSet or CronJob.
type workload struct {
	spec
	key     string // namespace/name
	repo    string
	tag     string
	version [3]int // parsed tag for rollouts, when it is a plain x.y.z
	hash    string // current pod-template-hash (Deployments)
	svc     *service
	pods    []*pod // alive (not yet deleted), in creation order
	ready   []*pod // receiving traffic
	files   [][]string
	spawns  []spawnVariant
	egress  []hostPort
	edges   []*edge // calls it makes
	nextOrd int     // StatefulSet ordinal
	rollout bool    // a rolling update is in progress
}

type spawnVariant struct {
	cmd    cmd
	writes string
}

type hostPort struct {
	ip   string
	port int64
}

type service struct {
	ns, name string
	uid      string
	ip       string
	port     int64
	w        *workload
	slice    string // name of its EndpointSlice
}

type edge struct {
	from, to *workload
	weight   int
	direct   bool
	api      bool
}

// pod is one pod with its single container.
type pod struct {
	w         *workload
	name, uid string
	ip        string
	ipByte    int
	node      *node
	created   int64
	ready     bool
	gone      bool // terminating or deleted: no more activity
	cid       string
	sandbox   string
	tag       string
	at        place // the container, its main process as the template's process
	shim      kubetrail.Process
	logPath   string // the container log containerd writes on the host
	ordinal   int
}

// cluster is the whole topology and its state.
type cluster struct {
	name      string
	nodes     []*node
	workloads []*workload
	byKey     map[string]*workload // lookups while building only; never iterated
	services  []*service
	edges     []*edge
	dnsSvc    *service
	apiSvc    *service
}

// Names: Kubernetes' random suffixes use this alphabet (no vowels, no look-alikes).
const k8sAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func k8sSuffix(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = k8sAlphabet[r.IntN(len(k8sAlphabet))]
	}
	return string(b)
}

const hexDigits = "0123456789abcdef"

func randHex(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := 0; i < n; i += 16 {
		v := r.Uint64()
		for j := i; j < n && j < i+16; j++ {
			b[j] = hexDigits[v&15]
			v >>= 4
		}
	}
	return string(b)
}

// uuid returns a random (version 4) UUID drawn from r.
func uuid(r *rand.Rand) string {
	var b [36]byte
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	v := [2]uint64{hi, lo}
	j := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[j] = '-'
			j++
		}
		w := v[i/16]
		b[j] = hexDigits[(w>>(60-4*uint(i%16)))&15]
		j++
	}
	return string(b[:])
}

// comm is the process name agents report: the executed file's base name, or the
// name a program goes by when it is started through a symlink or an interpreter
// (a gunicorn script runs python, sh is dash).
func comm(c cmd) string {
	if c.name != "" {
		return c.name
	}
	return path.Base(c.exe)
}

func splitImage(image string) (repo, tag string) {
	i := strings.LastIndexByte(image, ':')
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, "latest"
	}
	return image[:i], image[i+1:]
}

// parseVersion reads "1.8.2" or "v1.8.2"; ok is false for other tags.
func parseVersion(tag string) (v [3]int, ok bool) {
	parts := strings.Split(strings.TrimPrefix(tag, "v"), ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

// expand replaces each '#' in s by num.
func expand(s string, num string) string {
	if !strings.Contains(s, "#") {
		return s
	}
	return strings.ReplaceAll(s, "#", num)
}

const variants = 8 // how many versions of each varying path or command line are prebuilt

// newCluster builds the topology: nodes, workloads, services and the edges between
// them. Pods are started by the simulator, which owns their history.
func newCluster(name string, start int64, r *rand.Rand) *cluster {
	c := &cluster{name: name, byKey: map[string]*workload{}}
	for i := 0; i < 3; i++ {
		n := &node{
			idx:     i,
			name:    "node-" + strconv.Itoa(i+1),
			uid:     uuid(r),
			ip:      "10.0.1." + strconv.Itoa(11+i),
			boot:    start - int64(3+r.IntN(20))*int64(24*time.Hour) - r.Int64N(int64(time.Hour)),
			nextPID: 2000 + r.Int64N(3000),
			nextIP:  1 + r.IntN(40),
		}
		prefix := "10.244." + strconv.Itoa(i) + "."
		for b := range n.ipStr {
			n.ipStr[b] = prefix + strconv.Itoa(b)
		}
		n.ipUsed[0], n.ipUsed[1], n.ipUsed[255] = true, true, true // network, CNI gateway, broadcast
		n.journalPath = "/var/log/journal/" + randHex(r, 32) + "/system.journal"
		c.nodes = append(c.nodes, n)
	}
	for i := range specs {
		sp := specs[i]
		w := &workload{spec: sp, key: sp.ns + "/" + sp.name}
		w.repo, w.tag = splitImage(sp.image)
		w.version, _ = parseVersion(w.tag)
		if sp.kind == kindDeployment {
			w.hash = k8sSuffix(r, 10)
		}
		for _, f := range sp.files {
			vs := make([]string, variants)
			for k := range vs {
				vs[k] = expand(f, strconv.Itoa(100+r.IntN(90000)))
			}
			w.files = append(w.files, vs)
		}
		for _, sv := range sp.spawn {
			for k := 0; k < variants; k++ {
				num := strconv.Itoa(1000 + r.IntN(900000))
				argv := make([]string, len(sv.argv))
				for j, a := range sv.argv {
					argv[j] = expand(a, num)
				}
				w.spawns = append(w.spawns, spawnVariant{cmd: cmd{exe: sv.exe, argv: argv, name: sv.name}, writes: expand(sv.writes, num)})
			}
		}
		for _, e := range sp.egress {
			host, port, _ := strings.Cut(e, ":")
			p, _ := strconv.Atoi(port)
			w.egress = append(w.egress, hostPort{host, int64(p)})
		}
		c.workloads = append(c.workloads, w)
		c.byKey[w.key] = w
	}

	// Services: the two well-known addresses first, then one per serving workload.
	used := map[string]bool{kubernetesIP: true, kubeDNSIP: true}
	c.apiSvc = &service{ns: "default", name: "kubernetes", uid: uuid(r), ip: kubernetesIP, port: 443}
	c.services = append(c.services, c.apiSvc)
	for _, w := range c.workloads {
		if w.svcPort == 0 {
			continue
		}
		s := &service{ns: w.ns, name: w.name, uid: uuid(r), port: int64(w.svcPort), w: w}
		if w.svcName != "" {
			s.name = w.svcName
		}
		if s.name == "kube-dns" {
			s.ip = kubeDNSIP
			c.dnsSvc = s
		} else {
			for s.ip == "" || used[s.ip] {
				s.ip = "10.96." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(2+r.IntN(252))
			}
		}
		used[s.ip] = true
		s.slice = s.name + "-" + k8sSuffix(r, 5)
		w.svc = s
		c.services = append(c.services, s)
	}

	for _, es := range edgeSpecs {
		e := &edge{from: c.byKey[es.from], weight: es.weight, direct: es.direct}
		if es.to == "api" {
			e.api = true
		} else {
			e.to = c.byKey[es.to]
		}
		if e.from == nil || (!e.api && e.to == nil) {
			panic("simulate: edge names an unknown workload: " + es.from + " -> " + es.to)
		}
		e.from.edges = append(e.from.edges, e)
		c.edges = append(c.edges, e)
	}

	for _, n := range c.nodes {
		c.initHost(n, r)
	}
	return c
}

// newPID hands out the node's next process id. PIDs grow with small gaps, as on a
// busy host where threads take ids too.
func (n *node) newPID(r *rand.Rand) int64 {
	n.nextPID += 1 + r.Int64N(7)
	if n.nextPID > 4194000 { // pid_max wrap
		n.nextPID = 300
	}
	return n.nextPID
}

// execID names one execution uniquely per node boot the way Tetragon-style agents
// do: node, the kernel's monotonic start time, pid.
func (n *node) execID(at int64, pid int64) string {
	var b [64]byte
	s := append(b[:0], n.name...)
	s = append(s, ':')
	s = strconv.AppendInt(s, at-n.boot, 10)
	s = append(s, ':')
	s = strconv.AppendInt(s, pid, 10)
	return string(s)
}

// hostProc describes a process that was running on the host before the simulation.
func (n *node) hostProc(c cmd, pid int64, parent *kubetrail.Process, started int64, uid int64, user string) kubetrail.Process {
	p := kubetrail.Process{
		Name: comm(c), ExePath: c.exe, Argv: c.argv, PID: pid, Cwd: "/",
		UID: uid, UserName: user, GID: uid, LoginUID: -1, ExecID: n.execID(started, pid),
	}
	if parent != nil {
		p.PPID, p.ParentName, p.ParentExecID = parent.PID, parent.Name, parent.ExecID
	}
	return p
}

func (c *cluster) initHost(n *node, r *rand.Rand) {
	boot := n.boot
	n.systemd = n.hostProc(cmd{exe: "/usr/lib/systemd/systemd", argv: []string{"/sbin/init"}, name: "systemd"}, 1, nil, boot, 0, "root")
	n.journald = n.hostProc(cmd{exe: "/usr/lib/systemd/systemd-journald", argv: []string{"/usr/lib/systemd/systemd-journald"}}, 300+r.Int64N(100), &n.systemd, boot+2e9, 0, "root")
	n.sshd = n.hostProc(cmd{exe: "/usr/sbin/sshd", argv: []string{"/usr/sbin/sshd", "-D"}}, 700+r.Int64N(100), &n.systemd, boot+6e9, 0, "root")
	n.containerd = n.hostProc(cmd{exe: "/usr/bin/containerd", argv: []string{"/usr/bin/containerd"}}, 900+r.Int64N(100), &n.systemd, boot+7e9, 0, "root")
	n.kubelet = n.hostProc(cmd{exe: "/usr/bin/kubelet", argv: []string{"/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml", "--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--container-runtime-endpoint=unix:///run/containerd/containerd.sock", "--node-ip=" + n.ip}}, 1100+r.Int64N(100), &n.systemd, boot+9e9, 0, "root")
	n.host = place{ip: n.ip, node: n, tmpl: kubetrail.Event{
		Cluster: c.name, Node: n.name, Result: "SUCCESS", Process: n.kubelet,
	}}
}
