package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The built interface is served as a single-page application: its files as
// they are, the hashed assets cached for good, every other path its page.
func TestHandler(t *testing.T) {
	if !Built() {
		if os.Getenv("CI") == "true" {
			t.Fatal("the web interface is not built into ui/dist/app: make ui")
		}
		t.Skip("the web interface is not built (make ui)")
	}
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	index, err := fs.ReadFile(app, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/sessions/node-2:1:2", "/policy-events"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || body != string(index) || resp.Header.Get("Cache-Control") != "no-cache" ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d, cache %q, csp %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Security-Policy"))
		}
	}
	assets, err := fs.ReadDir(app, "assets")
	if err != nil || len(assets) == 0 {
		t.Fatalf("no assets: %v", err)
	}
	resp, _ := get("/assets/" + assets[0].Name())
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("asset: %d, cache %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/assets/missing.js", "/missing.png", "/assets/", "/assets"} {
		if resp, _ := get(path); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
}
