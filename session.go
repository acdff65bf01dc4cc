package kubetrail

import (
	"context"
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
	// matched (a liveness probe, crictl exec on the node, the container's init).
	Request *SessionRequest `json:"request,omitempty"`
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
	if s.Request == nil {
		return "no Kubernetes request (probe, node or runtime)"
	}
	return "kubectl " + s.Request.Subresource + " by " + s.Request.UserName
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
}

// ExecRequest is what matching needs of a pods/exec or pods/attach request.
type ExecRequest struct {
	AuditID     string
	Cluster     string
	Namespace   string
	PodName     string
	Container   string // empty when the request named none
	Command     []string
	Subresource string
	Time        time.Time
	Code        int64 // the response code; 0 before the response started
}

// Started reports whether the request may have started a process: it was not
// refused (forbidden, not found, a failed upgrade).
func (r *ExecRequest) Started() bool {
	return r.Code == 0 || r.Code < 400
}

// MatchSessions pairs exec requests with the sessions they started: same pod and
// container, the session's entry argv equal to the request's command, the entry
// starting within window of the request. Requests and sessions of one pod and
// command are paired in order, at most one each, keeping as many pairs as the
// window allows and, among those, the closest in time: two users running the
// same command in the same pod at once each get their own session, and a probe
// running that command too stays unpaired. The result depends only on the
// candidates, never on the order they arrived in, so that re-running it when a
// late request or session arrives changes only what that arrival decides.
//
// It returns session id → audit id.
func MatchSessions(sessions []SessionCandidate, requests []ExecRequest, window time.Duration) map[string]string {
	type key struct{ cluster, ns, pod, cmd string }
	bySessionKey := map[key][]int{}
	for i, s := range sessions {
		k := key{s.Cluster, s.Namespace, s.PodName, strings.Join(s.Argv, "\x00")}
		bySessionKey[k] = append(bySessionKey[k], i)
	}
	byRequestKey := map[key][]int{}
	for i, r := range requests {
		// Attach starts no process: it joins the container's running one.
		if r.Subresource != "exec" || !r.Started() || len(r.Command) == 0 {
			continue
		}
		k := key{r.Cluster, r.Namespace, r.PodName, strings.Join(r.Command, "\x00")}
		byRequestKey[k] = append(byRequestKey[k], i)
	}
	out := map[string]string{}
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
		for _, p := range alignInOrder(len(ri), len(si), func(i, j int) (time.Duration, bool) {
			r, s := &requests[ri[i]], &sessions[si[j]]
			if r.Container != "" && s.ContainerName != "" && r.Container != s.ContainerName {
				return 0, false
			}
			d := s.Start.Sub(r.Time)
			if d < 0 {
				d = -d
			}
			return d, d <= window
		}) {
			out[sessions[si[p[1]]].ID] = requests[ri[p[0]]].AuditID
		}
	}
	return out
}

// alignInOrder pairs the items of two time-ordered sequences without crossing
// (the i-th request cannot take a session earlier than the one an earlier request
// took), maximising the number of pairs, then minimising their total distance.
// A dynamic programme over the two sequences: they are short (one pod, one
// command, a few seconds either side).
func alignInOrder(n, m int, cost func(i, j int) (time.Duration, bool)) [][2]int {
	type cell struct {
		pairs int
		dist  time.Duration
		move  byte // 1: pair i-1 with j-1; 2: skip request i-1; 3: skip session j-1
	}
	better := func(a, b cell) bool { return a.pairs > b.pairs || (a.pairs == b.pairs && a.dist < b.dist) }
	dp := make([][]cell, n+1)
	for i := range dp {
		dp[i] = make([]cell, m+1)
	}
	for i := 0; i <= n; i++ {
		for j := 0; j <= m; j++ {
			if i == 0 && j == 0 {
				continue
			}
			var best cell
			set := false
			if i > 0 {
				best, set = cell{dp[i-1][j].pairs, dp[i-1][j].dist, 2}, true
			}
			if j > 0 {
				c := cell{dp[i][j-1].pairs, dp[i][j-1].dist, 3}
				if !set || better(c, best) {
					best, set = c, true
				}
			}
			if i > 0 && j > 0 {
				if d, ok := cost(i-1, j-1); ok {
					c := cell{dp[i-1][j-1].pairs + 1, dp[i-1][j-1].dist + d, 1}
					if better(c, best) {
						best = c
					}
				}
			}
			dp[i][j] = best
		}
	}
	var pairs [][2]int
	for i, j := n, m; i > 0 || j > 0; {
		switch dp[i][j].move {
		case 1:
			pairs = append(pairs, [2]int{i - 1, j - 1})
			i, j = i-1, j-1
		case 2:
			i--
		default:
			j--
		}
	}
	slices.Reverse(pairs)
	return pairs
}
