package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCommand(os.Stdout).Execute(); err != nil {
		var quiet interface{ Silent() bool }
		if !errors.As(err, &quiet) || !quiet.Silent() {
			fmt.Fprintf(os.Stderr, "k8sm-agent: %v\n", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error to the process exit code. diag reserves 1 for "a
// problem was found", so failures of the tool itself exit 2.
func exitCode(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 2
}

func newRootCommand(out io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "k8sm-agent",
		Short: "The node side of k8sm: runs Kubernetes pods on a Mesos agent",
		Long: `k8sm-agent runs on every Mesos agent that hosts k8sm pods.

The Mesos agent starts "k8sm-agent executor" for k8sm tasks; an operator runs
"k8sm-agent diag" on the agent to see what k8sm has there.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.AddCommand(newExecutorCommand(), newDiagCommand(), newProxyCommand(), newVersionCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the k8sm-agent version and the Go toolchain it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "k8sm-agent %s (%s, %s/%s)\n",
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
