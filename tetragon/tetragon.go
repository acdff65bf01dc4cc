// Package tetragon reads the JSON export of Cilium Tetragon — what Tetragon's export
// file holds and `tetra getevents -o json` prints, objects such as
// {"process_exec":{"process":{...},"parent":{...}},"node_name":"...","time":"..."} —
// and turns its events into kubetrail events, so that teams running Tetragon today
// can bring their history into the trail.
//
// What maps:
//
//   - process_exec: a process event of type execve. proc.exepath is the binary,
//     proc.name its file name, proc.argv the binary followed by the arguments.
//     Tetragon hands the arguments over as one string, joined by spaces, with an
//     argument that contains a space wrapped in double quotes; they are split back
//     the same way. That cannot always be exact: Tetragon does not escape quotes,
//     so an argument that itself starts or ends with a double quote, or an empty
//     argument, may come back differently. proc.pid, user.uid, user.loginuid
//     (auid; 4294967295 is the kernel's "unset" and becomes -1), proc.cwd,
//     proc.exec_id (Tetragon's exec_id), proc.pexec_id (the parent's exec_id, or
//     the process' parent_exec_id), proc.ppid and proc.pname (the file name of the
//     parent's binary) follow. Where: k8s.node.name is node_name,
//     k8s.cluster.name cluster_name, and the pod gives k8s.ns.name, k8s.pod.name,
//     k8s.pod.uid, container.name, container.id (without its "containerd://"-style
//     prefix), container.image.repository and .tag (the image name split at its tag;
//     a digest when there is no tag) and, when Tetragon resolved them,
//     k8s.workload.name and k8s.workload.kind. Pod labels and annotations are not
//     kept. A process outside any pod but inside a container keeps the short
//     container ID Tetragon gives ("docker"): it is not on the host.
//   - process_exit: a process event of type exit, proc.exitcode being Tetragon's
//     status. The signal that ended the process has no field and is not kept.
//   - process_kprobe on tcp_connect, and the older process_connect events of
//     Isovalent's enterprise edition: a network event of type connect, outbound,
//     from the socket's source to its destination.
//   - process_kprobe (and process_lsm) on the kernel functions that change files,
//     with the file's path as an argument: a file event, typed as kubetrail's agent
//     types its own. A write — security_file_permission with MAY_WRITE or
//     MAY_APPEND in its mask, a write-like system call (write, pwrite64, writev,
//     ...) on a followed file descriptor, security_mmap_file of a shared writable
//     mapping — and security_path_truncate are of type open, the agent's type for
//     a file opened for writing, created or truncated (the time is that of the
//     write or the truncation, which Tetragon saw, rather than of the open);
//     security_path_unlink and security_inode_unlink are unlink; ..._rmdir rmdir;
//     ..._mkdir mkdir; ..._rename rename (with fs.path.target);
//     security_path_chmod chmod; security_path_chown chown. A negative return
//     value is the error the call failed with, in evt.res. Tetragon versions that
//     print paths without their leading slash ("etc/passwd") have it put back:
//     those paths are absolute.
//
// Times come from the record's "time". A process_exec without one takes its
// process' start_time, which is the time of the exec; a process_exit without one
// takes the exit's own time. Any other record without a time is refused.
//
// What is skipped, with a reason (see Reader): process_exec events Tetragon made
// from /proc for processes already running when it started (it did not see them
// execute, and every restart repeats them); tcp_close, tcp_sendmsg and the older
// process_close (the end of a connection, or data on one, whose start is its
// connect); process_listen (no connection); file kprobes that read (a
// security_file_permission without a write in its mask, read system calls),
// fd_install and security_file_open (opens whose access mode the event does not
// carry); calls a policy's override action refused, which did not happen; any
// other kprobe function; and every other event type (process_tracepoint,
// process_uprobe, process_throttle, process_loader, ...). A kprobe's policy_name,
// message and tags have no field in kubetrail yet and are not kept.
package tetragon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubetrail/kubetrail"
)

// process is the part of Tetragon's Process message kubetrail uses.
type process struct {
	ExecID       string `json:"exec_id"`
	PID          num    `json:"pid"`
	UID          num    `json:"uid"`
	AUID         *num   `json:"auid"`
	Cwd          string `json:"cwd"`
	Binary       string `json:"binary"`
	Arguments    string `json:"arguments"`
	Flags        string `json:"flags"`
	StartTime    string `json:"start_time"`
	Pod          *pod   `json:"pod"`
	Docker       string `json:"docker"`
	ParentExecID string `json:"parent_exec_id"`
	User         struct {
		Name string `json:"name"`
	} `json:"user"`
	Credentials *struct {
		GID *num `json:"gid"`
	} `json:"process_credentials"`
}

type pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Container *struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Image struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"image"`
	} `json:"container"`
	Workload     string `json:"workload"`
	WorkloadKind string `json:"workload_kind"`
}

// body is the inside of every event type kubetrail reads; each uses some fields.
type body struct {
	Process *process `json:"process"`
	Parent  *process `json:"parent"`

	// process_exit
	Status num    `json:"status"`
	Time   string `json:"time"`

	// process_kprobe, process_lsm
	FunctionName string `json:"function_name"`
	Args         []arg  `json:"args"`
	Return       *arg   `json:"return"`
	Action       string `json:"action"`

	// process_connect (Isovalent enterprise)
	SourceIP        string `json:"source_ip"`
	SourcePort      num    `json:"source_port"`
	DestinationIP   string `json:"destination_ip"`
	DestinationPort num    `json:"destination_port"`
	Protocol        string `json:"protocol"`
}

// arg is one kprobe argument: an object with one key naming its type.
type arg struct {
	File *struct {
		Path string `json:"path"`
	} `json:"file_arg"`
	Path *struct {
		Path string `json:"path"`
	} `json:"path_arg"`
	Sock *struct {
		Family   string `json:"family"`
		Protocol string `json:"protocol"`
		Saddr    string `json:"saddr"`
		Daddr    string `json:"daddr"`
		Sport    num    `json:"sport"`
		Dport    num    `json:"dport"`
	} `json:"sock_arg"`
	Int  *num `json:"int_arg"`
	Uint *num `json:"uint_arg"`
	Long *num `json:"long_arg"`
}

// number returns the argument's integer value, whichever integer type it has.
func (a *arg) number() (int64, bool) {
	for _, n := range []*num{a.Int, a.Uint, a.Long} {
		if n != nil {
			return int64(*n), true
		}
	}
	return 0, false
}

// num is an integer as protobuf's JSON mapping writes it: a number, or for 64-bit
// types a string of digits.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if u, uerr := strconv.ParseUint(s, 10, 64); uerr == nil {
			v, err = int64(u), nil
		}
	}
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	*n = num(v)
	return nil
}

// envelopeKeys are the keys of a record beside the one that names its event type.
var envelopeKeys = []string{"node_name", "cluster_name", "time", "node_labels", "aggregation_info"}

// convert reads one record. Errors are *kubetrail.Error without a position; Next
// adds it.
func convert(raw []byte) (kubetrail.Event, string, error) {
	var ev kubetrail.Event
	if raw[0] != '{' {
		return ev, "", kubetrail.Errorf(kubetrail.EINVALID, "want a JSON object such as {\"process_exec\":{...},\"node_name\":...,\"time\":...}, got %s", jsonKind(raw[0]))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return ev, "", kubetrail.Errorf(kubetrail.EINVALID, "%v", err)
	}
	var kinds []string
	for k := range top {
		if !slices.Contains(envelopeKeys, k) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	switch len(kinds) {
	case 0:
		return ev, "", kubetrail.Errorf(kubetrail.EINVALID, "no event in the record: want a key such as process_exec beside node_name and time")
	case 1:
	default:
		return ev, "", kubetrail.Errorf(kubetrail.EINVALID, "not a Tetragon event: it has the keys %s, want one event type such as process_exec beside node_name and time", strings.Join(kinds, ", "))
	}
	kind := kinds[0]
	var env struct {
		Node    string `json:"node_name"`
		Cluster string `json:"cluster_name"`
		Time    string `json:"time"`
	}
	if err := unmarshal(raw, &env, ""); err != nil {
		return ev, "", err
	}
	ev.Node, ev.Cluster = env.Node, env.Cluster

	switch kind {
	case "process_exec", "process_exit", "process_kprobe", "process_lsm", "process_connect":
	case "process_close":
		return ev, "process_close: the end of a connection, whose start is its process_connect", nil
	case "process_listen":
		return ev, "process_listen: a listening socket, not a connection", nil
	default:
		// Event types of other Tetragon versions are skipped, but an object that
		// has none of Tetragon's envelope is something else altogether.
		if _, ok := top["time"]; !ok && env.Node == "" {
			return ev, "", kubetrail.Errorf(kubetrail.EINVALID, "not a Tetragon event: {%q: ...} without time or node_name", kind)
		}
		return ev, kind + ": not a kind of activity kubetrail records", nil
	}
	var b body
	if err := unmarshal(top[kind], &b, kind); err != nil {
		return ev, "", err
	}
	if b.Process == nil {
		return ev, "", kubetrail.Errorf(kubetrail.EINVALID, "%s has no process", kind)
	}
	when := env.Time
	var skip string
	var err error
	switch kind {
	case "process_exec":
		if hasFlag(b.Process.Flags, "procFS") {
			return kubetrail.Event{}, "process_exec from /proc: the process was already running when Tetragon started", nil
		}
		if when == "" {
			when = b.Process.StartTime
		}
		ev.Category, ev.Type = kubetrail.CategoryProcess, "execve"
	case "process_exit":
		if when == "" {
			when = b.Time
		}
		ev.Category, ev.Type = kubetrail.CategoryProcess, "exit"
		ev.Process.ExitCode = int64(b.Status)
	case "process_connect":
		err = connectEvent(&ev, b.Protocol, b.SourceIP, int64(b.SourcePort), b.DestinationIP, int64(b.DestinationPort))
	case "process_kprobe", "process_lsm":
		skip, err = kprobeEvent(&ev, kind, &b)
	}
	if skip != "" || err != nil {
		return kubetrail.Event{}, skip, err
	}
	if ev.Category == kubetrail.CategoryProcess && b.Process.Binary == "" {
		return kubetrail.Event{}, "", kubetrail.Errorf(kubetrail.EINVALID, "%s.process.binary is missing", kind)
	}
	if ev.Time, err = parseTime(when); err != nil {
		return kubetrail.Event{}, "", err
	}
	describe(&ev, b.Process, b.Parent)
	return ev, "", nil
}

// describe fills in the acting process and where it ran.
func describe(ev *kubetrail.Event, p, parent *process) {
	pr := &ev.Process
	pr.ExePath = p.Binary
	pr.Name = path.Base(p.Binary)
	if p.Binary == "" {
		pr.Name = ""
	}
	pr.Argv = append([]string{p.Binary}, splitArgs(p.Arguments)...)
	pr.PID, pr.UID = int64(p.PID), int64(p.UID)
	pr.LoginUID = -1
	if p.AUID != nil && uint32(*p.AUID) != ^uint32(0) {
		pr.LoginUID = int64(*p.AUID)
	}
	if p.Credentials != nil && p.Credentials.GID != nil {
		pr.GID = int64(*p.Credentials.GID)
	}
	pr.UserName = p.User.Name
	if ev.Category == kubetrail.CategoryProcess {
		pr.Cwd = p.Cwd // the working directory is a field of executions only
	}
	pr.ExecID, pr.ParentExecID = p.ExecID, p.ParentExecID
	if parent != nil {
		pr.PPID = int64(parent.PID)
		if parent.Binary != "" {
			pr.ParentName = path.Base(parent.Binary)
		}
		if parent.ExecID != "" {
			pr.ParentExecID = parent.ExecID
		}
	}

	ev.ContainerID = p.Docker
	if pd := p.Pod; pd != nil {
		ev.Namespace, ev.PodName, ev.PodUID = pd.Namespace, pd.Name, pd.UID
		ev.WorkloadName, ev.WorkloadKind = pd.Workload, pd.WorkloadKind
		if c := pd.Container; c != nil {
			if c.ID != "" {
				ev.ContainerID = stripScheme(c.ID)
			}
			ev.ContainerName = c.Name
			image := c.Image.Name
			if image == "" {
				image = stripScheme(c.Image.ID)
			}
			ev.ImageRepository, ev.ImageTag = splitImage(image)
		}
	}
}

// connectEvent makes ev an outbound connection from the source to the destination.
func connectEvent(ev *kubetrail.Event, protocol, saddr string, sport int64, daddr string, dport int64) error {
	proto := strings.ToLower(strings.TrimPrefix(strings.ToUpper(protocol), "IPPROTO_"))
	if proto != "tcp" && proto != "udp" {
		return kubetrail.Errorf(kubetrail.EINVALID, "protocol %q is not TCP or UDP", protocol)
	}
	for _, a := range []struct {
		name, ip string
		port     int64
	}{{"source", saddr, sport}, {"destination", daddr, dport}} {
		if _, err := netip.ParseAddr(a.ip); err != nil {
			return kubetrail.Errorf(kubetrail.EINVALID, "%s address %q is not an IP address", a.name, a.ip)
		}
		if a.port < 0 || a.port > 65535 {
			return kubetrail.Errorf(kubetrail.EINVALID, "%s port %d is out of range", a.name, a.port)
		}
	}
	ev.Category, ev.Type = kubetrail.CategoryNetwork, "connect"
	ev.Network = kubetrail.Network{L4Proto: proto, Direction: kubetrail.DirectionOutbound,
		ClientIP: saddr, ClientPort: sport, ServerIP: daddr, ServerPort: dport}
	return nil
}

// File operations of the kernel's security hooks, named without their "security_"
// prefix (the form BPF LSM programs use), as the agent types them: "open" is a file
// opened for writing, created or truncated.
var fileHooks = map[string]string{
	"path_truncate": "open", "file_truncate": "open",
	"path_unlink": "unlink", "inode_unlink": "unlink",
	"path_rmdir": "rmdir", "inode_rmdir": "rmdir",
	"path_mkdir": "mkdir", "inode_mkdir": "mkdir",
	"path_rename": "rename", "inode_rename": "rename",
	"path_chmod": "chmod", "path_chown": "chown",
}

var (
	writeSyscalls = []string{"write", "pwrite64", "writev", "pwritev", "pwritev2"}
	readSyscalls  = []string{"read", "pread64", "readv", "preadv", "preadv2"}
)

// Bits of the mask of security_file_permission and of mmap's prot and flags.
const (
	mayWrite   = 0x2
	mayAppend  = 0x8
	protWrite  = 0x2
	mapShared  = 0x1
	kprobePost = "KPROBE_ACTION_POST"
)

// kprobeEvent maps a kprobe (or LSM hook) event, or says why it is skipped.
func kprobeEvent(ev *kubetrail.Event, kind string, b *body) (string, error) {
	fn := b.FunctionName
	if fn == "" {
		return "", kubetrail.Errorf(kubetrail.EINVALID, "%s.function_name is missing", kind)
	}
	skipped := func(why string) (string, error) { return kind + " " + fn + ": " + why, nil }
	switch b.Action {
	case "KPROBE_ACTION_OVERRIDE", "KPROBE_ACTION_NOTIFYENFORCER":
		return skipped("the policy refused the call, so it did not happen")
	}
	hook := strings.TrimPrefix(fn, "security_")
	syscallName := trimSyscallPrefix(fn)
	var paths []string
	for _, a := range b.Args {
		switch {
		case a.File != nil && a.File.Path != "":
			paths = append(paths, absolute(a.File.Path))
		case a.Path != nil && a.Path.Path != "":
			paths = append(paths, absolute(a.Path.Path))
		}
	}
	argNumber := func(i int) (int64, bool) {
		if i >= len(b.Args) {
			return 0, false
		}
		return b.Args[i].number()
	}

	var typ string
	switch {
	case fn == "tcp_connect":
		if len(b.Args) == 0 || b.Args[0].Sock == nil {
			return "", kubetrail.Errorf(kubetrail.EINVALID, "%s tcp_connect has no sock_arg", kind)
		}
		s := b.Args[0].Sock
		protocol := s.Protocol
		if protocol == "" {
			protocol = "tcp" // tcp_connect is TCP's; older Tetragon leaves protocol out
		}
		if err := connectEvent(ev, protocol, s.Saddr, int64(s.Sport), s.Daddr, int64(s.Dport)); err != nil {
			return "", kubetrail.Errorf(kubetrail.EINVALID, "%s tcp_connect sock_arg: %s", kind, err.(*kubetrail.Error).Message)
		}
		ev.Result = errnoResult(b.Return)
		return "", nil
	case fn == "tcp_close":
		return skipped("the end of a connection, whose start is its tcp_connect")
	case fn == "tcp_sendmsg", fn == "udp_sendmsg":
		return skipped("data sent on a connection, not its opening")
	case hook == "file_permission":
		mask, ok := argNumber(1)
		if !ok {
			return skipped("no access mask, so whether the file was written is unknown")
		}
		if mask&(mayWrite|mayAppend) == 0 {
			return skipped("a read (kubetrail records changes to files)")
		}
		typ = "open"
	case hook == "mmap_file":
		prot, ok1 := argNumber(1)
		flags, ok2 := argNumber(2)
		if !ok1 || !ok2 {
			return skipped("no protection and flags, so whether the file was written is unknown")
		}
		if prot&protWrite == 0 || flags&mapShared == 0 {
			return skipped("a mapping through which the file cannot be written")
		}
		typ = "open"
	case hook == "file_open", fn == "fd_install":
		return skipped("an open whose access mode the event does not carry")
	case slices.Contains(writeSyscalls, syscallName):
		typ = "open"
	case slices.Contains(readSyscalls, syscallName):
		return skipped("a read (kubetrail records changes to files)")
	case fileHooks[hook] != "":
		typ = fileHooks[hook]
	default:
		return skipped("not a connection or a change to a file")
	}

	ev.Category, ev.Type = kubetrail.CategoryFile, typ
	switch {
	case typ == "rename" && len(paths) >= 4: // old dir, old entry, new dir, new entry
		ev.File.Path, ev.File.TargetPath = paths[1], paths[3]
	case typ == "rename" && len(paths) >= 2:
		ev.File.Path, ev.File.TargetPath = paths[0], paths[1]
	case typ == "rename":
		return skipped("a rename without both paths")
	case len(paths) > 0:
		// Hooks that take a directory and an entry name the file last.
		ev.File.Path = paths[len(paths)-1]
	default:
		return skipped("no file_arg or path_arg, so the file is unknown")
	}
	ev.Result = errnoResult(b.Return)
	return "", nil
}

// trimSyscallPrefix returns the system call a syscall kprobe (__x64_sys_write,
// sys_write, ksys_write) is on, or "" for other functions.
func trimSyscallPrefix(fn string) string {
	for _, p := range []string{"__x64_sys_", "__arm64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_", "ksys_", "sys_", "vfs_"} {
		if strings.HasPrefix(fn, p) {
			return fn[len(p):]
		}
	}
	return ""
}

// errnoResult names the error a call returned, when its return value is known and
// negative; successful calls leave evt.res empty, as the agent does.
func errnoResult(ret *arg) string {
	if ret == nil {
		return ""
	}
	n, ok := ret.number()
	if !ok || n >= 0 {
		return ""
	}
	if name := unix.ErrnoName(syscall.Errno(-n)); name != "" {
		return name
	}
	return "E" + strconv.FormatInt(-n, 10)
}

// absolute puts back the leading slash older Tetragon versions leave out of the
// paths they resolve ("etc/passwd"): those paths are resolved from the root.
func absolute(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// splitArgs undoes Tetragon's joining of the arguments: separated by one space, an
// argument that contains a space wrapped in double quotes (and then, when it is the
// first, preceded by a space). A quote closes at a quote followed by a space or the
// end.
func splitArgs(s string) []string {
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, ` "`) {
		s = s[1:]
	}
	var args []string
	for {
		if strings.HasPrefix(s, `"`) {
			if end := closingQuote(s); end > 0 {
				args = append(args, s[1:end])
				s = s[end+1:]
				if s == "" {
					return args
				}
				s = s[1:] // the separating space
				continue
			}
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return append(args, s)
		}
		args = append(args, s[:i])
		s = s[i+1:]
	}
}

func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '"' && (i+1 == len(s) || s[i+1] == ' ') {
			return i
		}
	}
	return -1
}

// stripScheme removes a runtime's "containerd://", "docker://", "cri-o://" or an
// image ID's "docker-pullable://" prefix.
func stripScheme(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return s[i+3:]
	}
	return s
}

// splitImage splits "registry/repo:tag", "registry/repo@sha256:..." or both into
// the repository and the tag, or the digest when there is no tag.
func splitImage(image string) (repo, tag string) {
	repo, digest, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return repo[:i], repo[i+1:]
	}
	return repo, digest
}

func hasFlag(flags, flag string) bool {
	return slices.Contains(strings.Fields(flags), flag)
}

// Event times must be plausible, as the server requires (after 2000 and not more
// than a day ahead), so that one bad record is refused here, with its position,
// rather than the whole batch there.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, kubetrail.Errorf(kubetrail.EINVALID, "time is missing")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, kubetrail.Errorf(kubetrail.EINVALID, "time %q is not an RFC 3339 time", s)
	}
	if t.Before(minTime) || t.After(time.Now().Add(24*time.Hour)) {
		return time.Time{}, kubetrail.Errorf(kubetrail.EINVALID, "time %s is implausible", s)
	}
	return t.UTC(), nil
}

// unmarshal decodes into v and phrases a type mismatch with the JSON path of the
// field, prefixed by at.
func unmarshal(raw []byte, v any, at string) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if at != "" {
			field = strings.TrimSuffix(at+"."+field, ".")
		}
		return kubetrail.Errorf(kubetrail.EINVALID, "%s: want %s, got a JSON %s", field, typeName(te.Type), te.Value)
	}
	if at != "" {
		return kubetrail.Errorf(kubetrail.EINVALID, "%s: %v", at, err)
	}
	return kubetrail.Errorf(kubetrail.EINVALID, "%v", err)
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	}
	return "a " + t.Kind().String()
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "a JSON list"
	case '"':
		return "a JSON string"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "null"
	}
	return "a JSON number"
}
