package policy

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/rules"
)

// Evaluator raises policy events for batches of ingested events. It keeps what
// rules need to know beyond one event: each node's processes (for proc.aname and
// proc.pcmdline) and the files written in each container (for
// proc.is_exe_upper_layer), both bounded. The set of policies can be replaced
// while it runs.
type Evaluator struct {
	set atomic.Pointer[Set]

	mu     sync.Mutex // guards the state below; batches are evaluated one at a time
	procs  *generations[procKey, *kubetrail.Process]
	writes *generations[fileKey, *kubetrail.Process]
	// recent holds, for RepeatAfter, when each distinct policy event (policy,
	// rule, where, output) was last raised, and its id: the same event raised
	// again (its batch retried after a failed write) is no repeat.
	recent *generations[string, raisedAt]

	events, held *prometheus.CounterVec
}

type procKey struct{ node, execID string }

type raisedAt struct {
	time time.Time
	id   string
}
type fileKey struct{ container, path string }

// Bounds of the evaluator's memory: each table keeps up to twice this many
// entries (two generations).
const (
	maxProcesses = 1 << 17
	maxWrites    = 1 << 17
	maxRecent    = 1 << 16
)

// NewEvaluator returns an evaluator of set. Metrics are registered on reg when
// it is not nil.
func NewEvaluator(set *Set, reg prometheus.Registerer) (*Evaluator, error) {
	e := &Evaluator{
		procs:  newGenerations[procKey, *kubetrail.Process](maxProcesses),
		writes: newGenerations[fileKey, *kubetrail.Process](maxWrites),
		recent: newGenerations[string, raisedAt](maxRecent),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_policy_events_total", Help: "Policy events raised, by policy and priority.",
		}, []string{"policy", "priority"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubetrail_policy_repeats_held_total", Help: "Policy events not raised because an identical one was raised less than the policy's repeatAfter before.",
		}, []string{"policy"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.events, e.held} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	e.set.Store(set)
	return e, nil
}

// Set returns the policies in force.
func (e *Evaluator) Set() *Set { return e.set.Load() }

// Swap puts a new set of policies in force for the batches that follow.
func (e *Evaluator) Swap(s *Set) {
	e.set.Store(s)
	slog.Info("policies in force", "policies", len(s.Policies), "rules", s.enabledRules())
}

func (s *Set) enabledRules() int {
	n := 0
	for _, r := range s.Rules {
		if r.Enabled {
			n++
		}
	}
	return n
}

// Evaluate returns the policy events that events raise, in their order. Events
// must come in the order they happened per node (as batches do): a process is
// known to its children once its exec was evaluated. The same trigger seen again
// (a retried batch, a later audit stage of one request) raises the same policy
// events, with the same ids, which the store keeps once.
func (e *Evaluator) Evaluate(events []kubetrail.Event) []kubetrail.Event {
	set := e.set.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []kubetrail.Event
	// One input reused for every event: it reaches the rules by pointer, and
	// one per event would be an allocation per event on the ingest path.
	var in rules.Input
	tree, writes := (*processTree)(e), (*fileWrites)(e)
	for i := range events {
		ev := &events[i]
		if ev.Category == kubetrail.CategoryPolicy || ev.Category == kubetrail.CategoryGap {
			continue
		}
		in = rules.Input{Event: ev, Tree: tree, Writes: writes}
		for _, c := range set.engine.Evaluate(&in) {
			for _, m := range set.members[c] {
				if pe, ok := e.raise(&in, c, m); ok {
					out = append(out, pe)
				}
			}
		}
		e.learn(ev)
	}
	return out
}

func (e *Evaluator) raise(in *rules.Input, c *rules.Compiled, m member) (kubetrail.Event, bool) {
	ev := in.Event
	if !inScope(&m.policy.Scope, ev) || rank(c.Rule.Priority) > m.minRank {
		return kubetrail.Event{}, false
	}
	trigger := ev.ID()
	id := kubetrail.PolicyEventID(trigger, m.policy.Name, c.Rule.Name)
	output := c.Output(in)
	if m.repeat > 0 {
		key := m.policy.Name + "\x00" + c.Rule.Name + "\x00" + where(ev) + "\x00" + output
		last, ok := e.recent.get(key)
		if ok && last.id != id && ev.Time.Sub(last.time) < m.repeat && !ev.Time.Before(last.time) {
			e.held.WithLabelValues(m.policy.Name).Inc()
			return kubetrail.Event{}, false
		}
		if !ok || last.id != id {
			e.recent.put(key, raisedAt{ev.Time, id})
		}
	}
	priority := c.Rule.Priority
	if m.severity != "" {
		priority = m.severity
	}
	e.events.WithLabelValues(m.policy.Name, priority).Inc()
	return kubetrail.NewPolicyEvent(ev, kubetrail.Alert{Policy: m.policy.Name, Rule: c.Rule.Name, Priority: priority,
		Source: c.Rule.Source, Output: output, Tags: c.Rule.Tags}), true
}

// where names the place a repeat is counted in: the container, else the pod,
// else the user of a request, else the node.
func where(ev *kubetrail.Event) string {
	switch {
	case ev.ContainerID != "":
		return ev.ContainerID
	case ev.PodUID != "" || ev.PodName != "":
		return ev.Cluster + "/" + ev.Namespace + "/" + ev.PodName + "/" + ev.PodUID
	case ev.Category == kubetrail.CategoryK8s:
		return ev.Cluster + "/user/" + ev.Audit.UserName
	}
	return ev.Cluster + "/node/" + ev.Node
}

// learn records what later events' rules may ask about this one.
func (e *Evaluator) learn(ev *kubetrail.Event) {
	switch ev.Category {
	case kubetrail.CategoryProcess:
		if ev.Type == "execve" && ev.Process.ExecID != "" {
			p := ev.Process // a copy: the batch's slot is reused
			p.Argv = append([]string(nil), ev.Process.Argv...)
			e.procs.put(procKey{ev.Node, p.ExecID}, &p)
		}
	case kubetrail.CategoryFile:
		if ev.ContainerID == "" || ev.Result != "" && ev.Result != "SUCCESS" {
			return
		}
		path := ev.File.Path
		if ev.Type == "rename" {
			path = ev.File.TargetPath
		}
		if ev.Type == "open" || ev.Type == "rename" {
			if w, ok := e.procs.get(procKey{ev.Node, ev.Process.ExecID}); ok {
				e.writes.put(fileKey{ev.ContainerID, path}, w)
			} else {
				p := ev.Process // a copy: the batch's slot is reused
				p.Argv = append([]string(nil), ev.Process.Argv...)
				e.writes.put(fileKey{ev.ContainerID, path}, &p)
			}
		}
	}
}

// processTree and fileWrites answer rules from the evaluator's tables; the
// evaluator's lock is held while rules run.
type processTree Evaluator

func (t *processTree) Process(node, execID string) (*kubetrail.Process, bool) {
	return t.procs.get(procKey{node, execID})
}

type fileWrites Evaluator

func (w *fileWrites) Writer(container, path string) (*kubetrail.Process, bool) {
	return w.writes.get(fileKey{container, path})
}

// generations is a map bounded to about 2×max entries: when the current
// generation is full it becomes the previous one, and the previous one is
// dropped. What is looked up moves to the current generation, so what is in use
// stays.
type generations[K comparable, V any] struct {
	max       int
	cur, prev map[K]V
}

func newGenerations[K comparable, V any](max int) *generations[K, V] {
	return &generations[K, V]{max: max, cur: map[K]V{}, prev: map[K]V{}}
}

func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.prev[k]
	if ok {
		g.put(k, v)
	}
	return v, ok
}

func (g *generations[K, V]) put(k K, v V) {
	if len(g.cur) >= g.max {
		g.prev, g.cur = g.cur, make(map[K]V, g.max/4)
	}
	g.cur[k] = v
}
