package rules_test

import (
	"testing"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/rules"
)

// tree is a node's processes by exec id.
type tree map[string]*kubetrail.Process

func (t tree) Process(_, execID string) (*kubetrail.Process, bool) {
	p, ok := t[execID]
	return p, ok
}

// eval compiles one syscall rule with the condition and reports whether it fires.
func eval(t *testing.T, condition string, in *rules.Input) bool {
	t.Helper()
	rs, err := rules.Load(rules.NamedFile{Name: "t.yaml", Data: []byte(`
- list: shells
  items: [sh, bash]
- list: private
  items: ['"10.0.0.0/8"', "192.168.0.0/16"]
- rule: R
  condition: ` + condition + `
  output: x
  priority: NOTICE
`)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rules.Compile(rs)
	if err != nil {
		t.Fatalf("%s: %v", condition, err)
	}
	if st := eng.Status[0]; !st.Enabled {
		t.Fatalf("%s: disabled: %s", condition, st.Reason)
	}
	return len(eng.Evaluate(in)) == 1
}

// Conditions evaluate as Falco's do, on what kubetrail records.
func TestConditionSemantics(t *testing.T) {
	// curl, started by bash, started by sshd.
	procs := tree{
		"e1": {Name: "sshd", ExePath: "/usr/sbin/sshd", Argv: []string{"sshd"}},
		"e2": {Name: "bash", ExePath: "/bin/bash", Argv: []string{"-bash"}, ParentExecID: "e1"},
	}
	exec := &kubetrail.Event{Category: kubetrail.CategoryProcess, Type: "execve", Seq: 9, ContainerID: "0123456789abcdef0123",
		Process: kubetrail.Process{Name: "curl", ExePath: "/usr/bin/curl", Argv: []string{"curl", "-sSLo", "/tmp/X.tgz", "http://x"},
			ParentName: "bash", ParentExecID: "e2", TTY: 34816}}
	conn := &kubetrail.Event{Category: kubetrail.CategoryNetwork, Type: "connect", Result: "ECONNREFUSED", Seq: 10,
		Network: kubetrail.Network{L4Proto: "tcp", Direction: kubetrail.DirectionOutbound, ClientIP: "10.1.2.3", ClientPort: 40000, ServerIP: "185.220.101.47", ServerPort: 443},
		Process: kubetrail.Process{Name: "curl"}}
	open := &kubetrail.Event{Category: kubetrail.CategoryFile, Type: "open", Result: "SUCCESS", Seq: 11,
		File: kubetrail.File{Path: "/etc/cron.d/job"}, Process: kubetrail.Process{Name: "vi"}}
	in := func(e *kubetrail.Event) *rules.Input { return &rules.Input{Event: e, Tree: procs} }

	tests := []struct {
		cond string
		ev   *kubetrail.Event
		want bool
	}{
		// A field the event has no value for makes every comparison false, and its negation true.
		{"evt.type = execve and proc.cwd = /", exec, false},
		{"evt.type = execve and not proc.cwd = /", exec, true},
		{"evt.type = execve and proc.cwd exists", exec, false},
		{"evt.type = connect and fd.name exists", conn, true},
		// Names of a family of calls read as kubetrail records them.
		{"evt.type in (openat, openat2)", open, true},
		{"evt.type = execveat", exec, true},
		// Lists, nested lists and the container macro's comparison.
		{"evt.type = execve and proc.pname in (shells)", exec, true},
		{"evt.type = execve and container.id != host and container.id = 0123456789ab", exec, true},
		// Ancestry: an index, and any ancestor.
		{"evt.type = execve and proc.aname[0] = curl and proc.aname[1] = bash and proc.aname[2] = sshd", exec, true},
		{"evt.type = execve and proc.aname[3] exists", exec, false},
		{"evt.type = execve and proc.aname = sshd", exec, true},
		{"evt.type = execve and proc.aname in (init, systemd)", exec, false},
		{"evt.type = execve and proc.pcmdline = \"bash\" and proc.pexe = -bash", exec, true},
		// String operators.
		{"evt.type = execve and proc.cmdline icontains x.TGZ", exec, true},
		{"evt.type = execve and proc.exepath glob /usr/*/curl", exec, true},
		{"evt.type = execve and proc.exepath glob /usr/*", exec, true}, // Falco's * crosses "/"
		{"evt.type = execve and proc.exepath pmatch (/usr/bin, /opt)", exec, true},
		{"evt.type = execve and proc.exepath pmatch (/usr/b)", exec, false},
		{"evt.type = execve and proc.args regex \"-s[A-Z]+o .*\"", exec, true},
		{"evt.type = execve and proc.args regex \"-s\"", exec, false}, // the whole value must match
		{"evt.type = execve and proc.tty != 0", exec, true},
		{"evt.type = execve and proc.pname = val(proc.aname[1])", exec, true},
		// Networks and both ends.
		{"evt.type = connect and fd.snet in (private)", conn, false},
		{"evt.type = connect and fd.cnet in (private)", conn, true},
		{"evt.type = connect and fd.net in (private)", conn, true},
		{"evt.type = connect and fd.ip != 10.1.2.3", conn, false}, // one end is
		{"evt.type = connect and fd.ip != 127.0.0.1", conn, true},
		{"evt.type = connect and fd.ip = 185.220.101.47", conn, true},
		// Results, known by their sign.
		{"evt.type = connect and (evt.rawres >= 0 or evt.res = EINPROGRESS)", conn, false},
		{"evt.type = connect and evt.rawres < 0 and fd.num = -1", conn, true},
		{"evt.type = open and evt.is_open_write = true and fd.typechar = f and fd.num >= 0", open, true},
		{"evt.type = open and fd.directory = /etc/cron.d and fd.filename = job", open, true},
	}
	for _, tc := range tests {
		if got := eval(t, tc.cond, in(tc.ev)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.cond, got, tc.want)
		}
	}
}

// A rule that compares a field known only by its sign otherwise than by its
// sign, or names a field kubetrail cannot fill, is disabled and says why.
func TestRulesDisabledNotMisjudged(t *testing.T) {
	tests := []struct{ cond, missing string }{
		{"evt.type = open and fd.num = 3", "fd.num (its value, beyond its sign)"},
		{"evt.type = dup and evt.rawres in (0, 1, 2)", "evt.rawres (its value, beyond its sign)"},
		{"evt.type = open and evt.is_open_read = true", "evt.is_open_read"},
		{"evt.type = execve and ka.user.name = bob", "ka.user.name"}, // a k8s_audit field in a syscall rule
	}
	for _, tc := range tests {
		rs, err := rules.Load(rules.NamedFile{Name: "t.yaml", Data: []byte("- rule: R\n  condition: " + tc.cond + "\n  output: x\n  priority: NOTICE\n")})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := rules.Compile(rs)
		if err != nil {
			t.Fatalf("%s: %v", tc.cond, err)
		}
		st := eng.Status[0]
		if st.Enabled || len(st.Missing) != 1 || st.Missing[0] != tc.missing {
			t.Errorf("%s: enabled %v, missing %v, want disabled for %s", tc.cond, st.Enabled, st.Missing, tc.missing)
		}
	}
}
