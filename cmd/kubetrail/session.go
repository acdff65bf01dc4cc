package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubetrail/kubetrail"
)

func newSessionsCommand() *cobra.Command {
	var (
		c      clientFlags
		w      windowFlags
		limit  int
		output string
	)
	cmd := &cobra.Command{
		Use:   "sessions [FILTER]",
		Short: "List sessions (kubectl exec, probes, container inits) in which some event matches the filter",
		Long: `A session is one way into a container from outside it: a process the container runtime
started (for kubectl exec, an exec probe, crictl exec, or the container's own init) and
everything it started in turn. Sessions started by kubectl exec carry the Kubernetes user,
groups and source address of the request.`,
		Example: `  kubetrail sessions 'k8s.ns.name = billing'
  kubetrail sessions 'ka.user.name = john.doe'
  kubetrail sessions --since 7d 'proc.name = tcpdump'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			client, q, err := filterQuery(cmd, &c, &w, args, limit)
			if err != nil {
				return err
			}
			sessions, err := client.Sessions(cmd.Context(), q)
			if err != nil {
				return err
			}
			if output != "table" {
				if sessions == nil {
					sessions = []kubetrail.Session{}
				}
				return writeStructured(cmd.OutOrStdout(), output, sessions)
			}
			return printSessions(cmd.OutOrStdout(), sessions)
		},
	}
	c.register(cmd)
	w.register(cmd, "24h")
	cmd.Flags().IntVar(&limit, "limit", 100, "most sessions to list (at most 10000)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func printSessions(out io.Writer, sessions []kubetrail.Session) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tSESSION\tWHO\tPOD\tCONTAINER\tCOMMAND\tCMDS\tCONNS\tFILES")
	for i := range sessions {
		s := &sessions[i]
		start := s.Start
		if start.IsZero() {
			start = s.First
		}
		who := "-"
		if len(s.MaybeUsers) > 0 {
			who = strings.Join(s.MaybeUsers, " or ") + " (ambiguous)"
		}
		if r := s.Request; r != nil {
			who = r.UserName
			if len(r.SourceIPs) > 0 {
				who += " from " + r.SourceIPs[0]
			}
		}
		for _, a := range s.Attachments {
			if who == "-" {
				who = "attached: " + a.UserName
			} else {
				who += ", attached: " + a.UserName
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", start.UTC().Format("2006-01-02T15:04:05.000Z"), s.ID, who,
			s.Namespace+"/"+s.PodName, s.ContainerName, clip(entryCmdline(s), 40), s.Commands, s.Connections, s.FileChanges)
	}
	if len(sessions) == 0 {
		fmt.Fprintln(tw, "(no sessions)")
	}
	return tw.Flush()
}

func entryCmdline(s *kubetrail.Session) string {
	if len(s.EntryArgv) == 0 {
		return s.EntryName
	}
	return strings.Join(s.EntryArgv, " ")
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func newSessionCommand() *cobra.Command {
	var (
		c      clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "session ID",
		Short: "Show who started a session and everything that happened in it, in time order",
		Example: `  kubetrail session $(kubetrail sessions -o json 'ka.user.name = john.doe' | jq -r '.[0]["session.id"]')
  kubetrail session -o json SESSION_ID`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "tree", "json", "yaml"); err != nil {
				return err
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			t, err := client.Trace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output != "tree" {
				return writeStructured(cmd.OutOrStdout(), output, t)
			}
			return printTrace(cmd.OutOrStdout(), t)
		},
	}
	c.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "tree", "output format: tree, json or yaml")
	return cmd
}

// printTrace prints the session's header (who, where, when), then its events in
// time order, each indented by the depth of its process in the session's tree.
func printTrace(out io.Writer, t *kubetrail.Trace) error {
	s := &t.Session
	fmt.Fprintf(out, "Session %s\n", s.ID)
	if r := s.Request; r != nil {
		who := r.UserName
		if r.ImpUserName != "" {
			who += " as " + r.ImpUserName
		}
		fmt.Fprintf(out, "  Who:    %s", who)
		if len(r.UserGroups) > 0 {
			fmt.Fprintf(out, " (groups %s)", strings.Join(r.UserGroups, ", "))
		}
		if len(r.SourceIPs) > 0 {
			fmt.Fprintf(out, " from %s", strings.Join(r.SourceIPs, ", "))
		}
		fmt.Fprintf(out, "\n          %s: %s pods/%s at %s, audit ID %s", r.Command(), r.Verb, r.Subresource,
			r.Time.UTC().Format(time.RFC3339Nano), r.AuditID)
		if r.UserAgent != "" {
			fmt.Fprintf(out, ", %s", r.UserAgent)
		}
		fmt.Fprintln(out)
	} else if len(s.MaybeUsers) > 0 {
		fmt.Fprintf(out, "  Who:    %s\n          (their exec requests fit this session's times equally well; the audit log and the sensor cannot tell which)\n", s.Attribution())
	} else {
		fmt.Fprintln(out, "  Who:    no Kubernetes request started it (an exec probe, crictl exec on the node, or the container's init)")
	}
	for _, a := range s.Attachments {
		fmt.Fprintf(out, "  Attached: %s", a.UserName)
		if len(a.SourceIPs) > 0 {
			fmt.Fprintf(out, " from %s", a.SourceIPs[0])
		}
		fmt.Fprintf(out, " at %s (kubectl attach, audit ID %s): could type into the entry process from then on\n", a.Time.UTC().Format(time.RFC3339Nano), a.AuditID)
	}
	workload := ""
	if s.WorkloadName != "" {
		workload = s.WorkloadKind + " " + s.WorkloadName + ", "
	}
	fmt.Fprintf(out, "  Where:  cluster %s, node %s, namespace %s, %spod %s, container %s", s.Cluster, s.Node, s.Namespace, workload, s.PodName, s.ContainerName)
	if s.Image != "" {
		fmt.Fprintf(out, " (%s)", s.Image)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  When:   %s", s.Start.UTC().Format(time.RFC3339Nano))
	if !s.End.IsZero() {
		fmt.Fprintf(out, " to %s (%s", s.End.UTC().Format(time.RFC3339Nano), s.End.Sub(s.Start).Round(time.Millisecond))
		if s.ExitCode != nil {
			fmt.Fprintf(out, ", exit %d", *s.ExitCode)
		}
		fmt.Fprint(out, ")")
	}
	fmt.Fprintf(out, "; last activity %s\n", s.Last.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(out, "  Entry:  %s\n", entryCmdline(s))
	fmt.Fprintf(out, "  Counts: %d commands, %d connections, %d file changes\n\n", s.Commands, s.Connections, s.FileChanges)

	depth := map[string]int{}
	for i := range t.Events {
		e := &t.Events[i]
		if e.Category != kubetrail.CategoryProcess || e.Type != "execve" {
			continue
		}
		if _, ok := depth[e.Process.ExecID]; ok {
			continue
		}
		if d, ok := depth[e.Process.ParentExecID]; ok && e.Process.ExecID != s.ID {
			depth[e.Process.ExecID] = d + 1
		} else {
			depth[e.Process.ExecID] = 0
		}
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT")
	for i := range t.Events {
		e := &t.Events[i]
		d := depth[e.Process.ExecID]
		line := strings.Repeat("  ", d)
		switch {
		case e.Category == kubetrail.CategoryProcess && e.Type == "execve":
			line += fmt.Sprintf("%s  (pid %d, uid %d)", e.Process.Cmdline(), e.Process.PID, e.Process.UID)
		default:
			line += "  · " + summary(e)
		}
		fmt.Fprintf(tw, "%s\t%s\n", e.Time.UTC().Format("15:04:05.000"), line)
	}
	if len(t.Events) == 0 {
		fmt.Fprintln(tw, "\t(no events stored for this session)")
	}
	if t.Truncated {
		fmt.Fprintf(tw, "\t(only the first %d events are shown)\n", len(t.Events))
	}
	return tw.Flush()
}
