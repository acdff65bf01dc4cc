package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

func newEventsCommand() *cobra.Command {
	var (
		c      clientFlags
		w      windowFlags
		limit  int
		output string
	)
	cmd := &cobra.Command{
		Use:   "events [FILTER]",
		Short: "List policy events: where a rule of a policy matched what happened, newest first",
		Long: `A policy event is raised as events are ingested, when a Falco rule that a policy selects
matches one of them (its trigger). It keeps the trigger's place and session, so the same
filters find it: by namespace, pod, node, or the user whose kubectl exec the trigger
happened in. 'kubetrail event ID' shows one with the activity around it.`,
		Example: `  kubetrail events
  kubetrail events --since 7d 'policy.priority in (CRITICAL, ERROR, WARNING)'
  kubetrail events 'k8s.ns.name = billing and ka.user.name = john.doe'
  kubetrail events -o json 'policy.tags intersects (T1105)'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			client, q, err := filterQuery(cmd, &c, &w, args, limit)
			if err != nil {
				return err
			}
			page, err := client.PolicyEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "table" {
				return writeStructured(out, output, ptrs(page.Events))
			}
			if err := printPolicyEvents(out, page.Events, terminalWidth(out)); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(out, "(only the newest %d are shown: raise --limit or narrow the window)\n", len(page.Events))
			}
			return nil
		},
	}
	c.register(cmd)
	w.register(cmd, "24h")
	cmd.Flags().IntVar(&limit, "limit", 100, "most policy events to list (at most 10000)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// terminalWidth is the width of the terminal out writes to, $COLUMNS, or 0
// when neither says.
func terminalWidth(out io.Writer) int {
	if f, ok := out.(*os.File); ok && isTerminal(out) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// Output text of a policy event: what the table leaves it when the width is
// not known, and at least.
const (
	outputWidth    = 100
	minOutputWidth = 30
)

// printPolicyEvents prints one line per policy event, the rule's output last,
// cut to what the width leaves (outputWidth characters when it is 0).
func printPolicyEvents(out io.Writer, events []kubetrail.Event, width int) error {
	rows := [][]string{{"TIME", "PRIORITY", "RULE", "POLICY", "WHERE", "USER", "SESSION", "OUTPUT"}}
	for i := range events {
		e := &events[i]
		rows = append(rows, []string{e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Alert.Priority, e.Alert.Rule, e.Alert.Policy,
			whereOf(e), dash(e.Audit.UserName), dash(shortSession(e.SessionID)), oneLine(e.Alert.Output)})
	}
	used := 0
	for col := 0; col < len(rows[0])-1; col++ {
		w := 0
		for _, r := range rows {
			w = max(w, len([]rune(r[col])))
		}
		used += w + 2
	}
	budget := outputWidth
	if width > 0 {
		budget = max(width-used, minOutputWidth)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		r[len(r)-1] = clip(r[len(r)-1], budget)
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if len(events) == 0 {
		fmt.Fprintln(tw, "(no policy events)")
	}
	return tw.Flush()
}

// whereOf names where a policy event's trigger happened: namespace/pod/container
// in a pod, the node outside containers, else the namespace or cluster of a
// Kubernetes request.
func whereOf(e *kubetrail.Event) string {
	switch {
	case e.PodName != "":
		w := e.Namespace + "/" + e.PodName
		if e.ContainerName != "" {
			w += "/" + e.ContainerName
		}
		return w
	case e.Node != "":
		return "node " + e.Node
	case e.Namespace != "":
		return e.Namespace
	case e.Cluster != "":
		return "cluster " + e.Cluster
	}
	return "-"
}

// shortSession shortens a session id (an exec id: boot, pid, start) to its
// distinctive end.
func shortSession(id string) string {
	if r := []rune(id); len(r) > 16 {
		return "…" + string(r[len(r)-15:])
	}
	return id
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine folds whitespace, newlines and tabs among it, to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newEventCommand() *cobra.Command {
	var (
		c             clientFlags
		before, after string
		limit         int
		output        string
	)
	cmd := &cobra.Command{
		Use:   "event ID",
		Short: "Show a policy event and the activity around it: its container, pod or node shortly before and after, and its session",
		Long: `Show a policy event (evt.id policy/...): the rule that matched, its output, where and
who, and then the activity around its trigger as a timeline: every event of the trigger's
container (else its pod, else its node) from --before to --after around it, and every
event of its session whenever it happened. The trigger is marked ▶, the policy event •.`,
		Example: `  kubetrail event policy/3acdc57c5edfc2e7e2300912d8df43b9
  kubetrail event --before 30m --after 1m policy/3acdc57c5edfc2e7e2300912d8df43b9
  kubetrail event -o json $(kubetrail events -o json --limit 1 | jq -r '.[0]["evt.id"]')`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			b, err := parseSpan("--before", before)
			if err != nil {
				return err
			}
			a, err := parseSpan("--after", after)
			if err != nil {
				return err
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			act, err := client.Activity(cmd.Context(), args[0], b, a, limit)
			if err != nil {
				return err
			}
			if output != "table" {
				return writeStructured(cmd.OutOrStdout(), output, act)
			}
			return printActivity(cmd.OutOrStdout(), act, b, a)
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&before, "before", "5m", "how far before the trigger to look: 30s, 5m, 1h, 0")
	cmd.Flags().StringVar(&after, "after", "5m", "how far after the trigger to look: 30s, 5m, 1h, 0")
	cmd.Flags().IntVar(&limit, "limit", kthttp.DefaultActivityLimit, "most events of the window, those closest to the trigger (at most 10000); the session's come on top")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// parseSpan reads --before or --after: a duration, or 0.
func parseSpan(flag, s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d == 0 {
		return 0, nil
	}
	d, err := kthttp.ParseDuration(s)
	if err != nil {
		return 0, kubetrail.ErrorAt(kubetrail.EINVALID, flag, "%v", err)
	}
	return d, nil
}

// printActivity prints the policy event (what, where, who), then the activity
// around it as a timeline with the trigger marked.
func printActivity(out io.Writer, a *kthttp.Activity, before, after time.Duration) error {
	e := a.Event
	al := &e.Alert
	fmt.Fprintf(out, "Policy event %s\n", e.ID())
	fmt.Fprintf(out, "  Rule:     %s (%s, %s rule)\n", al.Rule, al.Priority, al.Source)
	fmt.Fprintf(out, "  Policy:   %s\n", al.Policy)
	if len(al.Tags) > 0 {
		fmt.Fprintf(out, "  Tags:     %s\n", strings.Join(al.Tags, ", "))
	}
	fmt.Fprintf(out, "  Output:   %s\n", oneLine(al.Output))
	fmt.Fprintf(out, "  When:     %s\n", e.Time.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(out, "  Where:    %s\n", placeOf(e))
	who := e.Audit
	if a.Trigger != nil && a.Trigger.Audit.UserName != "" {
		who = a.Trigger.Audit // a request's own user, or a session's
	}
	if who.UserName != "" {
		w := who.UserName
		if who.ImpUserName != "" {
			w += " as " + who.ImpUserName
		}
		if len(who.UserGroups) > 0 {
			w += " (groups " + strings.Join(who.UserGroups, ", ") + ")"
		}
		if len(who.SourceIPs) > 0 {
			w += " from " + strings.Join(who.SourceIPs, ", ")
		}
		if who.UserAgent != "" {
			w += ", " + who.UserAgent
		}
		fmt.Fprintf(out, "  Who:      %s\n", w)
	}
	if a.Trigger != nil {
		fmt.Fprintf(out, "  Trigger:  %s (%s %s): %s\n", a.Trigger.ID(), a.Trigger.Category, a.Trigger.Type, what(a.Trigger))
	} else {
		fmt.Fprintf(out, "  Trigger:  %s (no longer stored)\n", al.Trigger)
	}
	if s := a.Session; s != nil {
		fmt.Fprintf(out, "  Session:  %s, %s; see: kubetrail session %s\n", s.ID, s.Attribution(), s.ID)
	}
	fmt.Fprintln(out)

	scope := map[string]string{"container": "its container", "pod": "its pod", "node": "its node", "user": "its user's activity", "event": "the trigger alone"}[a.Scope]
	if scope == "" {
		scope = a.Scope
	}
	fmt.Fprintf(out, "Activity around it: %s from %s before to %s after the trigger (%s to %s)", scope, before, after,
		a.Window.From.UTC().Format(time.RFC3339), a.Window.To.UTC().Format(time.RFC3339))
	if a.Session != nil {
		fmt.Fprintf(out, ", and all of session %s", a.Session.ID)
	}
	fmt.Fprintf(out, "\n  Filter: %s\n", a.Filter)

	clock := "15:04:05.000"
	if len(a.Events) > 0 {
		first, last := a.Events[0].Time.UTC(), a.Events[len(a.Events)-1].Time.UTC()
		if first.YearDay() != last.YearDay() || first.Year() != last.Year() {
			clock = "01-02 15:04:05.000"
		}
	}
	trigger := al.Trigger
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tTIME\tKIND\tWHAT")
	for _, x := range a.Events {
		mark := ""
		switch x.ID() {
		case trigger:
			mark = "▶"
		case e.ID():
			mark = "•"
		}
		line := what(x)
		if x.Category == kubetrail.CategoryPolicy {
			line = clip(line, outputWidth) // the output is above, in full
		}
		if x.Category != kubetrail.CategoryK8s && x.Audit.UserName != "" {
			line += "  [" + x.Audit.UserName + "]"
		}
		if x.Category != kubetrail.CategoryK8s && whereOf(x) != whereOf(e) {
			line += "  (" + whereOf(x) + ")" // another container of the pod or node
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, x.Time.UTC().Format(clock), x.Category, line)
	}
	if len(a.Events) == 0 {
		fmt.Fprintln(tw, "\t\t\t(no events)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a.Truncated {
		fmt.Fprintln(out, "(more events than --limit: those farthest from the trigger are left out)")
	}
	return nil
}

// placeOf names where an event happened, in full.
func placeOf(e *kubetrail.Event) string {
	var parts []string
	add := func(label, v string) {
		if v != "" {
			parts = append(parts, label+" "+v)
		}
	}
	add("cluster", e.Cluster)
	add("node", e.Node)
	add("namespace", e.Namespace)
	if e.WorkloadName != "" {
		parts = append(parts, e.WorkloadKind+" "+e.WorkloadName)
	}
	add("pod", e.PodName)
	c := e.ContainerName
	if img := e.Image(); img != "" {
		c += " (" + img + ")"
	}
	add("container", c)
	if e.ContainerID == "" && e.Source() == "syscall" {
		parts = append(parts, "on the host")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// what says in one line what an event did: the command line, the connection,
// the file, the request (verb, resource, user) or the rule that matched.
func what(e *kubetrail.Event) string {
	if e.Category != kubetrail.CategoryK8s {
		return summary(e)
	}
	a := &e.Audit
	target := a.Resource
	if a.Subresource != "" {
		target += "/" + a.Subresource
	}
	if a.TargetName != "" {
		target += " " + a.TargetName
	}
	if a.TargetNamespace != "" {
		target += " in " + a.TargetNamespace
	}
	if target == "" {
		target = a.URI
	}
	user := a.UserName
	if a.ImpUserName != "" {
		user += " as " + a.ImpUserName
	}
	s := fmt.Sprintf("%s %s by %s", a.Verb, target, user)
	if len(a.SourceIPs) > 0 {
		s += " from " + a.SourceIPs[0]
	}
	if a.ResponseCode != 0 {
		s += fmt.Sprintf(" -> %d", a.ResponseCode)
	}
	if len(a.ExecCommand) > 0 {
		s += ": " + strings.Join(a.ExecCommand, " ")
	}
	return s
}

func newRulesListCommand() *cobra.Command {
	var (
		c      clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the server's policies and rules: which rules run, for which policies, and why the others do not",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			st, err := client.Policies(cmd.Context())
			if err != nil {
				return err
			}
			if output != "table" {
				return writeStructured(cmd.OutOrStdout(), output, st)
			}
			printWarnings(cmd.ErrOrStderr(), st.Warnings)
			return printPolicyState(cmd.OutOrStdout(), st)
		},
	}
	c.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func newRulesReloadCommand() *cobra.Command {
	var (
		c      clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Have the server read its rule files and policies again",
		Long: `Have the server read its rule files and policies again. If they do not load, the
server says why and keeps the ones it had.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json", "yaml"); err != nil {
				return err
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			st, err := client.ReloadPolicies(cmd.Context())
			if err != nil {
				return err
			}
			if output != "text" {
				return writeStructured(cmd.OutOrStdout(), output, st)
			}
			printWarnings(cmd.ErrOrStderr(), st.Warnings)
			enabled := 0
			for _, r := range st.Rules {
				if r.Enabled {
					enabled++
				}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Reloaded: %d policies, %d rules (%d run) from %d files\n",
				len(st.Policies), len(st.Rules), enabled, len(st.Files))
			return err
		},
	}
	c.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

func printWarnings(w io.Writer, warnings []string) {
	for _, m := range warnings {
		fmt.Fprintln(w, "warning:", m)
	}
}

// printPolicyState prints the policies, then each rule: whether it runs, for
// which policies, and why not.
func printPolicyState(out io.Writer, st kthttp.PolicyState) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tENABLED\tRULES\tSCOPE\tACTIONS")
	for _, p := range st.Policies {
		n := 0
		for _, r := range st.Rules {
			if slices.Contains(r.Policies, p.Name) {
				n++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", p.Name, yesNo(p.Enabled), n, scopeText(p.Scope), dash(strings.Join(p.Actions, ", ")))
	}
	if len(st.Policies) == 0 {
		fmt.Fprintln(tw, "(no policies)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSOURCE\tPRIORITY\tENABLED\tPOLICIES\tREASON")
	for _, r := range st.Rules {
		reason := r.Reason
		if len(r.Missing) > 0 {
			reason = strings.TrimSpace(reason + " (missing " + strings.Join(r.Missing, ", ") + ")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Source, r.Priority, yesNo(r.Enabled), dash(strings.Join(r.Policies, ", ")), dash(reason))
	}
	if len(st.Rules) == 0 {
		fmt.Fprintln(tw, "(no rules)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Files) > 0 {
		fmt.Fprintf(out, "\nRule files: %s\n", strings.Join(st.Files, ", "))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// scopeText says where a policy applies, "everywhere" when its scope does not limit.
func scopeText(s kubetrail.Scope) string {
	var parts []string
	for _, l := range []struct {
		name string
		vals []string
	}{{"clusters", s.Clusters}, {"namespaces", s.Namespaces}, {"workloads", s.Workloads}, {"nodes", s.Nodes}} {
		if len(l.vals) > 0 {
			parts = append(parts, l.name+" "+strings.Join(l.vals, ","))
		}
	}
	if len(parts) == 0 {
		return "everywhere"
	}
	return strings.Join(parts, "; ")
}
