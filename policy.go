package kubetrail

import "time"

// Policy decides which rules raise policy events, where, and what is done
// with them. A rule belongs to a policy when the policy names it, one of its
// tags or the file it comes from; the policy then raises an event for each event
// the rule matches within its scope.
type Policy struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Enabled     bool     `json:"enabled"`
	Rules       []string `json:"rules,omitempty"`   // rule names
	Tags        []string `json:"tags,omitempty"`    // rules with any of these tags
	Files       []string `json:"files,omitempty"`   // every rule of these rule files (by base name)
	Exclude     []string `json:"exclude,omitempty"` // rules left out although selected
	Scope       Scope    `json:"scope,omitzero"`
	// MinPriority drops matches of rules below this priority; empty keeps all.
	MinPriority string `json:"minPriority,omitempty"`
	// Severity, when set, replaces the rule's priority on the policy's events.
	Severity string   `json:"severity,omitempty"`
	Actions  []string `json:"actions,omitempty"` // names of the actions the events go to
	// RepeatAfter ("10m", the default; "0s" for never) holds back a policy event
	// identical to one the policy raised less than this long before: the same
	// rule, in the same container (or pod, or for the same user), with the same
	// output. An implant beaconing every minute then raises one event per
	// RepeatAfter, not one per beacon; the trail keeps every connection.
	RepeatAfter string `json:"repeatAfter,omitempty"`
}

// DefaultRepeatAfter is a policy's RepeatAfter when it gives none.
const DefaultRepeatAfter = 10 * time.Minute

// Scope limits a policy to events whose trigger happened there. Each list holds
// glob patterns (billing, team-*); an empty list does not limit. Workloads match
// "Kind/name" or the name alone.
type Scope struct {
	Clusters   []string `json:"clusters,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
	Workloads  []string `json:"workloads,omitempty"`
	Nodes      []string `json:"nodes,omitempty"`
}

// RuleStatus says what became of one rule of the loaded rule files.
type RuleStatus struct {
	Name     string   `json:"name"`
	File     string   `json:"file"`
	Source   string   `json:"source"`
	Priority string   `json:"priority"`
	Tags     []string `json:"tags,omitempty"`
	Enabled  bool     `json:"enabled"`
	// Reason says why a rule does not run: disabled in its file, a source
	// kubetrail has no events of, fields it cannot fill (Missing), or no policy
	// selects it.
	Reason   string   `json:"reason,omitempty"`
	Missing  []string `json:"missing,omitempty"`
	Policies []string `json:"policies,omitempty"`
}
