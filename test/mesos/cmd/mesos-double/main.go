package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/k8sm/k8sm/test/mesos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newCommand(os.Stderr, nil).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mesos-double: %v\n", err)
		os.Exit(2)
	}
}

type options struct {
	master, agent, workDir, resources, attributes, hostname string
	cgroupRoot, isolation, logLevel, agentsFile             string
	grace, registration, reregistration                     time.Duration
	heartbeat, allocation                                   time.Duration
	executorAuth                                            bool
}

// newCommand builds the command; ready, when set, is called with the
// running master once both sides listen (tests use it).
func newCommand(logOut io.Writer, ready func(*mesos.Master)) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "mesos-double",
		Short: "Run a Mesos master + agent(s) test double",
		Long: `mesos-double runs a Mesos master and one agent that speak the real v1 HTTP
APIs (/api/v1/scheduler on --master, /api/v1/executor on --agent), launch
executors as real processes in real cgroups, and enforce the executor
shutdown grace period by killing the executor's cgroup. GET /state on the
master shows frameworks, tasks, agents and executors as JSON.

It is a test tool for machines where no real Mesos can be installed. On
SIGINT or SIGTERM it destroys every executor container it made and exits.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o, logOut, ready)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.master, "master", "127.0.0.1:5050", "address of the master's /api/v1/scheduler and /state (IPv4: mesos-go dials from 0.0.0.0)")
	f.StringVar(&o.agent, "agent", "127.0.0.1:5051", "address of the agent's /api/v1/executor (MESOS_AGENT_ENDPOINT)")
	f.StringVar(&o.workDir, "work-dir", "", "agent work directory holding the executor sandboxes (required)")
	f.StringVar(&o.resources, "resources", "cpus:2;mem:4096;ports:[31000-32000]", "agent resources, Mesos --resources syntax")
	f.StringVar(&o.attributes, "attributes", "", "agent attributes, Mesos --attributes syntax (e.g. 'rack:r1;zone:z1')")
	f.StringVar(&o.hostname, "hostname", "", "agent hostname in offers and AgentInfo (default: this host's name)")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "mesos", "the agent's --cgroups_root: executors run in /<root>/<container-id>")
	f.StringVar(&o.isolation, "isolation", "cgroups", "cgroups (LinuxLauncher: executor cgroups, freezer kill; needs root) or posix (process groups)")
	f.DurationVar(&o.grace, "executor-shutdown-grace-period", 5*time.Second, "time an executor has after SHUTDOWN before its container is destroyed")
	f.DurationVar(&o.registration, "executor-registration-timeout", time.Minute, "time a new executor has to SUBSCRIBE before its container is destroyed")
	f.DurationVar(&o.reregistration, "executor-reregistration-timeout", 2*time.Second, "time executors have to re-SUBSCRIBE after an agent restart (also MESOS_SUBSCRIPTION_BACKOFF_MAX; at most 15s)")
	f.DurationVar(&o.heartbeat, "heartbeat-interval", 15*time.Second, "period of HEARTBEAT events to schedulers")
	f.DurationVar(&o.allocation, "allocation-interval", time.Second, "period of the allocator's offer rounds")
	f.BoolVar(&o.executorAuth, "authenticate-executors", false, "give executors MESOS_EXECUTOR_AUTHENTICATION_TOKEN and require it on every call")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.agentsFile, "agents", "", `YAML list of agents to run instead of the one --agent (each: hostname, addr, netns,
cgroupRoot, workDir, resources, attributes, env); an agent with a netns (a path
such as /var/run/netns/node1) listens and starts its executors in it`)
	return cmd
}

func run(ctx context.Context, o options, logOut io.Writer, ready func(*mesos.Master)) error {
	if o.workDir == "" && o.agentsFile == "" {
		return errors.New("--work-dir is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	var cgroups bool
	switch o.isolation {
	case "cgroups":
		cgroups = true
	case "posix":
	default:
		return fmt.Errorf("--isolation %q: want cgroups or posix", o.isolation)
	}
	res, err := mesos.ParseResources(o.resources)
	if err != nil {
		return fmt.Errorf("--resources: %w", err)
	}
	attrs, err := mesos.ParseAttributes(o.attributes)
	if err != nil {
		return fmt.Errorf("--attributes: %w", err)
	}
	if o.hostname == "" {
		if o.hostname, err = os.Hostname(); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	m, err := mesos.NewMaster(mesos.MasterConfig{Addr: o.master, HeartbeatInterval: o.heartbeat, AllocationInterval: o.allocation, Log: log})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	defer m.Close()
	base := mesos.AgentConfig{
		Addr: o.agent, Hostname: o.hostname, Resources: res, Attributes: attrs, WorkDir: o.workDir,
		Cgroups: cgroups, CgroupRoot: o.cgroupRoot, ExecutorAuth: o.executorAuth,
		ExecutorShutdownGracePeriod: o.grace, ExecutorRegistrationTimeout: o.registration,
		ExecutorReregistrationTimeout: o.reregistration, ExecutorEnv: os.Environ(),
	}
	agents := []mesos.AgentConfig{base}
	if o.agentsFile != "" {
		if agents, err = readAgents(o.agentsFile, base); err != nil {
			return err
		}
	}
	for _, cfg := range agents {
		a, err := m.AddAgent(cfg)
		if err != nil {
			return fmt.Errorf("agent %s: %w", cfg.Hostname, err)
		}
		log.Info("agent up", "hostname", cfg.Hostname, "id", a.ID(), "netns", cfg.NetNS)
	}
	log.Info("mesos-double ready", "scheduler_api", m.SchedulerURL(), "state", "http://"+m.Addr()+"/state")
	if ready != nil {
		ready(m)
	}
	<-ctx.Done()
	log.Info("mesos-double stopping: destroying every executor container")
	return nil
}

// agentSpec is one entry of --agents.
type agentSpec struct {
	Hostname   string   `json:"hostname"`
	Addr       string   `json:"addr"`
	NetNS      string   `json:"netns"`
	CgroupRoot string   `json:"cgroupRoot"`
	WorkDir    string   `json:"workDir"`
	Resources  string   `json:"resources"`
	Attributes string   `json:"attributes"`
	Env        []string `json:"env"`
}

// readAgents reads --agents: each entry overrides base; env is added to
// this process's environment. Errors name the file and the entry.
func readAgents(path string, base mesos.AgentConfig) ([]mesos.AgentConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--agents: %w", err)
	}
	var specs []agentSpec
	if err := yaml.UnmarshalStrict(b, &specs); err != nil {
		return nil, fmt.Errorf("--agents %s: %w", path, err)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("--agents %s: no agents", path)
	}
	var out []mesos.AgentConfig
	for i, s := range specs {
		where := fmt.Sprintf("--agents %s: agent %d", path, i)
		if s.Hostname == "" || s.Addr == "" || s.WorkDir == "" {
			return nil, fmt.Errorf("%s: hostname, addr and workDir are required", where)
		}
		c := base
		c.Hostname, c.Addr, c.NetNS, c.WorkDir = s.Hostname, s.Addr, s.NetNS, s.WorkDir
		if s.CgroupRoot != "" {
			c.CgroupRoot = s.CgroupRoot
		}
		if s.Resources != "" {
			if c.Resources, err = mesos.ParseResources(s.Resources); err != nil {
				return nil, fmt.Errorf("%s: resources: %w", where, err)
			}
		}
		if s.Attributes != "" {
			if c.Attributes, err = mesos.ParseAttributes(s.Attributes); err != nil {
				return nil, fmt.Errorf("%s: attributes: %w", where, err)
			}
		}
		for _, e := range s.Env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return nil, fmt.Errorf("%s: env %q: want NAME=value", where, e)
			}
		}
		c.ExecutorEnv = append(append([]string(nil), base.ExecutorEnv...), s.Env...)
		out = append(out, c)
	}
	return out, nil
}
