package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mesos/mesos-go/api/v1/lib/executor/config"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/k8sm/k8sm/agent/executor"
	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/podspec"
)

// executorOptions are the k8sm-specific executor flags. Everything Mesos
// tells the executor arrives in MESOS_* environment variables instead.
type executorOptions struct {
	defaultCPULimit   float64
	defaultMemLimit   string
	allowPrivileged   bool
	kubeconfig        string
	dockerEndpoint    string
	cgroupRoot        string
	suicideTimeout    time.Duration
	launchGracePeriod time.Duration
	pauseImage        string
	hostIP            string
	bindIP            string
	logLevel          string
	nodeAPIDir        string
	nodeAPIAddress    string
	nodeAPITokenFile  string
	nodeAPICertFile   string
	nodeAPIKeyFile    string
	reapInterval      time.Duration
	goMemoryLimit     string
	proxy             bool
	proxyOpts         proxyOptions
	kubelet           kubeletOptions
}

func newExecutorCommand() *cobra.Command {
	o := executorOptions{}
	cmd := &cobra.Command{
		Use:   "executor",
		Short: "Run as the k8sm Mesos executor (started by the Mesos agent, not by hand)",
		Long: `Run as the custom Mesos executor for k8sm tasks.

The Mesos agent starts this command with the MESOS_* environment (framework,
executor and agent ids, agent endpoint, sandbox, shutdown grace period). Each
task's data is a Kubernetes Pod; the executor runs it as Docker containers
inside the cgroup Mesos assigned to it and reports its status to Mesos and,
with --kubeconfig, to the Kubernetes API server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The agent's environment reaches its executors (Mesos passes
			// its own, or --executor_environment_variables): node-local
			// settings that differ between agents come from there, so
			// that the executor's flags, and hence its id, are the same
			// on every agent.
			if !cmd.Flags().Changed("kubeconfig") {
				o.kubeconfig = os.Getenv("K8SM_KUBECONFIG")
			}
			if !cmd.Flags().Changed("docker-endpoint") {
				if v := os.Getenv("DOCKER_HOST"); v != "" {
					o.dockerEndpoint = v
				}
			}
			if !cmd.Flags().Changed("proxy") {
				o.proxy = o.kubeconfig != ""
			}
			if err := o.validate(); err != nil {
				return err
			}
			return runExecutor(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.Float64Var(&o.defaultCPULimit, "default-container-cpu-limit", 0.25,
		"CPU limit (cores) given to a container that declares neither a CPU limit nor a request")
	f.StringVar(&o.defaultMemLimit, "default-container-mem-limit", "64Mi",
		"memory limit (a Kubernetes quantity) given to a container that declares neither a memory limit nor a request")
	f.BoolVar(&o.allowPrivileged, "allow-privileged", false,
		"accept pods with privileged containers (refused by default, as Pod Security \"baseline\" does)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "",
		"kubeconfig of this node's identity (system:node:<hostname>) (default $K8SM_KUBECONFIG); empty runs in Mesos-only mode, without Node objects or pod status in the API server")
	f.StringVar(&o.dockerEndpoint, "docker-endpoint", "unix:///var/run/docker.sock",
		"Docker Engine API endpoint that runs the pods' containers ($DOCKER_HOST when set)")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "mesos",
		"cgroup below which the Mesos agent creates executor containers (its --cgroups_root)")
	f.DurationVar(&o.suicideTimeout, "suicide-timeout", 20*time.Minute,
		"exit cleanly after running no task for this long")
	f.DurationVar(&o.launchGracePeriod, "launch-grace-period", 5*time.Minute,
		"fail a task with TASK_FAILED when its pod is not running this long after LAUNCH")
	f.StringVar(&o.pauseImage, "pause-image", "registry.k8s.io/pause:3.10",
		"image of each pod's sandbox container, which holds the pod's network namespace and host ports")
	f.StringVar(&o.hostIP, "host-ip", "",
		"the node's IP: pods' status.hostIP and their Service endpoints (default: the address of MESOS_AGENT_ENDPOINT)")
	f.StringVar(&o.bindIP, "host-port-bind-address", "",
		"address pods' host ports are published on (default the --host-ip; 0.0.0.0 for every address)")
	f.StringVar(&o.nodeAPIDir, "node-api-dir", "/run/k8sm/executors",
		"directory of the node API's root-only unix socket <container-id>.sock (/healthz, /pods, /stats/summary, /containerLogs, /metrics); removed on exit")
	f.StringVar(&o.nodeAPIAddress, "node-api-address", "",
		"also serve the node API on this TCP address (host:port), to callers with the bearer token of --node-api-token-file; empty: the unix socket only")
	f.StringVar(&o.nodeAPITokenFile, "node-api-token-file", "",
		"file holding the bearer token TCP callers of the node API must send (required with --node-api-address)")
	f.StringVar(&o.nodeAPICertFile, "node-api-tls-cert-file", "",
		"serve the TCP node API over TLS with this certificate (with --node-api-tls-key-file); without it the token travels in clear text")
	f.StringVar(&o.nodeAPIKeyFile, "node-api-tls-key-file", "", "private key of --node-api-tls-cert-file")
	f.DurationVar(&o.reapInterval, "reap-interval", time.Minute,
		"how often orphan containers are removed (k8sm-labelled containers of dead executors or of tasks not running here, older than twice this)")
	f.StringVar(&o.goMemoryLimit, "go-memory-limit", "48Mi",
		"soft limit of the executor's own Go heap (runtime/debug.SetMemoryLimit; the GC works harder near it), inside the executor's 64 MiB allocation; 0 turns it off; the GOMEMLIMIT environment variable wins")
	f.BoolVar(&o.proxy, "proxy", false,
		"program iptables so that Services' cluster IPs reach their endpoints (default: on when --kubeconfig is given); the rules are removed on exit")
	o.proxyOpts.addFlags(f)
	o.kubelet.addFlags(f)
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr, the sandbox's stderr file)")
	return cmd
}

// runExecutor reads the Mesos environment (mesos-go config.FromEnv: the
// durations are in Mesos' own format, "5secs") and runs the executor until
// SHUTDOWN, the suicide timeout, or the agent being gone for good.
func runExecutor(ctx context.Context, o *executorOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if os.Getenv("GOMEMLIMIT") == "" {
		if q := resource.MustParse(o.goMemoryLimit); q.Sign() > 0 {
			debug.SetMemoryLimit(q.Value())
		}
	}
	env, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("read the Mesos environment (is this started by a Mesos agent?): %w", err)
	}
	d := podspec.StandardDefaults()
	d.CPULimit = *resource.NewMilliQuantity(podspec.MesosMilli(o.defaultCPULimit), resource.DecimalSI)
	d.MemLimit = resource.MustParse(o.defaultMemLimit)
	cfg := executor.Config{
		Mesos:             env,
		AuthToken:         os.Getenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"),
		Policy:            podspec.Policy{AllowPrivileged: o.allowPrivileged},
		Defaults:          d,
		LaunchGracePeriod: o.launchGracePeriod,
		SuicideTimeout:    o.suicideTimeout,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Metrics = executor.NewMetrics(reg)
	// The node API reads the executor; the executor's StartNode hands it
	// the node side once it is up.
	var node *nodeapi.Server
	ex, err := executor.New(cfg, nodeStarter(o, env.Sandbox, env.AgentEndpoint, func() *nodeapi.Server { return node }, log), log)
	if err != nil {
		return err
	}
	node = nodeapi.New(ex, reg)
	api := http.NewServeMux()
	api.Handle("/", node)
	if o.proxy {
		rp, err := startProxy(ctx, &o.proxyOpts, o.kubeconfig, reg, log)
		if err != nil {
			return err
		}
		defer rp.Stop()
		api.HandleFunc("GET /proxy", rp.statusHandler)
	}
	// The Mesos container id is the last element of MESOS_DIRECTORY
	// (src/slave/paths.cpp:291).
	stop, err := serveNodeAPI(filepath.Join(o.nodeAPIDir, filepath.Base(env.Directory)+".sock"), api, log)
	if err != nil {
		return err
	}
	defer stop()
	if o.nodeAPIAddress != "" {
		stopTCP, err := serveNodeAPITCP(o, api, log)
		if err != nil {
			return err
		}
		defer stopTCP()
	}
	log.Info("k8sm executor starting", "version", version, "agent", env.AgentEndpoint, "checkpoint", env.Checkpoint,
		"shutdown_grace_period", env.ExecutorShutdownGracePeriod)
	if err := ex.Run(ctx); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	log.Info("k8sm executor done")
	return nil
}

// serveNodeAPI serves h on a root-only unix socket at path until stop,
// which also removes the socket.
func serveNodeAPI(path string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("node API: %w", err)
	}
	_ = os.Remove(path) // a stale socket of an executor that was killed
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("node API: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("node API: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("node API listening", "socket", path)
	return func() {
		_ = srv.Close()
		_ = os.Remove(path)
	}, nil
}

// serveNodeAPITCP serves h on --node-api-address to callers with the
// bearer token (401 for others), over TLS when a certificate is given.
func serveNodeAPITCP(o *executorOptions, h http.Handler, log *slog.Logger) (stop func(), err error) {
	b, err := os.ReadFile(o.nodeAPITokenFile)
	if err != nil {
		return nil, fmt.Errorf("--node-api-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return nil, fmt.Errorf("--node-api-token-file %s: the file is empty", o.nodeAPITokenFile)
	}
	ln, err := net.Listen("tcp", o.nodeAPIAddress)
	if err != nil {
		return nil, fmt.Errorf("--node-api-address: %w", err)
	}
	srv := &http.Server{Handler: nodeapi.RequireToken(token, h), ReadHeaderTimeout: 10 * time.Second}
	tls := o.nodeAPICertFile != ""
	go func() {
		if tls {
			_ = srv.ServeTLS(ln, o.nodeAPICertFile, o.nodeAPIKeyFile)
		} else {
			_ = srv.Serve(ln)
		}
	}()
	if tls {
		log.Info("node API listening on TCP (TLS, bearer token)", "address", ln.Addr().String())
	} else {
		log.Warn("node API listening on TCP without TLS: the bearer token travels in clear text", "address", ln.Addr().String())
	}
	return func() { _ = srv.Close() }, nil
}

func (o *executorOptions) validate() error {
	if err := o.kubelet.validate(); err != nil {
		return err
	}
	if o.proxy && o.kubeconfig == "" {
		return fmt.Errorf("--proxy: needs --kubeconfig (the Services and EndpointSlices come from the API server)")
	}
	if o.proxy {
		if err := o.proxyOpts.validate(); err != nil {
			return err
		}
	}
	if o.nodeAPIAddress != "" && o.nodeAPITokenFile == "" {
		return fmt.Errorf("--node-api-address: needs --node-api-token-file (anonymous TCP access is refused)")
	}
	if (o.nodeAPICertFile == "") != (o.nodeAPIKeyFile == "") {
		return fmt.Errorf("--node-api-tls-cert-file and --node-api-tls-key-file: give both or neither")
	}
	if o.defaultCPULimit <= 0 {
		return fmt.Errorf("--default-container-cpu-limit: must be > 0, got %v", o.defaultCPULimit)
	}
	q, err := resource.ParseQuantity(o.defaultMemLimit)
	if err != nil {
		return fmt.Errorf("--default-container-mem-limit: %w", err)
	}
	if q.Sign() <= 0 {
		return fmt.Errorf("--default-container-mem-limit: must be > 0, got %s", o.defaultMemLimit)
	}
	if o.dockerEndpoint == "" {
		return fmt.Errorf("--docker-endpoint: must not be empty")
	}
	if q, err := resource.ParseQuantity(o.goMemoryLimit); err != nil || q.Sign() < 0 {
		return fmt.Errorf("--go-memory-limit: want a quantity like 48Mi or 0, got %q", o.goMemoryLimit)
	}
	if o.suicideTimeout <= 0 {
		return fmt.Errorf("--suicide-timeout: must be > 0, got %s", o.suicideTimeout)
	}
	if o.reapInterval <= 0 {
		return fmt.Errorf("--reap-interval: must be > 0, got %s", o.reapInterval)
	}
	if o.launchGracePeriod <= 0 {
		return fmt.Errorf("--launch-grace-period: must be > 0, got %s", o.launchGracePeriod)
	}
	return nil
}
