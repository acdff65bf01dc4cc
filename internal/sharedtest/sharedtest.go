// Package sharedtest finds the shared real-world test data (Kubernetes audit
// events, Falco and Tetragon exports, ...), which lives beside the repository:
// <module root>/../shared/testdata.
package sharedtest

import (
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
