// Package falco reads Falco's JSON alerts — what Falco writes with json_output
// enabled, one alert per line: {"output":..., "priority":..., "rule":..., "time":...,
// "output_fields":{"proc.name":..., "container.id":..., ...}} — and turns the
// activity each alert is about into a kubetrail event, so that teams running Falco
// today can bring its history into the trail.
//
// An alert is a detection, not a complete record of activity: it carries the
// fields its rule's output names and no others. So:
//
//   - The fields are mapped by name through kubetrail's field reference, whose names
//     follow Falco's: every output field that kubetrail knows, that can be set and
//     that applies to the event's category is set (proc.name, proc.pid, user.name,
//     k8s.ns.name, fd.sip, fs.path.name, ...). Fields kubetrail computes from others
//     are rebuilt from their parts: proc.argv from proc.exe (argv[0]; proc.name
//     when absent) and proc.args (or what follows proc.name in proc.cmdline), split
//     at spaces — Falco joins the arguments with spaces without quoting, so an
//     argument that contains a space comes back as several; container.image.* from
//     container.image; the connection from fd.name ("cip:cport->sip:sport") when
//     fd.cip and the rest are absent; the file from fd.name, fs.path.* or the
//     syscall's path arguments (evt.arg.path, evt.arg.name, ...). container.id is
//     Falco's 12-digit short ID unless the output has container.full_id; Falco's
//     "host" container means no container. Other fields are not kept. Numbers the
//     output lacks (proc.pid, user.uid, ...) are 0, as kubetrail's event has no
//     "unknown" for them; user.loginuid is -1, "unset", when absent.
//   - The category comes from evt.type, and the type is the one kubetrail's agent
//     gives the same activity: execve and execveat are process events (execve);
//     connect (outbound), accept and accept4 (inbound, accept), and sendto and
//     sendmsg on UDP (outbound, connect, as the agent records UDP exchanges) are
//     network events; open, openat, openat2 and creat (open; opens for reading are
//     skipped, and so are opens whose mode the output does not show through
//     evt.is_open_write or evt.arg.flags), truncate and ftruncate, and write,
//     pwrite and writev (open too: the agent's type for a file opened for writing,
//     created or truncated), unlink and unlinkat (unlink), rename, renameat and
//     renameat2 (rename), chmod, fchmod and fchmodat (chmod), chown, lchown,
//     fchown and fchownat (chown), mkdir and mkdirat (mkdir) and rmdir are file
//     events. Most rule outputs do not print evt.type; then the fields decide: a
//     connection (fd.cip, fd.sip or a connection in fd.name) makes a connect
//     event, taken as outbound since the stock network rules fire on connect; a
//     file path makes the alert
//     unplaceable (it cannot tell whether the file was changed or read); syscall
//     arguments (evt.arg.*) make it unplaceable too (some other system call); and
//     process fields alone make an execve event, since the stock process rules
//     (Terminal shell in container, ...) fire on spawned processes. The time is the
//     alert's time, or evt.rawtime, or evt.time when it is a number.
//   - The rule and the priority — what Falco detected — have no field in kubetrail
//     yet and are not stored; Reader.Alert returns them for the caller to report.
//
// Skipped, with a reason (see Reader): alerts of sources other than syscall
// (k8s_audit alerts: import the audit log itself; plugins' sources), Falco's
// internal events (metrics snapshots), and alerts that cannot be placed in a
// category or lack what their category needs (a connection's addresses, a file's
// path, a process' name).
package falco

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// MaxLine is the longest line read; Falco's alerts are a few kilobytes.
const MaxLine = 1 << 20

// Reader reads Falco alerts, one JSON object per line.
//
// Next returns, for each non-blank line:
//   - the event and an empty reason, for an alert kubetrail can record;
//   - a zero event and the reason the alert was skipped. Reasons are short fixed
//     sentences, so callers can count them;
//   - a *kubetrail.Error whose Where is "line N" for a line that cannot be read.
//     Call Next again to go on with the next line, or stop.
//
// io.EOF follows the last line. Any other error comes from the underlying
// io.Reader; it is final.
type Reader struct {
	in       *bufio.Reader
	line     int
	err      error
	rule     string
	priority string
}

// NewReader returns a Reader of the Falco alerts in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{in: bufio.NewReaderSize(r, 64<<10)}
}

// Alert returns the rule and the priority of the alert Next read last (empty
// after a line that could not be read). kubetrail has no field for them yet.
func (r *Reader) Alert() (rule, priority string) { return r.rule, r.priority }

// Next returns the next alert's event, or the reason it was skipped. See Reader.
func (r *Reader) Next() (kubetrail.Event, string, error) {
	r.rule, r.priority = "", ""
	for {
		if r.err != nil {
			return kubetrail.Event{}, "", r.err
		}
		data, err := r.readLine()
		where := fmt.Sprintf("line %d", r.line)
		switch {
		case errors.Is(err, errLongLine):
			return kubetrail.Event{}, "", kubetrail.ErrorAt(kubetrail.ETOOLARGE, where, "longer than %d bytes; a Falco alert is a few kilobytes", MaxLine)
		case errors.Is(err, io.EOF):
			r.err = io.EOF
			continue
		case err != nil:
			r.err = err
			continue
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		ev, skip, err := r.convert(data)
		if err != nil {
			return kubetrail.Event{}, "", kubetrail.ErrorAt(kubetrail.EINVALID, where, "%v", err)
		}
		return ev, skip, nil
	}
}

var errLongLine = errors.New("line too long")

// readLine returns the next line without its newline, counting lines. A line
// longer than MaxLine is consumed and reported as errLongLine.
func (r *Reader) readLine() ([]byte, error) {
	r.line++
	var line []byte
	for {
		chunk, err := r.in.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLine {
			line = nil
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.in.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLongLine
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				err = nil // the last line has no newline; EOF comes with the next call
			}
			return line, err
		}
	}
}

// alert is Falco's JSON output (and the JSON form of its gRPC output, whose time
// is {"seconds":..., "nanos":...} and priority a number).
type alert struct {
	Output       string          `json:"output"`
	Priority     json.RawMessage `json:"priority"`
	Rule         string          `json:"rule"`
	Time         json.RawMessage `json:"time"`
	Source       string          `json:"source"`
	Hostname     string          `json:"hostname"`
	OutputFields map[string]any  `json:"output_fields"`
}

// Falco's priorities by number, as its gRPC API sends them.
var priorities = []string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// The kind of activity each system call is, and the kubetrail event type it
// becomes.
type kind struct {
	category  kubetrail.Category
	typ       string
	direction string // for network events
}

var syscalls = map[string]kind{}

func init() {
	add := func(c kubetrail.Category, typ, dir string, names ...string) {
		for _, n := range names {
			syscalls[n] = kind{c, typ, dir}
		}
	}
	add(kubetrail.CategoryProcess, "execve", "", "execve", "execveat")
	add(kubetrail.CategoryNetwork, "connect", kubetrail.DirectionOutbound, "connect")
	add(kubetrail.CategoryNetwork, "accept", kubetrail.DirectionInbound, "accept", "accept4")
	add(kubetrail.CategoryNetwork, "connect", kubetrail.DirectionOutbound, "sendto", "sendmsg", "sendmmsg")
	add(kubetrail.CategoryFile, "open", "", "open", "openat", "openat2", "creat", "truncate", "ftruncate", "write", "pwrite", "writev", "pwritev")
	add(kubetrail.CategoryFile, "unlink", "", "unlink", "unlinkat")
	add(kubetrail.CategoryFile, "rename", "", "rename", "renameat", "renameat2")
	add(kubetrail.CategoryFile, "chmod", "", "chmod", "fchmod", "fchmodat")
	add(kubetrail.CategoryFile, "chown", "", "chown", "lchown", "fchown", "fchownat")
	add(kubetrail.CategoryFile, "mkdir", "", "mkdir", "mkdirat")
	add(kubetrail.CategoryFile, "rmdir", "", "rmdir")
}

// Output fields read here rather than set by name: kubetrail computes them from
// other fields, or the importer decides them.
var handled = []string{
	"evt.time", "evt.type", "evt.category", "evt.seq", "evt.stream", "evt.id", "evt.source",
	"container.id", "container.name", "container.image",
}

// convert reads one alert.
func (r *Reader) convert(data []byte) (kubetrail.Event, string, error) {
	var ev kubetrail.Event
	if data[0] != '{' {
		return ev, "", fmt.Errorf("not a JSON object; Falco's json_output writes one alert object per line")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // integers stay exact
	var a alert
	if err := dec.Decode(&a); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return ev, "", fmt.Errorf("%s: want %s, got a JSON %s", te.Field, te.Type.Kind(), te.Value)
		}
		return ev, "", fmt.Errorf("malformed JSON: %v", err)
	}
	if dec.More() {
		return ev, "", fmt.Errorf("more than one JSON value on the line")
	}
	if a.Rule == "" && a.OutputFields == nil {
		return ev, "", fmt.Errorf("not a Falco alert: it has neither rule nor output_fields")
	}
	r.rule, r.priority = a.Rule, priorityName(a.Priority)

	f := map[string]any{}
	for k, v := range a.OutputFields {
		// Falco prints <NA> (or null in JSON) for a field it has no value for.
		if v == nil || v == "<NA>" || v == "" {
			continue
		}
		f[k] = v
	}
	str := func(name string) string { s, _ := f[name].(string); return s }

	switch {
	case a.Source == "internal" || strings.HasPrefix(a.Rule, "Falco internal"):
		return ev, "Falco internal event (metrics or status), not activity", nil
	case a.Source == "k8s_audit" || a.Source == "" && hasPrefixedKey(f, "ka."):
		return ev, "k8s_audit alert: import the audit log itself with --format k8s-audit", nil
	case a.Source != "" && a.Source != "syscall":
		return ev, "alert of source " + a.Source + ": not a system call", nil
	}

	k, skip := categorize(f)
	if skip != "" {
		return ev, skip, nil
	}
	ev.Category, ev.Type = k.category, k.typ
	ev.Process.LoginUID = -1 // unset unless the output says otherwise

	var err error
	if ev.Time, err = alertTime(a.Time, f); err != nil {
		return kubetrail.Event{}, "", err
	}
	ev.Node = a.Hostname
	if h := str("evt.hostname"); ev.Node == "" {
		ev.Node = h
	}

	// Every known, settable field that applies to the category, by its name.
	keys := make([]string, 0, len(f))
	for name := range f {
		keys = append(keys, name)
	}
	slices.Sort(keys)
	for _, name := range keys {
		fd := kubetrail.LookupField(name)
		if fd == nil || fd.Derived || !fd.AppliesTo(ev.Category) || slices.Contains(handled, name) {
			continue
		}
		if err := setField(fd, &ev, f[name]); err != nil {
			return kubetrail.Event{}, "", fmt.Errorf("output_fields.%s: %v", name, err)
		}
	}

	// Where.
	ev.ContainerID = str("container.id")
	if id := str("container.full_id"); id != "" {
		ev.ContainerID = id
	}
	if ev.ContainerID == "host" {
		ev.ContainerID = "" // Falco's name for "not in a container"
	}
	if n := str("container.name"); n != "host" {
		ev.ContainerName = n
	}
	if ev.PodUID == "" {
		ev.PodUID = str("k8s.pod.id") // the older name of k8s.pod.uid
	}
	if ev.ImageRepository == "" && str("container.image") != "" {
		ev.ImageRepository, ev.ImageTag = splitImage(str("container.image"))
	}
	if d := str("k8s.deployment.name"); d != "" && ev.WorkloadName == "" {
		ev.WorkloadKind, ev.WorkloadName = "Deployment", d
	}

	processFields(&ev, str)

	switch ev.Category {
	case kubetrail.CategoryProcess:
		if ev.Process.Name == "" {
			return kubetrail.Event{}, "process alert without proc.name, proc.exepath or proc.cmdline", nil
		}
	case kubetrail.CategoryNetwork:
		if skip := networkFields(&ev, k, str); skip != "" {
			return kubetrail.Event{}, skip, nil
		}
	case kubetrail.CategoryFile:
		if skip := fileFields(&ev, f, str); skip != "" {
			return kubetrail.Event{}, skip, nil
		}
	}
	return ev, "", nil
}

// categorize decides the alert's category and type from evt.type or, without it,
// from the fields present; an empty kind comes with the reason it was skipped.
func categorize(f map[string]any) (kind, string) {
	if t, ok := f["evt.type"].(string); ok {
		k, known := syscalls[t]
		if !known {
			return kind{}, "evt.type " + t + ": not a kind of activity kubetrail records"
		}
		return k, ""
	}
	connection := f["fd.cip"] != nil || f["fd.sip"] != nil || f["fd.rip"] != nil
	if name, ok := f["fd.name"].(string); ok && strings.Contains(name, "->") {
		connection = true
	}
	filePath := hasPrefixedKey(f, "fs.path.")
	if name, ok := f["fd.name"].(string); ok && strings.HasPrefix(name, "/") {
		filePath = true
	}
	switch {
	case connection:
		return syscalls["connect"], ""
	case filePath:
		return kind{}, "file alert without evt.type: whether the file was changed or only read is unknown"
	case hasPrefixedKey(f, "evt.arg"):
		return kind{}, "alert without evt.type on a system call's arguments: which call is unknown"
	case hasPrefixedKey(f, "proc."):
		return syscalls["execve"], ""
	}
	return kind{}, "alert without evt.type, process, connection or file: nothing kubetrail records"
}

// processFields rebuilds the process' name and argument vector from Falco's
// proc.name, proc.exe, proc.args, proc.cmdline and proc.exepath.
func processFields(ev *kubetrail.Event, str func(string) string) {
	p := &ev.Process
	cmdline, args := str("proc.cmdline"), str("proc.args")
	if p.Name == "" {
		// proc.cmdline is proc.name followed by the arguments.
		p.Name, _, _ = strings.Cut(cmdline, " ")
	}
	if p.Name == "" && p.ExePath != "" {
		p.Name = path.Base(p.ExePath)
	}
	if args == "" && cmdline != "" {
		if rest, ok := strings.CutPrefix(cmdline, p.Name+" "); ok {
			args = rest
		} else {
			_, args, _ = strings.Cut(cmdline, " ")
		}
	}
	argv0 := str("proc.exe")
	if argv0 == "" {
		argv0 = p.Name
	}
	if argv0 == "" {
		return
	}
	p.Argv = []string{argv0}
	if args != "" {
		// Falco joins the arguments with single spaces; splitting at each space
		// keeps proc.cmdline as Falco printed it, empty arguments included.
		p.Argv = append(p.Argv, strings.Split(args, " ")...)
	}
}

// networkFields completes and checks a connection; it returns why the alert is
// skipped when it cannot be one.
func networkFields(ev *kubetrail.Event, k kind, str func(string) string) string {
	n := &ev.Network
	send := strings.HasPrefix(str("evt.type"), "send")
	n.Direction = k.direction
	if n.ClientIP == "" && n.ServerIP == "" {
		if name := str("fd.name"); strings.Contains(name, "->") {
			var ok bool
			if n.ClientIP, n.ClientPort, n.ServerIP, n.ServerPort, ok = parseTuple(name); !ok {
				return "fd.name is not an IP connection cip:cport->sip:sport"
			}
		}
	}
	// Local and remote ends, when the output names them so.
	local, remote := &n.ClientIP, &n.ServerIP
	if n.Direction == kubetrail.DirectionInbound {
		local, remote = remote, local
	}
	if *local == "" {
		*local = str("fd.lip")
	}
	if *remote == "" {
		*remote = str("fd.rip")
	}
	if n.L4Proto == "" {
		// Without fd.l4proto: accept is TCP's, and the connections Falco's rules
		// watch are TCP ones; sendto is counted as a connection only on UDP.
		n.L4Proto = "tcp"
		if send {
			n.L4Proto = "udp"
		}
	}
	switch {
	case n.L4Proto != "tcp" && n.L4Proto != "udp":
		return "fd.l4proto " + n.L4Proto + ": not tcp or udp"
	case send && n.L4Proto == "tcp":
		return "sendto on TCP: data on a connection, not its opening"
	}
	for _, ip := range []string{n.ClientIP, n.ServerIP} {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "network alert without the connection's IP addresses"
		}
	}
	for _, port := range []int64{n.ClientPort, n.ServerPort} {
		if port < 0 || port > 65535 {
			return "network alert with a port out of range"
		}
	}
	return ""
}

// fileFields finds the file an alert is about and checks that the alert records
// a change to it; it returns why the alert is skipped otherwise.
func fileFields(ev *kubetrail.Event, f map[string]any, str func(string) string) string {
	if slices.Contains([]string{"open", "openat", "openat2"}, str("evt.type")) {
		switch openWrites(f, str("evt.arg.flags")) {
		case "no":
			return "open for reading (kubetrail records changes to files)"
		case "unknown":
			return "open without evt.is_open_write or evt.arg.flags: whether the file was written is unknown"
		}
	}
	fl := &ev.File
	if ev.Type == "rename" {
		fl.Path = firstOf(str, "fs.path.source", "evt.arg.oldpath")
		fl.TargetPath = firstOf(str, "fs.path.target", "evt.arg.newpath")
	}
	if fl.Path == "" {
		fl.Path = firstOf(str, "fs.path.name", "evt.arg.path", "evt.arg.pathname", "evt.arg.filename", "evt.arg.name")
	}
	if name := str("fd.name"); fl.Path == "" && strings.HasPrefix(name, "/") {
		fl.Path = name
	}
	if fl.Path == "" {
		return "file alert without the file's path"
	}
	return ""
}

// openWrites says whether an open alert opened its file for writing: "yes", "no",
// or "unknown" when the output shows neither evt.is_open_write nor the flags.
func openWrites(f map[string]any, flags string) string {
	switch v := f["evt.is_open_write"].(type) {
	case bool:
		return map[bool]string{true: "yes", false: "no"}[v]
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return map[bool]string{true: "yes", false: "no"}[b]
		}
	}
	if flags == "" {
		return "unknown"
	}
	for _, w := range []string{"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"} {
		if strings.Contains(flags, w) {
			return "yes"
		}
	}
	return "no"
}

// setField sets a field from its JSON value; Falco prints some numbers as strings.
func setField(fd *kubetrail.Field, ev *kubetrail.Event, v any) error {
	err := fd.Set(ev, v)
	if s, ok := v.(string); err != nil && ok && fd.Type == kubetrail.TypeInt {
		if n, perr := strconv.ParseInt(s, 10, 64); perr == nil {
			return fd.Set(ev, n)
		}
	}
	return err
}

// alertTime returns when the alert's event happened: the alert's time (RFC 3339,
// or {"seconds":..., "nanos":...} from the gRPC output), else evt.rawtime or a
// numeric evt.time, in nanoseconds since the epoch.
func alertTime(raw json.RawMessage, f map[string]any) (time.Time, error) {
	var t time.Time
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return t, fmt.Errorf("time: %v", err)
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return t, fmt.Errorf("time %q is not an RFC 3339 time", s)
		}
		t = p
	case len(raw) > 0 && raw[0] == '{':
		var ts struct {
			Seconds json.Number `json:"seconds"`
			Nanos   json.Number `json:"nanos"`
		}
		if err := json.Unmarshal(raw, &ts); err != nil {
			return t, fmt.Errorf("time: want {\"seconds\":..., \"nanos\":...}: %v", err)
		}
		s, err1 := ts.Seconds.Int64()
		n, err2 := ts.Nanos.Int64()
		if err1 != nil || (ts.Nanos != "" && err2 != nil) {
			return t, fmt.Errorf("time %s: seconds and nanos must be integers", raw)
		}
		t = time.Unix(s, n)
	case len(raw) > 0 && string(raw) != "null":
		return t, fmt.Errorf("time %s: want an RFC 3339 string", raw)
	default:
		for _, name := range []string{"evt.rawtime", "evt.time"} {
			if num, ok := f[name].(json.Number); ok {
				ns, err := num.Int64()
				if err != nil {
					return t, fmt.Errorf("output_fields.%s %s: want nanoseconds since the epoch", name, num)
				}
				t = time.Unix(0, ns)
				break
			}
		}
		if t.IsZero() {
			return t, fmt.Errorf("time is missing: the alert has no time and output_fields no evt.rawtime")
		}
	}
	// The server refuses implausible times, and a whole batch with them; refuse
	// the one alert here instead.
	if t.Before(minTime) || t.After(time.Now().Add(24*time.Hour)) {
		return t, fmt.Errorf("time %s is implausible", t.UTC().Format(time.RFC3339Nano))
	}
	return t.UTC(), nil
}

var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func priorityName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n int
	if json.Unmarshal(raw, &n) == nil && n >= 0 && n < len(priorities) {
		return priorities[n]
	}
	return string(raw)
}

// parseTuple reads Falco's connection name "cip:cport->sip:sport" (IPv6 addresses
// with or without brackets).
func parseTuple(s string) (cip string, cport int64, sip string, sport int64, ok bool) {
	c, srv, found := strings.Cut(s, "->")
	if !found {
		return
	}
	var ok1, ok2 bool
	cip, cport, ok1 = parseEnd(c)
	sip, sport, ok2 = parseEnd(srv)
	return cip, cport, sip, sport, ok1 && ok2
}

func parseEnd(s string) (string, int64, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, false
	}
	ip := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	port, err := strconv.ParseInt(s[i+1:], 10, 64)
	if _, perr := netip.ParseAddr(ip); perr != nil || err != nil || port < 0 || port > 65535 {
		return "", 0, false
	}
	return ip, port, true
}

// splitImage splits "repo:tag" (the repository may hold a registry port) or
// "repo@digest".
func splitImage(image string) (repo, tag string) {
	repo, digest, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return repo[:i], repo[i+1:]
	}
	return repo, digest
}

func firstOf(str func(string) string, names ...string) string {
	for _, n := range names {
		if v := str(n); v != "" {
			return v
		}
	}
	return ""
}

func hasPrefixedKey(f map[string]any, prefix string) bool {
	for k := range f {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
