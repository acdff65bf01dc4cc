package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

// runIn runs the CLI in-process with the given standard input.
func runIn(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// queryEvents returns the events matching filter, oldest first.
func queryEvents(t *testing.T, filter string) []kubetrail.Event {
	t.Helper()
	out, _, err := run(t, "query", "--since", "100000h", "--all", "--reverse", "-o", "ndjson", filter)
	if err != nil {
		t.Fatalf("query %s: %v", filter, err)
	}
	var events []kubetrail.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e kubetrail.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("query output: %v\n%s", err, sc.Text())
		}
		events = append(events, e)
	}
	return events
}

func streamOf(format string, data []byte) string {
	sum := sha256.Sum256(data)
	return "import." + format + "." + hex.EncodeToString(sum[:])[:12]
}

// A Tetragon export and Falco alerts go in through 'kubetrail ingest', come back
// from the server as events, and a second import stores nothing new.
func TestIngestTetragonAndFalco(t *testing.T) {
	shared := sharedtest.Dir(t)
	startTestServer(t)
	tmp := t.TempDir()

	// The book's process lifecycle, pretty-printed files concatenated: sh runs
	// cat on the keystore and nc to a remote host.
	var export bytes.Buffer
	for _, f := range []string{"lifecycle_sh_process_exec", "cat_process_exec", "cat_process_kprobe", "nc_process_exec",
		"cat_process_exit", "nc_process_connect", "nc_process_close", "nc_process_exit", "lifecycle_sh_process_exit"} {
		data, err := os.ReadFile(filepath.Join(shared, "cilium-tetragon", "docs", "security-observability-with-ebpf",
			"03_chapter", "00_process_lifecycle", f+".json"))
		if err != nil {
			t.Fatal(err)
		}
		export.Write(data)
		export.WriteByte('\n')
	}
	tetraFile := filepath.Join(tmp, "tetragon.json")
	if err := os.WriteFile(tetraFile, export.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	stream := streamOf("tetragon", export.Bytes())
	_, stderr, err := run(t, "ingest", "--format", "tetragon", "--cluster-name", "lab", tetraFile)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"7 events sent on stream " + stream, "(7 stored, 0 already stored), 2 records skipped, 0 bad records",
		"skipped 1: process_close: the end of a connection", "skipped 1: process_kprobe __x64_sys_read: a read"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q:\n%s", want, stderr)
		}
	}
	events := queryEvents(t, "evt.stream = "+stream)
	if len(events) != 7 {
		t.Fatalf("%d events on %s, want 7", len(events), stream)
	}
	var seqs []uint64
	for _, e := range events {
		seqs = append(seqs, e.Seq)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("sequence numbers %v", seqs)
	}
	nc := queryEvents(t, "proc.name = nc and evt.category = network")
	if len(nc) != 1 {
		t.Fatalf("%d nc connections", len(nc))
	}
	c := nc[0]
	if c.ID() != stream+"/5" || c.Cluster != "lab" || c.Node != "minikube" || c.PodName != "elasticsearch-56f8fc6988-65smb" ||
		c.Network.ServerIP != "64.225.45.153" || c.Network.ServerPort != 443 || c.Network.Direction != "outbound" ||
		c.Process.Args() != "raiz3gjkgtfhkkc.not-reverse-shell.com 443" ||
		c.ContainerID != "e6af4dff4ea3b8d50313c59fbaa442e377da35671e79f43b8dc53c5efcc9b659" {
		t.Errorf("nc's connection came back as %+v", c)
	}
	if ex := queryEvents(t, "proc.name = cat and evt.type = execve"); len(ex) != 1 || ex[0].Process.Cmdline() != "cat /usr/share/elasticsearch/config/elasticsearch.keystore" {
		t.Errorf("cat's execution: %+v", ex)
	}

	// Again: every event is already there.
	_, stderr, err = run(t, "ingest", "--format", "tetragon", "--cluster-name", "lab", tetraFile)
	if err != nil || !strings.Contains(stderr, "(0 stored, 7 already stored)") {
		t.Errorf("re-import: %v\n%s", err, stderr)
	}

	// Falco's alerts from its documentation, one per line.
	alerts := sharedtest.Unwrapped(t, filepath.Join("falcosecurity-falco-website", "falco_alerts_from_docs.jsonl"), "alert")
	falcoFile := filepath.Join(tmp, "falco.json")
	if err := os.WriteFile(falcoFile, alerts, 0o600); err != nil {
		t.Fatal(err)
	}
	fstream := streamOf("falco", alerts)
	_, stderr, err = run(t, "ingest", "--format", "falco", "--node", "worker-7", falcoFile)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"11 events sent on stream " + fstream, "(11 stored, 0 already stored), 14 records skipped, 0 bad records",
		"skipped 7: Falco internal event", "skipped 6: k8s_audit alert", "skipped 1: file alert without evt.type",
		"Falco rules of the events sent (not stored): Terminal shell in container (7), Contact K8S API Server From Container (2), Delete or rename shell history (2)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q:\n%s", want, stderr)
		}
	}
	shells := queryEvents(t, "evt.stream = "+fstream+" and proc.name in (sh, bash) and evt.type = execve")
	if len(shells) != 7 {
		t.Errorf("%d shells, want 7", len(shells))
	}
	api := queryEvents(t, "evt.stream = "+fstream+" and fd.sip = 10.96.0.1")
	if len(api) != 1 || api[0].Node != "worker-7" || api[0].Cluster != "default" || api[0].ContainerID != "12fc4de5ccc3" ||
		api[0].Network.ClientPort != 43812 || api[0].Process.Name != "handler" {
		t.Errorf("API server connection: %+v", api)
	}
	unlinks := queryEvents(t, "evt.stream = "+fstream+" and evt.type = unlink")
	if len(unlinks) != 2 || unlinks[0].File.Path != "/home/vagrant/.zsh_history.LOCK" || !unlinks[0].Host() ||
		unlinks[1].Node != "localhost.localdomain" {
		t.Errorf("unlinks: %+v", unlinks)
	}

	// The same alerts on standard input hash the same: nothing new.
	_, stderr, err = runIn(t, string(alerts), "ingest", "--format", "falco", "--node", "worker-7", "-")
	if err != nil || !strings.Contains(stderr, "standard input: 11 events sent on stream "+fstream) ||
		!strings.Contains(stderr, "(0 stored, 11 already stored)") {
		t.Errorf("re-import from standard input: %v\n%s", err, stderr)
	}
}

// Bad records: the first stops the import, with its line; --keep-going sends the
// rest and still fails.
func TestIngestRuntimeBadRecords(t *testing.T) {
	startTestServer(t)
	good := func(pid string) string {
		return `{"process_exec":{"process":{"pid":` + pid + `,"binary":"/bin/echo","arguments":"hi ` + pid + `"}},"node_name":"n1","time":"2024-05-01T10:00:00Z"}`
	}
	input := good("1") + "\n" + `{"process_exec":{"process":{"pid":2,"binary":"/bin/echo"}},"time":"someday"}` + "\n" +
		good("3") + "\n" + "{oops\n" + good("5") + "\n"
	file := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(file, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	stream := streamOf("tetragon", []byte(input))

	_, stderr, err := run(t, "ingest", "--format", "tetragon", file)
	if err == nil || exitCode(err) != 1 || !strings.Contains(stderr, `bad.json: line 2: time "someday" is not an RFC 3339 time`) ||
		!strings.Contains(describe(err), "stopped at the first bad record (0 events sent before it)") {
		t.Errorf("first bad record: %v\n%s", err, stderr)
	}
	if n := len(queryEvents(t, "evt.stream = "+stream)); n != 0 {
		t.Errorf("%d events stored from the stopped import; its batch should not have been sent", n)
	}

	_, stderr, err = run(t, "ingest", "--format", "tetragon", "--keep-going", file)
	if err == nil || exitCode(err) != 1 || !strings.Contains(stderr, "line 4: malformed JSON") ||
		!strings.Contains(stderr, "3 events sent on stream "+stream) || !strings.Contains(stderr, "2 bad records") {
		t.Errorf("--keep-going: %v\n%s", err, stderr)
	}
	events := queryEvents(t, "evt.stream = "+stream)
	// All three have the same time: order them by their number.
	slices.SortFunc(events, func(a, b kubetrail.Event) int { return int(a.Seq) - int(b.Seq) })
	var args []string
	for _, e := range events {
		args = append(args, e.Process.Args())
	}
	if !slices.Equal(args, []string{"hi 1", "hi 3", "hi 5"}) || events[2].Seq != 3 || events[0].Node != "n1" {
		t.Errorf("stored: %q", args)
	}

	// Flags are checked.
	for _, args := range [][]string{
		{"ingest", "--format", "tetragon", "--stream", "has/slash", file},
		{"ingest", "--format", "k8s-audit", "--stream", "x", file},
		{"ingest", "--format", "k8s-audit", "--node", "x", file},
	} {
		if _, _, err := run(t, args...); err == nil || exitCode(err) != 1 {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
	// An explicit stream is used as given.
	_, stderr, err = run(t, "ingest", "--format", "tetragon", "--keep-going", "--stream", "my.import-1", file)
	if !strings.Contains(stderr, "3 events sent on stream my.import-1 ") || !strings.Contains(stderr, "(3 stored, 0 already stored)") {
		t.Errorf("--stream: %v\n%s", err, stderr)
	}
}
