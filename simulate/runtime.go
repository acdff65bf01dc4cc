package simulate

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/kubetrail/kubetrail"
)

// Runtime events: what the node agents see. Everything here is on the hot path of
// benchmarks, so events are made by copying a place's template and setting the few
// fields that change, strings are built once per pod or per variant, and random
// choices are table look-ups.

// activity is one kind of background happening.
type activity uint8

const (
	actEastWest  activity = iota // a service calls another: connect here, accept there
	actDNS                       // a lookup to the cluster DNS service
	actHTTPProbe                 // the kubelet's HTTP probe of a pod
	actIngress                   // a shop visitor through the ingress controller to the web tier
	actScrape                    // Prometheus scrapes a pod or a node exporter
	actFile                      // a process writes one of its files
	actSpawn                     // a workload runs a helper program
	actHost                      // the node itself: container logs, journald, kubelet
	actEgress                    // a workload calls its partner outside the cluster
)

// mixWeights sum to 256 so that one byte of randomness picks an activity.
var mixWeights = [...]struct {
	a activity
	w int
}{
	{actEastWest, 84}, {actDNS, 24}, {actHTTPProbe, 20}, {actIngress, 14}, {actScrape, 10},
	{actFile, 56}, {actSpawn, 26}, {actHost, 18}, {actEgress, 4},
}

// pickers are the lists background activity draws from. They only hold pods that
// are ready (so already announced in the inventory) and not terminating; they are
// rebuilt whenever a pod changes state, which is rare next to their use.
type pickers struct {
	dirty      bool
	mix        [256]activity
	edgeTable  []*edge
	dnsClients []*pod
	writers    []*pod
	spawners   []*pod
	httpProbed []*pod
	scrapeable []*pod
	egressPods []*pod

	ingress, web, prometheus, coredns, nodeExporter *workload
}

func (s *sim) buildPickers() {
	i := 0
	for _, m := range mixWeights {
		for k := 0; k < m.w; k++ {
			s.mix[i] = m.a
			i++
		}
	}
	if i != 256 {
		panic("simulate: activity weights must sum to 256")
	}
	for _, e := range s.c.edges {
		for k := 0; k < e.weight; k++ {
			s.edgeTable = append(s.edgeTable, e)
		}
	}
	s.ingress = s.c.byKey["ingress-nginx/ingress-nginx-controller"]
	s.web = s.c.byKey["frontend/web"]
	s.prometheus = s.c.byKey["monitoring/prometheus-server"]
	s.coredns = s.c.byKey["kube-system/coredns"]
	s.nodeExporter = s.c.byKey["monitoring/node-exporter"]
	s.refreshPickers()
}

func (s *sim) refreshPickers() {
	s.dirty = false
	p := &s.pickers
	p.dnsClients, p.writers, p.spawners = p.dnsClients[:0], p.writers[:0], p.spawners[:0]
	p.httpProbed, p.scrapeable, p.egressPods = p.httpProbed[:0], p.scrapeable[:0], p.egressPods[:0]
	for _, w := range s.c.workloads {
		for _, pd := range w.ready {
			if !w.hostNetwork {
				p.dnsClients = append(p.dnsClients, pd)
				if w.port != 0 {
					p.scrapeable = append(p.scrapeable, pd)
				}
			}
			if len(w.files) > 0 {
				p.writers = append(p.writers, pd)
			}
			if len(w.spawns) > 0 {
				p.spawners = append(p.spawners, pd)
			}
			if w.httpProbe {
				p.httpProbed = append(p.httpProbed, pd)
			}
			if len(w.egress) > 0 {
				p.egressPods = append(p.egressPods, pd)
			}
		}
	}
}

func pick[T any](r *rand.Rand, list []T) (T, bool) {
	if len(list) == 0 {
		var zero T
		return zero, false
	}
	return list[r.IntN(len(list))], true
}

// ephemeral draws a client port from Linux's default ephemeral range.
func ephemeral(r *rand.Rand) int64 { return 32768 + r.Int64N(60999-32768) }

// hop is how long after a connect the peer's accept happens: a fraction of a
// millisecond inside a cluster.
func hop(r *rand.Rand) int64 { return 40_000 + r.Int64N(400_000) }

// background plays one background happening at time at and returns how many events
// it made (at least one).
func (s *sim) background(at int64) int {
	if s.dirty {
		s.refreshPickers()
	}
	n := 0
	switch s.mix[s.act.Uint64()&255] {
	case actEastWest:
		n = s.eastWest(at)
	case actDNS:
		n = s.dnsLookup(at)
	case actHTTPProbe:
		n = s.httpProbe(at)
	case actIngress:
		n = s.visit(at)
	case actScrape:
		n = s.scrape(at)
	case actFile:
		n = s.fileWrite(at)
	case actSpawn:
		n = s.spawnHelper(at)
	case actEgress:
		n = s.egress(at)
	}
	if n == 0 {
		n = s.hostActivity(at)
	}
	return n
}

// connect records an outbound connection from pl (by process p, or the place's
// main process when p is nil) and returns its event.
func (s *sim) connect(pl *place, p *kubetrail.Process, at int64, proto string, cport int64, sip string, sport int64) *kubetrail.Event {
	e := s.emit(pl, at, kubetrail.CategoryNetwork, "connect")
	if p != nil {
		s.setProcess(pl, e, p)
	}
	e.Network = kubetrail.Network{L4Proto: proto, Direction: kubetrail.DirectionOutbound,
		ClientIP: pl.ip, ClientPort: cport, ServerIP: sip, ServerPort: sport}
	return e
}

// accept records an inbound connection at pl.
func (s *sim) accept(pl *place, p *kubetrail.Process, at int64, cip string, cport int64, sport int64) {
	e := s.emit(pl, at, kubetrail.CategoryNetwork, "accept")
	if p != nil {
		s.setProcess(pl, e, p)
	}
	e.Network = kubetrail.Network{L4Proto: "tcp", Direction: kubetrail.DirectionInbound,
		ClientIP: cip, ClientPort: cport, ServerIP: pl.ip, ServerPort: sport}
}

// fileOp records a change to a file at pl.
func (s *sim) fileOp(pl *place, p *kubetrail.Process, at int64, typ, path string) {
	e := s.emit(pl, at, kubetrail.CategoryFile, typ)
	if p != nil {
		s.setProcess(pl, e, p)
	}
	e.File.Path = path
}

// newProc makes the process that parent starts by executing c on node n.
func newProc(n *node, r *rand.Rand, at int64, parent *kubetrail.Process, c cmd, uid int64, user, cwd string, tty int64) kubetrail.Process {
	pid := n.newPID(r)
	return kubetrail.Process{
		Name: comm(c), ExePath: c.exe, Argv: c.argv, PID: pid, PPID: parent.PID, ParentName: parent.Name,
		Cwd: cwd, TTY: tty, UID: uid, UserName: user, LoginUID: -1, GID: uid,
		ExecID: n.execID(at, pid), ParentExecID: parent.ExecID,
	}
}

// exec records the start of process p at pl.
func (s *sim) exec(pl *place, at int64, p *kubetrail.Process) {
	e := s.emit(pl, at, kubetrail.CategoryProcess, "execve")
	s.setProcess(pl, e, p)
}

// exit records that process p at pl ended with code.
func (s *sim) exit(pl *place, at int64, p *kubetrail.Process, code int64) {
	e := s.emit(pl, at, kubetrail.CategoryProcess, "exit")
	s.setProcess(pl, e, p)
	e.Process.ExitCode = code
}

// setProcess makes p the acting process of e, with its session.
func (s *sim) setProcess(pl *place, e *kubetrail.Event, p *kubetrail.Process) {
	e.Process = *p
	e.SessionID = pl.sessionOf(p)
}

// execIn starts c in pod pd's container as a child of parent. A child of the
// shim opens a session; any other joins its parent's.
func (s *sim) execIn(pd *pod, r *rand.Rand, at int64, parent *kubetrail.Process, c cmd, tty int64) kubetrail.Process {
	w := pd.w
	p := newProc(pd.node, r, at, parent, c, w.uid, w.user, w.cwd, tty)
	if parent.ExecID != pd.shim.ExecID {
		pd.at.sessions[p.ExecID] = pd.at.sessionOf(parent)
	}
	s.exec(&pd.at, at, &p)
	return p
}

func (s *sim) eastWest(at int64) int {
	e, ok := pick(s.act, s.edgeTable)
	if !ok {
		return 0
	}
	cl, ok := pick(s.act, e.from.ready)
	if !ok {
		return 0
	}
	cport := ephemeral(s.act)
	if e.api {
		// In-cluster clients of the API server reach it through the kubernetes
		// Service; the server end is the control plane, which has no agent.
		s.connect(&cl.at, nil, at, "tcp", cport, s.c.apiSvc.ip, s.c.apiSvc.port)
		return 1
	}
	srv, ok := pick(s.act, e.to.ready)
	if !ok {
		return 0
	}
	sip, sport := srv.ip, int64(e.to.port)
	if !e.direct && e.to.svc != nil {
		// Through the Service: the client dials the cluster IP, kube-proxy rewrites it
		// to the chosen pod, whose accept sees the client's own address.
		sip, sport = e.to.svc.ip, e.to.svc.port
	}
	ev := s.connect(&cl.at, nil, at, "tcp", cport, sip, sport)
	if s.act.IntN(400) == 0 {
		ev.Result = "ECONNREFUSED" // a pod restarting its listener; no accept follows
		return 1
	}
	s.accept(&srv.at, nil, at+hop(s.act), cl.ip, cport, int64(e.to.port))
	return 2
}

func (s *sim) dnsLookup(at int64) int {
	cl, ok := pick(s.act, s.dnsClients)
	if !ok || s.c.dnsSvc == nil {
		return 0
	}
	s.connect(&cl.at, nil, at, "udp", ephemeral(s.act), s.c.dnsSvc.ip, 53)
	if s.act.IntN(8) != 0 {
		return 1
	}
	// A cache miss: CoreDNS forwards to the VPC resolver, outside the cluster.
	dns, ok := pick(s.act, s.coredns.ready)
	if !ok {
		return 1
	}
	s.connect(&dns.at, nil, at+hop(s.act), "udp", ephemeral(s.act), vpcResolverIP, 53)
	return 2
}

func (s *sim) httpProbe(at int64) int {
	pd, ok := pick(s.act, s.httpProbed)
	if !ok {
		return 0
	}
	// The kubelet probes from the host: a node-to-pod connection.
	n := pd.node
	cport := ephemeral(s.act)
	s.connect(&n.host, nil, at, "tcp", cport, pd.ip, int64(pd.w.port))
	s.accept(&pd.at, nil, at+hop(s.act), n.ip, cport, int64(pd.w.port))
	return 2
}

func (s *sim) visit(at int64) int {
	ing, ok := pick(s.act, s.ingress.ready)
	if !ok {
		return 0
	}
	web, ok := pick(s.act, s.web.ready)
	if !ok {
		return 0
	}
	client := s.internet[s.act.IntN(len(s.internet))]
	s.accept(&ing.at, nil, at, client, ephemeral(s.act), int64(ing.w.port))
	cport := ephemeral(s.act)
	at += hop(s.act)
	s.connect(&ing.at, nil, at, "tcp", cport, web.ip, int64(web.w.port))
	s.accept(&web.at, nil, at+hop(s.act), ing.ip, cport, int64(web.w.port))
	return 3
}

func (s *sim) scrape(at int64) int {
	prom, ok := pick(s.act, s.prometheus.ready)
	if !ok {
		return 0
	}
	var target *pod
	if s.act.IntN(4) == 0 {
		// A node exporter, which listens on the node's own address.
		n := s.c.nodes[s.act.IntN(len(s.c.nodes))]
		for _, pd := range s.nodeExporter.ready {
			if pd.node == n {
				target = pd
			}
		}
	} else {
		target, _ = pick(s.act, s.scrapeable)
	}
	if target == nil {
		return 0
	}
	cport := ephemeral(s.act)
	s.connect(&prom.at, nil, at, "tcp", cport, target.ip, int64(target.w.port))
	s.accept(&target.at, nil, at+hop(s.act), prom.ip, cport, int64(target.w.port))
	return 2
}

func (s *sim) fileWrite(at int64) int {
	pd, ok := pick(s.act, s.writers)
	if !ok {
		return 0
	}
	files := pd.w.files[s.act.IntN(len(pd.w.files))]
	s.fileOp(&pd.at, nil, at, "open", files[s.act.IntN(len(files))])
	return 1
}

func (s *sim) spawnHelper(at int64) int {
	pd, ok := pick(s.act, s.spawners)
	if !ok {
		return 0
	}
	v := &pd.w.spawns[s.act.IntN(len(pd.w.spawns))]
	p := s.execIn(pd, s.act, at, &pd.at.tmpl.Process, v.cmd, 0)
	if v.writes == "" {
		return 1
	}
	s.fileOp(&pd.at, &p, at+hop(s.act), "open", v.writes)
	return 2
}

func (s *sim) egress(at int64) int {
	pd, ok := pick(s.act, s.egressPods)
	if !ok {
		return 0
	}
	hp := pd.w.egress[s.act.IntN(len(pd.w.egress))]
	s.connect(&pd.at, nil, at, "tcp", ephemeral(s.act), hp.ip, hp.port)
	return 1
}

// hostActivity is what a node does by itself: containerd writing container logs,
// journald, the kubelet talking to the API server. It always makes one event, so it
// is also the fallback when an activity finds no pod to play it.
func (s *sim) hostActivity(at int64) int {
	n := s.c.nodes[s.act.IntN(len(s.c.nodes))]
	switch r := s.act.IntN(20); {
	case r < 12 && len(n.pods) > 0:
		pd := n.pods[s.act.IntN(len(n.pods))]
		s.fileOp(&n.host, &n.containerd, at, "open", pd.logPath)
	case r < 17:
		s.fileOp(&n.host, &n.journald, at, "open", n.journalPath)
	default:
		s.connect(&n.host, nil, at, "tcp", ephemeral(s.act), apiServerIP, 6443)
	}
	return 1
}

// startProbes schedules the exec liveness probe of a pod: every 10 s the runtime
// starts the probe command in the container, as a child of the shim.
func (s *sim) startProbes(pd *pod, first int64) {
	if len(pd.w.probe) == 0 {
		return
	}
	s.every(first, 10*time.Second, 0, nil, func(at int64) bool {
		if pd.gone {
			return false
		}
		parent := &pd.shim
		for _, c := range pd.w.probe {
			p := s.execIn(pd, s.act, at, parent, c, 0)
			parent = &p
			at += 1_500_000 // the child starts a millisecond or two later
		}
		return true
	})
}

// publicIP draws an address for a visitor of the shop: public unicast, outside
// the documentation and private ranges, and never the incident's.
func publicIP(r *rand.Rand) string {
	for {
		a := 1 + r.IntN(223)
		switch a {
		case 10, 100, 127, 169, 172, 185, 192, 198, 203:
			continue
		}
		return strconv.Itoa(a) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
	}
}
