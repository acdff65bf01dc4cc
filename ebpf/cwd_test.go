package ebpf

import "testing"

// The kernel hands the working directory over innermost name first, each name
// ended by a NUL; joinCwd turns that into the path.
func TestJoinCwd(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"", "/"},
		{"\x00", "/"},
		{"tmp\x00", "/tmp"},
		{"c\x00b\x00a\x00", "/a/b/c"},
		{"c\x00b\x00a", "/a/b/c"},
		{"work dir\x00root\x00", "/root/work dir"},
	} {
		if got := joinCwd([]byte(tc.raw)); got != tc.want {
			t.Errorf("joinCwd(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// The one-entry cache must not hand back a stale directory.
func TestSensorCwdCache(t *testing.T) {
	var s Sensor
	a := []int8{'a', 0}
	b := []int8{'b', 0}
	for _, step := range []struct {
		raw  []int8
		want string
	}{{a, "/a"}, {a, "/a"}, {b, "/b"}, {a, "/a"}} {
		if got := s.cwd(step.raw); got != step.want {
			t.Fatalf("cwd(%v) = %q, want %q", step.raw, got, step.want)
		}
	}
}
