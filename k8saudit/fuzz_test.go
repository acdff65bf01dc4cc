package k8saudit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

// fuzzSeeds returns the shared test data files that hold audit events (the start
// of the big CSV only), or nothing when the data is not there: the inline seeds
// still run.
func fuzzSeeds() [][]byte {
	dir := sharedtest.Find()
	if dir == "" {
		return nil
	}
	var seeds [][]byte
	for _, pattern := range []string{
		"kube-apiserver-1.33-audit/*.json",
		"falcosecurity-falco-k8s-audit-traces/test/trace_files/k8s_audit/*.json",
		"liggitt-audit2rbac/testdata/demo.log",
		"sysdiglabs-aks-audit-log/samples/*.json",
		"datadog-stratus-red-team/*.jsonl",
		"panther-analysis/*.jsonl",
		"hkerma-kubernetes-event-dataset/audit-logs.csv",
	} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			seeds = append(seeds, data[:min(len(data), 64<<10)])
		}
	}
	return seeds
}

var inlineSeeds = []string{
	"",
	"\uFEFF",
	`{"kind": 0}`,
	event("a") + "\n" + event("b"),
	`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + event("a") + `,{"verb":"get"}]}`,
	`{"records":[` + hubRecord("kube-audit", event("a")) + `]}`,
	"{\"kind\":\"Event\",\"auditID\":\"a\n{\"kind\":\"Event\"",
	`{"auditID":"a","requestReceivedTimestamp":"2026-01-02T03:04:05Z","requestURI":"/api/v1/namespaces/n/pods/p/exec?command=sh&container=c","objectRef":{"resource":"pods","subresource":"exec","name":"p"}}`,
}

// FuzzReader: no input makes the Reader panic or loop; every accepted event has
// its identity and time; every refusal is a kubetrail error that points at a
// line of the input.
func FuzzReader(f *testing.F) {
	for _, s := range inlineSeeds {
		f.Add([]byte(s))
	}
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte{'\n'}) + 1
		r := NewReader(bytes.NewReader(data), "c")
		// Each call consumes input or hands out a queued list element, which took
		// at least two bytes ("{}"), so this bounds the calls.
		for range len(data) + 2 {
			ev, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var e *kubetrail.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not a *kubetrail.Error", err, err)
				}
				n, convErr := strconv.Atoi(strings.TrimPrefix(e.Where, "line "))
				if convErr != nil || n < 1 || n > lines {
					t.Fatalf("error %q: Where %q is not a line of the %d-line input", e.Error(), e.Where, lines)
				}
				continue
			}
			if ev.Audit.AuditID == "" || ev.Time.IsZero() || ev.Category != kubetrail.CategoryK8s {
				t.Fatalf("accepted an incomplete event: %+v", ev)
			}
		}
		t.Fatal("Reader did not reach io.EOF")
	})
}

// FuzzDecodeEventList: no panics; all or nothing; accepted events have their
// identity and time; and a body it accepts reads the same through the Reader,
// whose framing must not change how valid JSON is read.
func FuzzDecodeEventList(f *testing.F) {
	for _, s := range inlineSeeds {
		f.Add([]byte(s))
	}
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := DecodeEventList(body, "c")
		if err != nil {
			var e *kubetrail.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *kubetrail.Error", err, err)
			}
			if events != nil {
				t.Fatalf("%d events returned with error %v", len(events), err)
			}
			return
		}
		for _, ev := range events {
			if ev.Audit.AuditID == "" || ev.Time.IsZero() || ev.Category != kubetrail.CategoryK8s {
				t.Fatalf("accepted an incomplete event: %+v", ev)
			}
		}
		r := NewReader(bytes.NewReader(body), "c")
		for i := 0; ; i++ {
			ev, err := r.Next()
			if err == io.EOF {
				if i != len(events) {
					t.Fatalf("Reader read %d events, DecodeEventList %d", i, len(events))
				}
				return
			}
			if err != nil || i >= len(events) || !reflect.DeepEqual(ev, events[i]) {
				t.Fatalf("Reader event %d: %+v, %v; DecodeEventList gave %d events", i, ev, err, len(events))
			}
		}
	})
}
