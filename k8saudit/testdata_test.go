package k8saudit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

// Every file of the shared test data that holds Kubernetes audit events (or that
// a user might mistake for an audit log), and what reading it gives.
var testdataFiles = []struct {
	path   string
	events int
	// errors are the expected error messages, in order; a trailing "*" matches any
	// rest of the message.
	errors []string
}{
	// A real kube-apiserver 1.33: --audit-log-path files (one pretty-printed Event,
	// with kind and apiVersion), webhook items saved alone (no kind, no apiVersion),
	// and one whole webhook POST body.
	{path: "kube-apiserver-1.33-audit/exec-forbidden-403.bob-curl.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-forbidden-403.bob-curl.webhook.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-impersonated.ResponseComplete.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-serviceaccount-token.ResponseComplete.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-spdy-create-ResponseComplete.bob-token.webhook.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-spdy-create-ResponseStarted.bob-token.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-success-101-RequestReceived.alice.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-success-101-ResponseComplete.alice.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-success-101-ResponseStarted.bob-token.webhook.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-websocket-get-RequestReceived.alice.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/exec-websocket-get-ResponseComplete.alice.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/kubectl-cp-exec-tar.ResponseComplete.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/kubectl-debug-ephemeralcontainers.ResponseComplete.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/namespace-create-Metadata.alice.webhook.json", events: 1},
	{path: "kube-apiserver-1.33-audit/pod-create-Metadata.alice.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/portforward.ResponseComplete.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/serviceaccount-token-create.ResponseComplete.logfile.json", events: 1},
	{path: "kube-apiserver-1.33-audit/webhook-raw-EventList-with-exec.json", events: 17},

	// 37 JSON lines labelled audit.k8s.io/v1 but in the pre-1.8 shape: "timestamp"
	// and no requestReceivedTimestamp. Read through the legacy-timestamp fallback.
	{path: "liggitt-audit2rbac/testdata/demo.log", events: 37},

	// AKS through Event Hub: a {"records":[...]} payload of 22 records, one record
	// alone (BOM), and one plain Event (BOM).
	{path: "sysdiglabs-aks-audit-log/samples/event.json", events: 22},
	{path: "sysdiglabs-aks-audit-log/samples/sample_EventHubs_event.json", events: 1},
	{path: "sysdiglabs-aks-audit-log/samples/sample_KubeAuditLog_event.json", events: 1},

	// Test-case wrappers of other tools, one per line; the events inside are
	// partial (see TestWrappedEventsAreIncomplete), so each line is refused with
	// the fields it has.
	{path: "panther-analysis/panther_k8s_rule_tests.jsonl", errors: repeatLines(282,
		"not a Kubernetes audit event: no kind, apiVersion or audit Event field (auditID, stage, verb, ...); the object's fields are: expected_result, log, log_types, rule_id, source_file, test_name")},
	{path: "datadog-stratus-red-team/stratus_k8s_technique_sample_events.jsonl", errors: repeatLines(5,
		"not a Kubernetes audit event: no kind, apiVersion or audit Event field (auditID, stage, verb, ...); the object's fields are: block, sample_event_shortened, technique_id, title")},

	// Audit rows flattened to CSV: one error for the whole run of non-JSON lines.
	{path: "hkerma-kubernetes-event-dataset/audit-logs.csv", errors: []string{
		`line 1: not JSON: the line starts with "\"{\"\"name\"\":\"\"k8s-master-perfspec\"\"}\",202"…; want audit events as JSON objects (skipped to the next line starting with '{')`}},
}

func repeatLines(n int, msg string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("line %d: %s", i+1, msg)
	}
	return out
}

func TestReadTestdata(t *testing.T) {
	data := sharedtest.Dir(t)
	for _, tc := range testdataFiles {
		t.Run(tc.path, func(t *testing.T) {
			events, errs := readFile(t, filepath.Join(data, tc.path))
			if len(events) != tc.events {
				t.Errorf("got %d events, want %d", len(events), tc.events)
			}
			checkErrors(t, errs, tc.errors)
			for i, ev := range events {
				checkAccepted(t, fmt.Sprintf("event %d", i), ev)
			}
		})
	}
}

// checkErrors compares errors with expected messages ("*" at the end: prefix).
func checkErrors(t *testing.T, errs []*kubetrail.Error, want []string) {
	t.Helper()
	got := errorStrings(errs)
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
		return
	}
	for i := range got {
		if w, ok := strings.CutSuffix(want[i], "*"); ok && strings.HasPrefix(got[i], w) || got[i] == want[i] {
			continue
		}
		t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
	}
}

// checkAccepted checks what every accepted event must have.
func checkAccepted(t testing.TB, what string, ev kubetrail.Event) {
	t.Helper()
	if ev.Audit.AuditID == "" || ev.Time.IsZero() || ev.Category != kubetrail.CategoryK8s ||
		ev.Time.Location() != time.UTC || ev.Type != ev.Audit.Verb || ev.Cluster != "test-cluster" {
		t.Errorf("%s: incomplete event: %+v", what, ev)
	}
}

// Every file of the kube-apiserver and Falco folders is listed above or below,
// so a file added there is not silently left untested.
func TestTestdataCovered(t *testing.T) {
	data := sharedtest.Dir(t)
	listed := map[string]bool{}
	for _, tc := range testdataFiles {
		listed[tc.path] = true
	}
	files, _ := filepath.Glob(filepath.Join(data, "kube-apiserver-1.33-audit", "*.json"))
	if len(files) != 18 {
		t.Errorf("kube-apiserver-1.33-audit holds %d JSON files, want 18", len(files))
	}
	for _, f := range files {
		if rel, _ := filepath.Rel(data, f); !listed[rel] {
			t.Errorf("%s is not in testdataFiles", rel)
		}
	}
}

// Falco's 47 trace files: 51 events (9 audit.k8s.io/v1beta1, 4 v1 and 38 with
// kind "Event" but no apiVersion, all accepted) and the malformed fal_01_003.json.
func TestReadFalcoTraces(t *testing.T) {
	dir := filepath.Join(sharedtest.Dir(t), "falcosecurity-falco-k8s-audit-traces", "test", "trace_files", "k8s_audit")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) != 47 {
		t.Fatalf("found %d trace files (%v), want 47", len(files), err)
	}
	total := 0
	for _, f := range files {
		events, errs := readFile(t, f)
		name := filepath.Base(f)
		for i, ev := range events {
			checkAccepted(t, fmt.Sprintf("%s event %d", name, i), ev)
		}
		total += len(events)
		switch name {
		case "fal_01_003.json": // the 11 bytes {"kind": 0}
			if len(events) != 0 {
				t.Errorf("%s: got %d events, want none", name, len(events))
			}
			checkErrors(t, errs, []string{"line 1: unknown kind 0 (want Event or EventList)"})
			if errs[0].Code != kubetrail.EINVALID {
				t.Errorf("%s: code %s, want %s", name, errs[0].Code, kubetrail.EINVALID)
			}
		case "create_configmap_sensitive_values.json":
			if len(events) != 6 || len(errs) != 0 {
				t.Errorf("%s: got %d events and errors %v, want 6 events", name, len(events), errorStrings(errs))
			}
		default:
			if len(events) != 1 || len(errs) != 0 {
				t.Errorf("%s: got %d events and errors %v, want 1 event", name, len(events), errorStrings(errs))
			}
		}
	}
	if total != 51 {
		t.Errorf("got %d events from the Falco traces, want 51", total)
	}
}

// Known events, converted field by field.
func TestConvertKnownEvents(t *testing.T) {
	data := sharedtest.Dir(t)
	ts := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		path  string
		index int // which event of the file
		want  kubetrail.Event
	}{
		{
			// kubectl 1.33 exec over WebSocket: verb get, 101 Switching Protocols.
			path: "kube-apiserver-1.33-audit/exec-success-101-ResponseComplete.alice.logfile.json",
			want: kubetrail.Event{
				Time: ts("2026-11-26T22:44:08.742489Z"), Category: kubetrail.CategoryK8s, Type: "get",
				Cluster: "test-cluster", Namespace: "billing", PodName: "realpod", ContainerName: "app",
				Audit: kubetrail.Audit{
					AuditID: "1cde5c2a-263e-46de-877d-c96db8172eaf", Stage: "ResponseComplete",
					StageTime: ts("2026-11-26T22:44:15.795921Z"),
					UserName:  "alice-admin", UserGroups: []string{"system:masters", "system:authenticated"},
					Verb:     "get",
					URI:      "/api/v1/namespaces/billing/pods/realpod/exec?command=%2Fbin%2Fsh&command=-c&command=exec+sleep+7&container=app&stderr=true&stdout=true",
					Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "realpod",
					SourceIPs: []string{"127.0.0.1"}, UserAgent: "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0",
					ResponseCode: 101, AuthDecision: "allow",
					ExecCommand: []string{"/bin/sh", "-c", "exec sleep 7"}, ExecContainer: "app",
				},
			},
		},
		{
			// Refused exec into kube-system by a static-token user with curl.
			path: "kube-apiserver-1.33-audit/exec-forbidden-403.bob-curl.logfile.json",
			want: kubetrail.Event{
				Time: ts("2026-11-26T22:42:47.300128Z"), Category: kubetrail.CategoryK8s, Type: "create",
				Cluster: "test-cluster", Namespace: "kube-system", PodName: "etcd-x",
				Audit: kubetrail.Audit{
					AuditID: "e8c58030-4fb1-4e17-bb4b-d6b9faeaae30", Stage: "ResponseComplete",
					StageTime: ts("2026-11-26T22:42:47.301062Z"),
					UserName:  "bob", UserGroups: []string{"devs", "billing-team", "system:authenticated"},
					Verb:     "create",
					URI:      "/api/v1/namespaces/kube-system/pods/etcd-x/exec?command=cat&command=/etc/shadow&stdout=true",
					Resource: "pods", Subresource: "exec", TargetNamespace: "kube-system", TargetName: "etcd-x",
					SourceIPs: []string{"127.0.0.1"}, UserAgent: "evil-script/1.0",
					ResponseCode: 403, ResponseReason: "Forbidden", AuthDecision: "forbid",
					ExecCommand: []string{"cat", "/etc/shadow"},
				},
			},
		},
		{
			// The impersonated user is kept apart from the authenticated one.
			path: "kube-apiserver-1.33-audit/exec-impersonated.ResponseComplete.logfile.json",
			want: kubetrail.Event{
				Time: ts("2026-11-26T22:57:51.187102Z"), Category: kubetrail.CategoryK8s, Type: "get",
				Cluster: "test-cluster", Namespace: "billing", PodName: "mypod", ContainerName: "app",
				Audit: kubetrail.Audit{
					AuditID: "d5462c21-ddaf-4fe7-b5f6-ddb129f75f06", Stage: "ResponseComplete",
					StageTime: ts("2026-11-26T22:57:51.235709Z"),
					UserName:  "alice-admin", UserGroups: []string{"system:masters", "system:authenticated"},
					ImpUserName: "bob", Verb: "get",
					URI:      "/api/v1/namespaces/billing/pods/mypod/exec?command=sh&command=-c&command=echo+impersonated-bob&container=app&stderr=true&stdout=true",
					Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "mypod",
					SourceIPs: []string{"127.0.0.1"}, UserAgent: "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0",
					ResponseCode: 101, AuthDecision: "allow",
					AuthReason:  `RBAC: allowed by ClusterRoleBinding "bob-admin" of ClusterRole "cluster-admin" to User "bob"`,
					ExecCommand: []string{"sh", "-c", "echo impersonated-bob"}, ExecContainer: "app",
				},
			},
		},
		{
			// A webhook item saved alone: no kind, no apiVersion, no namespace.
			path: "kube-apiserver-1.33-audit/namespace-create-Metadata.alice.webhook.json",
			want: kubetrail.Event{
				Time: ts("2026-11-26T22:42:27.242503Z"), Category: kubetrail.CategoryK8s, Type: "create",
				Cluster: "test-cluster",
				Audit: kubetrail.Audit{
					AuditID: "4967e1dc-cd4e-4502-b8cf-f17f66bd80f9", Stage: "ResponseComplete",
					StageTime: ts("2026-11-26T22:42:27.245857Z"),
					UserName:  "alice-admin", UserGroups: []string{"system:masters", "system:authenticated"},
					Verb:     "create",
					URI:      "/api/v1/namespaces?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
					Resource: "namespaces", TargetName: "billing",
					SourceIPs: []string{"127.0.0.1"}, UserAgent: "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0",
					ResponseCode: 201, AuthDecision: "allow",
				},
			},
		},
		{
			// The last item of a webhook POST: an exec whose response has started.
			path: "kube-apiserver-1.33-audit/webhook-raw-EventList-with-exec.json", index: 16,
			want: kubetrail.Event{
				Time: ts("2026-11-26T22:58:34.192147Z"), Category: kubetrail.CategoryK8s, Type: "get",
				Cluster: "test-cluster", Namespace: "billing", PodName: "mypod", ContainerName: "app",
				Audit: kubetrail.Audit{
					AuditID: "ec4d318c-ac2f-4af7-b307-83bd60683645", Stage: "ResponseStarted",
					StageTime: ts("2026-11-26T22:58:34.194560Z"),
					UserName:  "alice-admin", UserGroups: []string{"system:masters", "system:authenticated"},
					Verb:     "get",
					URI:      "/api/v1/namespaces/billing/pods/mypod/exec?command=%2Fbin%2Fsh&command=-c&command=curl+x&container=app&stderr=true&stdout=true",
					Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "mypod",
					SourceIPs: []string{"127.0.0.1"}, UserAgent: "kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0",
					ResponseCode: 101, AuthDecision: "allow",
					ExecCommand: []string{"/bin/sh", "-c", "curl x"}, ExecContainer: "app",
				},
			},
		},
		{
			// Falco trace, no apiVersion, exec over SPDY (verb create); container
			// given twice, the first counts.
			path: "falcosecurity-falco-k8s-audit-traces/test/trace_files/k8s_audit/exec_pod.json",
			want: kubetrail.Event{
				Time: ts("2018-10-26T13:38:34.867116Z"), Category: kubetrail.CategoryK8s, Type: "create",
				Cluster: "test-cluster", Namespace: "default", PodName: "nginx-deployment-7998647bdf-phvq7", ContainerName: "nginx1",
				Audit: kubetrail.Audit{
					AuditID: "ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6", Stage: "ResponseStarted",
					StageTime: ts("2018-10-26T13:38:34.902914Z"),
					UserName:  "minikube-user", UserGroups: []string{"system:masters", "system:authenticated"},
					Verb:     "create",
					URI:      "/api/v1/namespaces/default/pods/nginx-deployment-7998647bdf-phvq7/exec?command=bash&container=nginx1&container=nginx1&stdin=true&stdout=true&tty=true",
					Resource: "pods", Subresource: "exec", TargetNamespace: "default", TargetName: "nginx-deployment-7998647bdf-phvq7",
					SourceIPs: []string{"192.168.99.1"}, ResponseCode: 101, AuthDecision: "allow",
					ExecCommand: []string{"bash"}, ExecContainer: "nginx1",
				},
			},
		},
		{
			// Pre-1.8 shape: only the legacy "timestamp"; a 403 for an impersonated list.
			path: "liggitt-audit2rbac/testdata/demo.log",
			want: kubetrail.Event{
				Time: ts("2017-09-11T19:55:05Z"), Category: kubetrail.CategoryK8s, Type: "list",
				Cluster: "test-cluster", Namespace: "default",
				Audit: kubetrail.Audit{
					AuditID: "033d17af-082d-4b24-aa22-627752e83d71", Stage: "ResponseComplete",
					UserName: "system:admin", UserGroups: []string{"system:masters", "system:authenticated"},
					ImpUserName: "bob", Verb: "list", URI: "/api/v1/namespaces/default/pods",
					Resource: "pods", TargetNamespace: "default", SourceIPs: []string{"::1"},
					ResponseCode: 403, ResponseReason: "Forbidden",
				},
			},
		},
		{
			// The first record of an AKS Event Hub payload: a non-resource request.
			path: "sysdiglabs-aks-audit-log/samples/event.json",
			want: kubetrail.Event{
				Time: ts("2020-05-05T16:16:37.655912Z"), Category: kubetrail.CategoryK8s, Type: "get",
				Cluster: "test-cluster",
				Audit: kubetrail.Audit{
					AuditID: "55ffceaa-b7c3-478e-98c6-e509cd2f0dd7", Stage: "ResponseComplete",
					StageTime:  ts("2020-05-05T16:16:37.663647Z"),
					UserName:   "system:serviceaccount:kube-system:resourcequota-controller",
					UserGroups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
					Verb:       "get", URI: "/apis/metrics.k8s.io/v1beta1?timeout=32s",
					SourceIPs:    []string{"172.31.16.64"},
					UserAgent:    "hyperkube/v1.15.10 (linux/amd64) kubernetes/059c666/system:serviceaccount:kube-system:resourcequota-controller",
					ResponseCode: 200, AuthDecision: "allow",
					AuthReason: `RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"`,
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s[%d]", tc.path, tc.index), func(t *testing.T) {
			events, errs := readFile(t, filepath.Join(data, tc.path))
			if len(errs) > 0 || tc.index >= len(events) {
				t.Fatalf("got %d events and errors %v", len(events), errorStrings(errs))
			}
			got := events[tc.index]
			// The event keeps its own JSON for policies: the record it was read from.
			var raw struct{ AuditID string }
			if err := json.Unmarshal(got.Audit.Raw, &raw); err != nil || raw.AuditID != tc.want.Audit.AuditID {
				t.Errorf("Audit.Raw is not the record read (auditID %q, error %v)", raw.AuditID, err)
			}
			got.Audit.Raw = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Some fields checked on their own, on events whose other fields the tests above
// already cover in kind.
func TestConvertKnownFields(t *testing.T) {
	data := sharedtest.Dir(t)
	one := func(path string) kubetrail.Event {
		t.Helper()
		events, errs := readFile(t, filepath.Join(data, path))
		if len(events) != 1 || len(errs) != 0 {
			t.Fatalf("%s: got %d events and errors %v, want 1 event", path, len(events), errorStrings(errs))
		}
		return events[0]
	}

	// kubectl cp is an exec of tar.
	cp := one("kube-apiserver-1.33-audit/kubectl-cp-exec-tar.ResponseComplete.logfile.json")
	if want := []string{"tar", "-xmf", "-", "-C", "/tmp"}; !slices.Equal(cp.Audit.ExecCommand, want) {
		t.Errorf("kubectl cp: ExecCommand %q, want %q", cp.Audit.ExecCommand, want)
	}

	// Port-forward and debug are on pods but are not exec: no command, no container.
	for _, path := range []string{
		"kube-apiserver-1.33-audit/portforward.ResponseComplete.logfile.json",
		"kube-apiserver-1.33-audit/kubectl-debug-ephemeralcontainers.ResponseComplete.logfile.json",
	} {
		ev := one(path)
		if ev.PodName != "realpod" || ev.ContainerName != "" || ev.Audit.ExecCommand != nil || ev.Audit.ExecContainer != "" {
			t.Errorf("%s: pod %q container %q command %q", path, ev.PodName, ev.ContainerName, ev.Audit.ExecCommand)
		}
	}

	// A token for a service account is not about a pod.
	tok := one("kube-apiserver-1.33-audit/serviceaccount-token-create.ResponseComplete.logfile.json")
	if tok.Audit.Resource != "serviceaccounts" || tok.Audit.Subresource != "token" || tok.Audit.TargetName != "ci-bot" || tok.PodName != "" {
		t.Errorf("token request: %+v", tok.Audit)
	}

	// Attach: the container, and no command.
	attach := one("falcosecurity-falco-k8s-audit-traces/test/trace_files/k8s_audit/attach_pod.json")
	if attach.ContainerName != "nginx1" || attach.Audit.ExecContainer != "nginx1" || attach.Audit.ExecCommand != nil || attach.Audit.Subresource != "attach" {
		t.Errorf("attach: container %q command %q", attach.ContainerName, attach.Audit.ExecCommand)
	}

	// A pod created by a ReplicaSet (generateName): name and UID from the response.
	pod := one("falcosecurity-falco-k8s-audit-traces/test/trace_files/k8s_audit/create_nginx_pod_privileged.json")
	if pod.PodUID != "8c845395-d85f-11e8-88b6-080027728ac4" || !strings.HasPrefix(pod.PodName, "nginx-deployment-") || pod.Audit.TargetName != "" {
		t.Errorf("pod create: name %q uid %q target %q", pod.PodName, pod.PodUID, pod.Audit.TargetName)
	}

	// A refused pod create (Metadata level, no response object): no UID.
	refused := one("kube-apiserver-1.33-audit/pod-create-Metadata.alice.logfile.json")
	if refused.PodName != "mypod" || refused.PodUID != "" || refused.Audit.ResponseCode != 403 {
		t.Errorf("refused pod create: name %q uid %q code %d", refused.PodName, refused.PodUID, refused.Audit.ResponseCode)
	}

	// An AKS event with its BOM: API group and namespaced target.
	aks := one("sysdiglabs-aks-audit-log/samples/sample_KubeAuditLog_event.json")
	if aks.Audit.AuditID != "71749feb-8e92-43e6-a72f-af6171f811ee" || aks.Audit.APIGroup != "apps" ||
		aks.Audit.Resource != "controllerrevisions" || aks.Namespace != "kube-system" || aks.Type != "update" {
		t.Errorf("AKS event: %+v", aks)
	}
	hub := one("sysdiglabs-aks-audit-log/samples/sample_EventHubs_event.json")
	if hub.Audit.AuditID != "4e2a4193-cb3d-4ff7-bf37-32c392fbc23b" || hub.Audit.URI != "/apis/autoscaling/v2beta1?timeout=32s" {
		t.Errorf("Event Hub record: %+v", hub.Audit)
	}
}

// The same request read from the log file and from the webhook gives the same event.
func TestLogfileAndWebhookAgree(t *testing.T) {
	data := filepath.Join(sharedtest.Dir(t), "kube-apiserver-1.33-audit")
	logfile, errs1 := readFile(t, filepath.Join(data, "exec-forbidden-403.bob-curl.logfile.json"))
	webhook, errs2 := readFile(t, filepath.Join(data, "exec-forbidden-403.bob-curl.webhook.json"))
	if len(errs1)+len(errs2) > 0 || len(logfile) != 1 || len(webhook) != 1 {
		t.Fatalf("errors %v %v", errorStrings(errs1), errorStrings(errs2))
	}
	// The two records differ in layout only, which the events' Raw keeps.
	logfile[0].Audit.Raw, webhook[0].Audit.Raw = nil, nil
	if !reflect.DeepEqual(logfile[0], webhook[0]) {
		t.Errorf("log file %+v\nwebhook  %+v", logfile[0], webhook[0])
	}
}

// DecodeEventList on the real webhook body, and on each saved webhook item
// wrapped as the backend would send it.
func TestDecodeEventListTestdata(t *testing.T) {
	data := filepath.Join(sharedtest.Dir(t), "kube-apiserver-1.33-audit")
	body, err := os.ReadFile(filepath.Join(data, "webhook-raw-EventList-with-exec.json"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := DecodeEventList(body, "test-cluster")
	if err != nil || len(events) != 17 {
		t.Fatalf("got %d events, error %v; want 17 events", len(events), err)
	}
	fromReader, errs := readAll(t, bytes.NewReader(body))
	if len(errs) > 0 || !reflect.DeepEqual(events, fromReader) {
		t.Errorf("DecodeEventList and Reader disagree (reader errors %v)", errorStrings(errs))
	}
	last := events[16]
	if last.Audit.Stage != "ResponseStarted" || !slices.Equal(last.Audit.ExecCommand, []string{"/bin/sh", "-c", "curl x"}) {
		t.Errorf("last item: %+v", last.Audit)
	}

	items, _ := filepath.Glob(filepath.Join(data, "*.webhook.json"))
	if len(items) != 4 {
		t.Errorf("found %d *.webhook.json files, want 4", len(items))
	}
	for _, f := range items {
		item, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		body := append(append([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`), item...), "]}"...)
		events, err := DecodeEventList(body, "test-cluster")
		if err != nil || len(events) != 1 {
			t.Errorf("%s: got %d events, error %v", filepath.Base(f), len(events), err)
			continue
		}
		checkAccepted(t, filepath.Base(f), events[0])
	}
}

// The test-case wrappers of Panther and Datadog are refused as a whole (above).
// This checks that the decision loses nothing: unwrapped, none of their events is
// a complete audit event either (synthetic test cases without auditID or with
// Panther's own time format, GCP's protoPayload form), and each is refused with a
// precise reason.
func TestWrappedEventsAreIncomplete(t *testing.T) {
	data := sharedtest.Dir(t)
	for _, tc := range []struct {
		path, key string
		want      map[string]int // start of the message -> count
	}{
		{"panther-analysis/panther_k8s_rule_tests.jsonl", "log", map[string]int{
			"missing auditID":                                  161,
			"missing requestReceivedTimestamp":                 10,
			`invalid requestReceivedTimestamp "20`:             17, // Panther's own "2022-11-29 00:09:04.38"
			"properties.log: missing auditID":                  31, // AKS wrapping, unwrapped fine
			"properties.log: missing requestReceivedTimestamp": 3,
			"not a Kubernetes audit event":                     60, // GCP AuditLog protoPayload form
		}},
		{"datadog-stratus-red-team/stratus_k8s_technique_sample_events.jsonl", "sample_event_shortened", map[string]int{
			"missing auditID": 5,
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			f, err := os.Open(filepath.Join(data, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := map[string]int{}
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, MaxEventSize)
			for sc.Scan() {
				var wrapper map[string]json.RawMessage
				if err := json.Unmarshal(sc.Bytes(), &wrapper); err != nil {
					t.Fatal(err)
				}
				events, errs := readAll(t, bytes.NewReader(wrapper[tc.key]))
				if len(events) != 0 || len(errs) != 1 {
					t.Fatalf("got %d events and errors %v, want one error", len(events), errorStrings(errs))
				}
				reason := errs[0].Message
				for start := range tc.want {
					if strings.HasPrefix(reason, start) {
						reason = start
					}
				}
				got[reason]++
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("reasons %v\nwant    %v", got, tc.want)
			}
		})
	}
}
