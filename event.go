// Package kubetrail holds the domain of the Kubernetes activity audit: the event
// every source is turned into, the field reference that names its parts, and the
// interfaces the storage, ingest and query layers implement. Subpackages bind
// these to one dependency each (duckdb, http, k8saudit, ...); cmd/kubetrail wires
// them together.
package kubetrail

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"time"
)

// Category says which of the four kinds of activity an event records.
type Category string

const (
	CategoryProcess Category = "process" // a program was executed
	CategoryNetwork Category = "network" // a connection was opened or accepted
	CategoryFile    Category = "file"    // a file was written, created, deleted, renamed or had its mode/owner changed
	CategoryK8s     Category = "k8s"     // one Kubernetes API request
	// CategoryGap marks records a sensor observed but could not deliver (its ring
	// buffer was full): the trail says that something is missing, and how much.
	CategoryGap Category = "gap"
	// CategoryPolicy is a policy event: a rule of a policy matched another event
	// (the trigger) as it was ingested.
	CategoryPolicy Category = "policy"
)

// Categories lists every category in a stable order.
var Categories = []Category{CategoryProcess, CategoryNetwork, CategoryFile, CategoryK8s, CategoryGap, CategoryPolicy}

// Valid reports whether c is one of the categories.
func (c Category) Valid() bool {
	switch c {
	case CategoryProcess, CategoryNetwork, CategoryFile, CategoryK8s, CategoryGap, CategoryPolicy:
		return true
	}
	return false
}

// Source names the family of sensors an event came from, as Falco's evt.source does.
// A policy event's source is its rule's, which the category alone does not say.
func (c Category) Source() string {
	if c == CategoryK8s {
		return "k8s_audit"
	}
	return "syscall"
}

// Source is evt.source: the category's, or for a policy event its rule's.
func (e *Event) Source() string {
	if e.Category == CategoryPolicy {
		return e.Alert.Source
	}
	return e.Category.Source()
}

// Network directions.
const (
	DirectionOutbound = "outbound" // this process opened the connection
	DirectionInbound  = "inbound"  // this process accepted the connection
)

// Peer kinds: what the remote address of a connection was in the cluster at the time.
const (
	PeerPod      = "pod"
	PeerService  = "service"
	PeerNode     = "node"
	PeerUnknown  = "unknown"  // the address belonged to nothing the cluster knew of
	PeerLoopback = "loopback" // the pod or host talking to itself
)

// Event is one record of the audit trail. All four categories share one record so
// that one filter, one table and one timeline cover them; fields that do not apply
// to a category are left zero. Each field is named, typed and documented in Fields.
type Event struct {
	// Stream and Seq identify a runtime event: Stream is the sender's stream (one per
	// agent boot), Seq increases by one per event inside it. The pair makes the event
	// id, so a retried batch is recognised and stored once.
	Stream string
	Seq    uint64

	Time     time.Time
	Category Category
	Type     string // evt.type: execve, connect, accept, open, unlink, ... or the audit verb
	Result   string // evt.res: "SUCCESS" or an errno name such as "ECONNREFUSED"

	// Where it happened.
	Cluster         string
	Node            string
	Namespace       string
	WorkloadKind    string
	WorkloadName    string
	PodName         string
	PodUID          string
	ContainerID     string
	ContainerName   string
	ImageRepository string
	ImageTag        string

	SessionID string

	// Lost is, for a gap, how many records of kind Type were lost.
	Lost int64

	Process Process
	Network Network
	File    File
	Audit   Audit
	Alert   Alert
}

// Alert describes a policy event. It keeps the trigger's scope and session in
// the event's own fields, so that a policy event is found, grouped and linked to
// its session as the activity it is about is.
type Alert struct {
	Policy   string   // the policy whose rule matched
	Rule     string   // the rule's name
	Priority string   // Falco's priority: EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFORMATIONAL or DEBUG
	Source   string   // the rule's source: syscall or k8s_audit
	Output   string   // the rule's output with the trigger's fields substituted
	Tags     []string // the rule's tags (MITRE ATT&CK techniques among them)
	Trigger  string   // the evt.id of the event the rule matched
}

// Process describes the process an event is about (for category process, the program
// executed; for network and file, the process that acted).
type Process struct {
	Name         string
	ExePath      string
	Argv         []string // the whole argument vector, argv[0] first
	PID          int64
	PPID         int64
	ParentName   string
	Cwd          string
	TTY          int64
	UID          int64
	UserName     string
	LoginUID     int64 // -1 when unset, as the kernel reports it
	GID          int64
	ExecID       string
	ParentExecID string
	ExitCode     int64
	// ExecAuditID is, for the process that opened a session, the audit ID of
	// the exec request its environment names (KUBERNETES_EXEC_AUDIT_ID, KEP-6035).
	ExecAuditID string
}

// Network describes one connection.
type Network struct {
	L4Proto    string // tcp or udp
	Direction  string // outbound or inbound
	ClientIP   string
	ClientPort int64
	ServerIP   string
	ServerPort int64

	// What the remote end was in the cluster at the time of the connection.
	PeerKind      string
	PeerNamespace string
	PeerName      string
	PeerWorkload  string
}

// File describes one change to a file.
type File struct {
	Path       string
	TargetPath string // the new name, for a rename
}

// Audit describes one Kubernetes API request as the API server's audit log saw it.
type Audit struct {
	AuditID         string
	Stage           string
	StageTime       time.Time
	UserName        string
	UserGroups      []string
	ImpUserName     string
	Verb            string
	URI             string
	Resource        string
	Subresource     string
	APIGroup        string
	TargetNamespace string
	TargetName      string
	SourceIPs       []string
	UserAgent       string
	ResponseCode    int64
	ResponseReason  string
	AuthDecision    string
	AuthReason      string
	// ExecCommand and ExecContainer are parsed from the request URI of pods/exec and
	// pods/attach requests: the command the user asked to run and in which container.
	ExecCommand   []string
	ExecContainer string

	// Raw is the audit event's JSON as the API server sent it, kept in memory only
	// while the event is ingested: Falco's k8s_audit rules read the request and
	// response objects (ka.req.*, jevt.value[...]) that the trail does not store.
	Raw []byte
}

// Local and remote ends of a connection, from the acting process' point of view.
func (n *Network) LocalIP() string {
	if n.Direction == DirectionInbound {
		return n.ServerIP
	}
	return n.ClientIP
}

func (n *Network) RemoteIP() string {
	if n.Direction == DirectionInbound {
		return n.ClientIP
	}
	return n.ServerIP
}

func (n *Network) LocalPort() int64 {
	if n.Direction == DirectionInbound {
		return n.ServerPort
	}
	return n.ClientPort
}

func (n *Network) RemotePort() int64 {
	if n.Direction == DirectionInbound {
		return n.ClientPort
	}
	return n.ServerPort
}

// Args returns the arguments after argv[0], joined by spaces, as Falco's proc.args.
func (p *Process) Args() string {
	if len(p.Argv) < 2 {
		return ""
	}
	return strings.Join(p.Argv[1:], " ")
}

// Cmdline returns the process name followed by its arguments, as Falco's proc.cmdline.
func (p *Process) Cmdline() string {
	if a := p.Args(); a != "" {
		return p.Name + " " + a
	}
	return p.Name
}

// Stage order of one audited request; a later stage replaces an earlier one.
var auditStageRank = map[string]int{"RequestReceived": 1, "ResponseStarted": 2, "ResponseComplete": 3, "Panic": 4}

// AuditStageRank orders audit stages; unknown stages rank 0.
func AuditStageRank(stage string) int { return auditStageRank[stage] }

// ID returns the event's identifier: "<stream>/<seq>" for runtime events and
// "audit/<auditID>" for Kubernetes requests (all stages of one request are one event).
func (e *Event) ID() string {
	switch e.Category {
	case CategoryK8s:
		return "audit/" + e.Audit.AuditID
	case CategoryPolicy:
		return PolicyEventID(e.Alert.Trigger, e.Alert.Policy, e.Alert.Rule)
	}
	return e.Stream + "/" + formatUint(e.Seq)
}

// NewPolicyEvent returns the policy event alert raises on trigger: at the
// trigger's time, with its type, scope and session, and, raised on a request,
// who made it. alert.Trigger is set to the trigger's id.
func NewPolicyEvent(trigger *Event, alert Alert) Event {
	alert.Trigger = trigger.ID()
	pe := Event{Time: trigger.Time, Category: CategoryPolicy, Type: trigger.Type,
		Cluster: trigger.Cluster, Node: trigger.Node, Namespace: trigger.Namespace, WorkloadKind: trigger.WorkloadKind,
		WorkloadName: trigger.WorkloadName, PodName: trigger.PodName, PodUID: trigger.PodUID, ContainerID: trigger.ContainerID,
		ContainerName: trigger.ContainerName, ImageRepository: trigger.ImageRepository, ImageTag: trigger.ImageTag,
		SessionID: trigger.SessionID, Alert: alert}
	if trigger.Category == CategoryK8s {
		a := &trigger.Audit
		pe.Audit = Audit{AuditID: a.AuditID, UserName: a.UserName, UserGroups: a.UserGroups, ImpUserName: a.ImpUserName,
			Verb: a.Verb, Subresource: a.Subresource, SourceIPs: a.SourceIPs, UserAgent: a.UserAgent}
	}
	return pe
}

// PolicyEventID identifies the policy event a rule of a policy raised on a
// trigger: "policy/" and 32 hex digits of the MD5 of the three, newline-separated.
// It is the same however often the trigger is seen (a retried batch, a later audit
// stage), so a rule fires once per event and policy.
func PolicyEventID(trigger, policy, rule string) string {
	sum := md5.Sum([]byte(trigger + "\n" + policy + "\n" + rule))
	return "policy/" + hex.EncodeToString(sum[:])
}

// Image returns "repository:tag" as Falco's container.image.
func (e *Event) Image() string {
	if e.ImageTag == "" {
		return e.ImageRepository
	}
	return e.ImageRepository + ":" + e.ImageTag
}

// Host reports whether the event happened on the node itself, outside any container.
func (e *Event) Host() bool { return e.Source() == "syscall" && e.ContainerID == "" }

func formatUint(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
