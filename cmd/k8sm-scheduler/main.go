package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

var errNotImplemented = errors.New("not implemented yet")

type options struct {
	master           string
	kubeconfig       string
	staticPodsConfig string
	executorCPUs     float64
	executorMem      string
	schedulerNames   []string
	showVersion      bool
}

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "k8sm-scheduler: %v\n", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := options{}
	cmd := &cobra.Command{
		Use:   "k8sm-scheduler",
		Short: "Mesos framework scheduler that runs Kubernetes pods on Mesos agents",
		Long: `k8sm-scheduler watches the Kubernetes API server for pods without a node,
pairs each with a Mesos resource offer (cpus, mem, ports), binds it to the
offer's agent and launches a Mesos task run by "k8sm-agent executor".`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.showVersion {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "k8sm-scheduler %s (%s, %s/%s)\n",
					version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return err
			}
			if o.master == "" {
				return fmt.Errorf("--master: required (host:port of the Mesos master)")
			}
			return errNotImplemented
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.master, "master", "", "Mesos master address, host:port")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the scheduler identity (system:kube-scheduler)")
	f.StringVar(&o.staticPodsConfig, "static-pods-config", "",
		"directory of static pod manifests (*.yaml, *.yml, *.json) shipped to every executor")
	f.Float64Var(&o.executorCPUs, "executor-cpus", 0.25, "CPUs reserved for each k8sm executor itself")
	f.StringVar(&o.executorMem, "executor-mem", "64Mi", "memory reserved for each k8sm executor itself (a Kubernetes quantity)")
	f.StringSliceVar(&o.schedulerNames, "scheduler-name", []string{"k8sm-scheduler"},
		"spec.schedulerName values this scheduler serves (repeat or comma-separate; add default-scheduler to take every pod)")
	f.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	return cmd
}
