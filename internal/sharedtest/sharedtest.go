// Package sharedtest finds the shared real-world test data (Kubernetes audit
// events, Falco and Tetragon exports, ...), which lives beside the repository:
// <module root>/../shared/testdata.
package sharedtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared test data directory. Without it the test is skipped,
// except in CI (CI=true), where missing data is a failure.
func Dir(t testing.TB) string {
	t.Helper()
	dir := Find()
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("shared test data not found: expected ../shared/testdata beside the module root")
		}
		t.Skip("shared test data not found (../shared/testdata beside the module root)")
	}
	return dir
}

// Find returns the shared test data directory, or "" when there is none (fuzz
// seeds use it where a missing corpus is no failure).
func Find() string {
	dir, err := os.Getwd() // the package directory, under go test
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	data := filepath.Join(filepath.Dir(dir), "shared", "testdata")
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		return ""
	}
	return data
}

// Read returns a file of the shared test data, by its path under the directory.
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Unwrapped reads a JSON-lines file of the shared test data whose every line
// wraps a record under key ({"alert": {...}}, {"event": {...}}) and returns the
// records, one per line, as their tools write them.
func Unwrapped(t testing.TB, rel, key string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(Dir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var w map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			t.Fatal(err)
		}
		out.Write(w[key])
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
