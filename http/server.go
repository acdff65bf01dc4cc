// Package http serves kubetrail's REST API — ingest for the audit webhook and the
// agent protocol, search, scopes, histogram, sessions, policy events and the
// activity around them, policies and the field reference — and holds the client
// the CLI and the demo use to talk to it.
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
	"slices"
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
	// Policies serves GET /api/v1/policies and POST /api/v1/policies/reload;
	// nil answers them with not_found.
	Policies PolicyService
	// Values serves GET /api/v1/values (the commonest values of a field, for
	// completion); nil answers it with not_found.
	Values kubetrail.ValueStore
	// UI serves the web interface at every path outside the API (package ui);
	// nil serves none. Its pages and scripts are public; what they show comes
	// from the API, with the token the user gives.
	UI http.Handler
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
	authed("GET /api/v1/policy-events", http.HandlerFunc(s.handlePolicyEvents))
	// A policy event's id holds a slash: escaped (policy%2F<hash>) it is one
	// segment; the second pattern takes it as written.
	authed("GET /api/v1/policy-events/{id}/activity", http.HandlerFunc(s.handleActivity))
	authed("GET /api/v1/policy-events/policy/{hash}/activity", http.HandlerFunc(s.handleActivity))
	authed("GET /api/v1/policies", http.HandlerFunc(s.handlePolicies))
	authed("POST /api/v1/policies/reload", http.HandlerFunc(s.handleReloadPolicies))
	authed("GET /api/v1/sessions", http.HandlerFunc(s.handleSessions))
	authed("GET /api/v1/sessions/{id}", http.HandlerFunc(s.handleTrace))
	authed("GET /api/v1/scopes", http.HandlerFunc(s.handleScopes))
	authed("GET /api/v1/histogram", http.HandlerFunc(s.handleHistogram))
	authed("GET /api/v1/fields", http.HandlerFunc(s.handleFields))
	authed("GET /api/v1/values", http.HandlerFunc(s.handleValues))
	authed("GET /api/v1/stats", http.HandlerFunc(s.handleStats))
	authed("GET /api/v1/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	}))
	if s.Registry != nil {
		authed("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	}
	if s.UI != nil {
		mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				// Not a page of the interface: an endpoint that does not exist.
				s.error(w, r, kubetrail.Errorf(kubetrail.ENOTFOUND, "no endpoint GET %s; see /api/v1/openapi.json", r.URL.Path))
				return
			}
			s.UI.ServeHTTP(w, r)
		}))
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
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away (the interface cancels a query its user moved
		// on from): nobody reads the answer, and nothing failed here.
		s.Log.Debug("request cancelled by the client", "method", r.Method, "path", r.URL.Path)
		return
	}
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
	s.search(w, r, func(e kubetrail.Expr) kubetrail.Expr { return e })
}

// search answers a search request with the filter the request gives, as narrow
// changes it.
func (s *Server) search(w http.ResponseWriter, r *http.Request, narrow func(kubetrail.Expr) kubetrail.Expr) {
	expr, win, err := filterAndWindow(r, time.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := kubetrail.SearchQuery{Filter: narrow(expr), Window: win, Cursor: r.URL.Query().Get("cursor")}
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

func (s *Server) handleValues(w http.ResponseWriter, r *http.Request) {
	if s.Values == nil {
		s.error(w, r, kubetrail.Errorf(kubetrail.ENOTFOUND, "this server lists no values"))
		return
	}
	expr, win, err := filterAndWindow(r, time.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query()
	limit, err := limitParam(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	values, err := s.Values.Values(r.Context(), kubetrail.ValuesQuery{Field: q.Get("field"), Prefix: q.Get("prefix"), Filter: expr, Window: win, Limit: limit})
	if err != nil {
		s.error(w, r, err)
		return
	}
	if values == nil {
		values = []kubetrail.ValueCount{}
	}
	writeJSON(w, http.StatusOK, values)
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

// PolicyService is the server's policies: what is in force, and reloading them.
type PolicyService interface {
	Current() PolicyState
	Reload(ctx context.Context) (PolicyState, error)
}

// PolicyState is what GET /api/v1/policies answers: the policies, what became of
// each rule of the rule files, the files, and what loading them warned of.
type PolicyState struct {
	Policies []kubetrail.Policy     `json:"policies"`
	Rules    []kubetrail.RuleStatus `json:"rules"`
	Files    []string               `json:"files"`
	Warnings []string               `json:"warnings,omitempty"`
}

// nonNil returns st with empty lists for absent ones, so that they print as []
// rather than null.
func (st PolicyState) nonNil() PolicyState {
	if st.Policies == nil {
		st.Policies = []kubetrail.Policy{}
	}
	if st.Rules == nil {
		st.Rules = []kubetrail.RuleStatus{}
	}
	if st.Files == nil {
		st.Files = []string{}
	}
	return st
}

var errNoPolicies = kubetrail.Errorf(kubetrail.ENOTFOUND, "policies are not enabled")

func (s *Server) handlePolicies(w http.ResponseWriter, r *http.Request) {
	if s.Policies == nil {
		s.error(w, r, errNoPolicies)
		return
	}
	writeJSON(w, http.StatusOK, s.Policies.Current().nonNil())
}

func (s *Server) handleReloadPolicies(w http.ResponseWriter, r *http.Request) {
	if s.Policies == nil {
		s.error(w, r, errNoPolicies)
		return
	}
	st, err := s.Policies.Reload(r.Context())
	if err != nil {
		// What the rule files or policies say is wrong; the server keeps the
		// policies it had.
		e := &kubetrail.Error{Code: kubetrail.EINVALID, Message: err.Error()}
		var de *kubetrail.Error
		if errors.As(err, &de) {
			e.Message, e.Where = de.Message, de.Where
		}
		s.Log.Warn("reload policies", "err", err)
		s.error(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, st.nonNil())
}

// policyEvents narrows a filter to policy events.
func policyEvents(e kubetrail.Expr) kubetrail.Expr {
	cat := kubetrail.Comparison{Field: "evt.category", Op: kubetrail.OpEq, Values: []any{string(kubetrail.CategoryPolicy)}}
	if _, all := e.(kubetrail.True); all || e == nil {
		return cat
	}
	return kubetrail.And{Terms: []kubetrail.Expr{cat, e}}
}

func (s *Server) handlePolicyEvents(w http.ResponseWriter, r *http.Request) {
	s.search(w, r, policyEvents)
}

// Activity defaults: how far either side of the trigger, and how many events
// of the window (the session's come on top).
const (
	DefaultActivitySpan  = 5 * time.Minute
	DefaultActivityLimit = 500
)

// Activity is the activity around a policy event: what happened where its trigger
// did, shortly before and after it, and everything of its session.
type Activity struct {
	Event *kubetrail.Event `json:"event"`
	// Trigger is the event the rule matched; nil when it is no longer stored.
	Trigger *kubetrail.Event `json:"trigger"`
	// Session is the session of the policy event (or, for a policy event on a
	// kubectl exec request, the session the request started); nil when none.
	Session *kubetrail.Session `json:"session"`
	// Scope says where Events were looked for: container, pod, node, user (a
	// Kubernetes request on no pod: the same user's activity) or event (only the
	// trigger).
	Scope string `json:"scope"`
	// Window is the span searched around the trigger, [from, to).
	Window ActivityWindow `json:"window"`
	// Filter is the condition searched in Window, in filter syntax: the scope,
	// or the session. The session's events outside the window are included too.
	Filter string `json:"filter"`
	// Events are the events found, oldest first: the trigger and the policy
	// event itself among them.
	Events []*kubetrail.Event `json:"events"`
	// Truncated says the window held more events than the limit: those
	// farthest from the trigger were left out (or the session's trace was cut).
	Truncated bool `json:"truncated,omitempty"`
}

// ActivityWindow is the half-open span [From, To) of an Activity.
type ActivityWindow struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (s *Server) handleActivity(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if h := r.PathValue("hash"); h != "" {
		id = "policy/" + h
	} else if !strings.Contains(id, "/") {
		id = "policy/" + id // the hash alone
	}
	before, err := spanParam(r, "before")
	if err != nil {
		s.error(w, r, err)
		return
	}
	after, err := spanParam(r, "after")
	if err != nil {
		s.error(w, r, err)
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if limit == 0 {
		limit = DefaultActivityLimit
	}
	a, err := s.activity(r.Context(), id, before, after, limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// spanParam reads a duration parameter of the activity window: 0 or more, the
// default when absent.
func spanParam(r *http.Request, name string) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return DefaultActivitySpan, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d == 0 {
		return 0, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, kubetrail.ErrorAt(kubetrail.EINVALID, name, "%v", err)
	}
	return d, nil
}

func (s *Server) activity(ctx context.Context, id string, before, after time.Duration, limit int) (*Activity, error) {
	ev, err := s.Store.Event(ctx, id)
	if err != nil {
		return nil, err
	}
	if ev.Category != kubetrail.CategoryPolicy {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "%s is a %s event, not a policy event: the activity is shown around policy events (evt.category = policy)", id, ev.Category)
	}
	a := &Activity{Event: ev}
	if ev.Alert.Trigger != "" {
		trigger, err := s.Store.Event(ctx, ev.Alert.Trigger)
		switch kubetrail.ErrorCode(err) {
		case "":
			a.Trigger = trigger
		case kubetrail.ENOTFOUND, kubetrail.EINVALID: // removed by retention, or never stored
		default:
			return nil, err
		}
	}
	// The trigger says where and when; the policy event keeps its scope and
	// time when the trigger is gone.
	anchor := ev
	if a.Trigger != nil {
		anchor = a.Trigger
	}
	at := anchor.Time
	// The window takes the instant at its end too: to is exclusive.
	a.Window = ActivityWindow{From: at.Add(-before), To: at.Add(after + time.Nanosecond)}
	var scope kubetrail.Expr
	a.Scope, scope = activityScope(anchor, ev.Alert.Trigger)

	sessionID := ev.SessionID
	if sessionID == "" && a.Trigger != nil {
		sessionID = a.Trigger.SessionID // a kubectl exec request: the session it started
	}
	var trace *kubetrail.Trace
	if sessionID != "" && s.Sessions != nil {
		trace, err = s.Sessions.Trace(ctx, sessionID)
		switch kubetrail.ErrorCode(err) {
		case "":
			a.Session = &trace.Session
			a.Truncated = trace.Truncated
		case kubetrail.ENOTFOUND:
		default:
			return nil, err
		}
	}
	cond := scope
	if a.Session != nil {
		cond = kubetrail.Or{Terms: []kubetrail.Expr{scope, eqCond("session.id", sessionID)}}
	}
	a.Filter = filter.String(cond)

	win := kubetrail.Window{From: a.Window.From, To: a.Window.To}
	found, more, err := s.around(ctx, cond, win, at, limit)
	if err != nil {
		return nil, err
	}
	a.Truncated = a.Truncated || more

	seen := map[string]bool{}
	var events []*kubetrail.Event
	add := func(e *kubetrail.Event) {
		if id := e.ID(); !seen[id] {
			seen[id] = true
			events = append(events, e)
		}
	}
	for i := range found {
		add(&found[i])
	}
	if trace != nil {
		if trace.Request != nil {
			add(trace.Request) // the kubectl exec that started the session
		}
		for i := range trace.Events {
			add(&trace.Events[i])
		}
	}
	if a.Trigger != nil {
		add(a.Trigger)
	}
	add(ev)
	slices.SortStableFunc(events, timelineOrder)
	a.Events = events
	return a, nil
}

// timelineOrder orders events oldest first; at one instant an event before the
// policy events raised on it, and a stream's events by sequence number.
func timelineOrder(x, y *kubetrail.Event) int {
	if c := x.Time.Compare(y.Time); c != 0 {
		return c
	}
	if xp, yp := x.Category == kubetrail.CategoryPolicy, y.Category == kubetrail.CategoryPolicy; xp != yp {
		if xp {
			return 1
		}
		return -1
	}
	if x.Stream == y.Stream && x.Stream != "" {
		if x.Seq != y.Seq {
			if x.Seq < y.Seq {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(x.ID(), y.ID())
}

func eqCond(field, value string) kubetrail.Expr {
	return kubetrail.Comparison{Field: field, Op: kubetrail.OpEq, Values: []any{value}}
}

// activityScope says where to look for the activity around e (the trigger, or
// the policy event that keeps its scope): the same container; else the same
// pod; else, for an event on a node outside containers, the same node; else,
// for a Kubernetes request on no pod, the same user; else only the trigger.
func activityScope(e *kubetrail.Event, trigger string) (string, kubetrail.Expr) {
	inCluster := func(terms ...kubetrail.Expr) kubetrail.Expr {
		if e.Cluster != "" {
			terms = append([]kubetrail.Expr{eqCond("k8s.cluster.name", e.Cluster)}, terms...)
		}
		if len(terms) == 1 {
			return terms[0]
		}
		return kubetrail.And{Terms: terms}
	}
	switch {
	case e.ContainerID != "":
		return "container", eqCond("container.id", e.ContainerID)
	case e.PodUID != "":
		return "pod", eqCond("k8s.pod.uid", e.PodUID)
	case e.PodName != "" && e.Namespace != "":
		return "pod", inCluster(eqCond("k8s.ns.name", e.Namespace), eqCond("k8s.pod.name", e.PodName))
	case e.Source() == "syscall" && e.Node != "":
		return "node", inCluster(eqCond("k8s.node.name", e.Node))
	case e.Source() == "k8s_audit" && e.Audit.UserName != "":
		return "user", inCluster(eqCond("ka.user.name", e.Audit.UserName))
	}
	return "event", eqCond("evt.id", trigger)
}

// maxBisections bounds the searches that find the earliest events after the
// trigger in a window holding more than the limit.
const maxBisections = 16

// around returns up to limit events matching cond in win, those closest to at:
// the latest before it and the earliest from it on, half the limit each way
// where both sides have that many. more says some were left out.
func (s *Server) around(ctx context.Context, cond kubetrail.Expr, win kubetrail.Window, at time.Time, limit int) ([]kubetrail.Event, bool, error) {
	// Before: newest first, the page is the closest.
	beforeWin := kubetrail.Window{From: win.From, To: at}
	var beforeEvents []kubetrail.Event
	beforeMore := false
	if win.From.Before(at) {
		page, err := s.Store.Search(ctx, kubetrail.SearchQuery{Filter: cond, Window: beforeWin, Limit: limit})
		if err != nil {
			return nil, false, err
		}
		beforeEvents, beforeMore = page.Events, page.Next != ""
	}
	// From the trigger on: the earliest, found by narrowing the window's end
	// until it holds no more than the limit.
	afterEvents, afterMore, err := s.earliest(ctx, cond, kubetrail.Window{From: at, To: win.To}, limit)
	if err != nil {
		return nil, false, err
	}
	na := min(len(afterEvents), max(limit/2, limit-len(beforeEvents)))
	nb := min(len(beforeEvents), limit-na)
	more := beforeMore || afterMore || na < len(afterEvents) || nb < len(beforeEvents)
	// afterEvents are newest first: keep the tail (the earliest).
	out := append(slices.Clone(beforeEvents[:nb]), afterEvents[len(afterEvents)-na:]...)
	return out, more, nil
}

// earliest returns the earliest events matching cond in win, at most limit of
// them (newest first, as Search returns them), and whether there are more.
func (s *Server) earliest(ctx context.Context, cond kubetrail.Expr, win kubetrail.Window, limit int) ([]kubetrail.Event, bool, error) {
	page, err := s.Store.Search(ctx, kubetrail.SearchQuery{Filter: cond, Window: win, Limit: limit})
	if err != nil || page.Next == "" {
		return page.Events, false, err
	}
	// [lo, hi): the window ending at lo holds no more than limit, the one ending at hi does.
	lo, hi := win.From, win.To
	best := []kubetrail.Event(nil)
	for range maxBisections {
		if hi.Sub(lo) <= time.Millisecond {
			break
		}
		mid := lo.Add(hi.Sub(lo) / 2)
		p, err := s.Store.Search(ctx, kubetrail.SearchQuery{Filter: cond, Window: kubetrail.Window{From: win.From, To: mid}, Limit: limit})
		if err != nil {
			return nil, false, err
		}
		if p.Next == "" {
			lo, best = mid, p.Events
		} else {
			hi, page = mid, p
		}
	}
	if len(best) == 0 {
		// Even the narrowest window holds more than limit (a burst at one
		// instant): its newest are what there is.
		return page.Events, true, nil
	}
	return best, true, nil
}
