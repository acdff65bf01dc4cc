package k8saudit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/kubetrail/kubetrail"
)

// readAll reads r to its end, collecting events and errors (a Reader goes on
// after a bad record). It fails on anything but a *kubetrail.Error and stops
// when Next does not make progress.
func readAll(t testing.TB, in io.Reader) ([]kubetrail.Event, []*kubetrail.Error) {
	t.Helper()
	r := NewReader(in, "test-cluster")
	var events []kubetrail.Event
	var errs []*kubetrail.Error
	for range 1_000_000 {
		ev, err := r.Next()
		if err == io.EOF {
			return events, errs
		}
		if err != nil {
			var e *kubetrail.Error
			if !errors.As(err, &e) {
				t.Fatalf("Next: %v (%T), want a *kubetrail.Error", err, err)
			}
			errs = append(errs, e)
			continue
		}
		events = append(events, ev)
	}
	t.Fatal("Reader did not reach io.EOF")
	return nil, nil
}

func readFile(t testing.TB, path string) ([]kubetrail.Event, []*kubetrail.Error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, bytes.NewReader(data))
}

func errorStrings(errs []*kubetrail.Error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}
