package rules

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/filter"
)

// registry holds each source's fields by name: Falco's own first, then every
// stored kubetrail field that Falco does not define (net.peer.kind,
// k8s.workload.name, ...), so that kubetrail's rules can use them.
var registry = func() map[string]map[string]*FieldDef {
	r := map[string]map[string]*FieldDef{SourceSyscall: {}, SourceK8sAudit: {}}
	add := func(defs []FieldDef, source string) {
		for i := range defs {
			d := &defs[i]
			if d.Source == "" || d.Source == source {
				if _, dup := r[source][d.Name]; !dup {
					r[source][d.Name] = d
				}
			}
		}
	}
	add(syscallFields, SourceSyscall)
	add(k8sAuditFields, SourceK8sAudit)
	for source, cats := range map[string][]kubetrail.Category{
		SourceSyscall:  {kubetrail.CategoryProcess, kubetrail.CategoryNetwork, kubetrail.CategoryFile},
		SourceK8sAudit: {kubetrail.CategoryK8s},
	} {
		var defs []FieldDef
		for i := range kubetrail.Fields {
			f := &kubetrail.Fields[i]
			if d, ok := storedField(f, cats); ok {
				d.Source = source
				defs = append(defs, d)
			}
		}
		add(defs, source)
	}
	return r
}()

// storedField adapts a field of the trail to rules: the value the event holds,
// an empty string or list counting as none.
func storedField(f *kubetrail.Field, cats []kubetrail.Category) (FieldDef, bool) {
	applies := false
	for _, c := range cats {
		applies = applies || f.AppliesTo(c)
	}
	if !applies {
		return FieldDef{}, false
	}
	get := f.Get
	switch f.Type {
	case kubetrail.TypeString:
		return FieldDef{Name: f.Name, Kind: KindString, Extract: func(in *Input, _ string) (Value, bool) {
			s, _ := get(in.Event).(string)
			return Value{Str: s}, s != ""
		}}, true
	case kubetrail.TypeInt:
		return FieldDef{Name: f.Name, Kind: KindInt, Extract: func(in *Input, _ string) (Value, bool) {
			n, _ := get(in.Event).(int64)
			return Value{Int: n}, true
		}}, true
	case kubetrail.TypeStrings:
		return FieldDef{Name: f.Name, Kind: KindList, Extract: func(in *Input, _ string) (Value, bool) {
			l, _ := get(in.Event).([]string)
			return Value{List: l}, len(l) > 0
		}}, true
	}
	return FieldDef{}, false // times: rules compare none
}

func lookup(source, name string) *FieldDef { return registry[source][name] }

func otherSource(source string) string {
	if source == SourceSyscall {
		return SourceK8sAudit
	}
	return SourceSyscall
}

//go:embed falco_fields.txt
var falcoFieldsFile string

// falcoFields holds the names of Falco's fields, to tell a field kubetrail
// cannot fill from a misspelt one.
var falcoFields = func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(falcoFieldsFile, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
}()

// isFalcoField reports whether name is one of Falco's fields, the dotted forms
// of the system call arguments (evt.arg.flags) included.
func isFalcoField(name string) bool {
	return falcoFields[name] || strings.HasPrefix(name, "evt.arg.") || strings.HasPrefix(name, "evt.rawarg.")
}

// fieldType resolves a field for the condition parser.
func fieldType(source, name, arg string, hasArg bool) (kubetrail.FieldType, error) {
	d := lookup(source, name)
	if d == nil {
		if isFalcoField(name) || lookup(otherSource(source), name) != nil {
			return "", fmt.Errorf("%s: %w", name, filter.ErrNotSupplied)
		}
		if !strings.Contains(name, ".") {
			return "", kubetrail.Errorf(kubetrail.EINVALID, "%s is no macro any rule file defines, and no field", name)
		}
		hint := ""
		if s := kubetrail.SuggestField(name); s != "" {
			hint = " (did you mean " + s + "?)"
		}
		return "", kubetrail.Errorf(kubetrail.EINVALID, "unknown field %s: neither Falco nor kubetrail has it%s", name, hint)
	}
	if err := checkArg(d, arg, hasArg); err != nil {
		return "", err
	}
	switch d.Kind {
	case KindInt:
		return kubetrail.TypeInt, nil
	case KindBool:
		return kubetrail.TypeBool, nil
	case KindList:
		if hasArg && d.Arg == ArgIndex {
			return kubetrail.TypeString, nil // one element of the list
		}
		return kubetrail.TypeStrings, nil
	}
	return kubetrail.TypeString, nil
}

func checkArg(d *FieldDef, arg string, hasArg bool) error {
	switch d.Arg {
	case ArgNone:
		if hasArg {
			return kubetrail.Errorf(kubetrail.EINVALID, "field %s takes no argument in brackets", d.Name)
		}
	case ArgKey:
		if !hasArg || arg == "" {
			return kubetrail.Errorf(kubetrail.EINVALID, "field %s needs an argument in brackets, such as %s[name]", d.Name, d.Name)
		}
	case ArgIndex, ArgIndexReq:
		if !hasArg && d.Arg == ArgIndexReq {
			return kubetrail.Errorf(kubetrail.EINVALID, "field %s needs an index in brackets, such as %s[1]", d.Name, d.Name)
		}
		if hasArg {
			if n, err := strconv.Atoi(arg); err != nil || n < 0 {
				return kubetrail.Errorf(kubetrail.EINVALID, "field %s wants a non-negative index in brackets, got %q", d.Name, arg)
			}
		}
	}
	return nil
}

// ---- Falco's syscall fields ----

func str(name string, get func(in *Input) (string, bool)) FieldDef {
	return FieldDef{Name: name, Kind: KindString, Source: SourceSyscall,
		Extract: func(in *Input, _ string) (Value, bool) { s, ok := get(in); return Value{Str: s}, ok }}
}

func num(name string, get func(in *Input) (int64, bool)) FieldDef {
	return FieldDef{Name: name, Kind: KindInt, Source: SourceSyscall,
		Extract: func(in *Input, _ string) (Value, bool) { n, ok := get(in); return Value{Int: n}, ok }}
}

func flag(name string, get func(in *Input) (bool, bool)) FieldDef {
	return FieldDef{Name: name, Kind: KindBool, Source: SourceSyscall,
		Extract: func(in *Input, _ string) (Value, bool) { b, ok := get(in); return Value{Bool: b}, ok }}
}

// ancestral defines a field over the process and its ancestors: name[0] is the
// process's own, name[1] its parent's, and name alone any of the ancestors'.
func ancestral(name string, get func(p *kubetrail.Process) string) FieldDef {
	return FieldDef{Name: name, Kind: KindString, Arg: ArgIndex, Source: SourceSyscall, AnyOf: true,
		Extract: func(in *Input, arg string) (Value, bool) {
			if arg == "" {
				var all []string
				for _, p := range in.Lineage() {
					all = append(all, get(p))
				}
				return Value{List: all}, len(all) > 0
			}
			n, _ := strconv.Atoi(arg)
			if n == 0 {
				s := get(&in.Event.Process)
				return Value{Str: s}, s != ""
			}
			lin := in.Lineage()
			if n > len(lin) {
				return Value{}, false
			}
			s := get(lin[n-1])
			return Value{Str: s}, s != ""
		}}
}

func runtime(in *Input) bool {
	c := in.Event.Category
	return c == kubetrail.CategoryProcess || c == kubetrail.CategoryNetwork || c == kubetrail.CategoryFile
}

func nonEmpty(s string) (string, bool) { return s, s != "" }

func parent(in *Input) *kubetrail.Process {
	if l := in.Lineage(); len(l) > 0 {
		return l[0]
	}
	return nil
}

func procName(p *kubetrail.Process) string    { return p.Name }
func procExe(p *kubetrail.Process) string     { return first(p.Argv) }
func procExePath(p *kubetrail.Process) string { return p.ExePath }
func procCmdline(p *kubetrail.Process) string { return p.Cmdline() }

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// syscallFields are Falco's syscall-source fields that kubetrail fills, with
// Falco's meaning. Where kubetrail's stored field of the same name differs
// (container.id is the full id there, and empty on the host), the rule sees
// Falco's value.
var syscallFields = []FieldDef{
	str("evt.type", func(in *Input) (string, bool) { return in.Event.Type, true }),
	// Every event kubetrail records is a completed call: Falco's exit event.
	str("evt.dir", func(in *Input) (string, bool) { return "<", true }),
	str("evt.res", func(in *Input) (string, bool) { return nonEmpty(in.Event.Result) }),
	str("evt.source", func(in *Input) (string, bool) { return SourceSyscall, true }),
	// Falco numbers the events it reads from 1; kubetrail's counterpart is the
	// event's sequence number in its agent's stream, also from 1.
	num("evt.num", func(in *Input) (int64, bool) { return int64(in.Event.Seq), in.Event.Seq > 0 }),
	// The sensor records opens that may write, create or truncate, and no others.
	flag("evt.is_open_write", func(in *Input) (bool, bool) {
		return in.Event.Category == kubetrail.CategoryFile && in.Event.Type == "open", true
	}),

	str("container.id", func(in *Input) (string, bool) {
		id := in.Event.ContainerID
		if id == "" {
			return "host", true
		}
		return id[:min(12, len(id))], true
	}),
	str("container.name", func(in *Input) (string, bool) {
		if in.Event.ContainerID == "" {
			return "host", true
		}
		return nonEmpty(in.Event.ContainerName)
	}),
	str("container.image", func(in *Input) (string, bool) { return nonEmpty(in.Event.Image()) }),
	str("container.image.repository", func(in *Input) (string, bool) { return nonEmpty(in.Event.ImageRepository) }),
	str("container.image.tag", func(in *Input) (string, bool) { return nonEmpty(in.Event.ImageTag) }),
	str("k8s.ns.name", func(in *Input) (string, bool) { return nonEmpty(in.Event.Namespace) }),
	str("k8s.pod.name", func(in *Input) (string, bool) { return nonEmpty(in.Event.PodName) }),
	str("k8s.pod.uid", func(in *Input) (string, bool) { return nonEmpty(in.Event.PodUID) }),

	str("proc.name", func(in *Input) (string, bool) { return nonEmpty(in.Event.Process.Name) }),
	str("proc.exe", func(in *Input) (string, bool) { return nonEmpty(first(in.Event.Process.Argv)) }),
	str("proc.exepath", func(in *Input) (string, bool) { return nonEmpty(in.Event.Process.ExePath) }),
	str("proc.args", func(in *Input) (string, bool) { return in.Event.Process.Args(), runtime(in) }),
	str("proc.cmdline", func(in *Input) (string, bool) { return nonEmpty(in.Event.Process.Cmdline()) }),
	str("proc.cwd", func(in *Input) (string, bool) { return nonEmpty(in.Event.Process.Cwd) }),
	num("proc.pid", func(in *Input) (int64, bool) { return in.Event.Process.PID, in.Event.Process.PID != 0 }),
	num("proc.ppid", func(in *Input) (int64, bool) { return in.Event.Process.PPID, in.Event.Process.PPID != 0 }),
	num("proc.tty", func(in *Input) (int64, bool) { return in.Event.Process.TTY, runtime(in) }),
	str("proc.pname", func(in *Input) (string, bool) { return nonEmpty(in.Event.Process.ParentName) }),
	str("proc.pcmdline", func(in *Input) (string, bool) {
		if p := parent(in); p != nil {
			return nonEmpty(p.Cmdline())
		}
		return "", false
	}),
	str("proc.pexe", func(in *Input) (string, bool) {
		if p := parent(in); p != nil {
			return nonEmpty(first(p.Argv))
		}
		return "", false
	}),
	str("proc.pexepath", func(in *Input) (string, bool) {
		if p := parent(in); p != nil {
			return nonEmpty(p.ExePath)
		}
		return "", false
	}),
	// Falco reads whether the executable lies in the container's writable layer
	// from the kernel; kubetrail knows it when it recorded the file being written
	// in the container. A file written while nothing watched reads false.
	flag("proc.is_exe_upper_layer", func(in *Input) (bool, bool) {
		if in.Event.Category != kubetrail.CategoryProcess || in.Event.ContainerID == "" {
			return false, in.Event.Category == kubetrail.CategoryProcess
		}
		_, ok := exeWriter(in)
		return ok, true
	}),
	// kubetrail's own: the name and command line of the process that wrote the
	// executable in this container.
	str("proc.exe_writer", func(in *Input) (string, bool) {
		if w, ok := exeWriter(in); ok {
			return nonEmpty(w.Name)
		}
		return "", false
	}),
	str("proc.exe_writer_cmdline", func(in *Input) (string, bool) {
		if w, ok := exeWriter(in); ok {
			return nonEmpty(w.Cmdline())
		}
		return "", false
	}),
	ancestral("proc.aname", procName),
	ancestral("proc.aexe", procExe),
	ancestral("proc.aexepath", procExePath),
	ancestral("proc.acmdline", procCmdline),

	str("user.name", func(in *Input) (string, bool) { return in.Event.Process.UserName, runtime(in) }),
	num("user.uid", func(in *Input) (int64, bool) { return in.Event.Process.UID, runtime(in) }),
	num("user.loginuid", func(in *Input) (int64, bool) { return in.Event.Process.LoginUID, runtime(in) }),
	num("group.gid", func(in *Input) (int64, bool) { return in.Event.Process.GID, runtime(in) }),

	str("fd.name", func(in *Input) (string, bool) {
		switch in.Event.Category {
		case kubetrail.CategoryFile:
			return nonEmpty(in.Event.File.Path)
		case kubetrail.CategoryNetwork:
			n := &in.Event.Network
			return n.ClientIP + ":" + strconv.FormatInt(n.ClientPort, 10) + "->" + n.ServerIP + ":" + strconv.FormatInt(n.ServerPort, 10), true
		}
		return "", false
	}),
	// The path a file call was given, whatever the call names its argument
	// (open's name, mkdir's path, chmod's filename); rename's two paths.
	str("evt.arg.name", filePath),
	str("evt.arg.path", filePath),
	str("evt.arg.filename", filePath),
	str("evt.arg.oldpath", filePath),
	str("evt.arg.newpath", fileOnly(func(e *kubetrail.Event) string { return e.File.TargetPath })),
	str("fd.directory", fileOnly(stored("fd.directory"))),
	str("fd.filename", fileOnly(stored("fd.filename"))),
	str("fd.typechar", func(in *Input) (string, bool) {
		t, ok := fdType(in)
		return map[string]string{"file": "f", "ipv4": "4", "ipv6": "6"}[t], ok
	}),
	str("fd.type", fdType),
	str("fd.sockfamily", netOnly(func(n *kubetrail.Network) string { return "ip" })),
	str("fd.l4proto", netOnly(func(n *kubetrail.Network) string { return n.L4Proto })),
	str("fd.sip", netOnly(func(n *kubetrail.Network) string { return n.ServerIP })),
	str("fd.cip", netOnly(func(n *kubetrail.Network) string { return n.ClientIP })),
	str("fd.rip", netOnly(func(n *kubetrail.Network) string { return n.RemoteIP() })),
	str("fd.lip", netOnly(func(n *kubetrail.Network) string { return n.LocalIP() })),
	// Networks: fd.net is either end's.
	netField("fd.net", func(n *kubetrail.Network) []string { return []string{n.ClientIP, n.ServerIP} }),
	netField("fd.snet", func(n *kubetrail.Network) []string { return []string{n.ServerIP} }),
	netField("fd.cnet", func(n *kubetrail.Network) []string { return []string{n.ClientIP} }),
	netField("fd.rnet", func(n *kubetrail.Network) []string { return []string{n.RemoteIP()} }),
	netField("fd.lnet", func(n *kubetrail.Network) []string { return []string{n.LocalIP()} }),
	{Name: "fd.ip", Kind: KindString, Source: SourceSyscall, AnyOf: true, Extract: func(in *Input, _ string) (Value, bool) {
		if in.Event.Category != kubetrail.CategoryNetwork {
			return Value{}, false
		}
		return Value{List: []string{in.Event.Network.ClientIP, in.Event.Network.ServerIP}}, true
	}},
	// The sign of the result: 0 when the call succeeded (for an open or a
	// connect Falco has the descriptor there, which only its sign tells apart
	// here), minus the error number when it failed.
	{Name: "evt.rawres", Kind: KindInt, Source: SourceSyscall, SignOnly: true, Extract: func(in *Input, _ string) (Value, bool) {
		if !runtime(in) || in.Event.Result == "" {
			return Value{}, false
		}
		n, ok := rawResult(in.Event.Result)
		return Value{Int: n}, ok
	}},
	{Name: "fd.num", Kind: KindInt, Source: SourceSyscall, SignOnly: true, Extract: func(in *Input, _ string) (Value, bool) {
		c := in.Event.Category
		if c != kubetrail.CategoryFile && c != kubetrail.CategoryNetwork {
			return Value{}, false
		}
		if in.Event.Result != "" && in.Event.Result != "SUCCESS" {
			return Value{Int: -1}, true
		}
		return Value{Int: 0}, true
	}},
	num("fd.sport", netPort(func(n *kubetrail.Network) int64 { return n.ServerPort })),
	num("fd.cport", netPort(func(n *kubetrail.Network) int64 { return n.ClientPort })),
	num("fd.rport", netPort(func(n *kubetrail.Network) int64 { return n.RemotePort() })),
	num("fd.lport", netPort(func(n *kubetrail.Network) int64 { return n.LocalPort() })),
}

func exeWriter(in *Input) (*kubetrail.Process, bool) {
	if in.Writes == nil || in.Event.Category != kubetrail.CategoryProcess || in.Event.ContainerID == "" {
		return nil, false
	}
	return in.Writes.Writer(in.Event.ContainerID, in.Event.Process.ExePath)
}

func netField(name string, ips func(*kubetrail.Network) []string) FieldDef {
	return FieldDef{Name: name, Kind: KindString, Source: SourceSyscall, Net: true, AnyOf: true,
		Extract: func(in *Input, _ string) (Value, bool) {
			if in.Event.Category != kubetrail.CategoryNetwork {
				return Value{}, false
			}
			return Value{List: ips(&in.Event.Network)}, true
		}}
}

// rawResult is Falco's evt.rawres for kubetrail's evt.res: 0 for success, the
// negated error number for an error name; ok is false for a name it does not know.
func rawResult(res string) (int64, bool) {
	if res == "SUCCESS" {
		return 0, true
	}
	n, ok := errnoByName[res]
	return -int64(n), ok
}

var errnoByName = func() map[string]syscall.Errno {
	m := map[string]syscall.Errno{}
	for n := syscall.Errno(1); n < 200; n++ {
		if name := unix.ErrnoName(n); name != "" {
			m[name] = n
		}
	}
	return m
}()

// fdType is Falco's fd.type of the event's file or socket.
func fdType(in *Input) (string, bool) {
	switch in.Event.Category {
	case kubetrail.CategoryFile:
		return "file", true
	case kubetrail.CategoryNetwork:
		if strings.Contains(in.Event.Network.ServerIP, ":") {
			return "ipv6", true
		}
		return "ipv4", true
	}
	return "", false
}

// filePath is the path a file event is about.
var filePath = fileOnly(func(e *kubetrail.Event) string { return e.File.Path })

func fileOnly(get func(*kubetrail.Event) string) func(*Input) (string, bool) {
	return func(in *Input) (string, bool) {
		if in.Event.Category != kubetrail.CategoryFile {
			return "", false
		}
		return nonEmpty(get(in.Event))
	}
}

func netOnly(get func(*kubetrail.Network) string) func(*Input) (string, bool) {
	return func(in *Input) (string, bool) {
		if in.Event.Category != kubetrail.CategoryNetwork {
			return "", false
		}
		return nonEmpty(get(&in.Event.Network))
	}
}

func netPort(get func(*kubetrail.Network) int64) func(*Input) (int64, bool) {
	return func(in *Input) (int64, bool) {
		if in.Event.Category != kubetrail.CategoryNetwork {
			return 0, false
		}
		return get(&in.Event.Network), true
	}
}

// stored reads a string field of the trail's own reference.
func stored(name string) func(*kubetrail.Event) string {
	get := kubetrail.LookupField(name).Get
	return func(e *kubetrail.Event) string { s, _ := get(e).(string); return s }
}
