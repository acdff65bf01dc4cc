package duckdb

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trail.duckdb")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func procEvent(stream string, seq uint64, at time.Time, ns, pod, name string, argv ...string) kubetrail.Event {
	return kubetrail.Event{
		Stream: stream, Seq: seq, Time: at, Category: kubetrail.CategoryProcess, Type: "execve", Result: "SUCCESS",
		Cluster: "c1", Node: "node-1", Namespace: ns, WorkloadKind: "Deployment", WorkloadName: "api", PodName: pod,
		PodUID: "uid-1", ContainerID: "abc123", ContainerName: "app", ImageRepository: "registry.example.com/api", ImageTag: "1.0",
		Process: kubetrail.Process{Name: name, ExePath: "/usr/bin/" + name, Argv: argv, PID: int64(100 + seq), PPID: 1,
			ParentName: "bash", Cwd: "/", UID: 0, LoginUID: -1, ExecID: "e" + name},
	}
}

func TestWriteReadBackEveryField(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	p := procEvent("node-1.a", 1, t0, "billing", "api-1", "curl", "curl", "-sSL", "http://x")
	n := kubetrail.Event{Stream: "node-1.a", Seq: 2, Time: t0.Add(time.Second), Category: kubetrail.CategoryNetwork, Type: "connect", Result: "SUCCESS",
		Cluster: "c1", Node: "node-1", Namespace: "billing", PodName: "api-1", ContainerID: "abc123",
		Process: kubetrail.Process{Name: "curl", PID: 101, Argv: []string{"curl"}},
		Network: kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.0.0.5", ClientPort: 41000, ServerIP: "185.220.101.47", ServerPort: 80, PeerKind: "unknown"}}
	a := kubetrail.Event{Time: t0.Add(-time.Second), Category: kubetrail.CategoryK8s, Type: "get", Cluster: "c1", Namespace: "billing", PodName: "api-1",
		Audit: kubetrail.Audit{AuditID: "a1", Stage: "ResponseStarted", StageTime: t0, UserName: "john.doe", UserGroups: []string{"devs", "system:authenticated"},
			Verb: "get", URI: "/api/v1/namespaces/billing/pods/api-1/exec?command=bash", Resource: "pods", Subresource: "exec",
			SourceIPs: []string{"66.249.64.55"}, ResponseCode: 101, ExecCommand: []string{"bash"}}}
	res, err := s.Write(ctx, []kubetrail.Event{p, n, a})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 3 {
		t.Fatalf("stored %d, want 3 (%+v)", res.Stored, res)
	}
	for _, want := range []kubetrail.Event{p, n, a} {
		got, err := s.Event(ctx, want.ID())
		if err != nil {
			t.Fatalf("event %s: %v", want.ID(), err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("event %s read back differently:\n got %+v\nwant %+v", want.ID(), *got, want)
		}
	}
}

func TestRetriedBatchIsStoredOnce(t *testing.T) {
	s, path := openTest(t)
	ctx := context.Background()
	batch := []kubetrail.Event{
		procEvent("s1", 1, t0, "billing", "p", "sh", "sh"),
		procEvent("s1", 2, t0.Add(time.Millisecond), "billing", "p", "ls", "ls"),
	}
	if _, err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	res, err := s.Write(ctx, append(batch, procEvent("s1", 3, t0.Add(2*time.Millisecond), "billing", "p", "id", "id")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 1 || res.Duplicates != 2 {
		t.Fatalf("retry: %+v, want 1 stored and 2 duplicates", res)
	}
	// The mark survives a restart.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	res, err = s2.Write(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 0 || res.Duplicates != 2 {
		t.Fatalf("after restart: %+v", res)
	}
	st, err := s2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events[kubetrail.CategoryProcess] != 3 {
		t.Fatalf("stats %+v, want 3 process events", st)
	}
}

func TestAuditStagesMergeIntoOneRecord(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	stage := func(st string, code int64) kubetrail.Event {
		return kubetrail.Event{Time: t0, Category: kubetrail.CategoryK8s, Type: "get",
			Audit: kubetrail.Audit{AuditID: "x-1", Stage: st, Verb: "get", ResponseCode: code}}
	}
	if _, err := s.Write(ctx, []kubetrail.Event{stage("RequestReceived", 0), stage("ResponseStarted", 101)}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Write(ctx, []kubetrail.Event{stage("ResponseComplete", 101)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 1 {
		t.Fatalf("%+v: want one update", res)
	}
	res, err = s.Write(ctx, []kubetrail.Event{stage("ResponseStarted", 101)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 1 || res.Stored != 0 {
		t.Fatalf("older stage after newer: %+v", res)
	}
	page, err := s.Search(ctx, kubetrail.SearchQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Audit.Stage != "ResponseComplete" {
		t.Fatalf("want one ResponseComplete record, got %+v", page.Events)
	}
}

func TestBadBatchIsRefusedWhole(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	good := procEvent("s1", 1, t0, "billing", "p", "sh", "sh")
	bad := procEvent("s1", 1, t0, "billing", "p", "ls", "ls") // repeats seq 1
	_, err := s.Write(ctx, []kubetrail.Event{good, bad})
	if kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Fatalf("want invalid, got %v", err)
	}
	page, err := s.Search(ctx, kubetrail.SearchQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 0 {
		t.Fatalf("half a bad batch was stored: %d events", len(page.Events))
	}
}

func TestSearchPagesNewestFirst(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	var batch []kubetrail.Event
	for i := 1; i <= 25; i++ {
		// Pairs of events share a timestamp to exercise the tie-break.
		batch = append(batch, procEvent("s1", uint64(i), t0.Add(time.Duration(i/2)*time.Second), "billing", "p", "sh", "sh"))
	}
	if _, err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var seen []uint64
	q := kubetrail.SearchQuery{Limit: 10}
	for {
		page, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			seen = append(seen, e.Seq)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if len(seen) != 25 {
		t.Fatalf("paged through %d events, want 25: %v", len(seen), seen)
	}
	for i := range seen {
		if seen[i] != uint64(25-i) {
			t.Fatalf("order %v", seen)
		}
	}
}

func TestRollbackLeavesNothing(t *testing.T) {
	// A cancelled context during a write must leave neither events nor stream marks.
	s, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Write(ctx, []kubetrail.Event{procEvent("s1", 1, t0, "billing", "p", "sh", "sh")}); err == nil {
		t.Fatal("write with a cancelled context succeeded")
	}
	res, err := s.Write(context.Background(), []kubetrail.Event{procEvent("s1", 1, t0, "billing", "p", "sh", "sh")})
	if err != nil || res.Stored != 1 {
		t.Fatalf("after a failed write: %+v, %v", res, err)
	}
}

// The appender must write inside Write's transaction, or a failure after the append
// would leave half a batch behind.
func TestAppenderJoinsTransaction(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if _, err := s.wconn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		t.Fatal(err)
	}
	e := procEvent("s1", 1, t0, "billing", "p", "sh", "sh")
	var ids [][]int64
	for _, d := range s.dims {
		id, _, err := d.assign(s.wconn, []*kubetrail.Event{&e})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := s.append(ctx, []*kubetrail.Event{&e}, ids); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wconn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows survived a rollback", n)
	}
}

// An agent batch is stored whole or not at all, its inventory included, and a
// retried batch does not store its inventory twice.
func TestBatchWithInventoryIsAtomic(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	inv := []kubetrail.InventoryObject{{Time: t0, Cluster: "c1", Kind: "pod", Namespace: "billing", Name: "p", IPs: []string{"10.0.0.9"}}}
	bad := []kubetrail.Event{procEvent("s1", 2, t0, "billing", "p", "sh", "sh"), procEvent("s1", 1, t0, "billing", "p", "ls", "ls")}
	if _, err := s.WriteBatch(ctx, bad, inv); kubetrail.ErrorCode(err) != kubetrail.EINVALID {
		t.Fatalf("bad batch: %v", err)
	}
	got, err := s.Inventory(ctx, time.Time{})
	if err != nil || len(got) != 0 {
		t.Fatalf("a refused batch left %d inventory rows (%v)", len(got), err)
	}
	good := []kubetrail.Event{procEvent("s1", 1, t0, "billing", "p", "sh", "sh")}
	for i := 0; i < 2; i++ {
		if _, err := s.WriteBatch(ctx, good, inv); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = s.Inventory(ctx, time.Time{})
	if len(got) != 1 {
		t.Fatalf("%d inventory rows after a batch and its retry, want 1", len(got))
	}
}

// Two stores in one process keep their own dimension rows: the second names
// the same scope in its own table, and filters on it find its events.
func TestStoresKeepTheirOwnDimensions(t *testing.T) {
	ctx := context.Background()
	e := procEvent("s1", 1, t0, "billing", "p", "sh", "sh")
	for i := range 2 {
		s, _ := openTest(t)
		if _, err := s.Write(ctx, []kubetrail.Event{e}); err != nil {
			t.Fatal(err)
		}
		page, err := s.Search(ctx, kubetrail.SearchQuery{Filter: kubetrail.Comparison{Field: "k8s.ns.name", Op: kubetrail.OpEq, Values: []any{"billing"}}})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("store %d: %d events, %v", i+1, len(page.Events), err)
		}
	}
}
