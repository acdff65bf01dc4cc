// Package k8saudit turns Kubernetes API server audit events (audit.k8s.io/v1, and
// the older audit.k8s.io/v1beta1) into kubetrail events.
//
// Three ways in:
//
//   - DecodeEventList decodes one POST body of kube-apiserver's audit webhook
//     backend: an EventList whose items carry no kind or apiVersion of their own.
//   - Reader reads audit log files: what --audit-log-path writes with
//     --audit-log-format=json (one Event per line), but also pretty-printed
//     objects one after another, whole EventLists, and the Azure (AKS) Event Hub
//     wrapping in which each record's properties.log holds the Event as a string.
//   - Convert maps one decoded auditv1.Event.
//
// What is accepted, and why:
//
//   - An object with kind "Event" and no apiVersion is read as audit.k8s.io/v1:
//     Falco's recorded traces (and other tools that re-serialise events) drop the
//     apiVersion, and every field kubetrail reads has the same shape in v1 and
//     v1beta1.
//   - An object with neither kind nor apiVersion is read as an Event when it has
//     any audit Event field (auditID, stage, verb, ...): that is how EventList
//     items look when they are saved one per file. An object with none of them
//     is refused with the fields it does have, so a wrapper of another tool
//     (Panther's test cases, Datadog's samples) is named, not half-read.
//   - requestReceivedTimestamp is required. Logs from before Kubernetes 1.8 (and
//     tools that relabelled them as v1, such as audit2rbac's demo log) carry only
//     the legacy "timestamp" field, which meant the same thing; it is used when
//     requestReceivedTimestamp is absent.
//   - One event may be at most 1 MiB of JSON; a list or Event Hub payload holding
//     many may be at most 64 MiB.
//
// Every refusal is a *kubetrail.Error that says where (the line a record starts
// on, or "items[3]") and why.
package k8saudit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

const (
	// MaxEventSize caps the JSON of one audit event. The API server's own events
	// stay far below it unless a policy logs huge request bodies at RequestResponse
	// level; a cap keeps one bad record from costing unbounded memory.
	MaxEventSize = 1 << 20
	// MaxListSize caps one top-level JSON value that holds many events (an
	// EventList or an Event Hub payload), which the Reader holds in memory whole.
	MaxListSize = 64 << 20
)

// The audit API versions we read. k8s.io/apiserver no longer ships Go types for
// v1beta1, so v1beta1 events are decoded with the v1 struct:
// the fields used here have the same names and JSON shape in both; v1beta1's
// extra metadata and timestamp fields are ignored (timestamp is used only as the
// fallback for requestReceivedTimestamp, see the package comment).
const (
	versionV1      = "audit.k8s.io/v1"
	versionV1beta1 = "audit.k8s.io/v1beta1"
)

const wantVersions = versionV1 + " or " + versionV1beta1

// DecodeEventList decodes the body kube-apiserver's audit webhook backend POSTs:
// {"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[...]}. It is all or
// nothing: when any item is bad the error names it (Where "items[3]") and no events
// are returned, so the sender's retry carries the whole batch again. The size of
// EncodeEventList wraps audit events (each an Event's JSON) as kube-apiserver's
// webhook sends them: an audit.k8s.io/v1 EventList.
func EncodeEventList(items []json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// body is the caller's to limit.
func DecodeEventList(body []byte, cluster string) ([]kubetrail.Event, error) {
	var list struct {
		Kind       json.RawMessage `json:"kind"`
		APIVersion json.RawMessage `json:"apiVersion"`
		Items      json.RawMessage `json:"items"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "empty body: want an audit EventList")
	}
	if err := notObject(body, "an EventList"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, jsonError(err, body, 1)
	}
	if kind, ok := jsonString(list.Kind); !ok || kind != "EventList" {
		if isAbsent(list.Kind) {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, `missing kind: want "EventList", as the audit webhook backend sends`)
		}
		return nil, kubetrail.Errorf(kubetrail.EINVALID, `kind %s: want "EventList", as the audit webhook backend sends`, excerpt(list.Kind))
	}
	if isAbsent(list.APIVersion) {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "missing apiVersion: want %s", wantVersions)
	}
	if _, err := checkVersion(list.APIVersion); err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if !isAbsent(list.Items) {
		if err := json.Unmarshal(list.Items, &items); err != nil {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "items is not a list")
		}
	}
	events := make([]kubetrail.Event, 0, len(items))
	for i, item := range items {
		ev, err := decodeEvent(item, 0, "", cluster)
		if err != nil {
			return nil, at(err, fmt.Sprintf("items[%d]", i))
		}
		events = append(events, ev)
	}
	return events, nil
}

// record is what one JSON object of the input may hold: an audit Event, an
// EventList, an Event Hub payload or one Event Hub record. The fields declared
// here shadow auditv1.Event's fields of the same JSON name (encoding/json prefers
// the shallower field), so that kind, apiVersion and the timestamps are checked by
// us and refused with a message naming the field, rather than by MicroTime's
// parser, whose error does not say which field it was.
type record struct {
	auditv1.Event

	Kind                     json.RawMessage `json:"kind"`
	APIVersion               json.RawMessage `json:"apiVersion"`
	RequestReceivedTimestamp json.RawMessage `json:"requestReceivedTimestamp"`
	StageTimestamp           json.RawMessage `json:"stageTimestamp"`
	Timestamp                json.RawMessage `json:"timestamp"` // the deprecated predecessor of requestReceivedTimestamp

	Items      present         `json:"items"`      // EventList
	Records    present         `json:"records"`    // Event Hub payload: {"records":[...]}
	Category   json.RawMessage `json:"category"`   // Event Hub record: kube-audit or kube-audit-admin
	Properties json.RawMessage `json:"properties"` // Event Hub record: {"log":"<the Event as JSON>"}
}

// present notes that a key was there without copying its (possibly large) value;
// the list is walked separately to know where each element starts.
type present bool

func (p *present) UnmarshalJSON([]byte) error { *p = true; return nil }

// parse decodes one JSON object. A syntax error is returned as a kubetrail error;
// a value of the wrong type in an Event field is returned separately as typeErr,
// because it matters only once the object turns out to be an Event.
func parse(raw []byte, line int) (rec *record, typeErr error, err error) {
	if err := notObject(raw, "an audit event"); err != nil {
		return nil, nil, err
	}
	rec = new(record)
	if err := json.Unmarshal(raw, rec); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, nil, jsonError(err, raw, line)
		}
		typeErr = err
	}
	return rec, typeErr, nil
}

// notObject refuses valid JSON that is not an object (a list, a string, ...),
// which encoding/json would otherwise describe in terms of Go types.
func notObject(raw []byte, want string) error {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] != '{' && json.Valid(t) {
		return kubetrail.Errorf(kubetrail.EINVALID, "not a JSON object but %s: want %s", jsonKind(t), want)
	}
	return nil
}

// looksLikeEvent reports whether an object without kind and apiVersion has any
// field of an audit Event, as an EventList item saved on its own does.
func (rec *record) looksLikeEvent(typeErr error) bool {
	e := &rec.Event
	return e.AuditID != "" || e.Stage != "" || e.Verb != "" || e.RequestURI != "" || e.Level != "" ||
		e.ObjectRef != nil || e.ResponseStatus != nil || e.User.Username != "" ||
		len(rec.RequestReceivedTimestamp) > 0 || typeErr != nil
}

// decodeEvent decodes raw, which must be an audit Event (an item of an EventList,
// whose own apiVersion, if any, must be one we read). line is where raw starts in
// the input (0 when unknown); context prefixes messages ("properties.log: ").
func decodeEvent(raw []byte, line int, context, cluster string) (kubetrail.Event, error) {
	rec, typeErr, err := parse(raw, line)
	if err != nil {
		return kubetrail.Event{}, prefix(err, context)
	}
	if !isAbsent(rec.Kind) {
		if kind, ok := jsonString(rec.Kind); !ok || kind != "Event" {
			return kubetrail.Event{}, prefix(kubetrail.Errorf(kubetrail.EINVALID, "unknown kind %s (want Event)", excerpt(rec.Kind)), context)
		}
	}
	ev, err := toEvent(rec, typeErr, raw, cluster)
	return ev, prefix(err, context)
}

// toEvent finishes decoding a record known to be an Event and converts it. raw is
// its JSON, which the event keeps (a copy) for policies to read.
func toEvent(rec *record, typeErr error, raw []byte, cluster string) (kubetrail.Event, error) {
	size := len(raw)
	if !isAbsent(rec.APIVersion) {
		if _, err := checkVersion(rec.APIVersion); err != nil {
			return kubetrail.Event{}, err
		}
	}
	if size > MaxEventSize {
		return kubetrail.Event{}, kubetrail.Errorf(kubetrail.ETOOLARGE, "audit event is %d bytes; the limit is %d (1 MiB)", size, MaxEventSize)
	}
	if typeErr != nil {
		return kubetrail.Event{}, typeError(typeErr)
	}
	received, err := parseTime(rec.RequestReceivedTimestamp, "requestReceivedTimestamp")
	if err != nil {
		return kubetrail.Event{}, err
	}
	if received.IsZero() {
		if received, err = parseTime(rec.Timestamp, "timestamp"); err != nil {
			return kubetrail.Event{}, err
		}
	}
	stage, err := parseTime(rec.StageTimestamp, "stageTimestamp")
	if err != nil {
		return kubetrail.Event{}, err
	}
	rec.Event.RequestReceivedTimestamp = metav1.NewMicroTime(received)
	rec.Event.StageTimestamp = metav1.NewMicroTime(stage)
	ev, err := Convert(&rec.Event, cluster)
	if err == nil {
		ev.Audit.Raw = bytes.Clone(raw)
	}
	return ev, err
}

// checkVersion returns the apiVersion in raw if it is one we read.
func checkVersion(raw json.RawMessage) (string, error) {
	if v, ok := jsonString(raw); ok && (v == versionV1 || v == versionV1beta1) {
		return v, nil
	}
	return "", kubetrail.Errorf(kubetrail.EINVALID, "unknown apiVersion %s (want %s)", excerpt(raw), wantVersions)
}

// parseTime parses an RFC 3339 timestamp. The API server writes microseconds,
// but other producers write fewer or more digits, which RFC3339Nano parsing
// accepts. An absent, null or empty value gives the zero time.
func parseTime(raw json.RawMessage, field string) (time.Time, error) {
	if isAbsent(raw) {
		return time.Time{}, nil
	}
	s, ok := jsonString(raw)
	if !ok {
		return time.Time{}, kubetrail.Errorf(kubetrail.EINVALID, "invalid %s %s: want an RFC 3339 time string", field, excerpt(raw))
	}
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, kubetrail.Errorf(kubetrail.EINVALID, "invalid %s %s: want an RFC 3339 time such as 2006-01-02T15:04:05.000000Z", field, excerpt(raw))
	}
	if t.IsZero() {
		// Year 1, January 1st is Go's "no time"; it would read as missing later.
		return time.Time{}, kubetrail.Errorf(kubetrail.EINVALID, "invalid %s %s: the zero time", field, excerpt(raw))
	}
	return t.UTC(), nil
}

// span locates one element of a JSON list inside the bytes of its container.
type span struct{ start, end int }

// listSpans returns where each element of the top-level key's list starts and
// ends in obj, so that each element can be decoded, size-checked and located on
// its own line. A null list has no elements.
func listSpans(obj []byte, key string) ([]span, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // the opening brace; obj was parsed already
		return nil, err
	}
	var spans []span
	found := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		// encoding/json matched the key case-insensitively when it set record.Items
		// or record.Records, so match the same way; the last one wins, as there.
		if k, _ := t.(string); !strings.EqualFold(k, key) {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		found, spans = true, nil
		t, err = dec.Token()
		if err != nil {
			return nil, err
		}
		if t == nil { // "items": null
			continue
		}
		if t != json.Delim('[') {
			return nil, kubetrail.Errorf(kubetrail.EINVALID, "%s is not a list", key)
		}
		for dec.More() {
			start := int(dec.InputOffset())
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			end := int(dec.InputOffset())
			// InputOffset stops before the separating comma and blanks.
			for start < end && (obj[start] == ',' || isSpace(obj[start])) {
				start++
			}
			spans = append(spans, span{start, end})
		}
		if _, err := dec.Token(); err != nil { // the closing bracket
			return nil, err
		}
	}
	if !found {
		return nil, nil
	}
	return spans, nil
}

// decodeHubRecord unwraps one Azure Event Hub record of AKS diagnostic logs:
// {"category":"kube-audit","properties":{"log":"<Event JSON>"}, ...}.
func decodeHubRecord(rec *record, cluster string) (kubetrail.Event, []byte, error) {
	if !isAbsent(rec.Category) {
		c, _ := jsonString(rec.Category)
		if c != "kube-audit" && c != "kube-audit-admin" {
			// AKS sends its other diagnostic logs (kube-apiserver, guard, ...) the same way.
			return kubetrail.Event{}, nil, kubetrail.Errorf(kubetrail.EINVALID,
				"Event Hub record of category %s is not a Kubernetes audit event (want category kube-audit or kube-audit-admin)", excerpt(rec.Category))
		}
	}
	var props struct {
		Log json.RawMessage `json:"log"`
	}
	if err := json.Unmarshal(rec.Properties, &props); err != nil || isAbsent(props.Log) {
		return kubetrail.Event{}, nil, kubetrail.Errorf(kubetrail.EINVALID, "Event Hub record without properties.log (which holds the audit event as a JSON string)")
	}
	log, ok := jsonString(props.Log)
	if !ok {
		return kubetrail.Event{}, nil, kubetrail.Errorf(kubetrail.EINVALID, "properties.log is %s: want the audit event as a JSON string", jsonKind(props.Log))
	}
	inner := bytes.TrimSpace([]byte(log))
	if len(inner) > MaxEventSize {
		return kubetrail.Event{}, nil, kubetrail.Errorf(kubetrail.ETOOLARGE, "properties.log: audit event is %d bytes; the limit is %d (1 MiB)", len(inner), MaxEventSize)
	}
	if len(inner) == 0 || inner[0] != '{' {
		return kubetrail.Event{}, nil, kubetrail.Errorf(kubetrail.EINVALID, "properties.log is not a JSON object: it starts with %s", quotePrefix(inner))
	}
	ev, err := decodeEvent(inner, 0, "properties.log", cluster)
	return ev, inner, err
}

// notAnEvent refuses an object that has no kind, no apiVersion and no audit Event
// field, naming the fields it has so the reader can tell what it is.
func notAnEvent(raw []byte) error {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	const show = 8
	list := strings.Join(names[:min(len(names), show)], ", ")
	if len(names) > show {
		list += fmt.Sprintf(" and %d more", len(names)-show)
	}
	if list == "" {
		list = "none"
	}
	return kubetrail.Errorf(kubetrail.EINVALID,
		"not a Kubernetes audit event: no kind, apiVersion or audit Event field (auditID, stage, verb, ...); the object's fields are: %s", list)
}

// jsonError describes a JSON syntax error, saying on which line of the input it is
// when the record starts at a known line, else at which byte.
func jsonError(err error, raw []byte, line int) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return kubetrail.Errorf(kubetrail.EINVALID, "malformed JSON: %v", err)
	}
	pos := int(min(max(se.Offset, 1), int64(len(raw)))) // Offset counts the bad byte: 1-based
	if line > 0 {
		return kubetrail.Errorf(kubetrail.EINVALID, "malformed JSON at line %d: %v", line+bytes.Count(raw[:pos-1], []byte{'\n'}), se)
	}
	return kubetrail.Errorf(kubetrail.EINVALID, "malformed JSON at byte %d: %v", pos, se)
}

// typeError describes a value of the wrong JSON type in an Event field.
func typeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		field := strings.TrimPrefix(te.Field, "Event.") // the embedded struct's name is not a JSON key
		return kubetrail.Errorf(kubetrail.EINVALID, "invalid %s: JSON %s where %s was expected", field, te.Value, goTypeName(te.Type.Kind().String()))
	}
	return kubetrail.Errorf(kubetrail.EINVALID, "malformed audit event: %v", err)
}

func goTypeName(kind string) string {
	switch kind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "a list"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number of type " + kind
	}
	return "a " + kind
}

// at sets where a kubetrail error happened, unless it already says.
func at(err error, where string) error {
	var e *kubetrail.Error
	if errors.As(err, &e) && e.Where == "" {
		e.Where = where
	}
	return err
}

// prefix puts context ("items[3]", "properties.log") before a kubetrail error's
// message.
func prefix(err error, context string) error {
	var e *kubetrail.Error
	if err == nil || context == "" || !errors.As(err, &e) {
		return err
	}
	e.Message = context + ": " + e.Message
	return err
}

func isAbsent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// jsonString returns the string raw holds, if it holds one.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// excerpt shows a JSON value in a message: shortened, as a refused value may be
// huge, and on one line, as messages are reported one per line.
func excerpt(raw json.RawMessage) string {
	const limit = 64
	if len(raw) == 0 {
		return "(absent)"
	}
	s := string(bytes.ToValidUTF8(raw[:min(len(raw), limit)], nil))
	s = oneLine.Replace(s)
	if len(raw) > limit {
		s += "…"
	}
	return s
}

var oneLine = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ")

// quotePrefix quotes the start of b for a message.
func quotePrefix(b []byte) string {
	const limit = 40
	if len(b) > limit {
		return fmt.Sprintf("%q…", b[:limit])
	}
	return fmt.Sprintf("%q", b)
}

func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
