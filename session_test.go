package kubetrail

import (
	"maps"
	"testing"
	"time"
)

func TestMatchSessions(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sess := func(id, pod string, ms int, argv ...string) SessionCandidate {
		return SessionCandidate{ID: id, Cluster: "c", Namespace: "billing", PodName: pod, ContainerName: "app", Argv: argv, Start: at(ms)}
	}
	req := func(id, pod string, ms int, argv ...string) ExecRequest {
		return ExecRequest{AuditID: id, Cluster: "c", Namespace: "billing", PodName: pod, Container: "app", Command: argv, Subresource: "exec", Time: at(ms), Code: 101}
	}
	ended := func(s SessionCandidate, ms int) SessionCandidate { s.End = at(ms); return s }
	claim := func(s SessionCandidate, audit string) SessionCandidate { s.ClaimedAuditID = audit; return s }
	completed := func(r ExecRequest, ms int) ExecRequest { r.End = at(ms); return r }
	debug := func(id string, ms int, code int64) ExecRequest {
		return ExecRequest{AuditID: id, Cluster: "c", Namespace: "billing", PodName: "p1", Subresource: "ephemeralcontainers", Verb: "patch", Time: at(ms), Code: code}
	}
	initOf := func(s SessionCandidate, container string) SessionCandidate {
		s.ContainerInit, s.ContainerName = true, container
		return s
	}
	forbidden := req("r-forbidden", "p1", 0, "bash")
	forbidden.Code = 403
	attach := req("r-attach", "p1", 0)
	attach.Subresource = "attach"
	otherContainer := req("r-sidecar", "p1", 0, "bash")
	otherContainer.Container = "sidecar"
	noContainer := req("r-default", "p1", 0, "bash")
	noContainer.Container = ""

	for _, tc := range []struct {
		name     string
		sessions []SessionCandidate
		requests []ExecRequest
		want     map[string]string
	}{
		{"one exec", []SessionCandidate{sess("s1", "p1", 90, "bash")}, []ExecRequest{req("r1", "p1", 0, "bash")}, map[string]string{"s1": "r1"}},
		{"command differs", []SessionCandidate{sess("s1", "p1", 90, "sh")}, []ExecRequest{req("r1", "p1", 0, "bash")}, map[string]string{}},
		{"other pod", []SessionCandidate{sess("s1", "p2", 90, "bash")}, []ExecRequest{req("r1", "p1", 0, "bash")}, map[string]string{}},
		{"outside the window", []SessionCandidate{sess("s1", "p1", 4000, "bash")}, []ExecRequest{req("r1", "p1", 0, "bash")}, map[string]string{}},
		{"node clock a little behind", []SessionCandidate{sess("s1", "p1", -400, "bash")}, []ExecRequest{req("r1", "p1", 0, "bash")}, map[string]string{"s1": "r1"}},
		{"forbidden request starts nothing", []SessionCandidate{sess("s1", "p1", 90, "bash")}, []ExecRequest{forbidden}, map[string]string{}},
		{"attach starts nothing", []SessionCandidate{sess("s1", "p1", 90)}, []ExecRequest{attach}, map[string]string{}},
		{"other container", []SessionCandidate{sess("s1", "p1", 90, "bash")}, []ExecRequest{otherContainer}, map[string]string{}},
		{"default container", []SessionCandidate{sess("s1", "p1", 90, "bash")}, []ExecRequest{noContainer}, map[string]string{"s1": "r-default"}},
		{
			// Both shells started after both requests: either pairing fits the
			// start times as well, so neither session is pinned on one person
			// while they run.
			"two users, same command, 10 ms apart, both running",
			[]SessionCandidate{sess("s1", "p1", 80, "bash"), sess("s2", "p1", 95, "bash")},
			[]ExecRequest{req("r2", "p1", 10, "bash"), req("r1", "p1", 0, "bash")},
			map[string]string{"s1": "r1?r2", "s2": "r2?r1"},
		},
		{
			// Once they exit, their streams close at different times.
			"two users, same command, 10 ms apart, ended",
			[]SessionCandidate{ended(sess("s1", "p1", 80, "bash"), 64000), ended(sess("s2", "p1", 95, "bash"), 30000)},
			[]ExecRequest{completed(req("r2", "p1", 10, "bash"), 30020), completed(req("r1", "p1", 0, "bash"), 64015)},
			map[string]string{"s1": "r1", "s2": "r2"},
		},
		{
			// Started and ended within milliseconds of each other: a guess either way.
			"two users, same command, ended together",
			[]SessionCandidate{ended(sess("s1", "p1", 80, "bash"), 9010), ended(sess("s2", "p1", 95, "bash"), 9015)},
			[]ExecRequest{completed(req("r1", "p1", 0, "bash"), 9030), completed(req("r2", "p1", 10, "bash"), 9031)},
			map[string]string{"s1": "r1?r2", "s2": "r2?r1"},
		},
		{
			// One request a second later: its shell cannot be the first one.
			"same command, a second apart",
			[]SessionCandidate{sess("s1", "p1", 80, "bash"), sess("s2", "p1", 1090, "bash")},
			[]ExecRequest{req("r1", "p1", 0, "bash"), req("r2", "p1", 1000, "bash")},
			map[string]string{"s1": "r1", "s2": "r2"},
		},
		{
			// The runtime started the second request's shell first; the streams
			// closing when each shell exits say which is whose.
			"started out of order, the ends decide",
			[]SessionCandidate{ended(sess("sA", "p1", 95, "bash"), 5005), ended(sess("sB", "p1", 80, "bash"), 9003)},
			[]ExecRequest{completed(req("r1", "p1", 0, "bash"), 5000), completed(req("r2", "p1", 10, "bash"), 9000)},
			map[string]string{"sA": "r1", "sB": "r2"},
		},
		{
			// A stream that closed seconds away from the shell's exit is not its stream.
			"ends too far apart",
			[]SessionCandidate{ended(sess("s1", "p1", 90, "bash"), 20000)},
			[]ExecRequest{completed(req("r1", "p1", 0, "bash"), 5000)},
			map[string]string{},
		},
		{
			// kubectl debug: the new ephemeral container's first process, seconds
			// later; not the app container's, which started long before.
			"kubectl debug",
			[]SessionCandidate{initOf(sess("app", "p1", -600000, "sleep", "3600"), "app"), initOf(sess("dbg", "p1", 4200, "sh"), "debugger-x7k2p"),
				sess("later-exec", "p1", 9000, "sh")},
			[]ExecRequest{debug("r-debug", 0, 200)},
			map[string]string{"dbg": "r-debug"},
		},
		{
			"kubectl debug refused",
			[]SessionCandidate{initOf(sess("dbg", "p1", 4200, "sh"), "debugger-x7k2p")},
			[]ExecRequest{debug("r-debug", 0, 403)},
			map[string]string{},
		},
		{
			// KEP-6035: each shell names its request, which settles what the
			// times cannot.
			"same command at the same moment, claimed",
			[]SessionCandidate{claim(sess("s1", "p1", 80, "bash"), "r2"), claim(sess("s2", "p1", 95, "bash"), "r1")},
			[]ExecRequest{req("r1", "p1", 0, "bash"), req("r2", "p1", 10, "bash")},
			map[string]string{"s1": "r2", "s2": "r1"},
		},
		{
			// A claim that does not fit (another pod's request, forged) counts for nothing.
			"forged claim",
			[]SessionCandidate{claim(sess("s1", "p1", 80, "bash"), "r-elsewhere")},
			[]ExecRequest{req("r1", "p1", 0, "bash"), req("r-elsewhere", "p2", 0, "bash")},
			map[string]string{"s1": "r1"},
		},
		{
			"two users, different commands",
			[]SessionCandidate{sess("s1", "p1", 60, "bash"), sess("s2", "p1", 50, "sh")},
			[]ExecRequest{req("r1", "p1", 0, "bash"), req("r2", "p1", 5, "sh")},
			map[string]string{"s1": "r1", "s2": "r2"},
		},
		{
			// A probe runs the user's command too, just before: it must not take the request.
			"probe with the same command",
			[]SessionCandidate{sess("probe", "p1", -900, "cat", "/tmp/healthy"), sess("s1", "p1", 120, "cat", "/tmp/healthy")},
			[]ExecRequest{req("r1", "p1", 0, "cat", "/tmp/healthy")},
			map[string]string{"s1": "r1"},
		},
		{
			"more requests than sessions",
			[]SessionCandidate{sess("s2", "p1", 2080, "bash")},
			[]ExecRequest{req("r1", "p1", 0, "bash"), req("r2", "p1", 2000, "bash")},
			map[string]string{"s2": "r2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := flat(MatchSessions(tc.sessions, tc.requests, DefaultMatchWindow))
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// The answer must not depend on the order candidates arrived in.
			rs := append([]ExecRequest(nil), tc.requests...)
			ss := append([]SessionCandidate(nil), tc.sessions...)
			for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
				rs[i], rs[j] = rs[j], rs[i]
			}
			for i, j := 0, len(ss)-1; i < j; i, j = i+1, j-1 {
				ss[i], ss[j] = ss[j], ss[i]
			}
			if got := flat(MatchSessions(ss, rs, DefaultMatchWindow)); !maps.Equal(got, tc.want) {
				t.Errorf("reversed input: got %v, want %v", got, tc.want)
			}
		})
	}
}

// flat writes a match as its audit id, followed by "?" and the alternatives when
// it is ambiguous.
func flat(m map[string]Match) map[string]string {
	out := map[string]string{}
	for id, x := range m {
		out[id] = x.AuditID
		for _, alt := range x.Alternatives {
			out[id] += "?" + alt
		}
	}
	return out
}

func TestMatchAttachments(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	init := func(id, container string, start, end time.Duration) SessionCandidate {
		s := SessionCandidate{ID: id, Cluster: "c", Namespace: "billing", PodName: "p1", ContainerName: container, ContainerInit: true, Start: t0.Add(start)}
		if end != 0 {
			s.End = t0.Add(end)
		}
		return s
	}
	sessions := []SessionCandidate{
		init("app-1", "app", -time.Hour, -10*time.Minute), // restarted in place: this one ended
		init("app-2", "app", -10*time.Minute, 0),
		init("side", "sidecar", -time.Hour, 0),
		{ID: "exec", Cluster: "c", Namespace: "billing", PodName: "p1", ContainerName: "app", Start: t0.Add(-time.Minute)},
	}
	attach := func(id, container string, code int64) ExecRequest {
		return ExecRequest{AuditID: id, Cluster: "c", Namespace: "billing", PodName: "p1", Container: container, Subresource: "attach", Verb: "get", Time: t0, Code: code}
	}
	got := MatchAttachments(sessions, []ExecRequest{attach("a-app", "app", 101), attach("a-side", "sidecar", 101), attach("a-denied", "app", 403),
		{AuditID: "an-exec", Cluster: "c", Namespace: "billing", PodName: "p1", Container: "app", Subresource: "exec", Command: []string{"sh"}, Time: t0, Code: 101}})
	if want := map[string]string{"a-app": "app-2", "a-side": "side"}; !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
