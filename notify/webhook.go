package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubetrail/kubetrail"
)

// Webhook posts policy events as JSON to a URL. Its payload depends on its format:
//
//   - json: one request per batch, {"events":[...]}, each event in the flat form
//     kubetrail.Event.MarshalJSON writes (policy.rule, k8s.ns.name, ...), which
//     kubetrail.Event.UnmarshalJSON reads back.
//   - falco: one request per event, in the shape Falco's http_output posts
//     ({"output","priority","rule","time","output_fields","source","tags",
//     "hostname"}), so that Falcosidekick and receivers built for Falco accept it.
//     output_fields holds the event's flat form; hostname is the node.
//   - slack: Slack incoming-webhook messages (also accepted by Mattermost and
//     Rocket.Chat): "text" and one attachment per event, at most
//     SlackAttachments events per message.
//
// Any answer but 2xx is a *StatusError; 4xx answers other than 408 and 429 are
// permanent.
type Webhook struct {
	name    string
	url     *url.URL
	format  string
	headers http.Header
	client  *http.Client
}

// SlackAttachments is how many events one Slack message carries at most.
const SlackAttachments = 20

// NewWebhook returns the webhook cfg describes.
func NewWebhook(cfg Config) (*Webhook, error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Type != TypeWebhook {
		return nil, invalid(cfg.Name, "type %q is not webhook", cfg.Type)
	}
	if err := refuseFields(cfg, map[string]bool{"url": true, "headers": true}); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, invalid(cfg.Name, "url is missing")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Error repeats the URL, which may hold a secret: say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, invalid(cfg.Name, "url does not parse: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return nil, invalid(cfg.Name, "url has no scheme (want http:// or https://)")
		}
		return nil, invalid(cfg.Name, "url has scheme %q (want http or https)", u.Scheme)
	}
	if u.Host == "" {
		return nil, invalid(cfg.Name, "url has no host")
	}
	format := cfg.Format
	switch format {
	case "":
		format = FormatJSON
	case FormatJSON, FormatFalco, FormatSlack:
	default:
		return nil, invalid(cfg.Name, "format %q is unknown for a webhook (want json, falco or slack)", cfg.Format)
	}
	headers := make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		if !validToken(k) {
			return nil, invalid(cfg.Name, "header name %q is not a valid HTTP header name", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			return nil, invalid(cfg.Name, "header %s is set by the HTTP client and cannot be configured", http.CanonicalHeaderKey(k))
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, invalid(cfg.Name, "header %s has a line break or NUL in its value", http.CanonicalHeaderKey(k))
		}
		headers.Set(k, v)
	}
	t, err := timeout(cfg)
	if err != nil {
		return nil, err
	}
	return &Webhook{name: cfg.Name, url: u, format: format, headers: headers, client: &http.Client{Timeout: t}}, nil
}

// Name returns the action's name.
func (w *Webhook) Name() string { return w.name }

// Send posts events, one request per payload; on a failure it returns a
// *PartialError when some payloads were accepted before.
func (w *Webhook) Send(ctx context.Context, events []kubetrail.Event) error {
	done := 0
	for _, p := range w.payloads(events) {
		body, err := p.body()
		if err != nil {
			return partial(done, Permanent(fmt.Errorf("webhook %q: encode payload: %w", w.name, err)))
		}
		if err := w.post(ctx, body); err != nil {
			return partial(done, err)
		}
		done += p.n
	}
	return nil
}

type payload struct {
	n    int // events it carries
	body func() ([]byte, error)
}

func (w *Webhook) payloads(events []kubetrail.Event) []payload {
	if len(events) == 0 {
		return nil
	}
	switch w.format {
	case FormatFalco:
		ps := make([]payload, len(events))
		for i := range events {
			e := &events[i]
			ps[i] = payload{1, func() ([]byte, error) { return json.Marshal(FalcoAlert(e)) }}
		}
		return ps
	case FormatSlack:
		var ps []payload
		for i := 0; i < len(events); i += SlackAttachments {
			chunk := events[i:min(i+SlackAttachments, len(events))]
			ps = append(ps, payload{len(chunk), func() ([]byte, error) { return json.Marshal(SlackMessage(chunk)) }})
		}
		return ps
	}
	return []payload{{len(events), func() ([]byte, error) {
		var buf bytes.Buffer
		buf.WriteString(`{"events":[`)
		for i := range events {
			if i > 0 {
				buf.WriteByte(',')
			}
			b, err := events[i].MarshalJSON()
			if err != nil {
				return nil, err
			}
			buf.Write(b)
		}
		buf.WriteString("]}")
		return buf.Bytes(), nil
	}}}
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %q: %w", w.name, err))
	}
	for k, v := range w.headers {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "kubetrail")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// Say what failed without the URL's path and query.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook %q: POST %s: %w", w.name, redact(w.url), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	se := &StatusError{Action: w.name, Target: redact(w.url), Code: resp.StatusCode, Status: resp.Status, Body: excerpt(head, 200)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.After = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return se
}

// StatusError is a webhook's answer other than 2xx.
type StatusError struct {
	Action string
	Target string // scheme and host of the URL
	Code   int
	Status string        // "503 Service Unavailable"
	Body   string        // the start of the response body, on one line
	After  time.Duration // what a Retry-After header asked for, or 0
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook %q: POST %s: %s", e.Action, e.Target, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Permanent reports whether retrying cannot help: a 4xx other than 408 Request
// Timeout and 429 Too Many Requests.
func (e *StatusError) Permanent() bool {
	return e.Code >= 400 && e.Code < 500 && e.Code != http.StatusRequestTimeout && e.Code != http.StatusTooManyRequests
}

// RetryAfter returns the delay the server asked for.
func (e *StatusError) RetryAfter() time.Duration { return e.After }

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// excerpt returns the start of b on one line, at most n runes.
func excerpt(b []byte, n int) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// FalcoPayload is the JSON Falco posts for one alert (its json_output, as its
// http_output sends it).
type FalcoPayload struct {
	Output       string          `json:"output"`
	Priority     string          `json:"priority"`
	Rule         string          `json:"rule"`
	Time         string          `json:"time"`
	OutputFields json.RawMessage `json:"output_fields"`
	Source       string          `json:"source"`
	Tags         []string        `json:"tags"`
	Hostname     string          `json:"hostname,omitempty"`
}

// FalcoAlert returns a policy event in Falco's alert shape. output_fields is the
// event's flat form, so the trigger's scope and the policy's name travel with it.
func FalcoAlert(e *kubetrail.Event) FalcoPayload {
	fields, err := e.MarshalJSON()
	if err != nil {
		fields = []byte("{}")
	}
	tags := e.Alert.Tags
	if tags == nil {
		tags = []string{}
	}
	return FalcoPayload{
		Output:       e.Alert.Output,
		Priority:     FalcoPriority(e.Alert.Priority),
		Rule:         e.Alert.Rule,
		Time:         e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"),
		OutputFields: fields,
		Source:       e.Source(),
		Tags:         tags,
		Hostname:     e.Node,
	}
}

// FalcoPriority spells a priority as Falco's JSON does: "Critical", "Warning", ...
func FalcoPriority(p string) string {
	switch strings.ToUpper(p) {
	case "EMERGENCY":
		return "Emergency"
	case "ALERT":
		return "Alert"
	case "CRITICAL":
		return "Critical"
	case "ERROR":
		return "Error"
	case "WARNING", "WARN":
		return "Warning"
	case "NOTICE":
		return "Notice"
	case "INFORMATIONAL", "INFO":
		return "Informational"
	case "DEBUG":
		return "Debug"
	}
	return p
}

// Slack is an incoming-webhook message.
type Slack struct {
	Text        string            `json:"text"`
	Attachments []SlackAttachment `json:"attachments,omitempty"`
}

// SlackAttachment describes one policy event.
type SlackAttachment struct {
	Fallback string       `json:"fallback"`
	Color    string       `json:"color,omitempty"`
	Title    string       `json:"title"`
	Text     string       `json:"text,omitempty"`
	Fields   []SlackField `json:"fields,omitempty"`
	Footer   string       `json:"footer,omitempty"`
	TS       int64        `json:"ts,omitempty"`
}

// SlackField is one titled value of an attachment.
type SlackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// SlackMessage returns one Slack message for events: a summary as text (what
// notifications show) and an attachment per event with its priority, rule,
// output, scope and, when the event is linked to a Kubernetes request, its user.
func SlackMessage(events []kubetrail.Event) Slack {
	m := Slack{Attachments: make([]SlackAttachment, 0, len(events))}
	for i := range events {
		e := &events[i]
		p := FalcoPriority(e.Alert.Priority)
		title := fmt.Sprintf("[%s] %s", p, e.Alert.Rule)
		var fields []SlackField
		add := func(title, value string, short bool) {
			if value != "" {
				fields = append(fields, SlackField{Title: title, Value: slackEscape(value), Short: short})
			}
		}
		add("rule", e.Alert.Rule, true)
		add("priority", p, true)
		add("policy", e.Alert.Policy, true)
		add("source", e.Alert.Source, true)
		add("cluster", e.Cluster, true)
		add("node", e.Node, true)
		add("namespace", e.Namespace, true)
		if e.WorkloadName != "" {
			add("workload", e.WorkloadKind+"/"+e.WorkloadName, true)
		}
		add("pod", e.PodName, true)
		add("container", e.ContainerName, true)
		add("image", e.Image(), false)
		add("user", e.Audit.UserName, true)
		add("session", e.SessionID, true)
		add("tags", strings.Join(e.Alert.Tags, ", "), false)
		add("trigger", e.Alert.Trigger, false)
		m.Attachments = append(m.Attachments, SlackAttachment{
			Fallback: title + ": " + e.Alert.Output,
			Color:    slackColor(p),
			Title:    slackEscape(title),
			Text:     slackEscape(e.Alert.Output),
			Fields:   fields,
			Footer:   "kubetrail " + e.ID(),
			TS:       unixOrZero(e.Time),
		})
	}
	if len(events) == 1 {
		e := &events[0]
		m.Text = slackEscape(fmt.Sprintf("[%s] %s: %s", FalcoPriority(e.Alert.Priority), e.Alert.Rule, e.Alert.Output))
	} else {
		m.Text = fmt.Sprintf("%d kubetrail policy events", len(events))
	}
	return m
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// slackEscape escapes the three characters Slack's markup reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackColor colours an attachment by priority, as Falcosidekick does.
func slackColor(p string) string {
	switch p {
	case "Emergency":
		return "#e20b0b"
	case "Alert":
		return "#ff5400"
	case "Critical":
		return "#ff9000"
	case "Error":
		return "#ffc700"
	case "Warning":
		return "#ffff00"
	case "Notice":
		return "#5bffb5"
	case "Informational":
		return "#68c2ff"
	case "Debug":
		return "#ccfff2"
	}
	return ""
}
