package k8saudit

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kubetrail/kubetrail"
)

// event returns a one-line audit Event with the given auditID and extra fields
// (each `"key":value`, comma-separated).
func event(id string, extra ...string) string {
	fields := []string{`"kind":"Event"`, `"apiVersion":"audit.k8s.io/v1"`, `"auditID":"` + id + `"`,
		`"stage":"ResponseComplete"`, `"verb":"get"`, `"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z"`}
	return "{" + strings.Join(append(fields, extra...), ",") + "}"
}

// outcomes reads all of input and describes each result: "ok <auditID>" or
// "<code> <message with where>".
func outcomes(t *testing.T, input string) []string {
	t.Helper()
	r := NewReader(strings.NewReader(input), "test-cluster")
	var out []string
	for range 1000 {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			var e *kubetrail.Error
			if !errors.As(err, &e) {
				t.Fatalf("Next: %v (%T), want a *kubetrail.Error", err, err)
			}
			out = append(out, e.Code+" "+e.Error())
			continue
		}
		checkAccepted(t, ev.Audit.AuditID, ev)
		out = append(out, "ok "+ev.Audit.AuditID)
	}
	t.Fatal("no io.EOF")
	return nil
}

func TestReaderInputs(t *testing.T) {
	big := strings.Repeat("x", MaxEventSize)
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"empty input", "", nil},
		{"only blanks", " \n\t\r\n\n", nil},
		{"only a BOM", "\uFEFF", nil},
		{"BOM then event", "\uFEFF" + event("a"), []string{"ok a"}},
		{"BOM between concatenated files", event("a") + "\n\uFEFF" + event("b") + "\n", []string{"ok a", "ok b"}},
		{"JSON lines", event("a") + "\n" + event("b") + "\r\n\n" + event("c"), []string{"ok a", "ok b", "ok c"}},
		{"objects on one line", event("a") + event("b") + " " + event("c"), []string{"ok a", "ok b", "ok c"}},
		{
			"pretty-printed, then a bad one",
			"{\n  \"kind\": \"Event\",\n  \"auditID\": \"a\",\n  \"requestReceivedTimestamp\": \"2026-01-02T03:04:05Z\"\n}\n" +
				"{\n  \"kind\": \"Event\",\n  \"verb\": \"get\"\n}\n",
			[]string{"ok a", "invalid line 6: missing auditID"},
		},

		// Malformed JSON: the record is refused and the next one read.
		{
			"malformed JSON",
			`{"kind":"Event","auditID":}` + "\n" + event("b"),
			[]string{"invalid line 1: malformed JSON at line 1: invalid character '}' looking for beginning of value", "ok b"},
		},
		{
			"malformed JSON inside a pretty-printed record",
			event("a") + "\n{\n  \"kind\": \"Event\",\n  \"auditID\": \"b\" \"verb\": \"get\"\n}\n" + event("c"),
			[]string{"ok a", "invalid line 2: malformed JSON at line 4: invalid character '\"' after object key:value pair", "ok c"},
		},
		{
			"record cut short, then the log goes on",
			`{"kind":"Event","auditID":"a","user":{` + "\n" + event("b") + "\n",
			[]string{"invalid line 1: malformed JSON: the record is cut short: a new one starts at line 2 before it is complete", "ok b"},
		},
		{
			"string not closed at the end of the line",
			`{"kind":"Event","auditID":"a","verb":"ge` + "\n  \"debris\": 1\n}\n" + event("b"),
			[]string{"invalid line 1: malformed JSON: a string is not closed at the end of line 1; skipped to the next line starting with '{'", "ok b"},
		},
		{
			"input ends inside a record",
			event("a") + "\n" + `{"kind":"Event","auditID":"b"`,
			[]string{"ok a", "invalid line 2: malformed JSON: the input ends before the record is complete"},
		},
		{
			"text that is not JSON, then events",
			"I0102 03:04:05.000000 1 main.go:1] starting\nW0102 more text\n" + event("a") + "\n",
			[]string{`invalid line 1: not JSON: the line starts with "I0102 03:04:05.000000 1 main.go:1] start"…; want audit events as JSON objects (skipped to the next line starting with '{')`, "ok a"},
		},
		{
			"a JSON list",
			"[" + event("a") + "]\n" + event("b"),
			[]string{`invalid line 1: a JSON list: want JSON objects (an audit Event, an EventList, or an Event Hub {"records":[...]} payload)`, "ok b"},
		},
		{"a JSON string", `"hello"`, []string{`invalid line 1: not JSON: the line starts with "\"hello\""; want audit events as JSON objects (skipped to the next line starting with '{')`}},

		// apiVersion and kind.
		{
			"wrong apiVersion",
			strings.Replace(event("a"), "audit.k8s.io/v1", "audit.k8s.io/v2", 1) + "\n" + event("b"),
			[]string{`invalid line 1: unknown apiVersion "audit.k8s.io/v2" (want audit.k8s.io/v1 or audit.k8s.io/v1beta1)`, "ok b"},
		},
		{
			"v1alpha1 is not read",
			strings.Replace(event("a"), "audit.k8s.io/v1", "audit.k8s.io/v1alpha1", 1),
			[]string{`invalid line 1: unknown apiVersion "audit.k8s.io/v1alpha1" (want audit.k8s.io/v1 or audit.k8s.io/v1beta1)`},
		},
		{"v1beta1", strings.Replace(event("a"), "audit.k8s.io/v1", "audit.k8s.io/v1beta1", 1), []string{"ok a"}},
		{"apiVersion not a string", `{"kind":"Event","apiVersion":1}`, []string{"invalid line 1: unknown apiVersion 1 (want audit.k8s.io/v1 or audit.k8s.io/v1beta1)"}},
		{"kind Event without apiVersion", strings.Replace(event("a"), `"apiVersion":"audit.k8s.io/v1",`, "", 1), []string{"ok a"}},
		{"apiVersion without kind", strings.Replace(event("a"), `"kind":"Event",`, "", 1), []string{"ok a"}},
		{"kind 0", `{"kind": 0}`, []string{"invalid line 1: unknown kind 0 (want Event or EventList)"}},
		{"kind Pod", `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"}}`, []string{`invalid line 1: unknown kind "Pod" (want Event or EventList)`}},
		{"kind null is no kind", strings.Replace(event("a"), `"kind":"Event"`, `"kind":null`, 1), []string{"ok a"}},
		{"an empty object", `{}`, []string{"invalid line 1: not a Kubernetes audit event: no kind, apiVersion or audit Event field (auditID, stage, verb, ...); the object's fields are: none"}},
		{
			"some other object",
			`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10}`,
			[]string{"invalid line 1: not a Kubernetes audit event: no kind, apiVersion or audit Event field (auditID, stage, verb, ...); the object's fields are: a, b, c, d, e, f, g, h and 2 more"},
		},

		// Required fields and field types.
		{"missing auditID", `{"kind":"Event","verb":"get","requestReceivedTimestamp":"2026-01-02T03:04:05Z"}`, []string{"invalid line 1: missing auditID"}},
		{"missing requestReceivedTimestamp", `{"kind":"Event","auditID":"a"}`, []string{"invalid line 1: missing requestReceivedTimestamp"}},
		{"empty requestReceivedTimestamp", `{"kind":"Event","auditID":"a","requestReceivedTimestamp":""}`, []string{"invalid line 1: missing requestReceivedTimestamp"}},
		{
			"invalid requestReceivedTimestamp",
			`{"kind":"Event","auditID":"a","requestReceivedTimestamp":"2026-01-02 03:04:05"}`,
			[]string{`invalid line 1: invalid requestReceivedTimestamp "2026-01-02 03:04:05": want an RFC 3339 time such as 2006-01-02T15:04:05.000000Z`},
		},
		{
			"requestReceivedTimestamp a number",
			`{"kind":"Event","auditID":"a","requestReceivedTimestamp":1700000000}`,
			[]string{`invalid line 1: invalid requestReceivedTimestamp 1700000000: want an RFC 3339 time string`},
		},
		{
			"zero requestReceivedTimestamp",
			`{"kind":"Event","auditID":"a","requestReceivedTimestamp":"0001-01-01T00:00:00Z"}`,
			[]string{`invalid line 1: invalid requestReceivedTimestamp "0001-01-01T00:00:00Z": the zero time`},
		},
		{
			"invalid stageTimestamp",
			event("a", `"stageTimestamp":"soon"`),
			[]string{`invalid line 1: invalid stageTimestamp "soon": want an RFC 3339 time such as 2006-01-02T15:04:05.000000Z`},
		},
		{"legacy timestamp", `{"kind":"Event","auditID":"a","timestamp":"2017-09-11T19:55:05Z"}`, []string{"ok a"}},
		{"timestamp with a zone offset", `{"kind":"Event","auditID":"a","requestReceivedTimestamp":"2026-01-02T05:04:05+02:00"}`, []string{"ok a"}},
		{"user of the wrong type", event("a", `"user":"bob"`), []string{"invalid line 1: invalid user: JSON string where an object was expected"}},
		{"groups of the wrong type", event("a", `"user":{"groups":"devs"}`), []string{"invalid line 1: invalid user.groups: JSON string where a list was expected"}},
		{"code out of range", event("a", `"responseStatus":{"code":1e12}`), []string{"invalid line 1: invalid responseStatus.code: JSON number 1e12 where a whole number of type int32 was expected"}},

		// Size.
		{
			"oversize event, then the next one",
			event("a", `"annotations":{"x":"`+big+`"}`) + "\n" + event("b"),
			[]string{"too_large line 1: audit event is 1048757 bytes; the limit is 1048576 (1 MiB)", "ok b"},
		},
		{"an event of exactly 1 MiB", padTo(event("a"), MaxEventSize), []string{"ok a"}},

		// EventLists.
		{
			"EventList, pretty-printed, one bad item",
			"{\n  \"kind\": \"EventList\",\n  \"apiVersion\": \"audit.k8s.io/v1\",\n  \"items\": [\n    " +
				strings.Replace(event("a"), `"kind":"Event",`, "", 1) + ",\n    {\n      \"verb\": \"get\"\n    },\n    " +
				event("c") + "\n  ]\n}\n" + event("d"),
			[]string{"ok a", "invalid line 6: items[1]: missing auditID", "ok c", "ok d"},
		},
		{
			"EventList with items at the start of lines",
			"{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[\n" + event("a") + ",\n" + event("b") + "\n]}\n" + event("c"),
			[]string{"ok a", "ok b", "ok c"},
		},
		{
			"record cut short after a value, then the log goes on",
			`{"kind":"Event","auditID":"a","verb":"get"` + "\n" + event("b") + "\n",
			[]string{"invalid line 1: malformed JSON: the record is cut short: a new one starts at line 2 before it is complete", "ok b"},
		},
		{
			"nested too deep",
			strings.Repeat("[", maxDepth+1) + "\n" + event("a"),
			[]string{"invalid line 1: malformed JSON: nested deeper than 10000 levels; skipped to the next line starting with '{'", "ok a"},
		},
		{"empty EventList", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}` + event("a"), []string{"ok a"}},
		{"EventList with null items", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}`, nil},
		{"EventList items not a list", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{}}`, []string{"invalid line 1: items is not a list"}},
		{
			"EventList of the wrong version",
			`{"kind":"EventList","apiVersion":"audit.k8s.io/v2","items":[` + event("a") + `]}`,
			[]string{`invalid line 1: unknown apiVersion "audit.k8s.io/v2" (want audit.k8s.io/v1 or audit.k8s.io/v1beta1)`},
		},
		{
			"EventList items that are not Events",
			`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[3,{"kind":"EventList"},` + event("c") + `]}`,
			[]string{"invalid line 1: items[0]: not a JSON object but a number: want an audit event", `invalid line 1: items[1]: unknown kind "EventList" (want Event)`, "ok c"},
		},
		{
			"oversize EventList item",
			`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + event("a", `"annotations":{"x":"`+big+`"}`) + "," + event("b") + `]}`,
			[]string{"too_large line 1: items[0]: audit event is 1048757 bytes; the limit is 1048576 (1 MiB)", "ok b"},
		},

		// Azure Event Hub.
		{
			"Event Hub payload",
			`{"records":[` + hubRecord("kube-audit", event("a")) + "," + hubRecord("kube-apiserver", "I0102 started") + "," +
				hubRecord("kube-audit-admin", event("c")) + "," + hubRecord("kube-audit", "not json") + "," + hubRecord("kube-audit", `{"kind":"Event"}`) + `]}`,
			[]string{
				"ok a",
				`invalid line 1: records[1]: Event Hub record of category "kube-apiserver" is not a Kubernetes audit event (want category kube-audit or kube-audit-admin)`,
				"ok c",
				`invalid line 1: records[3]: properties.log is not a JSON object: it starts with "not json"`,
				"invalid line 1: records[4]: properties.log: missing auditID",
			},
		},
		{"Event Hub record alone", hubRecord("kube-audit", event("a")), []string{"ok a"}},
		{"Event Hub record without log", `{"category":"kube-audit","properties":{"stream":"stdout"}}`, []string{"invalid line 1: Event Hub record without properties.log (which holds the audit event as a JSON string)"}},
		{"Event Hub log not a string", `{"category":"kube-audit","properties":{"log":{"kind":"Event"}}}`, []string{"invalid line 1: properties.log is an object: want the audit event as a JSON string"}},
		{
			"Event Hub log malformed",
			hubRecord("kube-audit", `{"kind":"Event",}`),
			[]string{"invalid line 1: properties.log: malformed JSON at byte 17: invalid character '}' looking for beginning of object key string"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := outcomes(t, tc.input)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// hubRecord wraps log as AKS diagnostic settings send it to Event Hub.
func hubRecord(category, log string) string {
	quoted, _ := json.Marshal(log + "\n")
	return `{"operationName":"Microsoft.ContainerService/managedClusters/diagnosticLogs/Read","category":"` + category +
		`","properties":{"log":` + string(quoted) + `,"stream":"stdout"},"time":"2026-01-02T03:04:05Z"}`
}

// padTo makes an event exactly n bytes long with an annotation.
func padTo(ev string, n int) string {
	short := strings.TrimSuffix(ev, "}") + `,"annotations":{"pad":""}}`
	return strings.TrimSuffix(ev, "}") + `,"annotations":{"pad":"` + strings.Repeat("p", n-len(short)) + `"}}`
}

// A record over 64 MiB is refused without being kept, and reading goes on.
func TestReaderHugeRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 64 MiB")
	}
	input := io.MultiReader(
		strings.NewReader(`{"kind":"EventList","items":["`),
		io.LimitReader(repeatReader('x'), MaxListSize),
		strings.NewReader("\"]}\n"+event("b")),
	)
	events, errs := readAll(t, input)
	checkErrors(t, errs, []string{"line 1: record is larger than 67108864 bytes (64 MiB), the limit for a list of events; one event may have at most 1048576 (1 MiB)"})
	if len(errs) == 1 && errs[0].Code != kubetrail.ETOOLARGE {
		t.Errorf("code %s, want %s", errs[0].Code, kubetrail.ETOOLARGE)
	}
	if len(events) != 1 || events[0].Audit.AuditID != "b" {
		t.Errorf("got events %+v, want b", events)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// A read error is not a bad record: it is returned, and returned again.
func TestReaderReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := NewReader(io.MultiReader(strings.NewReader(event("a")+"\n{\"kind\""), iotest.ErrReader(boom)), "c")
	if ev, err := r.Next(); err != nil || ev.Audit.AuditID != "a" {
		t.Fatalf("first: %v %v", ev.Audit.AuditID, err)
	}
	for range 2 {
		_, err := r.Next()
		if !errors.Is(err, boom) || kubetrail.ErrorCode(err) != kubetrail.EINTERNAL {
			t.Fatalf("got %v, want the read error", err)
		}
	}
}

// The cluster name given to the Reader is on every event.
func TestReaderCluster(t *testing.T) {
	ev, err := NewReader(strings.NewReader(event("a")), "prod-eu").Next()
	if err != nil || ev.Cluster != "prod-eu" {
		t.Fatalf("got cluster %q, error %v", ev.Cluster, err)
	}
}
