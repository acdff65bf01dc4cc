package kubetrail

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// A session is one way into a container from outside it: a process whose parent
// is not in the container (the runtime started it: a CRI exec, the container's
// own init) opens one, and its descendants in the container belong to it. The
// agent, which keeps the process tree, stamps every event with its session's id:
// the exec id of the process that opened it.
//
// A session started by `kubectl exec` has a Kubernetes request behind it. The
// audit log and the sensor see the two halves; MatchSessions joins them.
type Session struct {
	ID string `json:"session.id"`

	Cluster       string `json:"k8s.cluster.name,omitempty"`
	Node          string `json:"k8s.node.name,omitempty"`
	Namespace     string `json:"k8s.ns.name,omitempty"`
	WorkloadKind  string `json:"k8s.workload.kind,omitempty"`
	WorkloadName  string `json:"k8s.workload.name,omitempty"`
	PodName       string `json:"k8s.pod.name,omitempty"`
	PodUID        string `json:"k8s.pod.uid,omitempty"`
	ContainerID   string `json:"container.id,omitempty"`
	ContainerName string `json:"container.name,omitempty"`
	Image         string `json:"container.image,omitempty"`

	// The process that opened the session.
	EntryName string   `json:"entry.name,omitempty"`
	EntryArgv []string `json:"entry.argv,omitempty"`
	EntryTTY  int64    `json:"entry.tty,omitempty"`
	// EntryExecAuditID is the request the entry names in its environment
	// (KEP-6035): a claim, honoured only when it fits the pod, command and time.
	EntryExecAuditID string `json:"entry.exec_auditid,omitempty"`

	Start time.Time `json:"start,omitzero"` // when the entry process started
	// End is when the entry process exited; zero while it runs (or its exit was
	// not seen). Descendants may outlive it: Last is the session's latest event.
	End      time.Time `json:"end,omitzero"`
	ExitCode *int64    `json:"exit_code,omitempty"`
	// First and Last are the times of the session's earliest and latest events.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`

	Commands    int64 `json:"commands"`
	Connections int64 `json:"connections"`
	FileChanges int64 `json:"file_changes"`

	// Request is the Kubernetes request that started the session; nil when none
	// matched (a liveness probe, crictl exec on the node, the container's init),
	// or when several fit equally well.
	Request *SessionRequest `json:"request,omitempty"`
	// MaybeUsers, when set, are the users whose exec requests fit the session
	// equally well: the audit log and the sensor cannot tell which one it was
	// (the same command in the same pod within milliseconds), so none is named.
	MaybeUsers []string `json:"maybe_users,omitempty"`
	// Attachments are kubectl attach requests that joined the session's entry
	// process while it ran: who could type into it from then on. They do not
	// make the session theirs: it began without them.
	Attachments []SessionRequest `json:"attachments,omitempty"`
}

// SessionRequest is the Kubernetes exec or attach request behind a session.
type SessionRequest struct {
	AuditID     string    `json:"ka.auditid"`
	Time        time.Time `json:"time"`
	Verb        string    `json:"ka.verb,omitempty"` // get over WebSocket, create over SPDY
	Subresource string    `json:"ka.target.subresource,omitempty"`
	UserName    string    `json:"ka.user.name,omitempty"`
	UserGroups  []string  `json:"ka.user.groups,omitempty"`
	ImpUserName string    `json:"ka.impuser.name,omitempty"`
	SourceIPs   []string  `json:"ka.sourceips,omitempty"`
	UserAgent   string    `json:"ka.useragent,omitempty"`
}

// Attribution says in words who is behind the session, for tables.
func (s *Session) Attribution() string {
	if s.Request == nil && len(s.MaybeUsers) > 0 {
		return "kubectl exec by one of " + strings.Join(s.MaybeUsers, ", ") + " (cannot tell which)"
	}
	if s.Request == nil {
		return "no Kubernetes request (probe, node or runtime)"
	}
	return s.Request.Command() + " by " + s.Request.UserName
}

// Command names the kubectl command behind the request.
func (r *SessionRequest) Command() string {
	if r.Subresource == "ephemeralcontainers" {
		return "kubectl debug"
	}
	return "kubectl " + r.Subresource
}

// ApplyTo copies the session-borne request fields onto an event of the
// session, so that every command and connection carries who started it.
func (r *SessionRequest) ApplyTo(e *Event) {
	e.Audit.AuditID, e.Audit.Verb, e.Audit.Subresource = r.AuditID, r.Verb, r.Subresource
	e.Audit.UserName, e.Audit.UserGroups, e.Audit.ImpUserName = r.UserName, r.UserGroups, r.ImpUserName
	e.Audit.SourceIPs, e.Audit.UserAgent = r.SourceIPs, r.UserAgent
}

// SessionQuery asks for the sessions in which some event matches Filter in
// Window (all sessions active in the window when Filter is True), newest first.
type SessionQuery struct {
	Filter Expr
	Window Window
	Limit  int
}

// Trace is a session with everything that happened in it, in time order.
type Trace struct {
	Session Session `json:"session"`
	// Request is the Kubernetes request event itself, when one matched.
	Request *Event  `json:"request,omitempty"`
	Events  []Event `json:"events"`
	// Truncated says Events holds only the session's first events.
	Truncated bool `json:"truncated,omitempty"`
}

// SessionStore answers questions about sessions.
type SessionStore interface {
	Sessions(ctx context.Context, q SessionQuery) ([]Session, error)
	Trace(ctx context.Context, id string) (*Trace, error)
}

// DefaultMatchWindow bounds how far apart an exec request reaching the API server
// and its process starting in the container may be, either way (clocks of the
// control plane and the nodes differ a little). Measured on a real cluster the
// process starts 50–200 ms after the request.
const DefaultMatchWindow = 3 * time.Second

// SessionCandidate is what matching needs of a session.
type SessionCandidate struct {
	ID            string
	Cluster       string
	Namespace     string
	PodName       string
	ContainerName string
	Argv          []string
	Start         time.Time
	End           time.Time // when the entry process exited; zero when not (yet) known
	// ContainerInit marks the first session of its container: the container's
	// own process, which a kubectl debug request starts in a new container.
	ContainerInit bool
	// ClaimedAuditID is the request the entry process names in its environment
	// (KUBERNETES_EXEC_AUDIT_ID, KEP-6035), if any.
	ClaimedAuditID string
}

// ExecRequest is what matching needs of a pods/exec or pods/attach request.
type ExecRequest struct {
	AuditID     string
	Cluster     string
	Namespace   string
	PodName     string
	Container   string // empty when the request named none
	Command     []string
	Subresource string // exec, attach or ephemeralcontainers
	Verb        string
	Time        time.Time
	End         time.Time // when the stream closed (ResponseComplete); zero when not (yet) known
	Code        int64     // the response code; 0 before the response started
}

// Started reports whether the request may have started a process: it was not
// refused (forbidden, not found, a failed upgrade).
func (r *ExecRequest) Started() bool {
	return r.Code == 0 || r.Code < 400
}

// MatchSessions pairs exec requests with the sessions they started: same pod and
// container, the session's entry argv equal to the request's command, the entry
// starting within window of the request and, where both are known, exiting
// within window of the request's stream closing (ResponseComplete). Among the
// requests and sessions of one pod and command it keeps as many pairs as the
// window allows and, among those, the closest: the least sum of squared
// distances, which pairs them in order when only start times are known (two
// people opening the same shell in one pod a few milliseconds apart) and lets
// the ends decide when the runtime started them out of order. A probe running
// the same command stays unpaired. The result depends only on the candidates,
// never on the order they arrived in, so re-running it when a late request or
// session arrives changes only what that arrival decides.
//
// It returns session id → the request that started it.
func MatchSessions(sessions []SessionCandidate, requests []ExecRequest, window time.Duration) map[string]Match {
	type key struct{ cluster, ns, pod, cmd string }
	// kubectl debug adds an ephemeral container to the pod: its request names
	// no command (at the Metadata audit level), and its session is the new
	// container's own first process. They are grouped per pod under this key.
	const debugKey = "\x01ephemeral"
	bySessionKey := map[key][]int{}
	for i, s := range sessions {
		k := key{s.Cluster, s.Namespace, s.PodName, strings.Join(s.Argv, "\x00")}
		bySessionKey[k] = append(bySessionKey[k], i)
		if s.ContainerInit {
			k.cmd = debugKey
			bySessionKey[k] = append(bySessionKey[k], i)
		}
	}
	byRequestKey := map[key][]int{}
	for i, r := range requests {
		if !r.Started() {
			continue
		}
		k := key{r.Cluster, r.Namespace, r.PodName, strings.Join(r.Command, "\x00")}
		switch {
		case r.Subresource == "ephemeralcontainers" && (r.Verb == "patch" || r.Verb == "update"):
			k.cmd = debugKey
		case r.Subresource != "exec" || len(r.Command) == 0:
			continue // attach starts no process: it joins the container's running one
		}
		byRequestKey[k] = append(byRequestKey[k], i)
	}
	out := map[string]Match{}
	for k, ri := range byRequestKey {
		si := bySessionKey[k]
		if len(si) == 0 {
			continue
		}
		slices.SortFunc(ri, func(a, b int) int {
			if c := requests[a].Time.Compare(requests[b].Time); c != 0 {
				return c
			}
			return strings.Compare(requests[a].AuditID, requests[b].AuditID)
		})
		slices.SortFunc(si, func(a, b int) int {
			if c := sessions[a].Start.Compare(sessions[b].Start); c != 0 {
				return c
			}
			return strings.Compare(sessions[a].ID, sessions[b].ID)
		})
		// misalignment is how far apart the pair's start and, where both are
		// known, its ends are; false when beyond the window.
		misalignment := func(i, j int) (start, end time.Duration, ok bool) {
			r, s := &requests[ri[i]], &sessions[si[j]]
			if r.Container != "" && s.ContainerName != "" && r.Container != s.ContainerName {
				return 0, 0, false
			}
			if k.cmd == debugKey {
				// The ephemeral container starts after the request, once its image
				// is there: up to EphemeralStartWindow later.
				d := s.Start.Sub(r.Time)
				if d < -window || d > EphemeralStartWindow {
					return 0, 0, false
				}
				return d.Abs(), 0, true
			}
			start = s.Start.Sub(r.Time).Abs()
			if start > window {
				return 0, 0, false
			}
			if !r.End.IsZero() && !s.End.IsZero() {
				end = s.End.Sub(r.End).Abs()
				if end > window {
					return 0, 0, false // that stream closed long before or after this process ended
				}
			}
			return start, end, true
		}
		// A session whose process names its request (KEP-6035) is paired with it
		// when the claim fits the pod, command and times: the process can set
		// that variable itself, so a claim that does not fit counts for nothing.
		claimed := map[int]int{} // request row → session column
		claimant := map[int]bool{}
		for j := range si {
			if id := sessions[si[j]].ClaimedAuditID; id != "" {
				for i := range ri {
					if _, _, ok := misalignment(i, j); ok && requests[ri[i]].AuditID == id {
						claimed[i], claimant[j] = j, true
					}
				}
			}
		}
		pairs := assign(len(ri), len(si), func(i, j int) (float64, bool) {
			if c, ok := claimed[i]; ok {
				return 0, c == j
			}
			if claimant[j] {
				return 0, false
			}
			start, end, ok := misalignment(i, j)
			return start.Seconds()*start.Seconds() + end.Seconds()*end.Seconds(), ok
		})
		// Two pairs whose swap fits the times about as well are a guess either
		// way: both sessions are left unattributed, with the people they may be.
		rows := slices.Sorted(maps.Keys(pairs))
		ambiguous := map[int][]int{} // row → other rows it could swap with
		for x, i := range rows {
			for _, k := range rows[x+1:] {
				if _, ok := claimed[i]; ok {
					break // paired by its own claim: certain
				}
				if _, ok := claimed[k]; ok {
					continue
				}
				a, b := pairs[i], pairs[k]
				s1, e1, _ := misalignment(i, a)
				s2, e2, _ := misalignment(k, b)
				s3, e3, ok3 := misalignment(i, b)
				s4, e4, ok4 := misalignment(k, a)
				if ok3 && ok4 && (s3+e3+s4+e4)-(s1+e1+s2+e2) < AmbiguityMargin {
					ambiguous[i] = append(ambiguous[i], k)
					ambiguous[k] = append(ambiguous[k], i)
				}
			}
		}
		for _, i := range rows {
			m := Match{AuditID: requests[ri[i]].AuditID}
			for _, k := range ambiguous[i] {
				m.Alternatives = append(m.Alternatives, requests[ri[k]].AuditID)
			}
			out[sessions[si[pairs[i]]].ID] = m
		}
	}
	return out
}

// MatchAttachments finds, for each kubectl attach request, the session it
// joined: the entry of the named container's first session (the container's
// own process, which attach connects to), started before the request and not
// known to have ended before it. It returns audit id → session id.
func MatchAttachments(sessions []SessionCandidate, requests []ExecRequest) map[string]string {
	out := map[string]string{}
	for _, r := range requests {
		if r.Subresource != "attach" || !r.Started() {
			continue
		}
		var best *SessionCandidate
		for i := range sessions {
			s := &sessions[i]
			if !s.ContainerInit || s.Cluster != r.Cluster || s.Namespace != r.Namespace || s.PodName != r.PodName ||
				(r.Container != "" && s.ContainerName != r.Container) || s.Start.After(r.Time) || (!s.End.IsZero() && s.End.Before(r.Time)) {
				continue
			}
			// A container restarted in place has several inits: the latest one runs.
			if best == nil || s.Start.After(best.Start) {
				best = s
			}
		}
		if best != nil {
			out[r.AuditID] = best.ID
		}
	}
	return out
}

// EphemeralStartWindow bounds how long after a kubectl debug request its
// ephemeral container may start (its image may have to be pulled first).
const EphemeralStartWindow = 2 * time.Minute

// AmbiguityMargin is how much better one pairing of two sessions with two
// requests must fit their times than the swapped pairing to be taken: below
// it, the delays of the API server, the kubelet and the runtime could account
// for either.
const AmbiguityMargin = 20 * time.Millisecond

// Match is the request a session was paired with. When Alternatives is not
// empty, other requests fit the session's times about as well: which one
// started it cannot be told from the audit log and the sensor.
type Match struct {
	AuditID      string
	Alternatives []string
}

// Ambiguous reports whether the pairing is a guess.
func (m Match) Ambiguous() bool { return len(m.Alternatives) > 0 }

// assign pairs n rows with m columns, each at most once, through the allowed
// edges: as many pairs as possible, then the least total cost. It returns row →
// column. The Hungarian method on a square matrix where each row and column may
// also go unpaired at a cost larger than any real pair's, so fewer unpaired
// always wins; groups are small (one pod, one command, seconds either side).
func assign(n, m int, cost func(i, j int) (float64, bool)) map[int]int {
	const unpaired = 1e6 // seconds², beyond any two squared windows
	const forbidden = 1e12
	size := n + m
	a := make([][]float64, size)
	for i := range a {
		a[i] = make([]float64, size)
		for j := range a[i] {
			switch {
			case i < n && j < m:
				if c, ok := cost(i, j); ok {
					a[i][j] = c
				} else {
					a[i][j] = forbidden
				}
			case i < n: // request i left unpaired
				a[i][j] = forbidden
				if j-m == i {
					a[i][j] = unpaired
				}
			case j < m: // session j left unpaired
				a[i][j] = forbidden
				if i-n == j {
					a[i][j] = unpaired
				}
			}
		}
	}
	// Potentials u, v and the column each row takes, 1-based with column 0 as
	// the free start, as in the classic O(n³) formulation.
	u, v := make([]float64, size+1), make([]float64, size+1)
	p, way := make([]int, size+1), make([]int, size+1)
	for i := 1; i <= size; i++ {
		p[0] = i
		j0 := 0
		minv := make([]float64, size+1)
		used := make([]bool, size+1)
		for j := range minv {
			minv[j] = math.Inf(1)
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= size; j++ {
				if used[j] {
					continue
				}
				if cur := a[i0-1][j-1] - u[i0] - v[j]; cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= size; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	out := map[int]int{}
	for j := 1; j <= size; j++ {
		i := p[j] - 1
		if i >= 0 && i < n && j-1 < m && a[i][j-1] < forbidden {
			out[i] = j - 1
		}
	}
	return out
}
