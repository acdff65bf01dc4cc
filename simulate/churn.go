package simulate

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// Pods coming and going: the initial pods, rolling updates, CronJob runs. Every pod
// that gets an address is announced in its node's inventory before anything uses
// the address, and announced deleted when the address is free again.

// Timing of a pod's life, from the kubelet's point of view.
const (
	containerStartMin = 600 * time.Millisecond // sandbox, image already cached, container start
	containerStartMax = 2500 * time.Millisecond
	readyMin          = 3 * time.Second // readiness probe passes; traffic only after this
	readyMax          = 9 * time.Second
)

// frozen workloads are never rolled during the simulation, so that the incident's
// pods (named in IncidentInfo before the run) are the initial ones.
var frozen = map[string]bool{"billing/invoice-api": true, "payments/ledger": true}

func span(r *rand.Rand, lo, hi time.Duration) int64 {
	return int64(lo) + r.Int64N(int64(hi-lo)+1)
}

// leastLoaded picks the node with the fewest pods, ties at random: roughly what the
// default scheduler's spreading does for a cluster this size.
func (c *cluster) leastLoaded(r *rand.Rand) *node {
	best := c.nodes[0]
	ties := 1
	for _, n := range c.nodes[1:] {
		switch {
		case len(n.pods) < len(best.pods):
			best, ties = n, 1
		case len(n.pods) == len(best.pods):
			ties++
			if r.IntN(ties) == 0 {
				best = n
			}
		}
	}
	return best
}

// allocIP hands out the next free address of the node's pod CIDR, going round: a
// freed address is reused only after the others, as host-local IPAM does.
func (n *node) allocIP() int {
	for range 254 {
		n.nextIP++
		if n.nextIP > 254 {
			n.nextIP = 2
		}
		if !n.ipUsed[n.nextIP] {
			n.ipUsed[n.nextIP] = true
			return n.nextIP
		}
	}
	panic("simulate: pod CIDR of " + n.name + " is full")
}

// newPod creates a pod of w on n at time at (its sandbox and address) and announces
// it. started is when its main process was executed (before the simulation for the
// initial pods). jobName names the Job of a CronJob pod.
func (s *sim) newPod(w *workload, n *node, at, started int64, r *rand.Rand, jobName string) *pod {
	pd := &pod{w: w, node: n, created: at, uid: uuid(r), tag: w.tag}
	switch w.kind {
	case kindDeployment:
		pd.name = w.name + "-" + w.hash + "-" + k8sSuffix(r, 5)
	case kindStatefulSet:
		pd.ordinal = w.nextOrd
		w.nextOrd++
		pd.name = w.name + "-" + strconv.Itoa(pd.ordinal)
	case kindCronJob:
		pd.name = jobName + "-" + k8sSuffix(r, 5)
	default:
		pd.name = w.name + "-" + k8sSuffix(r, 5)
	}
	pd.cid = randHex(r, 64)
	pd.sandbox = randHex(r, 64)
	if w.hostNetwork {
		pd.ip = n.ip
	} else {
		pd.ipByte = n.allocIP()
		pd.ip = n.ipStr[pd.ipByte]
	}
	pd.logPath = "/var/log/pods/" + w.ns + "_" + pd.name + "_" + pd.uid + "/" + w.container + "/0.log"

	// The shim that runs the pod's containers, and the container's main process. The
	// shim goes by its kernel name, containerd-shim (its file name cut to 15 bytes),
	// as agents show it as the parent of every container process.
	shimPID := n.newPID(r)
	pd.shim = kubetrail.Process{
		Name: "containerd-shim", ExePath: "/usr/bin/containerd-shim-runc-v2",
		Argv: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", pd.sandbox, "-address", "/run/containerd/containerd.sock"},
		PID:  shimPID, PPID: n.containerd.PID, ParentName: n.containerd.Name, ParentExecID: n.containerd.ExecID,
		Cwd: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + pd.sandbox, LoginUID: -1,
		ExecID: n.execID(started-int64(400*time.Millisecond), shimPID),
	}
	main := newProc(n, r, started, &pd.shim, w.main, w.uid, w.user, w.cwd, 0)
	kind, wname := w.kind, w.name
	pd.at = place{ip: pd.ip, node: n, sessions: map[string]string{}, tmpl: kubetrail.Event{
		Stream: n.stream.name, Cluster: s.cfg.Cluster, Node: n.name, Result: "SUCCESS",
		Namespace: w.ns, WorkloadKind: kind, WorkloadName: wname, PodName: pd.name, PodUID: pd.uid,
		ContainerID: pd.cid, ContainerName: w.container, ImageRepository: w.repo, ImageTag: pd.tag,
		Process: main, SessionID: main.ExecID, // the runtime started it: the container's own session
	}}

	w.pods = append(w.pods, pd)
	n.pods = append(n.pods, pd)
	s.observe(n, kubetrail.InventoryObject{Time: time.Unix(0, at).UTC(), Kind: kubetrail.ObjectPod,
		Namespace: w.ns, Name: pd.name, UID: pd.uid, IPs: []string{pd.ip}, Node: n.name,
		WorkloadKind: kind, WorkloadName: wname})
	return pd
}

func (s *sim) setReady(pd *pod) {
	if pd.gone || pd.ready {
		return
	}
	pd.ready = true
	pd.w.ready = append(pd.w.ready, pd)
	s.dirty = true
}

// startInitialPods creates the pods running when the history starts. They were
// started hours to days before, so their processes' exec ids say so, but nothing of
// their start is played.
func (s *sim) startInitialPods() {
	r := s.topo
	for _, w := range s.c.workloads {
		switch w.kind {
		case kindDaemonSet:
			for _, n := range s.c.nodes {
				s.initialPod(w, n, r)
			}
		case kindDeployment, kindStatefulSet:
			for range w.replicas {
				s.initialPod(w, s.c.leastLoaded(r), r)
			}
		}
	}
}

func (s *sim) initialPod(w *workload, n *node, r *rand.Rand) {
	started := s.start - int64(time.Hour) - r.Int64N(int64(72*time.Hour))
	if started < n.boot {
		started = n.boot + int64(time.Minute)
	}
	pd := s.newPod(w, n, s.start, started, r, "")
	s.setReady(pd)
	s.startProbes(pd, s.start+r.Int64N(int64(10*time.Second)))
}

// initialInventory queues what the agents report when they start: their node, and
// (on the first node, which holds the cluster-wide watch) every Service. The pods
// were queued as they were created.
func (s *sim) initialInventory() {
	t := time.Unix(0, s.start).UTC()
	for i, n := range s.c.nodes {
		objs := []kubetrail.InventoryObject{{Time: t, Cluster: s.cfg.Cluster, Kind: kubetrail.ObjectNode, Name: n.name, UID: n.uid, IPs: []string{n.ip}}}
		if i == 0 {
			for _, sv := range s.c.services {
				objs = append(objs, kubetrail.InventoryObject{Time: t, Cluster: s.cfg.Cluster, Kind: kubetrail.ObjectService,
					Namespace: sv.ns, Name: sv.name, UID: sv.uid, IPs: []string{sv.ip}})
			}
		}
		n.stream.inv = append(objs, n.stream.inv...)
	}
}

// launch creates a new pod and plays its start: the kubelet mounts its volumes, the
// runtime starts the shim and the container's entrypoint, the readiness probe
// passes. onReady runs when it receives traffic.
func (s *sim) launch(w *workload, at int64, jobName string, creator *principal, onReady func(pd *pod, at int64)) *pod {
	r := s.churn
	n := s.c.leastLoaded(r)
	startAt := at + span(r, containerStartMin, containerStartMax)
	pd := s.newPod(w, n, at, startAt, r, jobName)
	s.apiPodCreated(pd, at, creator)

	// The kubelet sets up the pod's projected service account token volume.
	mount := newProc(n, r, at+int64(150*time.Millisecond), &n.kubelet, cmd{exe: "/usr/bin/mount", argv: []string{"mount", "-t", "tmpfs", "-o", "size=4G",
		"tmpfs", "/var/lib/kubelet/pods/" + pd.uid + "/volumes/kubernetes.io~projected/kube-api-access-" + k8sSuffix(r, 5)}}, 0, "root", "/", 0)
	s.after(at+int64(150*time.Millisecond), func(at int64) { s.exec(&n.host, at, &mount) })

	// The shim's exec id was made for this moment when the pod was created.
	s.after(startAt-int64(400*time.Millisecond), func(at int64) { s.exec(&n.host, at, &pd.shim) })
	s.after(startAt, func(at int64) {
		if pd.gone {
			return
		}
		s.exec(&pd.at, at, &pd.at.tmpl.Process) // the container's entrypoint
		s.apiPodStatus(pd, at)
	})
	s.startProbes(pd, startAt+span(r, 2*time.Second, 10*time.Second))
	readyAt := startAt + span(r, readyMin, readyMax)
	s.after(readyAt, func(at int64) {
		if pd.gone {
			return
		}
		s.setReady(pd)
		s.apiPodStatus(pd, at)
		s.endpointsChanged(pd, at)
		if onReady != nil {
			onReady(pd, at)
		}
	})
	return pd
}

// terminate takes a pod out of service at at and deletes it after its grace
// period: the endpoints drop it first, its activity stops, then the sandbox goes and
// with it the address.
func (s *sim) terminate(pd *pod, at int64, grace time.Duration, deleter *principal) {
	if pd.gone {
		return
	}
	pd.gone = true
	if pd.ready {
		pd.ready = false
		pd.w.ready = remove(pd.w.ready, pd)
		s.dirty = true
		s.endpointsChanged(pd, at)
	}
	if deleter != nil {
		s.apiPodDeleted(pd, at, deleter)
	}
	s.after(at+int64(grace), func(at int64) {
		n := pd.node
		pd.w.pods = remove(pd.w.pods, pd)
		n.pods = remove(n.pods, pd)
		s.dirty = true
		if !pd.w.hostNetwork {
			n.ipUsed[pd.ipByte] = false
		}
		s.observe(n, kubetrail.InventoryObject{Time: time.Unix(0, at).UTC(), Kind: kubetrail.ObjectPod,
			Namespace: pd.w.ns, Name: pd.name, UID: pd.uid, IPs: []string{pd.ip}, Node: n.name,
			WorkloadKind: pd.w.kind, WorkloadName: pd.w.name, Deleted: true})
		s.apiPodGone(pd, at)
	})
}

func remove(list []*pod, pd *pod) []*pod {
	for i, p := range list {
		if p == pd {
			// Copy rather than shift in place: the pickers may hold the old backing array.
			out := make([]*pod, 0, len(list)-1)
			out = append(out, list[:i]...)
			return append(out, list[i+1:]...)
		}
	}
	return list
}

// endpointsChanged is kube-proxy reacting to a Service's endpoints changing: on every
// node it rewrites the iptables rules.
func (s *sim) endpointsChanged(pd *pod, at int64) {
	if pd.w.svc == nil {
		return
	}
	s.apiEndpoints(pd, at)
	kp := s.c.byKey["kube-system/kube-proxy"]
	for _, proxy := range kp.ready {
		t := at + span(s.churn, 20*time.Millisecond, 900*time.Millisecond)
		s.after(t, func(at int64) {
			if proxy.gone {
				return
			}
			s.execIn(proxy, s.churn, at, &proxy.at.tmpl.Process, iptablesRestore, 0)
		})
	}
}

var iptablesRestore = cmd{exe: "/usr/sbin/xtables-nft-multi", name: "iptables-restore",
	argv: []string{"iptables-restore", "-w", "5", "-W", "100000", "--noflush", "--counters"}}

// planChurn schedules rolling updates and CronJob runs.
func (s *sim) planChurn() {
	r := s.churn
	s.after(s.start+span(r, 12*time.Minute, 35*time.Minute), s.rollout)
	for _, w := range s.c.workloads {
		if w.kind != kindCronJob {
			continue
		}
		every := int64(w.every)
		first := (s.start/every + 1) * every // schedules fire on the wall-clock boundary
		s.every(first, w.every, 0, nil, func(at int64) bool {
			s.runJob(w, at)
			return true
		})
	}
}

// rollout is the CI bot shipping a new patch release of one deployment: the
// Deployment is patched, a new ReplicaSet scales up one pod at a time (maxSurge 1,
// maxUnavailable 0) while the old one scales down.
func (s *sim) rollout(at int64) {
	r := s.churn
	defer s.after(at+span(r, 30*time.Minute, 80*time.Minute), s.rollout)
	var candidates []*workload
	for _, w := range s.c.workloads {
		// CI ships the first-party images; vendors' images change by hand, rarely.
		if w.kind == kindDeployment && !frozen[w.key] && !w.rollout && strings.HasPrefix(w.repo, "registry.example.com/") && w.version != [3]int{} {
			candidates = append(candidates, w)
		}
	}
	w, ok := pick(r, candidates)
	if !ok {
		return
	}
	w.rollout = true
	w.version[2]++
	prefix := ""
	if w.tag != "" && w.tag[0] == 'v' {
		prefix = "v"
	}
	w.tag = prefix + strconv.Itoa(w.version[0]) + "." + strconv.Itoa(w.version[1]) + "." + strconv.Itoa(w.version[2])
	w.hash = k8sSuffix(r, 10)
	finish := s.apiRolloutStarted(w, at)

	old := append([]*pod(nil), w.pods...)
	var step func(at int64)
	step = func(at int64) {
		if len(old) == 0 {
			w.rollout = false
			finish(at + span(r, 500*time.Millisecond, 2*time.Second))
			return
		}
		s.launch(w, at, "", s.api.replicaSetController, func(_ *pod, at int64) {
			victim := old[0]
			old = old[1:]
			s.terminate(victim, at+span(r, 50*time.Millisecond, 300*time.Millisecond), spanDur(r, 2*time.Second, 25*time.Second), s.api.replicaSetController)
			s.after(at+span(r, 1*time.Second, 3*time.Second), step)
		})
	}
	s.after(at+span(r, 300*time.Millisecond, 1200*time.Millisecond), step)
}

func spanDur(r *rand.Rand, lo, hi time.Duration) time.Duration { return time.Duration(span(r, lo, hi)) }

// runJob is one CronJob run: the Job is created a moment after the schedule, its pod
// does its work and exits, and its address is freed.
func (s *sim) runJob(w *workload, scheduled int64) {
	r := s.churn
	at := scheduled + span(r, 200*time.Millisecond, 1500*time.Millisecond)
	// The CronJob controller names Jobs after the scheduled time in minutes.
	jobName := w.name + "-" + strconv.FormatInt(scheduled/int64(time.Minute), 10)
	s.apiJobCreated(w, jobName, at)
	life := span(r, w.runFor[0], w.runFor[1])
	s.launch(w, at+int64(40*time.Millisecond), jobName, s.api.jobController, func(pd *pod, readyAt int64) {
		s.jobScript(pd, readyAt)
		s.after(pd.created+life, func(at int64) {
			s.terminate(pd, at, spanDur(r, 500*time.Millisecond, 2*time.Second), nil)
			s.apiJobFinished(w, jobName, at)
		})
	})
}

// jobScript plays what a job does besides the background calls of its workload:
// the backup dumps, compresses and uploads.
func (s *sim) jobScript(pd *pod, at int64) {
	w := pd.w
	r := s.churn
	if len(w.spawns) == 0 {
		return
	}
	v := r.IntN(variants)
	life := w.runFor[0]
	for i := 0; i < len(w.spawns)/variants; i++ {
		sp := w.spawns[i*variants+v]
		t := at + int64(i)*int64(life)/3 + span(r, time.Second, 5*time.Second)
		s.after(t, func(at int64) {
			if pd.gone {
				return
			}
			p := s.execIn(pd, r, at, &pd.at.tmpl.Process, sp.cmd, 0)
			if i == 0 && w.name == "postgres-backup" {
				if pg, ok := pick(r, s.c.byKey["data/postgres"].ready); ok {
					cport := ephemeral(r)
					s.connect(&pd.at, &p, at+hop(r), "tcp", cport, pg.ip, 5432)
					s.accept(&pg.at, nil, at+2*hop(r), pd.ip, cport, 5432)
				}
			}
			s.fileOp(&pd.at, &p, at+int64(3*time.Millisecond), "open", sp.writes)
		})
	}
	if len(w.egress) > 0 {
		s.after(at+int64(life)*3/4, func(at int64) {
			if pd.gone {
				return
			}
			hp := w.egress[0]
			s.connect(&pd.at, nil, at, "tcp", ephemeral(r), hp.ip, hp.port)
		})
	}
}
