package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/k8sm/k8sm/agent/diag"
)

type diagOptions struct {
	output         string
	reap           bool
	dryRun         bool
	dockerEndpoint string
	cgroupRoot     string
	cgroupFS       string
	nodeAPIDir     string
	iptables       string
	timeout        time.Duration
	orphanGrace    time.Duration
}

// problemsFound is diag's "a WARN or FAIL was shown": exit code 1, and no
// error message (the report said it all).
type problemsFound struct{}

func (problemsFound) Error() string { return "problems found" }
func (problemsFound) ExitCode() int { return 1 }
func (problemsFound) Silent() bool  { return true }

func newDiagCommand() *cobra.Command {
	o := diagOptions{}
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Show what k8sm runs on this node and what is wrong with it",
		Long: `Show the executors, pods, containers, cgroups, host ports and iptables
chains k8sm has on this node, and list problems (orphan containers, leaked
cgroups, stale K8SM- chains, Docker unreachable or on the systemd cgroup
driver, an executor near its memory limit, containers outside their
executor's cgroup) with what to do about them.

Sources, each optional (a missing one is reported, not fatal): the
executors' node API sockets (--node-api-dir), Docker (k8sm's labels), the
cgroups below the Mesos cgroup root, and iptables-save.

--reap kills and removes what is orphaned: containers with k8sm's labels
whose executor is gone, pod cgroups no pod owns below k8sm executors'
cgroups, dead executors' sockets, and K8SM- chains when no proxy runs.
It never touches anything without k8sm's labels or prefix. --dry-run
prints what --reap would do.

Exit codes: 0 all OK, 1 a WARN or FAIL was shown, 2 diag itself failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "table" && o.output != "json" {
				return fmt.Errorf("-o/--output: want table or json, got %q", o.output)
			}
			if o.dryRun && !o.reap {
				return fmt.Errorf("--dry-run: only with --reap")
			}
			return runDiag(cmd, &o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	f.BoolVar(&o.reap, "reap", false,
		"kill and remove orphan containers, leaked pod cgroups and stale K8SM- chains (only things carrying k8sm labels or prefixes)")
	f.BoolVar(&o.dryRun, "dry-run", false, "with --reap, print what would be removed and change nothing")
	f.StringVar(&o.dockerEndpoint, "docker-endpoint", "unix:///var/run/docker.sock", "Docker Engine API endpoint to inspect")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "mesos", "cgroup below which the Mesos agent creates executor containers")
	f.StringVar(&o.cgroupFS, "cgroup-fs", "/sys/fs/cgroup", "where the cgroup hierarchies are mounted")
	f.StringVar(&o.nodeAPIDir, "node-api-dir", "/run/k8sm/executors", "directory of the executors' node API sockets")
	f.StringVar(&o.iptables, "iptables", "iptables", "iptables command to read K8SM- chains with (iptables, iptables-nft, iptables-legacy); empty skips iptables")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "bound of each call to a source")
	f.DurationVar(&o.orphanGrace, "orphan-grace", diag.OrphanGrace,
		"a k8sm container younger than this is never an orphan (a pod being started; 0: no grace); the executors' reaper uses twice its --reap-interval")
	return cmd
}

func runDiag(cmd *cobra.Command, o *diagOptions) error {
	cfg := diag.Config{APIDir: o.nodeAPIDir, DockerEndpoint: o.dockerEndpoint, CgroupFS: o.cgroupFS, CgroupRoot: o.cgroupRoot,
		Iptables: o.iptables, Timeout: o.timeout, OrphanGrace: o.orphanGrace}
	r := diag.Evaluate(diag.Gather(cmd.Context(), cfg))
	out := cmd.OutOrStdout()
	var acts []diag.Action
	if o.reap {
		acts = diag.Reap(cmd.Context(), cfg, r, o.dryRun)
	}
	if err := write(out, o.output, r, acts, o.reap, o.dryRun); err != nil {
		return err
	}
	failed := false
	for _, a := range acts {
		if a.Err != "" {
			failed = true
		}
	}
	switch {
	case failed:
		return fmt.Errorf("reap: some removals failed (listed above)")
	case o.reap && !o.dryRun:
		return nil // what it found, it removed
	case r.Worst() != diag.OK:
		return problemsFound{}
	}
	return nil
}

func write(out io.Writer, format string, r *diag.Report, acts []diag.Action, reap, dryRun bool) error {
	if format == "json" {
		if !reap {
			return r.WriteJSON(out)
		}
		v := struct {
			*diag.Report
			Actions []diag.Action `json:"actions"`
			DryRun  bool          `json:"dryRun"`
		}{r, acts, dryRun}
		return (&diag.Report{}).WriteAnyJSON(out, v)
	}
	if err := r.WriteTable(out); err != nil {
		return err
	}
	if !reap {
		return nil
	}
	title := "\nREAPED\n"
	if dryRun {
		title = "\nWOULD REAP (dry run)\n"
	}
	if _, err := fmt.Fprint(out, title); err != nil {
		return err
	}
	if len(acts) == 0 {
		_, err := fmt.Fprintln(out, "  nothing to remove")
		return err
	}
	for _, a := range acts {
		status := "done"
		switch {
		case dryRun:
			status = "would"
		case a.Err != "":
			status = "FAILED: " + a.Err
		}
		if _, err := fmt.Fprintf(out, "  %s: %s\n", status, a.What); err != nil {
			return err
		}
	}
	return nil
}
