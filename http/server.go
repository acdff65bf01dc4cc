// Package http serves kubetrail's REST API — ingest for the audit webhook and the
// agent protocol, search, scopes, histogram and the field reference — and holds the
// client the CLI and the demo use to talk to it.
package http

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agentpb"
	"github.com/kubetrail/kubetrail/filter"
	"github.com/kubetrail/kubetrail/ingest"
	"github.com/kubetrail/kubetrail/k8saudit"
)

// Body limits: a compressed request body, and what it may expand to. Ingest
// requests are also taken a few at a time, so that several large (or maliciously
// compressed) bodies at once cannot exhaust memory.
const (
	MaxBodyBytes         = 64 << 20
	MaxDecompressedBytes = 256 << 20
	MaxConcurrentIngest  = 4
	maxZstdWindow        = 8 << 20
)

//go:embed openapi.json
var openAPI []byte

// Server is kubetrail's HTTP API.
type Server struct {
	Store    kubetrail.EventStore
	Sessions kubetrail.SessionStore
	Pipeline *ingest.Pipeline
	// Token is the bearer token every endpoint but /healthz and /readyz requires.
	Token string
	// Cluster names the cluster of audit events whose webhook URL does not say
	// (?cluster=NAME does).
	Cluster  string
	Registry *prometheus.Registry
	Log      *slog.Logger
	// Ready reports whether the server can take traffic; nil means always.
	Ready func() error
	// TLSCertFile and TLSKeyFile, when set, make the server speak HTTPS.
	TLSCertFile, TLSKeyFile string

	srv      *http.Server
	ln       net.Listener
	requests *prometheus.HistogramVec
	ingest   chan struct{} // a token per ingest request in progress
}

// Handler returns the routed, authenticated handler.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.requests == nil {
		s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kubetrail_http_request_seconds", Help: "HTTP request latency by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route", "code"})
		if s.Registry != nil {
			s.Registry.MustRegister(s.requests)
		}
	}
	s.ingest = make(chan struct{}, MaxConcurrentIngest)
	mux := http.NewServeMux()
	open := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.instrument(pattern, h)) }
	authed := func(pattern string, h http.Handler) { mux.Handle(pattern, s.instrument(pattern, s.authenticate(h))) }

	open("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	open("GET /readyz", s.handleReady)
	authed("POST /api/v1/k8s-audit", s.limitIngest(http.HandlerFunc(s.handleAudit)))
	authed("POST /api/v1/k8s-audit/{cluster}", s.limitIngest(http.HandlerFunc(s.handleAudit)))
	authed("POST /api/v1/events", s.limitIngest(http.HandlerFunc(s.handleBatch)))
	authed("GET /api/v1/events", http.HandlerFunc(s.handleSearch))
	authed("GET /api/v1/events/{id...}", http.HandlerFunc(s.handleEvent))
	authed("GET /api/v1/sessions", http.HandlerFunc(s.handleSessions))
	authed("GET /api/v1/sessions/{id}", http.HandlerFunc(s.handleTrace))
	authed("GET /api/v1/scopes", http.HandlerFunc(s.handleScopes))
	authed("GET /api/v1/histogram", http.HandlerFunc(s.handleHistogram))
	authed("GET /api/v1/fields", http.HandlerFunc(s.handleFields))
	authed("GET /api/v1/stats", http.HandlerFunc(s.handleStats))
	authed("GET /api/v1/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	}))
	if s.Registry != nil {
		authed("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

// Listen binds addr; Serve then serves on it. Split so callers learn the address
// (":0" picks a free port) before serving.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return ln.Addr(), nil
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	var err error
	if s.TLSCertFile != "" {
		err = s.srv.ServeTLS(s.ln, s.TLSCertFile, s.TLSKeyFile)
	} else {
		err = s.srv.Serve(s.ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// limitIngest lets MaxConcurrentIngest ingest requests in at once; the others
// wait (writes are serialised by the store anyway) until their client gives up.
func (s *Server) limitIngest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.ingest <- struct{}{}:
			defer func() { <-s.ingest }()
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

func (s *Server) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubetrail"`)
			s.error(w, r, kubetrail.Errorf(kubetrail.EUNAUTHORIZED, "a valid bearer token is required (Authorization: Bearer TOKEN)"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	io.WriteString(w, "ok\n")
}

// statusOf maps domain error codes to HTTP statuses, in this one place.
var statusOf = map[string]int{
	kubetrail.EINVALID:      http.StatusBadRequest,
	kubetrail.ENOTFOUND:     http.StatusNotFound,
	kubetrail.EUNAUTHORIZED: http.StatusUnauthorized,
	kubetrail.ECONFLICT:     http.StatusConflict,
	kubetrail.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	kubetrail.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorResponse is the body of every error reply.
type ErrorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Where   string `json:"where,omitempty"`
	} `json:"error"`
}

func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code := kubetrail.ErrorCode(err)
	var body ErrorResponse
	body.Error.Code = code
	body.Error.Message = kubetrail.ErrorMessage(err)
	var de *kubetrail.Error
	if errors.As(err, &de) {
		body.Error.Message, body.Error.Where = de.Message, de.Where
	}
	if code == kubetrail.EINTERNAL {
		s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	status := statusOf[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// readBody reads a request body, undoing Content-Encoding, within the limits.
func readBody(r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	var rd io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "body says Content-Encoding gzip but is not gzip: %v", err)
		}
		defer zr.Close()
		rd = zr
	case "zstd":
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressedBytes),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "body says Content-Encoding zstd but is not zstd: %v", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "Content-Encoding %q is not supported; use gzip, zstd or none", enc)
	}
	data, err := io.ReadAll(io.LimitReader(rd, MaxDecompressedBytes+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, kubetrail.Errorf(kubetrail.ETOOLARGE, "request body is over %d bytes", MaxBodyBytes)
	case err != nil:
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "read request body: %v", err)
	case len(data) > MaxDecompressedBytes:
		return nil, kubetrail.Errorf(kubetrail.ETOOLARGE, "request body expands to over %d bytes", MaxDecompressedBytes)
	}
	return data, nil
}

// IngestResponse acknowledges a stored batch.
type IngestResponse struct {
	kubetrail.WriteResult
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(r)
	if err != nil {
		s.refuse(w, r, ingest.SourceAudit, err)
		return
	}
	// The cluster is named in the path: the API server's webhook client drops
	// the query of the URL it is given (it posts with ?timeout=30s of its own).
	// ?cluster= is kept for other senders.
	cluster := s.Cluster
	if c := r.PathValue("cluster"); c != "" {
		cluster = c
	} else if c := r.URL.Query().Get("cluster"); c != "" {
		cluster = c
	}
	events, err := k8saudit.DecodeEventList(data, cluster)
	if err != nil {
		s.refuse(w, r, ingest.SourceAudit, err)
		return
	}
	res, err := s.Pipeline.WriteAudit(r.Context(), events)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, IngestResponse{res})
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != agentpb.ContentType {
		err := kubetrail.Errorf(kubetrail.EINVALID, "Content-Type %q is not the agent protocol; send %s", ct, agentpb.ContentType)
		s.refuse(w, r, ingest.SourceAgent, err)
		return
	}
	data, err := readBody(r)
	if err != nil {
		s.refuse(w, r, ingest.SourceAgent, err)
		return
	}
	batch, err := agentpb.Decode(data)
	if err != nil {
		s.refuse(w, r, ingest.SourceAgent, err)
		return
	}
	res, err := s.Pipeline.WriteBatch(r.Context(), batch)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, IngestResponse{res})
}

// refuse answers an ingest request whose body could not be read or decoded, and
// counts the refusal against its source.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, source string, err error) {
	s.Pipeline.Refused(source, err)
	s.error(w, r, err)
}

// filterAndWindow reads what every query endpoint takes: the filter and the window.
func filterAndWindow(r *http.Request, now time.Time) (kubetrail.Expr, kubetrail.Window, error) {
	expr, err := parseFilter(r)
	if err != nil {
		return nil, kubetrail.Window{}, err
	}
	win, err := window(r, now)
	return expr, win, err
}

// window reads from/to (RFC 3339) or since (a duration back from now).
func window(r *http.Request, now time.Time) (kubetrail.Window, error) {
	var w kubetrail.Window
	q := r.URL.Query()
	if s := q.Get("since"); s != "" {
		if q.Get("from") != "" {
			return w, kubetrail.Errorf(kubetrail.EINVALID, "give either since or from, not both")
		}
		d, err := ParseDuration(s)
		if err != nil {
			return w, kubetrail.ErrorAt(kubetrail.EINVALID, "since", "%v", err)
		}
		w.From = now.Add(-d)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &w.From}, {"to", &w.To}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return w, kubetrail.ErrorAt(kubetrail.EINVALID, p.name, "%q is not an RFC 3339 time such as 2026-11-27T10:00:00Z", s)
			}
			*p.dst = t.UTC()
		}
	}
	if !w.From.IsZero() && !w.To.IsZero() && !w.From.Before(w.To) {
		return w, kubetrail.Errorf(kubetrail.EINVALID, "from (%s) must be before to (%s)", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
	}
	return w, nil
}

// ParseDuration accepts Go durations plus days and weeks ("7d", "2w").
func ParseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.ParseFloat(n, 64); err == nil && v > 0 {
				return time.Duration(v * float64(unit)), nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 15m, 24h or 7d", s)
	}
	return d, nil
}

func parseFilter(r *http.Request) (kubetrail.Expr, error) {
	expr, err := filter.Parse(r.URL.Query().Get("filter"))
	if err != nil {
		var de *kubetrail.Error
		if errors.As(err, &de) {
			return nil, &kubetrail.Error{Code: de.Code, Message: de.Message, Where: "filter " + de.Where}
		}
		return nil, err
	}
	return expr, nil
}

// SearchResponse is a page of events.
type SearchResponse struct {
	Events []*kubetrail.Event `json:"events"`
	Next   string             `json:"next,omitempty"`
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	expr, win, err := filterAndWindow(r, time.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := kubetrail.SearchQuery{Filter: expr, Window: win, Cursor: r.URL.Query().Get("cursor")}
	if q.Limit, err = limitParam(r); err != nil {
		s.error(w, r, err)
		return
	}
	page, err := s.Store.Search(r.Context(), q)
	if err != nil {
		s.error(w, r, err)
		return
	}
	resp := SearchResponse{Events: make([]*kubetrail.Event, len(page.Events)), Next: page.Next}
	for i := range page.Events {
		resp.Events[i] = &page.Events[i]
	}
	writeJSON(w, http.StatusOK, resp)
}

// limitParam reads ?limit=, 0 when absent.
func limitParam(r *http.Request) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n <= 0 {
		return 0, kubetrail.ErrorAt(kubetrail.EINVALID, "limit", "%q is not a positive whole number", l)
	}
	return n, nil
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	expr, win, err := filterAndWindow(r, time.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := kubetrail.SessionQuery{Filter: expr, Window: win}
	if q.Limit, err = limitParam(r); err != nil {
		s.error(w, r, err)
		return
	}
	sessions, err := s.Sessions.Sessions(r.Context(), q)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if sessions == nil {
		sessions = []kubetrail.Session{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": sessions})
}

func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	t, err := s.Sessions.Trace(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	e, err := s.Store.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) handleScopes(w http.ResponseWriter, r *http.Request) {
	expr, win, err := filterAndWindow(r, time.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	nodes, err := s.Store.Scopes(r.Context(), kubetrail.ScopeQuery{Filter: expr, Window: win, GroupBy: r.URL.Query().Get("by")})
	if err != nil {
		s.error(w, r, err)
		return
	}
	if nodes == nil {
		nodes = []*kubetrail.ScopeNode{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"scopes": nodes})
}

func (s *Server) handleHistogram(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	expr, win, err := filterAndWindow(r, now)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if win.From.IsZero() {
		win.From = now.Add(-24 * time.Hour)
	}
	if win.To.IsZero() {
		win.To = now
	}
	bucket := time.Minute
	if b := r.URL.Query().Get("bucket"); b != "" {
		if bucket, err = ParseDuration(b); err != nil {
			s.error(w, r, kubetrail.ErrorAt(kubetrail.EINVALID, "bucket", "%v", err))
			return
		}
	}
	buckets, err := s.Store.Histogram(r.Context(), kubetrail.HistogramQuery{Filter: expr, Window: win, Bucket: bucket})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": win.From, "to": win.To, "bucket": bucket.String(), "buckets": buckets})
}

// FieldDoc is one entry of the field reference as the API serves it.
type FieldDoc struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Categories []string `json:"categories"`
	Derived    bool     `json:"derived,omitempty"`
	Doc        string   `json:"doc"`
}

// FieldDocs returns the field reference.
func FieldDocs() []FieldDoc {
	docs := make([]FieldDoc, len(kubetrail.Fields))
	for i, f := range kubetrail.Fields {
		cats := make([]string, 0, 4)
		for _, c := range kubetrail.Categories {
			if f.Shows(c) {
				cats = append(cats, string(c))
			}
		}
		doc := f.Doc
		if f.Linked && f.AppliesTo(kubetrail.CategoryK8s) {
			doc += " Every event of a session a Kubernetes request started carries its request's value."
		}
		docs[i] = FieldDoc{Name: f.Name, Type: string(f.Type), Categories: cats, Derived: f.Derived, Doc: doc}
	}
	return docs
}

func (s *Server) handleFields(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"fields": FieldDocs()})
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.Store.Stats(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
