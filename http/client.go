package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agentpb"
)

// Client talks to a kubetrail server.
type Client struct {
	URL   string // base URL, e.g. http://127.0.0.1:7070
	Token string
	HTTP  *http.Client

	zenc *zstd.Encoder
}

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL, token string) *Client {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	return &Client{URL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}, zenc: enc}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, header http.Header, out any) error {
	u := c.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("kubetrail server at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read reply from %s: %w", c.URL, err)
	}
	if resp.StatusCode >= 300 {
		var e ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return &kubetrail.Error{Code: e.Error.Code, Message: e.Error.Message, Where: e.Error.Where}
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode reply of %s %s: %w", method, path, err)
	}
	return nil
}

// SendBatch posts an agent batch, protobuf and zstd-compressed, and returns once
// the server has stored it durably.
func (c *Client) SendBatch(ctx context.Context, b *kubetrail.Batch) (kubetrail.WriteResult, error) {
	body, err := c.EncodeBatch(b)
	if err != nil {
		return kubetrail.WriteResult{}, err
	}
	return c.SendEncodedBatch(ctx, body)
}

// EncodeBatch encodes a batch as SendEncodedBatch sends it: protobuf, zstd.
func (c *Client) EncodeBatch(b *kubetrail.Batch) ([]byte, error) {
	raw, err := agentpb.Encode(b)
	if err != nil {
		return nil, err
	}
	return c.zenc.EncodeAll(raw, nil), nil
}

// SendEncodedBatch posts a batch made by EncodeBatch (an agent keeps batches
// encoded in its spool until the server has them).
func (c *Client) SendEncodedBatch(ctx context.Context, body []byte) (kubetrail.WriteResult, error) {
	var res IngestResponse
	h := http.Header{"Content-Type": {agentpb.ContentType}, "Content-Encoding": {"zstd"}}
	err := c.do(ctx, http.MethodPost, "/api/v1/events", nil, bytes.NewReader(body), h, &res)
	return res.WriteResult, err
}

// SendAudit posts an audit webhook body (an audit.k8s.io/v1 EventList) of the
// named cluster; "" leaves it to the server's --cluster-name.
func (c *Client) SendAudit(ctx context.Context, cluster string, eventList []byte) (kubetrail.WriteResult, error) {
	var res IngestResponse
	h := http.Header{"Content-Type": {"application/json"}}
	path := "/api/v1/k8s-audit"
	if cluster != "" {
		path += "/" + url.PathEscape(cluster)
	}
	err := c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(eventList), h, &res)
	return res.WriteResult, err
}

// Query is what a search, scope or histogram request says.
type Query struct {
	Filter string
	Since  time.Duration
	From   time.Time
	To     time.Time
	Limit  int
	Cursor string
}

func (q Query) values() url.Values {
	v := url.Values{}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	if q.Since > 0 {
		v.Set("since", q.Since.String())
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// Search returns one page of events, newest first.
func (c *Client) Search(ctx context.Context, q Query) (kubetrail.Page, error) {
	var resp struct {
		Events []kubetrail.Event `json:"events"`
		Next   string            `json:"next"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/events", q.values(), nil, nil, &resp)
	return kubetrail.Page{Events: resp.Events, Next: resp.Next}, err
}

// Sessions lists the sessions in which some event matches the query.
func (c *Client) Sessions(ctx context.Context, q Query) ([]kubetrail.Session, error) {
	var resp struct {
		Sessions []kubetrail.Session `json:"sessions"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/sessions", q.values(), nil, nil, &resp)
	return resp.Sessions, err
}

// Trace returns a session and everything that happened in it.
func (c *Client) Trace(ctx context.Context, id string) (*kubetrail.Trace, error) {
	var t kubetrail.Trace
	if err := c.do(ctx, http.MethodGet, "/api/v1/sessions/"+url.PathEscape(id), nil, nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Event returns one event by id.
func (c *Client) Event(ctx context.Context, id string) (*kubetrail.Event, error) {
	var e kubetrail.Event
	if err := c.do(ctx, http.MethodGet, "/api/v1/events/"+id, nil, nil, nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Scopes returns the scope tree with counts.
func (c *Client) Scopes(ctx context.Context, q Query, by string) ([]*kubetrail.ScopeNode, error) {
	v := q.values()
	if by != "" {
		v.Set("by", by)
	}
	var resp struct {
		Scopes []*kubetrail.ScopeNode `json:"scopes"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/scopes", v, nil, nil, &resp)
	return resp.Scopes, err
}

// Histogram returns counts per time bucket.
func (c *Client) Histogram(ctx context.Context, q Query, bucket time.Duration) ([]kubetrail.Bucket, error) {
	v := q.values()
	if bucket > 0 {
		v.Set("bucket", bucket.String())
	}
	var resp struct {
		Buckets []kubetrail.Bucket `json:"buckets"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/histogram", v, nil, nil, &resp)
	return resp.Buckets, err
}

// Values lists the commonest values of a field among the events q matches,
// those starting with prefix.
func (c *Client) Values(ctx context.Context, field, prefix string, q Query) ([]kubetrail.ValueCount, error) {
	v := q.values()
	v.Set("field", field)
	if prefix != "" {
		v.Set("prefix", prefix)
	}
	var out []kubetrail.ValueCount
	err := c.do(ctx, http.MethodGet, "/api/v1/values", v, nil, nil, &out)
	return out, err
}

// Fields returns the field reference the server knows.
func (c *Client) Fields(ctx context.Context) ([]FieldDoc, error) {
	var resp struct {
		Fields []FieldDoc `json:"fields"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/fields", nil, nil, nil, &resp)
	return resp.Fields, err
}

// Stats returns what the server's store holds.
func (c *Client) Stats(ctx context.Context) (kubetrail.Stats, error) {
	var st kubetrail.Stats
	err := c.do(ctx, http.MethodGet, "/api/v1/stats", nil, nil, nil, &st)
	return st, err
}

// PolicyEvents returns one page of the policy events that match the query,
// newest first.
func (c *Client) PolicyEvents(ctx context.Context, q Query) (kubetrail.Page, error) {
	var resp struct {
		Events []kubetrail.Event `json:"events"`
		Next   string            `json:"next"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/policy-events", q.values(), nil, nil, &resp)
	return kubetrail.Page{Events: resp.Events, Next: resp.Next}, err
}

// Activity returns the activity around a policy event: before and after its
// trigger (negative for the server's default, 5m), at most limit events of the
// window (0 for the server's default, 500) plus its session's.
func (c *Client) Activity(ctx context.Context, id string, before, after time.Duration, limit int) (*Activity, error) {
	v := url.Values{}
	if before >= 0 {
		v.Set("before", before.String())
	}
	if after >= 0 {
		v.Set("after", after.String())
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var a Activity
	if err := c.do(ctx, http.MethodGet, "/api/v1/policy-events/"+url.PathEscape(id)+"/activity", v, nil, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Policies returns the policies and rules the server has in force.
func (c *Client) Policies(ctx context.Context) (PolicyState, error) {
	var st PolicyState
	err := c.do(ctx, http.MethodGet, "/api/v1/policies", nil, nil, nil, &st)
	return st, err
}

// ReloadPolicies has the server read its rule files and policies again, and
// returns what is in force then. On error the server keeps its previous ones.
func (c *Client) ReloadPolicies(ctx context.Context) (PolicyState, error) {
	var st PolicyState
	err := c.do(ctx, http.MethodPost, "/api/v1/policies/reload", nil, nil, nil, &st)
	return st, err
}
