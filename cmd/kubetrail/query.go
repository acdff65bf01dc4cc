package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

// windowFlags select a time window as --since or --from/--to.
type windowFlags struct {
	since string
	from  string
	to    string
}

func (w *windowFlags) register(cmd *cobra.Command, defaultSince string) {
	cmd.Flags().StringVar(&w.since, "since", defaultSince, "how far back to look: 15m, 24h, 7d")
	cmd.Flags().StringVar(&w.from, "from", "", "window start, RFC 3339 (instead of --since)")
	cmd.Flags().StringVar(&w.to, "to", "", "window end, RFC 3339 (default now)")
}

func (w *windowFlags) apply(q *kthttp.Query, cmd *cobra.Command) error {
	if w.from != "" {
		t, err := time.Parse(time.RFC3339Nano, w.from)
		if err != nil {
			return kubetrail.ErrorAt(kubetrail.EINVALID, "--from", "%q is not an RFC 3339 time such as 2026-11-27T10:00:00Z", w.from)
		}
		q.From = t
	} else if w.since != "" {
		d, err := kthttp.ParseDuration(w.since)
		if err != nil {
			return kubetrail.ErrorAt(kubetrail.EINVALID, "--since", "%v", err)
		}
		q.Since = d
	}
	if w.to != "" {
		t, err := time.Parse(time.RFC3339Nano, w.to)
		if err != nil {
			return kubetrail.ErrorAt(kubetrail.EINVALID, "--to", "%q is not an RFC 3339 time", w.to)
		}
		q.To = t
	}
	return nil
}

// filterQuery connects to the server and builds the query a command's optional
// FILTER argument and window flags say.
func filterQuery(cmd *cobra.Command, c *clientFlags, w *windowFlags, args []string, limit int) (*kthttp.Client, kthttp.Query, error) {
	q := kthttp.Query{Limit: limit}
	client, err := c.client()
	if err != nil {
		return nil, q, err
	}
	if len(args) == 1 {
		q.Filter = args[0]
	}
	return client, q, w.apply(&q, cmd)
}

func checkOutput(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return kubetrail.ErrorAt(kubetrail.EINVALID, "-o", "output format %q is not one of %s", o, strings.Join(allowed, ", "))
}

func newQueryCommand() *cobra.Command {
	var (
		c       clientFlags
		w       windowFlags
		limit   int
		output  string
		all     bool
		reverse bool
	)
	cmd := &cobra.Command{
		Use:   "query [FILTER]",
		Short: "Search the trail with a filter in Falco's condition syntax",
		Example: `  kubetrail query 'k8s.ns.name = billing and net.direction = outbound and net.peer.kind = unknown'
  kubetrail query --since 7d 'proc.name = tcpdump'
  kubetrail query -o json 'ka.user.name = john.doe'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "wide", "json", "ndjson", "yaml"); err != nil {
				return err
			}
			client, q, err := filterQuery(cmd, &c, &w, args, limit)
			if err != nil {
				return err
			}
			var events []kubetrail.Event
			for {
				page, err := client.Search(cmd.Context(), q)
				if err != nil {
					return err
				}
				events = append(events, page.Events...)
				if !all || page.Next == "" {
					break
				}
				q.Cursor = page.Next
			}
			if reverse {
				slices.Reverse(events)
			}
			return printEvents(cmd.OutOrStdout(), output, events)
		},
	}
	c.register(cmd)
	w.register(cmd, "24h")
	cmd.Flags().IntVar(&limit, "limit", 100, "events per page (at most 10000)")
	cmd.Flags().BoolVar(&all, "all", false, "follow cursors and print every matching event")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "print oldest first, to read a sequence of events as it happened")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, wide, json, ndjson or yaml")
	return cmd
}

func printEvents(out io.Writer, format string, events []kubetrail.Event) error {
	switch format {
	case "json", "yaml":
		return writeStructured(out, format, ptrs(events))
	case "ndjson":
		enc := json.NewEncoder(out)
		for i := range events {
			if err := enc.Encode(&events[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if format == "wide" {
		fmt.Fprintln(tw, "TIME\tSCOPE\tKIND\tSUMMARY\tID")
	} else {
		fmt.Fprintln(tw, "TIME\tSCOPE\tKIND\tSUMMARY")
	}
	for i := range events {
		e := &events[i]
		sum := summary(e)
		if e.Category != kubetrail.CategoryK8s && e.Audit.UserName != "" {
			// A command or connection of a session a kubectl exec started: who.
			sum += "  [" + e.Audit.UserName + "]"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), scopeOf(e), e.Category, sum)
		if format == "wide" {
			row += "\t" + e.ID()
		}
		fmt.Fprintln(tw, row)
	}
	if len(events) == 0 {
		fmt.Fprintln(tw, "(no events)")
	}
	return tw.Flush()
}

// writeStructured writes v as indented JSON or as YAML, for -o json and -o yaml.
func writeStructured(out io.Writer, format string, v any) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(data)
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}

// ptrs returns pointers to events, whose JSON form has a pointer receiver; never
// nil, so that no events print as [] rather than null.
func ptrs(events []kubetrail.Event) []*kubetrail.Event {
	p := make([]*kubetrail.Event, len(events))
	for i := range events {
		p[i] = &events[i]
	}
	return p
}

// scopeOf names where an event happened: namespace/workload/pod for pods,
// node for host processes, namespace/kind/name for API requests.
func scopeOf(e *kubetrail.Event) string {
	switch {
	case e.Category == kubetrail.CategoryK8s:
		target := e.Audit.Resource
		if e.Audit.Subresource != "" {
			target += "/" + e.Audit.Subresource
		}
		parts := []string{}
		if e.Audit.TargetNamespace != "" {
			parts = append(parts, e.Audit.TargetNamespace)
		}
		if e.Audit.TargetName != "" {
			target += " " + e.Audit.TargetName
		}
		return strings.Join(append(parts, target), "/")
	case e.ContainerID == "":
		return "host " + e.Node
	}
	workload := e.WorkloadName
	if workload == "" {
		workload = "-"
	}
	return fmt.Sprintf("%s/%s/%s", e.Namespace, workload, e.PodName)
}

// summary says in one line what an event is about.
func summary(e *kubetrail.Event) string {
	p := &e.Process
	switch e.Category {
	case kubetrail.CategoryProcess:
		if e.Type == "exit" {
			return fmt.Sprintf("exited %d: %s  (pid %d)", p.ExitCode, p.Cmdline(), p.PID)
		}
		return fmt.Sprintf("%s  (pid %d, parent %s, uid %d)", p.Cmdline(), p.PID, p.ParentName, p.UID)
	case kubetrail.CategoryNetwork:
		n := &e.Network
		arrow := "->"
		if n.Direction == kubetrail.DirectionInbound {
			arrow = "<-"
		}
		peer := n.PeerKind
		if n.PeerName != "" {
			peer += " " + n.PeerNamespace + "/" + n.PeerName
		}
		if peer != "" {
			peer = "  [" + strings.TrimSpace(peer) + "]"
		}
		res := ""
		if e.Result != "" && e.Result != "SUCCESS" {
			res = " " + e.Result
		}
		return fmt.Sprintf("%s %s %s:%d %s %s:%d%s%s  (%s)", e.Type, n.L4Proto, n.LocalIP(), n.LocalPort(), arrow, n.RemoteIP(), n.RemotePort(), peer, res, p.Name)
	case kubetrail.CategoryFile:
		s := fmt.Sprintf("%s %s", e.Type, e.File.Path)
		if e.File.TargetPath != "" {
			s += " -> " + e.File.TargetPath
		}
		return s + fmt.Sprintf("  (%s)", p.Name)
	case kubetrail.CategoryGap:
		return fmt.Sprintf("%d %s records lost by the sensor", e.Lost, e.Type)
	case kubetrail.CategoryPolicy:
		// One line of the table: an output may hold tabs or newlines.
		out := strings.Join(strings.Fields(e.Alert.Output), " ")
		return fmt.Sprintf("%s %s: %s", e.Alert.Priority, e.Alert.Rule, out)
	case kubetrail.CategoryK8s:
		a := &e.Audit
		user := a.UserName
		if a.ImpUserName != "" {
			user += " as " + a.ImpUserName
		}
		ip := ""
		if len(a.SourceIPs) > 0 {
			ip = " from " + a.SourceIPs[0]
		}
		cmd := ""
		if len(a.ExecCommand) > 0 {
			cmd = " command=" + strings.Join(a.ExecCommand, " ")
		}
		return fmt.Sprintf("%s %s%s -> %d%s", user, a.Verb, ip, a.ResponseCode, cmd)
	}
	return e.Type
}

func newScopesCommand() *cobra.Command {
	var (
		c      clientFlags
		w      windowFlags
		by     string
		output string
	)
	cmd := &cobra.Command{
		Use:   "scopes [FILTER]",
		Short: "Count matching events per scope: cluster/namespace/workload/pod, or cluster/node/container",
		Example: `  kubetrail scopes 'proc.name = tcpdump'
  kubetrail scopes --by host 'proc.name = tcpdump'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			if by != kubetrail.GroupByWorkload && by != kubetrail.GroupByHost {
				return kubetrail.ErrorAt(kubetrail.EINVALID, "--by", "%q is not workload or host", by)
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			var q kthttp.Query
			if len(args) == 1 {
				q.Filter = args[0]
			}
			if err := w.apply(&q, cmd); err != nil {
				return err
			}
			nodes, err := client.Scopes(cmd.Context(), q, by)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "table" {
				return writeStructured(out, output, nodes)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tEVENTS")
			var walk func(n *kubetrail.ScopeNode, depth int)
			walk = func(n *kubetrail.ScopeNode, depth int) {
				fmt.Fprintf(tw, "%s%s\t%d\n", strings.Repeat("  ", depth), scopeLabel(n), n.Count)
				for _, ch := range n.Children {
					walk(ch, depth+1)
				}
			}
			for _, n := range nodes {
				walk(n, 0)
			}
			if len(nodes) == 0 {
				fmt.Fprintln(tw, "(no events)")
			}
			return tw.Flush()
		},
	}
	c.register(cmd)
	w.register(cmd, "24h")
	cmd.Flags().StringVar(&by, "by", kubetrail.GroupByWorkload, "grouping: workload (cluster/namespace/workload/pod) or host (cluster/node/container)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func scopeLabel(n *kubetrail.ScopeNode) string {
	name := n.Name
	if name == "" {
		switch n.Level {
		case "namespace":
			name = "(none)"
		case "workload":
			name = "(none)"
		case "pod":
			name = "(none)"
		case "node":
			name = "(API server)"
		case "container":
			name = "(host)"
		default:
			name = "(none)"
		}
	}
	switch {
	case n.Level == "workload" && n.Kind != "":
		return fmt.Sprintf("%s %s/%s", n.Level, n.Kind, name)
	case n.Level == "container" && n.ID != "":
		id := n.ID
		if len(id) > 12 {
			id = id[:12]
		}
		return fmt.Sprintf("%s %s %s (%s)", n.Level, name, id, n.Kind)
	}
	return n.Level + " " + name
}

func newFieldsCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "fields",
		Short: "Print the field reference: every field a filter can use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "markdown"); err != nil {
				return err
			}
			docs := kthttp.FieldDocs()
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				return writeStructured(out, output, docs)
			case "markdown":
				_, err := io.WriteString(out, fieldsMarkdown(docs))
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FIELD\tTYPE\tCATEGORIES\tDESCRIPTION")
			for _, d := range docs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.Type, strings.Join(d.Categories, ","), d.Doc)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or markdown")
	return cmd
}

// fieldsMarkdown renders the reference as docs/fields.md holds it.
func fieldsMarkdown(docs []kthttp.FieldDoc) string {
	var b strings.Builder
	b.WriteString("<!-- Code generated by 'kubetrail fields -o markdown'; DO NOT EDIT. -->\n\n")
	b.WriteString("# Field reference\n\n")
	b.WriteString("Every event is one flat JSON object keyed by these names, and filters use the same names\n")
	b.WriteString("(Falco's condition syntax). Names follow Falco's where Falco has the field. Derived fields are\n")
	b.WriteString("computed from stored ones. A field that does not apply to an event's category is absent, and a\n")
	b.WriteString("comparison on an absent field is false, as in Falco.\n\n")
	b.WriteString("| Field | Type | Categories | Description |\n|---|---|---|---|\n")
	for _, d := range docs {
		name := "`" + d.Name + "`"
		if d.Derived {
			name += " (derived)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, d.Type, strings.Join(d.Categories, ", "), strings.ReplaceAll(d.Doc, "|", "\\|"))
	}
	return b.String()
}
