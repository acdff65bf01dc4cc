package kubetrail

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldType is the type of a field's value, which decides the operators a filter may
// apply to it.
type FieldType string

const (
	TypeString  FieldType = "string"
	TypeInt     FieldType = "int"
	TypeTime    FieldType = "time"
	TypeStrings FieldType = "list" // a list of strings
	// TypeBool is true or false. No stored field has it; Falco's rule fields
	// (evt.is_open_write) do.
	TypeBool FieldType = "bool"
)

// Field is one named part of an event. Names follow Falco's where Falco has one, so
// a Falco condition and a kubetrail filter read the same; fields Falco lacks use the
// same dotted style. The list below is the one definition of the event's shape: the
// JSON form, the filter language, the stores and the field reference all read it.
type Field struct {
	Name       string
	Type       FieldType
	Categories []Category // the categories the field applies to; nil means all
	// Derived fields are computed from stored ones (proc.cmdline from proc.argv, for
	// example); stores compute them rather than keep a copy.
	Derived bool
	// Linked fields are also shown on events across a session link (see linked);
	// stores keep them only for the categories they apply to.
	Linked bool
	Doc    string
	Get    func(*Event) any // string, int64, time.Time or []string
	set    func(*Event, any) error
	// AppendKey appends the stored field's value to b without boxing it, for
	// stores that key rows by field values; nil for derived and time fields.
	AppendKey func(b []byte, e *Event) []byte
}

var (
	runtimeCategories = []Category{CategoryProcess, CategoryNetwork, CategoryFile}
	nodeCategories    = []Category{CategoryProcess, CategoryNetwork, CategoryFile, CategoryGap}
	onlyGap           = []Category{CategoryGap}
	onlyProcess       = []Category{CategoryProcess}
	onlyNetwork       = []Category{CategoryNetwork}
	onlyFile          = []Category{CategoryFile}
	onlyK8s           = []Category{CategoryK8s}
	onlyPolicy        = []Category{CategoryPolicy}
	// A policy event raised on a Kubernetes request keeps who made it.
	k8sAndPolicy = []Category{CategoryK8s, CategoryPolicy}
	// Policy events keep their trigger's scope and session.
	runtimeAndPolicy = []Category{CategoryProcess, CategoryNetwork, CategoryFile, CategoryPolicy}
	fileAndNetwork   = []Category{CategoryNetwork, CategoryFile}
)

func str(name string, cats []Category, doc string, p func(*Event) *string) Field {
	return Field{Name: name, Type: TypeString, Categories: cats, Doc: doc,
		Get:       func(e *Event) any { return *p(e) },
		set:       func(e *Event, v any) error { return setString(p(e), v) },
		AppendKey: func(b []byte, e *Event) []byte { return append(b, *p(e)...) }}
}

func integer(name string, cats []Category, doc string, p func(*Event) *int64) Field {
	return Field{Name: name, Type: TypeInt, Categories: cats, Doc: doc,
		Get:       func(e *Event) any { return *p(e) },
		set:       func(e *Event, v any) error { return setInt(p(e), v) },
		AppendKey: func(b []byte, e *Event) []byte { return strconv.AppendInt(b, *p(e), 10) }}
}

func list(name string, cats []Category, doc string, p func(*Event) *[]string) Field {
	return Field{Name: name, Type: TypeStrings, Categories: cats, Doc: doc,
		Get: func(e *Event) any { return *p(e) },
		set: func(e *Event, v any) error { return setStrings(p(e), v) },
		AppendKey: func(b []byte, e *Event) []byte {
			for _, s := range *p(e) {
				b = append(append(b, s...), 1)
			}
			return b
		}}
}

// linked marks a field that events on the other side of a session link also
// carry, filled in when they are read: the Kubernetes request's user, groups and
// source on every command and connection of the session it started, and the
// session's id on the request.
func linked(f Field) Field {
	f.Linked = true
	return f
}

func derived(name string, t FieldType, cats []Category, doc string, get func(*Event) any) Field {
	return Field{Name: name, Type: t, Categories: cats, Derived: true, Doc: doc, Get: get}
}

// Fields is the field reference, in the order documentation and tables show it.
var Fields = []Field{
	// The event itself.
	derived("evt.id", TypeString, nil, `Event identifier: "<stream>/<seq>" for runtime events, "audit/<auditID>" for Kubernetes requests.`,
		func(e *Event) any { return e.ID() }),
	{Name: "evt.time", Type: TypeTime, Doc: "When it happened (UTC, nanoseconds). For a Kubernetes request, when the API server received it.",
		Get: func(e *Event) any { return e.Time },
		set: func(e *Event, v any) error { return setTime(&e.Time, v) }},
	{Name: "evt.category", Type: TypeString, Doc: "Kind of activity: process, network, file or k8s; gap where a sensor lost records.",
		Get: func(e *Event) any { return string(e.Category) },
		set: func(e *Event, v any) error {
			var s string
			if err := setString(&s, v); err != nil {
				return err
			}
			if c := Category(s); !c.Valid() {
				return fmt.Errorf("unknown category %q (want process, network, file, k8s or gap)", s)
			}
			e.Category = Category(s)
			return nil
		}},
	derived("evt.source", TypeString, nil, "Sensor family as in Falco: syscall for process, network and file events, k8s_audit for Kubernetes requests; for a policy event, its rule's source.",
		func(e *Event) any { return e.Source() }),
	str("evt.type", nil, "What happened: execve or exit; connect or accept; open, unlink, rmdir, rename, chmod, chown or mkdir; for Kubernetes requests the verb; for a gap, the kind of record lost; for a policy event, its trigger's type.",
		func(e *Event) *string { return &e.Type }),
	str("evt.res", runtimeCategories, `Outcome: "SUCCESS" or the error name (for example ECONNREFUSED, EACCES).`,
		func(e *Event) *string { return &e.Result }),
	str("evt.stream", nodeCategories, "Stream the event was sent on: one per agent start; with evt.seq it identifies the event.",
		func(e *Event) *string { return &e.Stream }),
	{Name: "evt.seq", Type: TypeInt, Categories: nodeCategories, Doc: "Sequence number of the event inside its stream, from 1.",
		Get: func(e *Event) any { return int64(e.Seq) },
		set: func(e *Event, v any) error {
			var n int64
			if err := setInt(&n, v); err != nil {
				return err
			}
			if n < 0 {
				return fmt.Errorf("sequence number %d is negative", n)
			}
			e.Seq = uint64(n)
			return nil
		}},

	// Where.
	str("k8s.cluster.name", nil, "Cluster the event belongs to.", func(e *Event) *string { return &e.Cluster }),
	str("k8s.node.name", append(nodeCategories[:len(nodeCategories):len(nodeCategories)], CategoryPolicy), "Node (host) the event happened on.", func(e *Event) *string { return &e.Node }),
	integer("evt.lost", onlyGap, "For a gap: how many records of the kind in evt.type the sensor could not deliver.", func(e *Event) *int64 { return &e.Lost }),
	str("k8s.ns.name", nil, "Namespace of the pod (runtime events) or of the request's target (Kubernetes requests).", func(e *Event) *string { return &e.Namespace }),
	str("k8s.workload.kind", nil, "Kind of the workload that owns the pod, resolved through the owner chain: Deployment, StatefulSet, DaemonSet, CronJob, Job, or Pod for a bare pod.", func(e *Event) *string { return &e.WorkloadKind }),
	str("k8s.workload.name", nil, "Name of the workload that owns the pod.", func(e *Event) *string { return &e.WorkloadName }),
	str("k8s.pod.name", nil, "Pod name.", func(e *Event) *string { return &e.PodName }),
	str("k8s.pod.uid", nil, "Pod UID.", func(e *Event) *string { return &e.PodUID }),
	str("container.id", runtimeAndPolicy, "Container ID (64 hex digits); empty for processes on the host.", func(e *Event) *string { return &e.ContainerID }),
	str("container.name", nil, "Container name inside its pod (for exec and attach requests, the target container).", func(e *Event) *string { return &e.ContainerName }),
	str("container.image.repository", runtimeAndPolicy, "Image repository, without the tag.", func(e *Event) *string { return &e.ImageRepository }),
	str("container.image.tag", runtimeAndPolicy, "Image tag or digest.", func(e *Event) *string { return &e.ImageTag }),
	derived("container.image", TypeString, runtimeAndPolicy, `Image as "repository:tag".`, func(e *Event) any { return e.Image() }),
	derived("evt.is_host", TypeInt, runtimeAndPolicy, "1 when the event happened on the node outside any container, else 0.",
		func(e *Event) any {
			if e.Host() {
				return int64(1)
			}
			return int64(0)
		}),
	linked(str("session.id", runtimeAndPolicy, "The session the process belongs to: the exec id of the process that entered its container from outside. On a Kubernetes exec request, the session it started.", func(e *Event) *string { return &e.SessionID })),

	// Process.
	str("proc.name", runtimeCategories, "Name of the executable (the file name of proc.exepath).", func(e *Event) *string { return &e.Process.Name }),
	str("proc.exepath", runtimeCategories, "Full path of the executable.", func(e *Event) *string { return &e.Process.ExePath }),
	list("proc.argv", runtimeCategories, "The whole argument vector, argv[0] first, as the process received it.", func(e *Event) *[]string { return &e.Process.Argv }),
	derived("proc.exe", TypeString, runtimeCategories, "argv[0] as the process received it.", func(e *Event) any {
		if len(e.Process.Argv) == 0 {
			return ""
		}
		return e.Process.Argv[0]
	}),
	derived("proc.args", TypeString, runtimeCategories, "Arguments after argv[0], joined by spaces.", func(e *Event) any { return e.Process.Args() }),
	derived("proc.cmdline", TypeString, runtimeCategories, "proc.name followed by proc.args.", func(e *Event) any { return e.Process.Cmdline() }),
	integer("proc.pid", runtimeCategories, "Process ID (in the host's PID namespace).", func(e *Event) *int64 { return &e.Process.PID }),
	integer("proc.ppid", runtimeCategories, "Parent process ID.", func(e *Event) *int64 { return &e.Process.PPID }),
	str("proc.pname", runtimeCategories, "Name of the parent process.", func(e *Event) *string { return &e.Process.ParentName }),
	str("proc.cwd", onlyProcess, "Working directory.", func(e *Event) *string { return &e.Process.Cwd }),
	integer("proc.tty", runtimeCategories, "Controlling terminal device number; 0 when the process has none.", func(e *Event) *int64 { return &e.Process.TTY }),
	integer("proc.exitcode", onlyProcess, "Exit code, once the process has ended.", func(e *Event) *int64 { return &e.Process.ExitCode }),
	str("proc.exec_id", runtimeCategories, "Identifier of this execution, unique per node boot.", func(e *Event) *string { return &e.Process.ExecID }),
	str("proc.pexec_id", runtimeCategories, "Identifier of the parent's execution.", func(e *Event) *string { return &e.Process.ParentExecID }),
	str("proc.exec_auditid", runtimeCategories, "For the process that opened a session: the audit ID of the exec request it says it ran for, from KUBERNETES_EXEC_AUDIT_ID in its environment (KEP-6035). A claim: kubetrail checks it against the request's pod, command and time.", func(e *Event) *string { return &e.Process.ExecAuditID }),
	integer("user.uid", runtimeCategories, "User ID the process runs as.", func(e *Event) *int64 { return &e.Process.UID }),
	str("user.name", runtimeCategories, "User name, where the container's passwd file names the uid.", func(e *Event) *string { return &e.Process.UserName }),
	integer("user.loginuid", runtimeCategories, "Audit login user ID; -1 when unset.", func(e *Event) *int64 { return &e.Process.LoginUID }),
	integer("group.gid", runtimeCategories, "Group ID the process runs as.", func(e *Event) *int64 { return &e.Process.GID }),

	// Network.
	str("fd.l4proto", onlyNetwork, "Transport protocol: tcp or udp.", func(e *Event) *string { return &e.Network.L4Proto }),
	str("net.direction", onlyNetwork, "outbound when the process opened the connection, inbound when it accepted it.", func(e *Event) *string { return &e.Network.Direction }),
	str("fd.cip", onlyNetwork, "Client (connecting side) IP address.", func(e *Event) *string { return &e.Network.ClientIP }),
	integer("fd.cport", onlyNetwork, "Client port.", func(e *Event) *int64 { return &e.Network.ClientPort }),
	str("fd.sip", onlyNetwork, "Server (listening side) IP address.", func(e *Event) *string { return &e.Network.ServerIP }),
	integer("fd.sport", onlyNetwork, "Server port.", func(e *Event) *int64 { return &e.Network.ServerPort }),
	derived("fd.lip", TypeString, onlyNetwork, "Local IP address, from the acting process' side.", func(e *Event) any { return e.Network.LocalIP() }),
	derived("fd.lport", TypeInt, onlyNetwork, "Local port.", func(e *Event) any { return e.Network.LocalPort() }),
	derived("fd.rip", TypeString, onlyNetwork, "Remote IP address.", func(e *Event) any { return e.Network.RemoteIP() }),
	derived("fd.rport", TypeInt, onlyNetwork, "Remote port.", func(e *Event) any { return e.Network.RemotePort() }),
	str("net.peer.kind", onlyNetwork, "What the remote address was in the cluster at the time: pod, service, node, loopback, or unknown when it belonged to nothing in the cluster.", func(e *Event) *string { return &e.Network.PeerKind }),
	str("net.peer.ns", onlyNetwork, "Namespace of the remote pod or service.", func(e *Event) *string { return &e.Network.PeerNamespace }),
	str("net.peer.name", onlyNetwork, "Name of the remote pod, service or node.", func(e *Event) *string { return &e.Network.PeerName }),
	str("net.peer.workload", onlyNetwork, "Workload that owned the remote pod.", func(e *Event) *string { return &e.Network.PeerWorkload }),

	// Files (fd.name also names a connection, as in Falco).
	derived("fd.name", TypeString, fileAndNetwork, `For file events the path; for connections "cip:cport->sip:sport".`, func(e *Event) any {
		switch e.Category {
		case CategoryFile:
			return e.File.Path
		case CategoryNetwork:
			n := &e.Network
			return fmt.Sprintf("%s:%d->%s:%d", n.ClientIP, n.ClientPort, n.ServerIP, n.ServerPort)
		}
		return ""
	}),
	str("fs.path.name", onlyFile, "Path of the file changed.", func(e *Event) *string { return &e.File.Path }),
	str("fs.path.target", onlyFile, "New path, for a rename.", func(e *Event) *string { return &e.File.TargetPath }),
	derived("fd.directory", TypeString, onlyFile, "Directory of the file changed.", func(e *Event) any { return dirOf(e.File.Path) }),
	derived("fd.filename", TypeString, onlyFile, "File name without its directory.", func(e *Event) any { return baseOf(e.File.Path) }),

	// Kubernetes API requests.
	linked(str("ka.auditid", k8sAndPolicy, "Audit ID of the request; all its stages share it.", func(e *Event) *string { return &e.Audit.AuditID })),
	str("ka.stage", onlyK8s, "Latest stage seen: RequestReceived, ResponseStarted, ResponseComplete or Panic.", func(e *Event) *string { return &e.Audit.Stage }),
	{Name: "ka.stage.time", Type: TypeTime, Categories: onlyK8s, Doc: "When the latest stage was reached.",
		Get: func(e *Event) any { return e.Audit.StageTime },
		set: func(e *Event, v any) error { return setTime(&e.Audit.StageTime, v) }},
	linked(str("ka.user.name", k8sAndPolicy, "Authenticated user name.", func(e *Event) *string { return &e.Audit.UserName })),
	linked(list("ka.user.groups", k8sAndPolicy, "Groups of the authenticated user.", func(e *Event) *[]string { return &e.Audit.UserGroups })),
	linked(str("ka.impuser.name", k8sAndPolicy, "Impersonated user name, when the request impersonated one.", func(e *Event) *string { return &e.Audit.ImpUserName })),
	linked(str("ka.verb", k8sAndPolicy, "Request verb: get, list, watch, create, update, patch, delete, ...", func(e *Event) *string { return &e.Audit.Verb })),
	str("ka.uri", onlyK8s, "Request URI, with its query.", func(e *Event) *string { return &e.Audit.URI }),
	str("ka.target.resource", onlyK8s, "Target resource (pods, secrets, ...).", func(e *Event) *string { return &e.Audit.Resource }),
	linked(str("ka.target.subresource", k8sAndPolicy, "Target subresource (exec, attach, log, ...).", func(e *Event) *string { return &e.Audit.Subresource })),
	str("ka.target.apigroup", onlyK8s, "API group of the target resource; empty for the core group.", func(e *Event) *string { return &e.Audit.APIGroup }),
	str("ka.target.namespace", onlyK8s, "Namespace of the target object.", func(e *Event) *string { return &e.Audit.TargetNamespace }),
	str("ka.target.name", onlyK8s, "Name of the target object.", func(e *Event) *string { return &e.Audit.TargetName }),
	linked(list("ka.sourceips", k8sAndPolicy, "Source IP addresses of the request, the client first.", func(e *Event) *[]string { return &e.Audit.SourceIPs })),
	linked(str("ka.useragent", k8sAndPolicy, "User agent of the client.", func(e *Event) *string { return &e.Audit.UserAgent })),
	integer("ka.response.code", onlyK8s, "HTTP response code; 0 before the response started.", func(e *Event) *int64 { return &e.Audit.ResponseCode }),
	str("ka.response.reason", onlyK8s, "Reason given with a failed response (Forbidden, NotFound, ...).", func(e *Event) *string { return &e.Audit.ResponseReason }),
	str("ka.auth.decision", onlyK8s, "Authorization decision: allow or forbid.", func(e *Event) *string { return &e.Audit.AuthDecision }),
	str("ka.auth.reason", onlyK8s, "Why the authorizer decided so.", func(e *Event) *string { return &e.Audit.AuthReason }),
	list("ka.exec.command", onlyK8s, "For pods/exec: the command requested, one element per command= parameter.", func(e *Event) *[]string { return &e.Audit.ExecCommand }),
	str("ka.exec.container", onlyK8s, "For pods/exec and pods/attach: the container requested.", func(e *Event) *string { return &e.Audit.ExecContainer }),

	// Policy events.
	str("policy.name", onlyPolicy, "Policy whose rule matched.", func(e *Event) *string { return &e.Alert.Policy }),
	str("policy.rule", onlyPolicy, "Name of the rule that matched (Falco's rule).", func(e *Event) *string { return &e.Alert.Rule }),
	str("policy.priority", onlyPolicy, "Priority of the rule, as Falco spells it: EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFORMATIONAL or DEBUG.", func(e *Event) *string { return &e.Alert.Priority }),
	str("policy.source", onlyPolicy, "Source of the rule: syscall or k8s_audit.", func(e *Event) *string { return &e.Alert.Source }),
	str("policy.output", onlyPolicy, "The rule's output, with the trigger's fields filled in.", func(e *Event) *string { return &e.Alert.Output }),
	list("policy.tags", onlyPolicy, "The rule's tags, MITRE ATT&CK tactics and techniques among them.", func(e *Event) *[]string { return &e.Alert.Tags }),
	str("policy.trigger", onlyPolicy, "evt.id of the event the rule matched; kubetrail event <policy event id> opens the activity around it.", func(e *Event) *string { return &e.Alert.Trigger }),
}

var fieldIndex = func() map[string]*Field {
	m := make(map[string]*Field, len(Fields))
	for i := range Fields {
		m[Fields[i].Name] = &Fields[i]
	}
	return m
}()

// LookupField returns the field with the given name, or nil.
func LookupField(name string) *Field { return fieldIndex[name] }

// Set assigns v to the field of e. v may be what Get returns or its JSON form
// (a string for times, float64 or json.Number for numbers, []any for lists).
func (f *Field) Set(e *Event, v any) error {
	if f.set == nil {
		return fmt.Errorf("%s is derived from other fields and cannot be set", f.Name)
	}
	return f.set(e, v)
}

// AppliesTo reports whether the field has a meaning for category c.
func (f *Field) AppliesTo(c Category) bool {
	return f.Categories == nil || slices.Contains(f.Categories, c)
}

// Shows reports whether events of category c may carry the field: those it
// applies to and, for a linked field, those across a session link.
func (f *Field) Shows(c Category) bool {
	if f.AppliesTo(c) {
		return true
	}
	return f.Linked && (c == CategoryK8s || c == CategoryProcess || c == CategoryNetwork || c == CategoryFile || c == CategoryPolicy)
}

// fieldAliases are names users reach for that the reference spells otherwise.
var fieldAliases = map[string]string{
	"namespace": "k8s.ns.name", "k8s.namespace.name": "k8s.ns.name", "k8s.namespace": "k8s.ns.name",
	"pod": "k8s.pod.name", "node": "k8s.node.name", "host": "k8s.node.name", "cluster": "k8s.cluster.name",
	"user": "ka.user.name", "image": "container.image", "cmdline": "proc.cmdline", "command": "proc.cmdline",
}

// SuggestField returns the known field name closest to name, for "did you mean"
// messages, or "" when nothing is close. A field the name is the start or the end of
// ("ka.user", "pod.name") wins over one a few letters away.
func SuggestField(name string) string {
	if a, ok := fieldAliases[strings.ToLower(name)]; ok {
		return a
	}
	for i := range Fields {
		if strings.HasPrefix(Fields[i].Name, name+".") || strings.HasSuffix(Fields[i].Name, "."+name) {
			return Fields[i].Name
		}
	}
	best, bestDist := "", len(name)/2+2
	for i := range Fields {
		if d := editDistance(name, Fields[i].Name); d < bestDist {
			best, bestDist = Fields[i].Name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case i < 0:
		return ""
	case i == 0:
		return "/"
	}
	return p[:i]
}

func baseOf(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func setString(dst *string, v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want a string, got %s", jsonKind(v))
	}
	*dst = s
	return nil
}

func setInt(dst *int64, v any) error {
	switch n := v.(type) {
	case int64:
		*dst = n
	case int:
		*dst = int64(n)
	case float64:
		if n != float64(int64(n)) {
			return fmt.Errorf("want a whole number, got %v", n)
		}
		*dst = int64(n)
	case interface{ Int64() (int64, error) }: // json.Number
		i, err := n.Int64()
		if err != nil {
			return fmt.Errorf("want a whole number: %w", err)
		}
		*dst = i
	default:
		return fmt.Errorf("want a number, got %s", jsonKind(v))
	}
	return nil
}

func setStrings(dst *[]string, v any) error {
	switch l := v.(type) {
	case []string:
		*dst = l
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				return fmt.Errorf("element %d: want a string, got %s", i, jsonKind(x))
			}
			out[i] = s
		}
		*dst = out
	default:
		return fmt.Errorf("want a list of strings, got %s", jsonKind(v))
	}
	return nil
}

func setTime(dst *time.Time, v any) error {
	switch t := v.(type) {
	case time.Time:
		*dst = t
	case string:
		p, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return fmt.Errorf("want an RFC 3339 time: %w", err)
		}
		*dst = p.UTC()
	default:
		return fmt.Errorf("want an RFC 3339 time string, got %s", jsonKind(v))
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
