package agent

import "testing"

// Which session a process belongs to, as the processes of a kubectl exec and of
// a container's start appear to the sensor.
func TestSessionOf(t *testing.T) {
	const ctr = "c0ffee"
	shim := &process{name: "containerd-shim", execID: "shim"}
	runcInit := &process{name: "runc:[2:INIT]", exePath: "/usr/sbin/runc", execID: "init", container: ctr}
	runcChild := &process{name: "runc:[1:CHILD]", execID: "child", container: ctr}
	shell := &process{name: "sh", execID: "sh", container: ctr, session: "sh"}
	for _, tc := range []struct {
		name   string
		p      *process
		parent *process
		want   string
	}{
		{"a host process", &process{name: "sshd", execID: "x"}, nil, ""},
		{"exec'd by the runtime from outside the container", &process{name: "bash", execID: "bash", container: ctr}, shim, "bash"},
		{"runc's own stages in the container", &process{name: "runc:[2:INIT]", execID: "y", container: ctr}, runcChild, ""},
		{"the program runc init runs", &process{name: "sh", execID: "z", container: ctr}, runcInit, "z"},
		{"a child of a shell in the container", &process{name: "curl", execID: "curl", container: ctr}, shell, "sh"},
		{"a parent in another container", &process{name: "sh", execID: "w", container: ctr}, &process{name: "sh", container: "other", session: "s2"}, "w"},
		{"an unknown parent", &process{name: "sh", execID: "v", container: ctr}, nil, "v"},
	} {
		if got := sessionOf(tc.p, tc.parent); got != tc.want {
			t.Errorf("%s: session %q, want %q", tc.name, got, tc.want)
		}
	}
}
