package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/notify"
)

// receiver is a webhook endpoint that keeps the requests it gets and answers
// with the statuses it is given, then 200.
type receiver struct {
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	statuses []int
	header   http.Header // added to error answers
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.bodies)
	r.bodies = append(r.bodies, b)
	r.headers = append(r.headers, req.Header.Clone())
	status := http.StatusOK
	if n < len(r.statuses) {
		status = r.statuses[n]
	}
	r.mu.Unlock()
	if status != http.StatusOK {
		for k, v := range r.header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, "upstream is\n  down: "+strings.Repeat("x", 500))
		return
	}
	io.WriteString(w, "ok")
}

func (r *receiver) requests() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func newWebhook(t *testing.T, url, format string, headers map[string]string) notify.Action {
	t.Helper()
	a, err := notify.New(notify.Config{Name: "hook", Type: "webhook", URL: url, Format: format, Headers: headers, Timeout: notify.Duration{Duration: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWebhookJSON(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	a := newWebhook(t, srv.URL+"/kubetrail", "", map[string]string{"Authorization": "Bearer s3cret"})
	events := policyEvents(2)
	if err := a.Send(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want one per batch", len(reqs))
	}
	if h := rcv.headers[0]; h.Get("Authorization") != "Bearer s3cret" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	var flat struct{ Events []map[string]any }
	if err := json.Unmarshal(reqs[0], &flat); err != nil {
		t.Fatalf("%v: %s", err, reqs[0])
	}
	if len(flat.Events) != 2 {
		t.Fatalf("%d events: %s", len(flat.Events), reqs[0])
	}
	e := flat.Events[1]
	for k, want := range map[string]any{
		"policy.rule": "Terminal shell in container", "policy.priority": "WARNING", "policy.name": "baseline",
		"policy.output": events[1].Alert.Output, "k8s.ns.name": "shop", "k8s.pod.name": "cart-7d9f-abc",
		"policy.tags": []any{"container", "shell", "mitre_execution", "T1059"}, "evt.id": events[1].ID(),
		"ka.user.name": "alice@example.com", "evt.time": "2026-05-01T12:00:00.123456789Z",
	} {
		if !reflect.DeepEqual(e[k], want) {
			t.Errorf("%s = %#v, want %#v", k, e[k], want)
		}
	}
	// The flat form reads back into events.
	var back struct{ Events []kubetrail.Event }
	if err := json.Unmarshal(reqs[0], &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Events[0].Alert, events[0].Alert) || back.Events[0].PodName != events[0].PodName {
		t.Errorf("read back %+v", back.Events[0])
	}
}

func TestWebhookFalco(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	events := policyEvents(2)
	events[1].Alert.Priority = "CRITICAL"
	if err := newWebhook(t, srv.URL, "falco", nil).Send(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want one per event as Falco posts", len(reqs))
	}
	var alert struct {
		Output       string         `json:"output"`
		Priority     string         `json:"priority"`
		Rule         string         `json:"rule"`
		Time         string         `json:"time"`
		OutputFields map[string]any `json:"output_fields"`
		Source       string         `json:"source"`
		Tags         []string       `json:"tags"`
		Hostname     string         `json:"hostname"`
	}
	if err := json.Unmarshal(reqs[1], &alert); err != nil {
		t.Fatal(err)
	}
	if alert.Output != events[1].Alert.Output || alert.Priority != "Critical" || alert.Rule != "Terminal shell in container" ||
		alert.Time != "2026-05-01T12:00:00.123456789Z" || alert.Source != "syscall" || alert.Hostname != "node-1" ||
		!reflect.DeepEqual(alert.Tags, events[1].Alert.Tags) {
		t.Errorf("alert %+v", alert)
	}
	if alert.OutputFields["k8s.ns.name"] != "shop" || alert.OutputFields["k8s.pod.name"] != "cart-7d9f-abc" ||
		alert.OutputFields["container.image"] != "ghcr.io/shop/cart:1.2" || alert.OutputFields["policy.name"] != "baseline" {
		t.Errorf("output_fields %v", alert.OutputFields)
	}
}

func TestWebhookSlack(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	a := newWebhook(t, srv.URL, "slack", nil)
	if err := a.Send(context.Background(), policyEvents(1)); err != nil {
		t.Fatal(err)
	}
	type field struct{ Title, Value string }
	var msg struct {
		Text        string
		Attachments []struct {
			Title, Text, Color, Footer string
			Fields                     []field
		}
	}
	if err := json.Unmarshal(rcv.requests()[0], &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text != "[Warning] Terminal shell in container: A shell was spawned in a container &lt;#1&gt; (user=root shell=bash)" {
		t.Errorf("text %q", msg.Text)
	}
	if len(msg.Attachments) != 1 {
		t.Fatalf("attachments %+v", msg.Attachments)
	}
	at := msg.Attachments[0]
	if at.Title != "[Warning] Terminal shell in container" || !strings.Contains(at.Text, "&lt;#1&gt;") || at.Color == "" {
		t.Errorf("attachment %+v", at)
	}
	fields := map[string]string{}
	for _, f := range at.Fields {
		fields[f.Title] = f.Value
	}
	for k, want := range map[string]string{
		"rule": "Terminal shell in container", "priority": "Warning", "policy": "baseline", "namespace": "shop",
		"pod": "cart-7d9f-abc", "container": "app", "image": "ghcr.io/shop/cart:1.2", "user": "alice@example.com",
		"tags": "container, shell, mitre_execution, T1059", "workload": "Deployment/cart",
	} {
		if fields[k] != want {
			t.Errorf("field %s = %q, want %q", k, fields[k], want)
		}
	}

	// Many events go in messages of at most SlackAttachments; a failure after the
	// first says how many were delivered.
	rcv2 := &receiver{statuses: []int{200, 500}}
	srv2 := httptest.NewServer(rcv2)
	defer srv2.Close()
	err := newWebhook(t, srv2.URL, "slack", nil).Send(context.Background(), policyEvents(notify.SlackAttachments+5))
	var pe *notify.PartialError
	if !errors.As(err, &pe) || pe.Delivered != notify.SlackAttachments {
		t.Fatalf("err %v, want a partial error after %d", err, notify.SlackAttachments)
	}
	var first struct {
		Text        string
		Attachments []any
	}
	json.Unmarshal(rcv2.requests()[0], &first)
	if len(first.Attachments) != notify.SlackAttachments || first.Text != "20 kubetrail policy events" {
		t.Errorf("first message: %d attachments, text %q", len(first.Attachments), first.Text)
	}
}

func TestWebhookStatus(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{{400, true}, {401, true}, {404, true}, {408, false}, {429, false}, {500, false}, {503, false}} {
		rcv := &receiver{statuses: []int{tc.status}, header: http.Header{"Retry-After": {"7"}}}
		srv := httptest.NewServer(rcv)
		err := newWebhook(t, srv.URL+"/services/SECRET", "json", nil).Send(context.Background(), policyEvents(1))
		srv.Close()
		var se *notify.StatusError
		if !errors.As(err, &se) || se.Code != tc.status {
			t.Errorf("%d: err %v", tc.status, err)
			continue
		}
		if notify.IsPermanent(err) != tc.permanent {
			t.Errorf("%d: permanent %v, want %v", tc.status, notify.IsPermanent(err), tc.permanent)
		}
		msg := err.Error()
		if !strings.Contains(msg, http.StatusText(tc.status)) || !strings.Contains(msg, "upstream is down: xxx") || strings.Contains(msg, "SECRET") || len(msg) > 400 {
			t.Errorf("%d: message %q", tc.status, msg)
		}
		if wantAfter := tc.status == 429 || tc.status == 503; (se.After == 7*time.Second) != wantAfter {
			t.Errorf("%d: retry after %v", tc.status, se.After)
		}
	}

	// A network error is retried and does not show the URL's path either.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := newWebhook(t, url+"/services/SECRET", "json", nil).Send(context.Background(), policyEvents(1))
	if err == nil || notify.IsPermanent(err) || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("server down: %v", err)
	}
}
