// Package ui serves kubetrail's web interface: the pages the web/ project
// builds (its `npm run build` writes them to ui/dist/app), embedded in the
// binary so that the server needs nothing beside it.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// app is the built interface, or nil when the binary was built without it.
var app = func() fs.FS {
	sub, err := fs.Sub(dist, "dist/app")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil
	}
	return sub
}()

// Built reports whether the interface is in the binary.
func Built() bool { return app != nil }

// Handler serves the interface: its files as they are, the content-hashed ones
// under /assets/ cached for good, and index.html for every other path, since
// the interface routes its pages itself (/sessions/ID, /policy-events).
func Handler() http.Handler {
	if app == nil {
		return http.HandlerFunc(notBuilt)
	}
	files := http.FileServerFS(app)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if fi, err := fs.Stat(app, name); err == nil && !fi.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
			if name == "assets" || strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
				http.NotFound(w, r) // a missing file (or the assets' directory, never listed), not a page
				return
			}
		}
		// The page itself changes with every build: always revalidated.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, app, "index.html")
	})
}

// secure sets the headers that keep the interface's pages to themselves: only
// their own scripts, styles and API, never framed by another site.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func notBuilt(w http.ResponseWriter, r *http.Request) {
	secure(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`<!doctype html><title>kubetrail</title><p>This kubetrail binary was built without its web interface. Build it with <code>make build</code> (which runs <code>make ui</code>); the API is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.`))
}
