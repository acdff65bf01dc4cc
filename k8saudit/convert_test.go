package k8saudit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func TestDecodeEventList(t *testing.T) {
	list := func(apiVersion string, items ...string) []byte {
		return []byte(`{"kind":"EventList","apiVersion":"` + apiVersion + `","metadata":{},"items":[` + strings.Join(items, ",") + `]}`)
	}
	item := func(id string) string { // as the webhook sends them: no kind, no apiVersion
		return `{"level":"Metadata","auditID":"` + id + `","stage":"ResponseComplete","verb":"list","requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z"}`
	}
	big := `{"auditID":"x","requestReceivedTimestamp":"2026-01-02T03:04:05Z","annotations":{"a":"` + strings.Repeat("a", MaxEventSize) + `"}}`
	tests := []struct {
		name  string
		body  []byte
		ids   []string
		code  string
		error string
	}{
		{name: "two items", body: list("audit.k8s.io/v1", item("a"), item("b")), ids: []string{"a", "b"}},
		{name: "v1beta1", body: list("audit.k8s.io/v1beta1", item("a")), ids: []string{"a"}},
		{name: "no items", body: list("audit.k8s.io/v1"), ids: []string{}},
		{name: "null items", body: []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}`), ids: []string{}},
		{name: "items with kind and apiVersion", body: list("audit.k8s.io/v1", event("a")), ids: []string{"a"}},
		{
			name: "a bad item: all or nothing", body: list("audit.k8s.io/v1", item("a"), item("b"), item("c"), `{"verb":"get"}`, item("e")),
			code: kubetrail.EINVALID, error: "items[3]: missing auditID",
		},
		{name: "item of another kind", body: list("audit.k8s.io/v1", `{"kind":"Pod"}`), code: kubetrail.EINVALID, error: `items[0]: unknown kind "Pod" (want Event)`},
		{name: "item of another version", body: list("audit.k8s.io/v1", `{"apiVersion":"v1"}`), code: kubetrail.EINVALID, error: `items[0]: unknown apiVersion "v1" (want audit.k8s.io/v1 or audit.k8s.io/v1beta1)`},
		{name: "item not an object", body: list("audit.k8s.io/v1", item("a"), `"b"`), code: kubetrail.EINVALID, error: "items[1]: not a JSON object but a string: want an audit event"},
		{name: "oversize item", body: list("audit.k8s.io/v1", item("a"), big), code: kubetrail.ETOOLARGE, error: "items[1]: audit event is 1048664 bytes; the limit is 1048576 (1 MiB)"},
		{name: "wrong apiVersion", body: list("audit.k8s.io/v2", item("a")), code: kubetrail.EINVALID, error: `unknown apiVersion "audit.k8s.io/v2" (want audit.k8s.io/v1 or audit.k8s.io/v1beta1)`},
		{name: "missing apiVersion", body: []byte(`{"kind":"EventList","items":[]}`), code: kubetrail.EINVALID, error: "missing apiVersion: want audit.k8s.io/v1 or audit.k8s.io/v1beta1"},
		{name: "missing kind", body: []byte(`{"apiVersion":"audit.k8s.io/v1","items":[]}`), code: kubetrail.EINVALID, error: `missing kind: want "EventList", as the audit webhook backend sends`},
		{name: "a single Event", body: []byte(event("a")), code: kubetrail.EINVALID, error: `kind "Event": want "EventList", as the audit webhook backend sends`},
		{name: "kind 0", body: []byte(`{"kind":0}`), code: kubetrail.EINVALID, error: `kind 0: want "EventList", as the audit webhook backend sends`},
		{name: "items not a list", body: []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{}}`), code: kubetrail.EINVALID, error: "items is not a list"},
		{name: "malformed JSON", body: []byte("{\"kind\":\"EventList\",\n\"items\":[}"), code: kubetrail.EINVALID, error: "malformed JSON at line 2: invalid character '}' looking for beginning of value"},
		{name: "not an object", body: []byte(`[1]`), code: kubetrail.EINVALID, error: "not a JSON object but a list: want an EventList"},
		{name: "empty body", body: nil, code: kubetrail.EINVALID, error: "empty body: want an audit EventList"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events, err := DecodeEventList(tc.body, "test-cluster")
			if tc.error != "" {
				var e *kubetrail.Error
				if !errors.As(err, &e) || e.Code != tc.code || e.Error() != tc.error {
					t.Fatalf("got error %v (%T), want %s %q", err, err, tc.code, tc.error)
				}
				if events != nil {
					t.Errorf("got %d events with the error, want none", len(events))
				}
				if where, _, ok := strings.Cut(tc.error, ": "); ok && strings.HasPrefix(where, "items[") && e.Where != where {
					t.Errorf("Where %q, want %q", e.Where, where)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, ev := range events {
				checkAccepted(t, ev.Audit.AuditID, ev)
				ids = append(ids, ev.Audit.AuditID)
			}
			if !reflect.DeepEqual(ids, tc.ids) {
				t.Errorf("got %q, want %q", ids, tc.ids)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	received := time.Date(2026, 1, 2, 5, 4, 5, 123456000, time.FixedZone("CEST", 2*3600))
	base := func() *auditv1.Event {
		return &auditv1.Event{
			AuditID:                  "id",
			Stage:                    auditv1.StageResponseComplete,
			Verb:                     "get",
			User:                     authnv1.UserInfo{Username: "u", Groups: []string{"g"}},
			RequestReceivedTimestamp: metav1.NewMicroTime(received),
		}
	}
	exec := func(uri string) *auditv1.Event {
		ev := base()
		ev.RequestURI = uri
		ev.ObjectRef = &auditv1.ObjectReference{Resource: "pods", Subresource: "exec", Namespace: "ns", Name: "p"}
		return ev
	}
	pod := func(ref auditv1.ObjectReference, response string) *auditv1.Event {
		ev := base()
		ev.Verb = "create"
		ev.ObjectRef = &ref
		if response != "" {
			ev.ResponseObject = &runtime.Unknown{Raw: []byte(response)}
		}
		return ev
	}
	tests := []struct {
		name  string
		ev    *auditv1.Event
		check func(t *testing.T, got kubetrail.Event)
		error string
	}{
		{name: "missing auditID", ev: func() *auditv1.Event { ev := base(); ev.AuditID = ""; return ev }(), error: "missing auditID"},
		{name: "missing time", ev: func() *auditv1.Event { ev := base(); ev.RequestReceivedTimestamp = metav1.MicroTime{}; return ev }(), error: "missing requestReceivedTimestamp"},
		{name: "time in UTC, no stage time", ev: base(), check: func(t *testing.T, got kubetrail.Event) {
			if !got.Time.Equal(received) || got.Time.Location() != time.UTC || !got.Audit.StageTime.IsZero() {
				t.Errorf("time %v stage time %v", got.Time, got.Audit.StageTime)
			}
		}},
		{name: "exec command decoded, in order", ev: exec("/api/v1/namespaces/ns/pods/p/exec?container=c&command=%2Fbin%2Fsh&stdout=true&command=-c&command=echo+a%26b+%3E+%2Ftmp%2Fx"), check: func(t *testing.T, got kubetrail.Event) {
			want := []string{"/bin/sh", "-c", "echo a&b > /tmp/x"}
			if !reflect.DeepEqual(got.Audit.ExecCommand, want) || got.Audit.ExecContainer != "c" || got.ContainerName != "c" || got.PodName != "p" {
				t.Errorf("command %q container %q / %q pod %q", got.Audit.ExecCommand, got.Audit.ExecContainer, got.ContainerName, got.PodName)
			}
		}},
		{name: "malformed query pairs skipped, as the API server does", ev: exec("/x/exec?command=a&command=%zz&command=b;c&command=d"), check: func(t *testing.T, got kubetrail.Event) {
			if want := []string{"a", "d"}; !reflect.DeepEqual(got.Audit.ExecCommand, want) {
				t.Errorf("command %q, want %q", got.Audit.ExecCommand, want)
			}
		}},
		{name: "exec without query", ev: exec("/api/v1/namespaces/ns/pods/p/exec"), check: func(t *testing.T, got kubetrail.Event) {
			if got.Audit.ExecCommand != nil || got.Audit.ExecContainer != "" {
				t.Errorf("command %q container %q", got.Audit.ExecCommand, got.Audit.ExecContainer)
			}
		}},
		{name: "command parameters of other requests are not exec commands", ev: func() *auditv1.Event {
			ev := exec("/api/v1/namespaces/ns/pods/p/log?command=x&container=c")
			ev.ObjectRef.Subresource = "log"
			return ev
		}(), check: func(t *testing.T, got kubetrail.Event) {
			if got.Audit.ExecCommand != nil || got.ContainerName != "" || got.PodName != "p" {
				t.Errorf("command %q container %q pod %q", got.Audit.ExecCommand, got.ContainerName, got.PodName)
			}
		}},
		{name: "pods of another API group are not pods", ev: func() *auditv1.Event {
			ev := exec("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/p")
			ev.ObjectRef.APIGroup, ev.ObjectRef.Subresource = "metrics.k8s.io", ""
			return ev
		}(), check: func(t *testing.T, got kubetrail.Event) {
			if got.PodName != "" || got.Namespace != "ns" || got.Audit.TargetName != "p" {
				t.Errorf("pod %q namespace %q target %q", got.PodName, got.Namespace, got.Audit.TargetName)
			}
		}},
		{name: "pod create: name and UID from the response", ev: pod(auditv1.ObjectReference{Resource: "pods", Namespace: "ns"},
			`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-x7k2p","uid":"u-1"}}`), check: func(t *testing.T, got kubetrail.Event) {
			if got.PodName != "web-x7k2p" || got.PodUID != "u-1" {
				t.Errorf("pod %q uid %q", got.PodName, got.PodUID)
			}
		}},
		{name: "UID from objectRef", ev: pod(auditv1.ObjectReference{Resource: "pods", Namespace: "ns", Name: "p", UID: "u-2"}, ""), check: func(t *testing.T, got kubetrail.Event) {
			if got.PodName != "p" || got.PodUID != "u-2" {
				t.Errorf("pod %q uid %q", got.PodName, got.PodUID)
			}
		}},
		{name: "a response Status has no UID", ev: pod(auditv1.ObjectReference{Resource: "pods", Namespace: "ns", Name: "p"},
			`{"kind":"Status","apiVersion":"v1","status":"Failure","code":403}`), check: func(t *testing.T, got kubetrail.Event) {
			if got.PodName != "p" || got.PodUID != "" {
				t.Errorf("pod %q uid %q", got.PodName, got.PodUID)
			}
		}},
		{name: "a response for another pod is not used", ev: pod(auditv1.ObjectReference{Resource: "pods", Namespace: "ns", Name: "p"},
			`{"kind":"Pod","metadata":{"name":"q","uid":"u-3"}}`), check: func(t *testing.T, got kubetrail.Event) {
			if got.PodName != "p" || got.PodUID != "" {
				t.Errorf("pod %q uid %q", got.PodName, got.PodUID)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Convert(tc.ev, "c")
			if tc.error != "" {
				if kubetrail.ErrorCode(err) != kubetrail.EINVALID || err.Error() != tc.error {
					t.Fatalf("got %v, want %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Category != kubetrail.CategoryK8s || got.Cluster != "c" || got.Type != tc.ev.Verb || got.Audit.AuditID != string(tc.ev.AuditID) {
				t.Errorf("got %+v", got)
			}
			tc.check(t, got)
		})
	}
}

// The event does not share slices with the audit event it came from.
func TestConvertCopies(t *testing.T) {
	ev := &auditv1.Event{AuditID: "a", RequestReceivedTimestamp: metav1.NewMicroTime(time.Now()),
		User: authnv1.UserInfo{Groups: []string{"g"}}, SourceIPs: []string{"10.0.0.1"}}
	got, err := Convert(ev, "")
	if err != nil {
		t.Fatal(err)
	}
	ev.User.Groups[0], ev.SourceIPs[0] = "changed", "changed"
	if got.Audit.UserGroups[0] != "g" || got.Audit.SourceIPs[0] != "10.0.0.1" {
		t.Errorf("event changed with its source: %+v", got.Audit)
	}
}
