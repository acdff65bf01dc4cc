package simulate

import (
	"net/url"
	"strconv"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
)

// Operators: with Config.Operators set, people exec into running pods all day,
// to give session attribution something hard to get right. Now and then two of
// them open the same shell in the same pod within milliseconds of each other,
// and some run the very command the pod's exec probe runs, so that a probe and a
// person are side by side. Stats.SessionUsers records who really started each
// session, for measuring attribution against.

// operatorCommands are what people exec; the pod's own probe command is added.
var operatorCommands = [][]string{{"sh"}, {"bash"}, {"sh", "-c", "cat /etc/resolv.conf"}, {"ls", "-la", "/tmp"}}

// operatorSteps are what they then type in a shell.
var operatorSteps = [][]string{{"id"}, {"ps", "aux"}, {"env"}, {"cat", "/etc/hostname"}, {"ls", "/app"}}

func (s *sim) planOperators() {
	if s.cfg.Operators <= 0 {
		return
	}
	r := s.ops
	var people []*principal
	for i, name := range []string{"ana", "ben", "chen", "dana", "eli", "fay"} {
		people = append(people, &principal{user: authnv1.UserInfo{Username: name, Groups: []string{"sre", "system:authenticated"}},
			src: []string{"10.8.1." + strconv.Itoa(10+i)}, agent: "kubectl/" + kubeVersion + " (linux/amd64) kubernetes/8adc0f0",
			allow: annotations("allow", rbacReason("RoleBinding", "sre-exec", "ClusterRole", "pod-exec", "Group", "sre"))})
	}
	period := time.Duration(float64(time.Hour) / s.cfg.Operators)
	s.every(s.start+int64(period), period, period/2, r, func(at int64) bool {
		s.operatorExec(at, people)
		return true
	})
}

func (s *sim) operatorExec(at int64, people []*principal) {
	r := s.ops
	w := s.c.workloads[r.IntN(len(s.c.workloads))]
	pd, ok := pick(r, w.ready)
	if !ok {
		return
	}
	choices := operatorCommands
	if len(w.probe) > 0 {
		choices = append(choices[:len(choices):len(choices)], w.probe[0].argv)
	}
	argv := choices[r.IntN(len(choices))]
	n := 1
	if r.IntN(10) < 3 {
		n = 2 // a colleague at the same moment
	}
	first := r.IntN(len(people))
	for i := 0; i < n; i++ {
		who := people[(first+i)%len(people)]
		a := argv
		if i > 0 && r.IntN(2) == 0 {
			a = choices[r.IntN(len(choices))]
		}
		reqAt := at + int64(i)*r.Int64N(int64(40*time.Millisecond))
		q := url.Values{}
		for _, arg := range a {
			q.Add("command", arg)
		}
		q.Set("container", w.container)
		q.Set("stdin", "true")
		q.Set("stdout", "true")
		q.Set("tty", "true")
		req := s.begin(reqAt, who, "get", execURI(pd, q.Encode()), podRef(pd, "exec"), s.api.statusSwitching, true)
		startAt := reqAt + int64(40*time.Millisecond) + r.Int64N(int64(160*time.Millisecond))
		steps := 0
		if a[0] == "sh" || a[0] == "bash" {
			steps = 1 + r.IntN(3)
		}
		// The stream closes when the process exits, a few milliseconds after.
		endAt := startAt + int64(time.Second) + int64(steps)*int64(2*time.Second) + r.Int64N(int64(time.Second))
		closeAfter := int64(2*time.Millisecond) + r.Int64N(int64(30*time.Millisecond))
		s.after(endAt+closeAfter, func(at int64) { s.end(req, at) })
		s.after(startAt, func(at int64) {
			if pd.gone {
				return
			}
			exe := a[0]
			if exe[0] != '/' {
				exe = "/bin/" + exe
			}
			entry := s.execIn(pd, r, at, &pd.shim, cmd{exe: exe, argv: a}, ttyPts0)
			s.stats.SessionUsers[entry.ExecID] = who.user.Username
			s.after(endAt, func(at int64) {
				if !pd.gone {
					s.exit(&pd.at, at, &entry, 0)
				}
			})
			for j := 0; j < steps; j++ {
				st := operatorSteps[r.IntN(len(operatorSteps))]
				s.after(at+int64(j+1)*int64(2*time.Second), func(at int64) {
					if !pd.gone {
						s.execIn(pd, r, at, &entry, cmd{exe: "/bin/" + st[0], argv: st}, ttyPts0)
					}
				})
			}
		})
	}
}
