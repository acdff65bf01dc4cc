// Command kubetrail is the activity audit for Kubernetes: the server, the demo,
// and the CLI that ingests and queries the trail.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubetrail/kubetrail"
)

// Set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubetrail:", describe(err))
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubetrail",
		Short: "Activity audit for Kubernetes: who did what, where and when",
		Long: `kubetrail keeps the trail of what happened in a Kubernetes cluster: every command run in
containers, the connections they made and the files they changed, joined with the
Kubernetes API requests (kubectl exec, ...) behind them.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCommand(),
		newAgentCommand(),
		newDemoCommand(),
		newIngestCommand(),
		newQueryCommand(),
		newSessionsCommand(),
		newSessionCommand(),
		newEventsCommand(),
		newEventCommand(),
		newRulesCommand(),
		newScopesCommand(),
		newFieldsCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, args []string) { fmt.Fprintln(cmd.OutOrStdout(), "kubetrail", version) },
		},
	)
	return root
}

func describe(err error) string {
	var e *kubetrail.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

// Exit codes: 1 for errors in what the user asked, 2 for everything else.
func exitCode(err error) int {
	switch kubetrail.ErrorCode(err) {
	case kubetrail.EINVALID, kubetrail.ENOTFOUND, kubetrail.ETOOLARGE, kubetrail.EUNAUTHORIZED:
		return 1
	}
	return 2
}
