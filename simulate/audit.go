package simulate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// API traffic as kube-apiserver 1.33's audit webhook reports it: the kubelets'
// leases, node and pod status, the control plane's leader election and
// controllers, in-cluster clients' watches, the CI bot shipping releases and
// people running kubectl. The audit policy the simulated cluster runs is a common
// one: Metadata level, RequestResponse for pods/exec; RequestReceived kept only for
// writes (other than leases) and long-running requests, whose ResponseComplete
// arrives in a later webhook batch.

// kubeVersion is the build of every Kubernetes binary in the cluster.
const kubeVersion = "v1.33.1 (linux/amd64) kubernetes/8adc0f0"

// principal is someone who talks to the API server.
type principal struct {
	user  authnv1.UserInfo
	src   []string  // source addresses, when fixed
	from  *workload // in-cluster clients: the source is one of its pods
	agent string
	allow map[string]string // annotations of an allowed response
}

func annotations(decision, reason string) map[string]string {
	return map[string]string{"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}
}

func rbacReason(kind, binding, roleKind, role, subjectKind, subject string) string {
	return fmt.Sprintf("RBAC: allowed by %s %q of %s %q to %s %q", kind, binding, roleKind, role, subjectKind, subject)
}

// x509 is a user authenticated by a client certificate.
func x509(r *rand.Rand, name string, groups ...string) authnv1.UserInfo {
	return authnv1.UserInfo{Username: name, Groups: append(groups, "system:authenticated"),
		Extra: map[string]authnv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"X509SHA256=" + randHex(r, 64)}}}
}

// serviceAccount is a user authenticated by a service account token.
func serviceAccount(r *rand.Rand, ns, name string) authnv1.UserInfo {
	return authnv1.UserInfo{Username: "system:serviceaccount:" + ns + ":" + name, UID: uuid(r),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		Extra:  map[string]authnv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=" + uuid(r)}}}
}

// apiState holds the API server's side of the simulation.
type apiState struct {
	rv int64 // etcd revision: resourceVersions in watch URIs follow it

	kubelets                                                  []*principal
	controllerManager, scheduler                              *principal
	replicaSetController, deploymentController, jobController *principal
	cronJobController, endpointSliceController                *principal
	ci, alice, fluentBit                                      *principal
	john, bob                                                 *principal
	statusOK, statusCreated, statusSwitching                  *metav1.Status
}

func (s *sim) planAPITraffic() {
	r := s.aud
	a := &s.api
	a.rv = 48_000_000 + r.Int64N(2_000_000)
	a.statusOK = &metav1.Status{Code: 200}
	a.statusCreated = &metav1.Status{Code: 201}
	a.statusSwitching = &metav1.Status{Code: 101}

	cp := []string{apiServerIP} // the control plane's components run beside the API server
	controller := func(name string) *principal {
		return &principal{user: serviceAccount(r, "kube-system", name), src: cp,
			agent: "kube-controller-manager/" + kubeVersion + "/system:serviceaccount:kube-system:" + name,
			allow: annotations("allow", rbacReason("ClusterRoleBinding", "system:controller:"+name, "ClusterRole", "system:controller:"+name, "ServiceAccount", name+"/kube-system"))}
	}
	a.controllerManager = &principal{user: x509(r, "system:kube-controller-manager"), src: cp,
		agent: "kube-controller-manager/" + kubeVersion + "/leader-election",
		allow: annotations("allow", rbacReason("ClusterRoleBinding", "system:kube-controller-manager", "ClusterRole", "system:kube-controller-manager", "User", "system:kube-controller-manager"))}
	a.scheduler = &principal{user: x509(r, "system:kube-scheduler"), src: cp,
		agent: "kube-scheduler/" + kubeVersion + "/scheduler",
		allow: annotations("allow", rbacReason("ClusterRoleBinding", "system:kube-scheduler", "ClusterRole", "system:kube-scheduler", "User", "system:kube-scheduler"))}
	a.replicaSetController = controller("replicaset-controller")
	a.deploymentController = controller("deployment-controller")
	a.jobController = controller("job-controller")
	a.cronJobController = controller("cronjob-controller")
	a.endpointSliceController = controller("endpointslice-controller")
	a.ci = &principal{user: serviceAccount(r, "ci", "deployer"), src: []string{ciRunnerIP},
		agent: "kubectl/" + kubeVersion}
	a.fluentBit = &principal{user: serviceAccount(r, "logging", "fluent-bit"), agent: "fluent-bit/3.1.6",
		allow: annotations("allow", rbacReason("ClusterRoleBinding", "fluent-bit", "ClusterRole", "fluent-bit", "ServiceAccount", "fluent-bit/logging"))}
	a.alice = &principal{user: authnv1.UserInfo{Username: "alice", Groups: []string{"sre", "system:authenticated"}},
		src: []string{"10.8.0.14"}, agent: "kubectl/v1.33.1 (darwin/arm64) kubernetes/8adc0f0",
		allow: annotations("allow", rbacReason("ClusterRoleBinding", "sre-admins", "ClusterRole", "cluster-admin", "Group", "sre"))}
	a.john = &principal{user: authnv1.UserInfo{Username: IncidentUser, Groups: []string{"devs", "system:authenticated"}},
		src: []string{IncidentSourceIP}, agent: "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0"}
	a.bob = &principal{user: authnv1.UserInfo{Username: TcpdumpUser, Groups: []string{"devs", "payments-team", "system:authenticated"}},
		src: []string{"10.8.0.22"}, agent: "kubectl/v1.33.1 (darwin/arm64) kubernetes/8adc0f0",
		allow: annotations("allow", rbacReason("RoleBinding", "payments-team-debug/payments", "Role", "pod-exec", "Group", "payments-team"))}

	// The kubelets: lease every 10 s, node fetch every 10 s, status every minute,
	// and their watches.
	for _, n := range s.c.nodes {
		k := &principal{user: x509(r, "system:node:"+n.name, "system:nodes"), src: []string{n.ip},
			agent: "kubelet/" + kubeVersion, allow: annotations("allow", "")}
		a.kubelets = append(a.kubelets, k)
		leaseURI := "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + n.name + "?timeout=10s"
		leaseRef := &auditv1.ObjectReference{Resource: "leases", Namespace: "kube-node-lease", Name: n.name, APIGroup: "coordination.k8s.io", APIVersion: "v1"}
		s.every(s.start+r.Int64N(int64(10*time.Second)), 10*time.Second, 50*time.Millisecond, r, func(at int64) bool {
			s.call(at, k, "update", leaseURI, leaseRef, a.statusOK)
			return true
		})
		nodeURI := "/api/v1/nodes/" + n.name + "?resourceVersion=0&timeout=10s"
		nodeRef := &auditv1.ObjectReference{Resource: "nodes", Name: n.name, APIVersion: "v1"}
		s.every(s.start+r.Int64N(int64(10*time.Second)), 10*time.Second, 50*time.Millisecond, r, func(at int64) bool {
			s.call(at, k, "get", nodeURI, nodeRef, a.statusOK)
			return true
		})
		statusURI := "/api/v1/nodes/" + n.name + "/status?timeout=10s"
		statusRef := &auditv1.ObjectReference{Resource: "nodes", Name: n.name, APIVersion: "v1", Subresource: "status"}
		s.every(s.start+r.Int64N(int64(time.Minute)), time.Minute, 100*time.Millisecond, r, func(at int64) bool {
			s.call(at, k, "patch", statusURI, statusRef, a.statusOK)
			return true
		})
		s.watchLoop(k, "/api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3D"+n.name, &auditv1.ObjectReference{Resource: "pods", APIVersion: "v1"})
		s.watchLoop(k, "/api/v1/nodes?allowWatchBookmarks=true&fieldSelector=metadata.name%3D"+n.name, &auditv1.ObjectReference{Resource: "nodes", Name: n.name, APIVersion: "v1"})
		s.watchLoop(k, "/api/v1/services?allowWatchBookmarks=true", &auditv1.ObjectReference{Resource: "services", APIVersion: "v1"})
	}

	// Leader election of the control plane: a lease update every 2 s each.
	for _, p := range []*principal{a.controllerManager, a.scheduler} {
		name := "kube-controller-manager"
		if p == a.scheduler {
			name = "kube-scheduler"
		}
		uri := "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + name + "?timeout=5s"
		ref := &auditv1.ObjectReference{Resource: "leases", Namespace: "kube-system", Name: name, APIGroup: "coordination.k8s.io", APIVersion: "v1"}
		leader := *p
		leader.agent = name + "/" + kubeVersion + "/leader-election"
		s.every(s.start+r.Int64N(int64(2*time.Second)), 2*time.Second, 20*time.Millisecond, r, func(at int64) bool {
			s.call(at, &leader, "update", uri, ref, a.statusOK)
			return true
		})
	}

	// In-cluster clients keep watches open and restart them when they time out.
	inCluster := func(key, sa, agent, binding string) *principal {
		w := s.c.byKey[key]
		return &principal{user: serviceAccount(r, w.ns, sa), from: w, agent: agent,
			allow: annotations("allow", rbacReason("ClusterRoleBinding", binding, "ClusterRole", binding, "ServiceAccount", sa+"/"+w.ns))}
	}
	coredns := inCluster("kube-system/coredns", "coredns", "coredns/v1.11.3 (linux/amd64) kubernetes/$Format", "system:coredns")
	ksm := inCluster("monitoring/kube-state-metrics", "kube-state-metrics", "kube-state-metrics/v2.13.0 (linux/amd64) kubernetes/$Format", "kube-state-metrics")
	prom := inCluster("monitoring/prometheus-server", "prometheus-server", "Prometheus/2.53.1", "prometheus-server")
	ingress := inCluster("ingress-nginx/ingress-nginx-controller", "ingress-nginx", "nginx-ingress-controller/v1.11.2 (linux/amd64) ingress-nginx/4d7f1ab", "ingress-nginx")
	watches := []struct {
		p   *principal
		uri string
		ref auditv1.ObjectReference
	}{
		{coredns, "/apis/discovery.k8s.io/v1/endpointslices?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "endpointslices", APIGroup: "discovery.k8s.io", APIVersion: "v1"}},
		{coredns, "/api/v1/services?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "services", APIVersion: "v1"}},
		{coredns, "/api/v1/namespaces?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "namespaces", APIVersion: "v1"}},
		{ksm, "/api/v1/pods?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "pods", APIVersion: "v1"}},
		{ksm, "/apis/apps/v1/deployments?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "deployments", APIGroup: "apps", APIVersion: "v1"}},
		{ksm, "/apis/batch/v1/jobs?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "jobs", APIGroup: "batch", APIVersion: "v1"}},
		{ksm, "/api/v1/nodes?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "nodes", APIVersion: "v1"}},
		{prom, "/api/v1/pods?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "pods", APIVersion: "v1"}},
		{prom, "/apis/discovery.k8s.io/v1/endpointslices?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "endpointslices", APIGroup: "discovery.k8s.io", APIVersion: "v1"}},
		{ingress, "/apis/discovery.k8s.io/v1/endpointslices?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "endpointslices", APIGroup: "discovery.k8s.io", APIVersion: "v1"}},
		{ingress, "/apis/networking.k8s.io/v1/ingresses?allowWatchBookmarks=true", auditv1.ObjectReference{Resource: "ingresses", APIGroup: "networking.k8s.io", APIVersion: "v1"}},
	}
	for i := range watches {
		s.watchLoop(watches[i].p, watches[i].uri, &watches[i].ref)
	}
	leaseRef := &auditv1.ObjectReference{Resource: "leases", Namespace: "ingress-nginx", Name: "ingress-nginx-leader", APIGroup: "coordination.k8s.io", APIVersion: "v1"}
	s.every(s.start+r.Int64N(int64(30*time.Second)), 30*time.Second, 100*time.Millisecond, r, func(at int64) bool {
		s.call(at, ingress, "update", "/apis/coordination.k8s.io/v1/namespaces/ingress-nginx/leases/ingress-nginx-leader", leaseRef, a.statusOK)
		return true
	})

	// An SRE looks around now and then.
	s.every(s.start+span(r, 5*time.Minute, 30*time.Minute), 25*time.Minute, 45*time.Minute, r, func(at int64) bool {
		s.aliceSession(at)
		return true
	})
}

// watchLoop keeps one watch open: each lasts the client's random timeout (5 to 10
// minutes), then the client opens the next from the revision it reached.
func (s *sim) watchLoop(p *principal, base string, ref *auditv1.ObjectReference) {
	r := s.aud
	var open func(at int64)
	open = func(at int64) {
		timeout := 300 + r.IntN(300)
		uri := base + "&resourceVersion=" + strconv.FormatInt(s.api.rv, 10) + "&timeoutSeconds=" + strconv.Itoa(timeout) + "&watch=true"
		req := s.begin(at, p, "watch", uri, ref, s.api.statusOK, true)
		end := at + int64(timeout)*int64(time.Second) + r.Int64N(int64(5*time.Millisecond))
		s.after(end, func(at int64) {
			s.end(req, at)
			s.after(at+span(r, time.Millisecond, 50*time.Millisecond), open)
		})
	}
	s.after(s.start+r.Int64N(int64(5*time.Minute)), open)
}

// request is one API request in flight.
type request struct {
	id       types.UID
	level    auditv1.Level
	verb     string
	uri      string
	who      *principal
	src      []string
	ref      *auditv1.ObjectReference
	status   *metav1.Status
	ann      map[string]string
	received metav1.MicroTime
	long     bool
}

func micro(at int64) metav1.MicroTime { return metav1.NewMicroTime(time.Unix(0, at).UTC()) }

// begin starts a request received at at, recording the stages the policy keeps
// at its start: RequestReceived for writes and long-running requests, and
// ResponseStarted (the response headers) for long-running ones.
func (s *sim) begin(at int64, who *principal, verb, uri string, ref *auditv1.ObjectReference, status *metav1.Status, long bool) *request {
	req := &request{id: types.UID(uuid(s.aud)), level: auditv1.LevelMetadata, verb: verb, uri: uri, who: who,
		src: who.src, ref: ref, status: status, ann: who.allow, received: micro(at), long: long}
	if ref != nil && ref.Resource == "pods" && (ref.Subresource == "exec" || ref.Subresource == "attach" || ref.Subresource == "portforward") {
		req.level = auditv1.LevelRequestResponse
	}
	if who.from != nil {
		// An in-cluster client: its address is its pod's.
		pd, ok := pick(s.aud, who.from.ready)
		if !ok {
			pd, ok = pick(s.aud, who.from.pods)
		}
		if ok {
			req.src = []string{pd.ip}
		}
	}
	if req.ann == nil {
		req.ann = annotations("allow", "")
	}
	s.stats.AuditRequests++
	keepReceived := long
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		keepReceived = keepReceived || ref == nil || ref.Resource != "leases"
		s.api.rv += 1 + s.aud.Int64N(12) // a write moves the revision on
	}
	if keepReceived {
		rr := ref
		if verb == "create" && ref != nil && ref.Subresource == "" && ref.Name != "" {
			// The name of a created object is known only once it is created.
			c := *ref
			c.Name = ""
			rr = &c
		}
		s.record(req, auditv1.StageRequestReceived, at, rr)
	}
	if long {
		s.record(req, auditv1.StageResponseStarted, at+span(s.aud, 500*time.Microsecond, 4*time.Millisecond), ref)
	}
	return req
}

// end records the request's ResponseComplete stage.
func (s *sim) end(req *request, at int64) {
	s.record(req, auditv1.StageResponseComplete, at, req.ref)
}

// call plays a short request: received at at and answered a few milliseconds later.
func (s *sim) call(at int64, who *principal, verb, uri string, ref *auditv1.ObjectReference, status *metav1.Status) *request {
	req := s.begin(at, who, verb, uri, ref, status, false)
	s.end(req, at+span(s.aud, 700*time.Microsecond, 14*time.Millisecond))
	return req
}

func (s *sim) record(req *request, stage auditv1.Stage, at int64, ref *auditv1.ObjectReference) {
	ev := auditv1.Event{
		Level: req.level, AuditID: req.id, Stage: stage, RequestURI: req.uri, Verb: req.verb,
		User: req.who.user, SourceIPs: req.src, UserAgent: req.who.agent, ObjectRef: ref,
		RequestReceivedTimestamp: req.received, StageTimestamp: micro(at),
	}
	if stage == auditv1.StageRequestReceived {
		ev.StageTimestamp = req.received
	} else {
		ev.ResponseStatus = req.status
		ev.Annotations = req.ann
		if stage == auditv1.StageResponseComplete && req.long && req.level == auditv1.LevelRequestResponse {
			// The API server notes the latency of slow requests.
			total := time.Duration(at - req.received.UnixNano())
			ev.Annotations = map[string]string{
				"apiserver.latency.k8s.io/authorization": strconv.Itoa(2+s.aud.IntN(9)) + "." + strconv.Itoa(100+s.aud.IntN(900)) + "µs",
				"apiserver.latency.k8s.io/etcd":          "1." + strconv.Itoa(100000+s.aud.IntN(900000)) + "ms",
				"apiserver.latency.k8s.io/total":         total.String(),
				"authorization.k8s.io/decision":          req.ann["authorization.k8s.io/decision"],
				"authorization.k8s.io/reason":            req.ann["authorization.k8s.io/reason"],
			}
		}
	}
	s.auditBuf = append(s.auditBuf, ev)
}

// flushAudit sends the second's audit events as webhook bodies of at most 400 items.
func (s *sim) flushAudit() {
	for len(s.auditBuf) > 0 && s.err == nil {
		n := min(len(s.auditBuf), auditBatchMax)
		list := auditv1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "audit.k8s.io/v1"}, Items: s.auditBuf[:n]}
		body, err := json.Marshal(&list)
		if err != nil {
			s.err = fmt.Errorf("simulate: encoding audit events: %w", err)
			return
		}
		s.stats.AuditEvents += int64(n)
		s.stats.AuditPosts++
		clear(s.auditBuf[:n])
		s.auditBuf = s.auditBuf[n:]
		if err := s.sink.Audit(s.ctx, body); err != nil {
			s.err = fmt.Errorf("simulate: sending audit events: %w", err)
		}
	}
	s.auditBuf = s.auditBuf[:0]
}

// API requests that go with pods coming and going.

func podRef(pd *pod, sub string) *auditv1.ObjectReference {
	return &auditv1.ObjectReference{Resource: "pods", Namespace: pd.w.ns, Name: pd.name, APIVersion: "v1", Subresource: sub}
}

func podURI(pd *pod) string { return "/api/v1/namespaces/" + pd.w.ns + "/pods/" + pd.name }

func (s *sim) kubeletOf(n *node) *principal { return s.api.kubelets[n.idx] }

// apiPodCreated: a controller creates the pod, the scheduler binds it, the log
// shipper on its node looks it up once its logs appear.
func (s *sim) apiPodCreated(pd *pod, at int64, creator *principal) {
	a := &s.api
	s.call(at, creator, "create", "/api/v1/namespaces/"+pd.w.ns+"/pods", podRef(pd, ""), a.statusCreated)
	at += span(s.aud, 3*time.Millisecond, 25*time.Millisecond)
	s.call(at, a.scheduler, "create", podURI(pd)+"/binding", podRef(pd, "binding"), a.statusCreated)
	s.call(at+span(s.aud, 2*time.Millisecond, 8*time.Millisecond), s.kubeletOf(pd.node), "create", "/api/v1/namespaces/"+pd.w.ns+"/events",
		&auditv1.ObjectReference{Resource: "events", Namespace: pd.w.ns, Name: pd.name + "." + randHex(s.aud, 16), APIVersion: "v1"}, a.statusCreated)
	fb := s.c.byKey["logging/fluent-bit"]
	for _, shipper := range fb.ready {
		if shipper.node == pd.node {
			p := *a.fluentBit
			p.src = []string{shipper.ip}
			s.after(at+span(s.aud, 2*time.Second, 5*time.Second), func(at int64) {
				s.call(at, &p, "get", podURI(pd), podRef(pd, ""), a.statusOK)
			})
		}
	}
}

// apiPodStatus: the kubelet reports the pod's status.
func (s *sim) apiPodStatus(pd *pod, at int64) {
	s.call(at+span(s.aud, time.Millisecond, 30*time.Millisecond), s.kubeletOf(pd.node), "patch", podURI(pd)+"/status", podRef(pd, "status"), s.api.statusOK)
}

// apiPodDeleted: a controller deletes the pod (it starts terminating).
func (s *sim) apiPodDeleted(pd *pod, at int64, deleter *principal) {
	s.call(at, deleter, "delete", podURI(pd), podRef(pd, ""), s.api.statusOK)
}

// apiPodGone: the kubelet reports the containers stopped and, for a deleted pod,
// removes the object for good.
func (s *sim) apiPodGone(pd *pod, at int64) {
	k := s.kubeletOf(pd.node)
	s.call(at, k, "patch", podURI(pd)+"/status", podRef(pd, "status"), s.api.statusOK)
	if pd.w.kind != kindCronJob {
		s.call(at+span(s.aud, 5*time.Millisecond, 40*time.Millisecond), k, "delete", podURI(pd), podRef(pd, ""), s.api.statusOK)
	}
}

// apiEndpoints: the EndpointSlice controller follows a Service's ready pods.
func (s *sim) apiEndpoints(pd *pod, at int64) {
	svc := pd.w.svc
	s.call(at+span(s.aud, 2*time.Millisecond, 20*time.Millisecond), s.api.endpointSliceController, "update",
		"/apis/discovery.k8s.io/v1/namespaces/"+svc.ns+"/endpointslices/"+svc.slice,
		&auditv1.ObjectReference{Resource: "endpointslices", Namespace: svc.ns, Name: svc.slice, APIGroup: "discovery.k8s.io", APIVersion: "v1"}, s.api.statusOK)
}

func deploymentRef(w *workload, sub string) *auditv1.ObjectReference {
	return &auditv1.ObjectReference{Resource: "deployments", Namespace: w.ns, Name: w.name, APIGroup: "apps", APIVersion: "v1", Subresource: sub}
}

// apiRolloutStarted: the CI bot sets the new image and follows the rollout (kubectl
// rollout status is a watch); the deployment controller creates the new ReplicaSet.
// The returned function ends the rollout.
func (s *sim) apiRolloutStarted(w *workload, at int64) func(at int64) {
	a := &s.api
	r := s.aud
	ci := *a.ci
	ci.allow = annotations("allow", rbacReason("RoleBinding", "deployer/"+w.ns, "ClusterRole", "edit", "ServiceAccount", "deployer/ci"))
	uri := "/apis/apps/v1/namespaces/" + w.ns + "/deployments/" + w.name
	s.call(at-span(r, 100*time.Millisecond, 400*time.Millisecond), &ci, "get", uri, deploymentRef(w, ""), a.statusOK)
	s.call(at, &ci, "patch", uri+"?fieldManager=kubectl-set", deploymentRef(w, ""), a.statusOK)
	at += span(r, 5*time.Millisecond, 30*time.Millisecond)
	s.call(at, a.deploymentController, "create", "/apis/apps/v1/namespaces/"+w.ns+"/replicasets",
		&auditv1.ObjectReference{Resource: "replicasets", Namespace: w.ns, Name: w.name + "-" + w.hash, APIGroup: "apps", APIVersion: "v1"}, a.statusCreated)
	s.call(at+span(r, 2*time.Millisecond, 10*time.Millisecond), a.deploymentController, "update", uri+"/status", deploymentRef(w, "status"), a.statusOK)
	watch := s.begin(at+span(r, 300*time.Millisecond, time.Second), &ci, "watch",
		"/apis/apps/v1/namespaces/"+w.ns+"/deployments?fieldSelector=metadata.name%3D"+w.name+"&resourceVersion="+strconv.FormatInt(a.rv, 10)+"&watch=true",
		deploymentRef(w, ""), a.statusOK, true)
	return func(at int64) {
		s.call(at, a.deploymentController, "update", uri+"/status", deploymentRef(w, "status"), a.statusOK)
		s.end(watch, at+span(r, 20*time.Millisecond, 200*time.Millisecond))
	}
}

func jobRef(ns, name, sub string) *auditv1.ObjectReference {
	return &auditv1.ObjectReference{Resource: "jobs", Namespace: ns, Name: name, APIGroup: "batch", APIVersion: "v1", Subresource: sub}
}

// apiJobCreated: the CronJob controller creates the run's Job.
func (s *sim) apiJobCreated(w *workload, job string, at int64) {
	a := &s.api
	s.call(at, a.cronJobController, "create", "/apis/batch/v1/namespaces/"+w.ns+"/jobs", jobRef(w.ns, job, ""), a.statusCreated)
	s.call(at+span(s.aud, 2*time.Millisecond, 10*time.Millisecond), a.cronJobController, "update",
		"/apis/batch/v1/namespaces/"+w.ns+"/cronjobs/"+w.name+"/status",
		&auditv1.ObjectReference{Resource: "cronjobs", Namespace: w.ns, Name: w.name, APIGroup: "batch", APIVersion: "v1", Subresource: "status"}, a.statusOK)
}

// apiJobFinished: the Job controller marks the Job complete.
func (s *sim) apiJobFinished(w *workload, job string, at int64) {
	s.call(at+span(s.aud, 50*time.Millisecond, 500*time.Millisecond), s.api.jobController, "update",
		"/apis/batch/v1/namespaces/"+w.ns+"/jobs/"+job+"/status", jobRef(w.ns, job, "status"), s.api.statusOK)
}

// aliceSession is an SRE's routine look: list pods of a namespace, then read a
// pod's logs or list its deployments.
func (s *sim) aliceSession(at int64) {
	r := s.aud
	a := &s.api
	namespaces := []string{"frontend", "billing", "payments", "data", "monitoring"}
	ns := namespaces[r.IntN(len(namespaces))]
	s.call(at, a.alice, "list", "/api/v1/namespaces/"+ns+"/pods?limit=500", &auditv1.ObjectReference{Resource: "pods", Namespace: ns, APIVersion: "v1"}, a.statusOK)
	at += span(r, 5*time.Second, 40*time.Second)
	var inNS []*pod
	for _, w := range s.c.workloads {
		if w.ns == ns {
			inNS = append(inNS, w.ready...)
		}
	}
	if pd, ok := pick(r, inNS); ok && r.IntN(2) == 0 {
		s.call(at, a.alice, "get", podURI(pd)+"/log?container="+pd.w.container+"&tailLines=200", podRef(pd, "log"), a.statusOK)
		return
	}
	s.call(at, a.alice, "list", "/apis/apps/v1/namespaces/"+ns+"/deployments?limit=500",
		&auditv1.ObjectReference{Resource: "deployments", Namespace: ns, APIGroup: "apps", APIVersion: "v1"}, a.statusOK)
}
