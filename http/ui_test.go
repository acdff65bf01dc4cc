package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

// The interface is served at every path outside the API without the token
// (its pages hold no data); an unknown API path stays an API error.
func TestUIRoutes(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })
	e := start(t, func(s *kthttp.Server) { s.UI = page })
	get := func(path string, auth bool) (int, string) {
		t.Helper()
		status, body := e.get(t, path, auth)
		return status, string(body)
	}
	for _, path := range []string{"/", "/sessions/node-2:1:2", "/policy-events"} {
		if code, body := get(path, false); code != 200 || body != "page "+path {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	code, body := get("/api/v1/nope", true)
	var apiErr struct{ Error struct{ Code string } }
	if code != 404 || json.Unmarshal([]byte(body), &apiErr) != nil || apiErr.Error.Code != "not_found" {
		t.Errorf("/api/v1/nope: %d %q", code, body)
	}
	if code, _ := get("/api/v1/stats", false); code != 401 {
		t.Errorf("the API without the token: %d", code)
	}
}

// GET /api/v1/values lists a field's commonest values for completion.
func TestValuesEndpoint(t *testing.T) {
	ctx := context.Background()
	e := start(t, func(s *kthttp.Server) { s.Values = s.Store.(kubetrail.ValueStore) })
	if _, err := e.client.SendBatch(ctx, runtimeBatch()); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.Values(ctx, "fd.sip", "185", kthttp.Query{Filter: "k8s.ns.name = billing", Since: 24 * time.Hour})
	if err != nil || len(got) != 1 || got[0].Value != "185.220.101.47" || got[0].Count != 1 {
		t.Errorf("values of fd.sip: %v %v", got, err)
	}
	got, err = e.client.Values(ctx, "proc.name", "", kthttp.Query{Filter: "k8s.ns.name = billing", Since: 24 * time.Hour})
	if err != nil || len(got) != 1 || got[0].Value != "curl" || got[0].Count < 2 {
		t.Errorf("values of proc.name: %v %v", got, err)
	}
	if _, err = e.client.Values(ctx, "proc.nmae", "", kthttp.Query{}); err == nil || !strings.Contains(err.Error(), "proc.name") {
		t.Errorf("unknown field: %v", err)
	}
	without := start(t)
	if _, err := without.client.Values(ctx, "proc.name", "", kthttp.Query{}); kubetrail.ErrorCode(err) != kubetrail.ENOTFOUND {
		t.Errorf("a server without values: %v", err)
	}
}
