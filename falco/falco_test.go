package falco

import (
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

type outcome struct {
	ev       kubetrail.Event
	skip     string
	err      error
	rule     string
	priority string
}

func readAll(t *testing.T, in string) []outcome {
	t.Helper()
	rd := NewReader(strings.NewReader(in))
	var out []outcome
	for {
		ev, skip, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		var ke *kubetrail.Error
		if err != nil && !errors.As(err, &ke) {
			t.Fatalf("final error after %d records: %v", len(out), err)
		}
		rule, prio := rd.Alert()
		out = append(out, outcome{ev, skip, err, rule, prio})
	}
}

// sharedAlerts returns the 25 real alerts of the shared test data, one per line,
// as Falco writes them.
func sharedAlerts(t *testing.T) string {
	t.Helper()
	return string(sharedtest.Unwrapped(t, filepath.Join("falcosecurity-falco-website", "falco_alerts_from_docs.jsonl"), "alert"))
}

func TestSharedAlerts(t *testing.T) {
	out := readAll(t, sharedAlerts(t))
	if len(out) != 25 {
		t.Fatalf("%d alerts, want 25", len(out))
	}
	const (
		audit    = "skip: k8s_audit alert"
		internal = "skip: Falco internal event"
		shell    = "process/execve"
	)
	want := []string{audit, audit, audit, audit,
		"skip: file alert without evt.type", // Fake rule: touch /bin/hack, but was it written?
		audit, audit, shell, shell, "network/connect", shell, shell, shell, shell, "network/connect",
		internal, internal, internal, internal, internal, shell, "file/unlink", "file/unlink", internal, internal}
	for i, o := range out {
		got := string(o.ev.Category) + "/" + o.ev.Type
		switch {
		case o.err != nil:
			got = "error: " + o.err.Error()
		case o.skip != "":
			got = "skip: " + o.skip
		}
		if !strings.HasPrefix(got, want[i]) {
			t.Errorf("alert %d (%s): %s, want %s", i, o.rule, got, want[i])
		}
	}

	check := func(i int, field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("alert %d (%s): %s = %#v, want %#v", i, out[i].rule, field, got, want)
		}
	}
	// Terminal shell in container: the shell that was started.
	e := out[8].ev
	check(8, "rule", out[8].rule+" / "+out[8].priority, "Terminal shell in container / Notice")
	check(8, "time", e.Time, time.Date(2021, 4, 10, 19, 27, 21, 2873265, time.UTC))
	check(8, "process", e.Process, kubetrail.Process{Name: "sh", Argv: []string{"sh", "-c", "uptime"}, ParentName: "runc",
		TTY: 34816, UserName: "root", LoginUID: -1})
	check(8, "where", []string{e.Namespace, e.PodName, e.ContainerID, e.ImageRepository, e.ImageTag, e.Node},
		[]string{"default", "alpine", "97c9868ea832", "alpine", "", ""})
	check(8, "cmdline", e.Process.Cmdline(), "sh -c uptime")
	// Contact K8S API Server From Container: the connection, from fd.name.
	e = out[9].ev
	check(9, "network", e.Network, kubetrail.Network{L4Proto: "tcp", Direction: "outbound",
		ClientIP: "172.17.0.9", ClientPort: 43812, ServerIP: "10.96.0.1", ServerPort: 443})
	check(9, "image", e.Image(), "devopps/falco-pod-delete:latest")
	check(9, "proc", e.Process.Name, "handler")
	// An empty argument (two spaces in the command line) survives.
	e = out[14].ev
	check(14, "cmdline", e.Process.Cmdline(), "fetcher -secret-dir /secrets -cfgmap-dir /configs -jaeger-collector-endpoint  /userfunc")
	check(14, "argc", len(e.Process.Argv), 8)
	// A hostname names the node; proc.cmdline split at spaces: quoting is not kept.
	e = out[20].ev
	check(20, "node", e.Node, "falco-xczjd")
	check(20, "priority", out[20].priority, "Critical")
	check(20, "argv", e.Process.Argv, []string{"sh", "-c", "clear;", "(bash", "||", "ash", "||", "sh)"})
	// The gRPC form: time as seconds and nanos, priority as a number; a process on
	// the host ("host" container) and the unlinked file from evt.arg.path.
	e = out[21].ev
	check(21, "time", e.Time, time.Date(2019, 10, 3, 9, 20, 49, 620298462, time.UTC))
	check(21, "priority", out[21].priority, "Warning")
	check(21, "host", e.Host(), true)
	check(21, "file", e.File.Path, "/home/vagrant/.zsh_history.LOCK")
	check(21, "proc", e.Process.Name+" "+e.Process.UserName, "zsh vagrant")
	e = out[22].ev
	check(22, "time", e.Time, time.Date(2020, 3, 3, 17, 50, 3, 391768000, time.UTC))
	check(22, "node", e.Node, "localhost.localdomain")
}

// alertLine builds a one-line alert with the given output fields.
func alertLine(fields string) string {
	return `{"output":"x","priority":"Warning","rule":"R","time":"2024-05-01T10:00:00.5Z","source":"syscall","hostname":"node-1","output_fields":{` + fields + `}}`
}

func TestSyntheticAlerts(t *testing.T) {
	cases := []struct {
		name   string
		fields string
		want   string // "category/type", "skip: ..." or "error: ..."
		check  func(e kubetrail.Event) (got, want any)
	}{
		{"execve with exe and args", `"evt.type":"execve","proc.name":"python3","proc.exe":"/usr/bin/python3","proc.args":"-c print(1)","proc.exepath":"/usr/bin/python3.12","proc.pid":"4242","proc.ppid":1,"proc.cwd":"/app","user.uid":1000,"container.full_id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","container.id":"0123456789ab","container.image":"ghcr.io/x/app:1.2","k8s.pod.id":"uid-1","k8s.deployment.name":"app"`,
			"process/execve", func(e kubetrail.Event) (any, any) {
				return []any{e.Process.Argv, e.Process.ExePath, e.Process.PID, e.Process.PPID, e.Process.Cwd, e.Process.UID, e.ContainerID, e.ImageRepository, e.ImageTag, e.PodUID, e.WorkloadKind, e.WorkloadName, e.Node},
					[]any{[]string{"/usr/bin/python3", "-c", "print(1)"}, "/usr/bin/python3.12", int64(4242), int64(1), "/app", int64(1000),
						"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ghcr.io/x/app", "1.2", "uid-1", "Deployment", "app", "node-1"}
			}},
		{"execveat", `"evt.type":"execveat","proc.cmdline":"ls -l"`, "process/execve", func(e kubetrail.Event) (any, any) {
			return e.Process.Argv, []string{"ls", "-l"}
		}},
		{"accept", `"evt.type":"accept4","fd.name":"[fd00::1]:5555->[fd00::2]:80","proc.name":"nginx"`, "network/accept", func(e kubetrail.Event) (any, any) {
			return e.Network, kubetrail.Network{L4Proto: "tcp", Direction: "inbound", ClientIP: "fd00::1", ClientPort: 5555, ServerIP: "fd00::2", ServerPort: 80}
		}},
		{"connect, fields", `"evt.type":"connect","fd.cip":"10.0.0.1","fd.cport":1234,"fd.sip":"10.0.0.2","fd.sport":53,"fd.l4proto":"udp","evt.res":"ECONNREFUSED"`, "network/connect",
			func(e kubetrail.Event) (any, any) {
				return []any{e.Network.L4Proto, e.Network.ServerIP, e.Network.ServerPort, e.Result}, []any{"udp", "10.0.0.2", int64(53), "ECONNREFUSED"}
			}},
		{"connect, local and remote", `"evt.type":"connect","fd.lip":"10.0.0.1","fd.rip":"1.1.1.1"`, "network/connect", func(e kubetrail.Event) (any, any) {
			return e.Network.ClientIP + "->" + e.Network.ServerIP, "10.0.0.1->1.1.1.1"
		}},
		{"sendto on udp", `"evt.type":"sendto","fd.name":"10.0.0.1:5000->10.0.0.53:53"`, "network/connect", func(e kubetrail.Event) (any, any) {
			return e.Network.L4Proto + " " + e.Network.Direction, "udp outbound"
		}},
		{"sendto on tcp", `"evt.type":"sendto","fd.name":"10.0.0.1:5000->10.0.0.53:53","fd.l4proto":"tcp"`, "skip: sendto on TCP", nil},
		{"connect on a unix socket", `"evt.type":"connect","fd.name":"/var/run/docker.sock"`, "skip: network alert without the connection's IP addresses", nil},
		{"icmp", `"evt.type":"connect","fd.name":"10.0.0.1:0->10.0.0.2:0","fd.l4proto":"icmp"`, "skip: fd.l4proto icmp", nil},
		{"open for writing", `"evt.type":"openat","fd.name":"/etc/passwd","evt.is_open_write":true,"proc.name":"vi"`, "file/open", func(e kubetrail.Event) (any, any) {
			return e.File.Path, "/etc/passwd"
		}},
		{"open, flags", `"evt.type":"open","fs.path.name":"/tmp/x","evt.arg.flags":"O_WRONLY|O_CREAT|O_CLOEXEC"`, "file/open", func(e kubetrail.Event) (any, any) {
			return e.File.Path, "/tmp/x"
		}},
		{"open for reading", `"evt.type":"openat","fd.name":"/etc/shadow","evt.is_open_write":"false"`, "skip: open for reading", nil},
		{"open, read flags", `"evt.type":"openat","fd.name":"/etc/shadow","evt.arg.flags":"O_RDONLY"`, "skip: open for reading", nil},
		{"open, mode unknown", `"evt.type":"openat","fd.name":"/etc/shadow"`, "skip: open without evt.is_open_write", nil},
		{"creat", `"evt.type":"creat","evt.arg.name":"/tmp/new"`, "file/open", func(e kubetrail.Event) (any, any) { return e.File.Path, "/tmp/new" }},
		{"rename, fs.path", `"evt.type":"renameat2","fs.path.source":"/a","fs.path.target":"/b","fs.path.name":"/b"`, "file/rename", func(e kubetrail.Event) (any, any) {
			return e.File.Path + " -> " + e.File.TargetPath, "/a -> /b"
		}},
		{"rename, args", `"evt.type":"rename","evt.arg.oldpath":"/root/.bash_history","evt.arg.newpath":"/tmp/h"`, "file/rename", func(e kubetrail.Event) (any, any) {
			return e.File.Path + " -> " + e.File.TargetPath, "/root/.bash_history -> /tmp/h"
		}},
		{"truncate", `"evt.type":"ftruncate","fd.name":"/var/log/auth.log"`, "file/open", func(e kubetrail.Event) (any, any) { return e.File.Path, "/var/log/auth.log" }},
		{"rmdir", `"evt.type":"rmdir","evt.arg.path":"/tmp/d"`, "file/rmdir", func(e kubetrail.Event) (any, any) { return e.File.Path, "/tmp/d" }},
		{"chmod", `"evt.type":"fchmodat","evt.arg.filename":"/tmp/x/pg_dump"`, "file/chmod", func(e kubetrail.Event) (any, any) { return e.File.Path, "/tmp/x/pg_dump" }},
		{"unlink without a path", `"evt.type":"unlinkat","proc.name":"rm"`, "skip: file alert without the file's path", nil},
		{"other syscall", `"evt.type":"ptrace","proc.name":"gdb"`, "skip: evt.type ptrace", nil},
		{"no evt.type, syscall arguments", `"evt.arg.uid":"0","proc.name":"su"`, "skip: alert without evt.type on a system call's arguments", nil},
		{"no evt.type, nothing", `"user.name":"root"`, "skip: alert without evt.type, process, connection or file", nil},
		{"process without a name", `"evt.type":"execve","proc.pid":7`, "skip: process alert without proc.name", nil},
		{"the least an execve needs", `"evt.type":"execve","proc.name":"x"`, "process/execve", nil},
		{"pid not a number", `"evt.type":"execve","proc.name":"x","proc.pid":"many"`, "error: output_fields.proc.pid: want a number, got a string", nil},
		{"pid a fraction", `"evt.type":"execve","proc.name":"x","proc.pid":1.5`, "error: output_fields.proc.pid: want a whole number", nil},
		{"name not a string", `"evt.type":"execve","proc.name":7`, "error: output_fields.proc.name: want a string", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := readAll(t, alertLine(c.fields)+"\n")
			if len(out) != 1 {
				t.Fatalf("%d records", len(out))
			}
			o := out[0]
			switch {
			case strings.HasPrefix(c.want, "error: "):
				if o.err == nil || !strings.HasPrefix(o.err.Error(), "line 1: ") || !strings.Contains(o.err.Error(), strings.TrimPrefix(c.want, "error: ")) {
					t.Errorf("got %v %q, want %s", o.err, o.skip, c.want)
				}
			case strings.HasPrefix(c.want, "skip: "):
				if o.err != nil || !strings.HasPrefix(o.skip, strings.TrimPrefix(c.want, "skip: ")) {
					t.Errorf("got %v %q, want %s", o.err, o.skip, c.want)
				}
			default:
				if o.err != nil || o.skip != "" {
					t.Fatalf("got %v %q, want an event", o.err, o.skip)
				}
				if got := string(o.ev.Category) + "/" + o.ev.Type; got != c.want {
					t.Errorf("got %s, want %s", got, c.want)
				}
				if !o.ev.Time.Equal(time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC)) {
					t.Errorf("time %v", o.ev.Time)
				}
				if c.check != nil {
					if got, want := c.check(o.ev); !reflect.DeepEqual(got, want) {
						t.Errorf("got  %#v\nwant %#v", got, want)
					}
				}
			}
		})
	}
}

// Times: the alert's own in either form, else the event's in nanoseconds.
func TestAlertTimes(t *testing.T) {
	cases := []struct {
		alert string
		want  string // RFC 3339, or "error: ..."
	}{
		{`{"rule":"R","time":"2024-05-01T10:00:00+02:00","output_fields":{"evt.type":"execve","proc.name":"x"}}`, "2024-05-01T08:00:00Z"},
		{`{"rule":"R","time":{"seconds":1714557600,"nanos":7},"output_fields":{"evt.type":"execve","proc.name":"x"}}`, "2024-05-01T10:00:00.000000007Z"},
		{`{"rule":"R","output_fields":{"evt.rawtime":1714557600000000001,"evt.type":"execve","proc.name":"x"}}`, "2024-05-01T10:00:00.000000001Z"},
		{`{"rule":"R","output_fields":{"evt.time":1714557600000000001,"evt.type":"execve","proc.name":"x"}}`, "2024-05-01T10:00:00.000000001Z"},
		{`{"rule":"R","output_fields":{"evt.time":"10:00:00.000","evt.type":"execve","proc.name":"x"}}`, "error: line 1: time is missing: the alert has no time and output_fields no evt.rawtime"},
		{`{"rule":"R","time":"2021-04-13T20:58:00.746609046Z+2","output_fields":{"evt.type":"execve","proc.name":"x"}}`, `error: line 1: time "2021-04-13T20:58:00.746609046Z+2" is not an RFC 3339 time`},
		{`{"rule":"R","time":1714557600,"output_fields":{"evt.type":"execve","proc.name":"x"}}`, "error: line 1: time 1714557600: want an RFC 3339 string"},
		{`{"rule":"R","output_fields":{"evt.rawtime":1618347519000000,"evt.type":"execve","proc.name":"x"}}`, "error: line 1: time 1970-01-19T17:32:27.519Z is implausible"},
	}
	for _, c := range cases {
		out := readAll(t, c.alert)
		if len(out) != 1 {
			t.Fatalf("%s: %d records", c.alert, len(out))
		}
		got := out[0].ev.Time.Format(time.RFC3339Nano)
		if out[0].err != nil {
			got = "error: " + out[0].err.Error()
		}
		if got != c.want {
			t.Errorf("%s:\n got  %s\n want %s", c.alert, got, c.want)
		}
	}
}

// Bad lines are reported with their line number (blank lines count) and reading
// goes on with the next line.
func TestBadLines(t *testing.T) {
	good := alertLine(`"evt.type":"execve","proc.name":"sh"`)
	in := strings.Join([]string{
		good,
		"",
		"Thu Jan 14 23:39:44 2021: Falco initialized with configuration file /etc/falco/falco.yaml",
		`{"rule":"R","output_fields":{"proc.name":"sh"`,
		`{"output_fields":[1]}`,
		`{"hello":"world"}`,
		good + " " + good,
		`[` + good + `]`,
		"   " + good + "   ",
		good,
	}, "\n")
	out := readAll(t, in)
	var got []string
	for _, o := range out {
		switch {
		case o.err != nil:
			got = append(got, o.err.Error())
		case o.skip != "":
			got = append(got, "skip "+o.skip)
		default:
			got = append(got, "event "+o.ev.Process.Name)
		}
	}
	want := []string{
		"event sh",
		"line 3: not a JSON object; Falco's json_output writes one alert object per line",
		"line 4: malformed JSON: unexpected EOF",
		"line 5: output_fields: want map, got a JSON array",
		"line 6: not a Falco alert: it has neither rule nor output_fields",
		"line 7: more than one JSON value on the line",
		"line 8: not a JSON object; Falco's json_output writes one alert object per line",
		"event sh",
		"event sh",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n  %q\nwant\n  %q", got, want)
	}
}

func TestLongLine(t *testing.T) {
	good := alertLine(`"evt.type":"execve","proc.name":"sh"`)
	in := good + "\n" + `{"rule":"` + strings.Repeat("x", MaxLine) + `"}` + "\n" + good
	out := readAll(t, in)
	if len(out) != 3 || out[0].err != nil || out[2].err != nil {
		t.Fatalf("%+v", out)
	}
	if err := out[1].err; err == nil || !strings.HasPrefix(err.Error(), "line 2: longer than") {
		t.Errorf("long line: %v", err)
	}
}

func TestParseTuple(t *testing.T) {
	cases := []struct {
		in         string
		cip, sip   string
		cport, spt int64
		ok         bool
	}{
		{"172.17.0.9:43812->10.96.0.1:443", "172.17.0.9", "10.96.0.1", 43812, 443, true},
		{"[::1]:5000->[::1]:80", "::1", "::1", 5000, 80, true},
		{"::1:5000->::1:80", "::1", "::1", 5000, 80, true},
		{"10.0.0.1:x->10.0.0.2:80", "", "", 0, 0, false},
		{"/var/run/docker.sock", "", "", 0, 0, false},
		{"ffff9a3c->ffff9a3d /run/x.sock", "", "", 0, 0, false},
	}
	for _, c := range cases {
		cip, cport, sip, sport, ok := parseTuple(c.in)
		if ok != c.ok || ok && (cip != c.cip || sip != c.sip || cport != c.cport || sport != c.spt) {
			t.Errorf("parseTuple(%q) = %q %d %q %d %v", c.in, cip, cport, sip, sport, ok)
		}
	}
}
