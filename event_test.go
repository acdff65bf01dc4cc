package kubetrail_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

func TestFieldReferenceIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range kubetrail.Fields {
		if seen[f.Name] {
			t.Errorf("%s is defined twice", f.Name)
		}
		seen[f.Name] = true
		if f.Doc == "" || !strings.HasSuffix(f.Doc, ".") {
			t.Errorf("%s: doc %q should be a sentence", f.Name, f.Doc)
		}
		if f.Get == nil {
			t.Errorf("%s has no getter", f.Name)
		}
	}
	// The names the issue and Falco users rely on.
	for _, name := range []string{"evt.time", "evt.category", "proc.name", "proc.exepath", "proc.cmdline", "proc.args", "proc.pid",
		"proc.ppid", "proc.pname", "proc.cwd", "proc.tty", "user.uid", "user.name", "container.id", "container.name",
		"container.image.repository", "container.image.tag", "k8s.ns.name", "k8s.pod.name", "k8s.pod.uid", "fd.l4proto",
		"fd.sip", "fd.sport", "fd.cip", "fd.cport", "fd.lip", "fd.rip", "fd.name", "ka.auditid", "ka.user.name",
		"ka.user.groups", "ka.impuser.name", "ka.verb", "ka.uri", "ka.target.resource", "ka.target.subresource",
		"ka.target.namespace", "ka.target.name", "ka.sourceips", "ka.useragent", "ka.response.code"} {
		if kubetrail.LookupField(name) == nil {
			t.Errorf("field %s is missing", name)
		}
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	events := []kubetrail.Event{
		{Stream: "n1.b", Seq: 7, Time: at, Category: kubetrail.CategoryNetwork, Type: "connect", Result: "SUCCESS", Cluster: "c", Node: "n1",
			Namespace: "billing", PodName: "p", ContainerID: "abc", Process: kubetrail.Process{Name: "curl", Argv: []string{"curl", "-v", "x y"}, UID: 0, LoginUID: -1},
			Network: kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.0.0.1", ClientPort: 1, ServerIP: "1.2.3.4", ServerPort: 443, PeerKind: "unknown"}},
		{Time: at, Category: kubetrail.CategoryK8s, Type: "get", Audit: kubetrail.Audit{AuditID: "x", Stage: "ResponseComplete", StageTime: at.Add(time.Second),
			UserName: "john.doe", UserGroups: []string{"devs"}, ResponseCode: 101, ExecCommand: []string{"sh", "-c", "id"}}},
	}
	for _, e := range events {
		data, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var flat map[string]any
		json.Unmarshal(data, &flat)
		if flat["evt.id"] != e.ID() {
			t.Errorf("flat JSON lacks evt.id: %s", data)
		}
		var back kubetrail.Event
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", back, e)
		}
	}
	var e kubetrail.Event
	err := json.Unmarshal([]byte(`{"proc.nmae":"x"}`), &e)
	if err == nil || !strings.Contains(err.Error(), "did you mean proc.name") {
		t.Errorf("unknown key: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"proc.pid":"12"}`), &e); err == nil || !strings.Contains(err.Error(), "proc.pid") {
		t.Errorf("wrong type: %v", err)
	}
}

func TestSuggestField(t *testing.T) {
	for in, want := range map[string]string{"proc.nam": "proc.name", "ka.user": "ka.user.name", "k8s.namespace.name": "k8s.ns.name"} {
		if got := kubetrail.SuggestField(in); got != want {
			t.Errorf("SuggestField(%q) = %q, want %q", in, got, want)
		}
	}
}
