package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

type diagOptions struct {
	output         string
	reap           bool
	dryRun         bool
	dockerEndpoint string
	cgroupRoot     string
}

func newDiagCommand() *cobra.Command {
	o := diagOptions{}
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Show what k8sm runs on this node and what is wrong with it",
		Long: `Show the executors, pods, containers, cgroups, host ports and iptables
chains k8sm has on this node, and list problems (orphan containers, leaked
cgroups, stale K8SM- chains, Docker unreachable) with what to do about them.

Exit codes: 0 all OK, 1 a WARN or FAIL was shown, 2 diag itself failed.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.output != "table" && o.output != "json" {
				return fmt.Errorf("-o/--output: want table or json, got %q", o.output)
			}
			return fmt.Errorf("diag: %w", errNotImplemented)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	f.BoolVar(&o.reap, "reap", false,
		"kill and remove orphan containers, leaked pod cgroups and stale K8SM- chains (only things carrying k8sm labels or prefixes)")
	f.BoolVar(&o.dryRun, "dry-run", false, "with --reap, print what would be removed and change nothing")
	f.StringVar(&o.dockerEndpoint, "docker-endpoint", "unix:///var/run/docker.sock", "Docker Engine API endpoint to inspect")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "mesos", "cgroup below which the Mesos agent creates executor containers")
	return cmd
}
