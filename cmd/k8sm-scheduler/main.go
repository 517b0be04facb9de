package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
	"github.com/k8sm/k8sm/scheduler"
	"github.com/k8sm/k8sm/staticpods"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

type options struct {
	master           string
	kubeconfig       string
	staticPodsConfig string
	executorPath     string
	executorArgs     []string
	executorEnv      []string
	executorCPUs     float64
	executorMem      string
	defaultCPULimit  float64
	defaultMemLimit  string
	allowPrivileged  bool
	portStrategy     string
	schedulerNames   []string
	frameworkName    string
	mesosUser        string
	mesosRole        string
	principal        string
	failoverTimeout  time.Duration
	checkpoint       bool
	offerTTL         time.Duration
	refuse           time.Duration
	reconcile        time.Duration
	leaderElect      bool
	stateNamespace   string
	stateName        string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
	listenAddress    string
	logLevel         string
	showVersion      bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newCommand().ExecuteContext(ctx)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "k8sm-scheduler: %v\n", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := options{}
	cmd := &cobra.Command{
		Use:   "k8sm-scheduler",
		Short: "Mesos framework scheduler that runs Kubernetes pods on Mesos agents",
		Long: `k8sm-scheduler watches the Kubernetes API server for pods without a node whose
spec.schedulerName it serves, pairs each with a Mesos resource offer (cpus,
mem, ports), binds it to the offer's agent and launches a Mesos task run by
"k8sm-agent executor". It also creates a Node for each agent it sees, and
writes EndpointSlices (HostIP:HostPort) for Services that select its pods.

Several instances may run: one leads (a Lease in --state-namespace), the
others wait. The framework id is kept in a ConfigMap next to the Lease, so a
new leader re-subscribes as the same framework and no task is killed.
SIGUSR1 makes the leader step down; SIGINT/SIGTERM stop the instance (its
tasks keep running for --failover-timeout).

GET /healthz and /metrics are served on --listen-address.`,
		Example: `  k8sm-scheduler --master 10.0.0.5:5050 --kubeconfig /etc/k8sm/scheduler.kubeconfig \
      --executor-path /usr/local/bin/k8sm-agent --static-pods-config /etc/k8sm/static-pods`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.showVersion {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "k8sm-scheduler %s (%s, %s/%s)\n",
					version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return err
			}
			return run(cmd.Context(), o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.master, "master", "", "host:port (or http://host:port) of the Mesos master (required)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the scheduler's API server identity (default $KUBECONFIG)")
	f.StringVar(&o.staticPodsConfig, "static-pods-config", "",
		"directory of static pod manifests (*.yaml, *.yml, *.json) shipped to every executor")
	f.StringVar(&o.executorPath, "executor-path", "k8sm-agent", "the k8sm-agent binary on the agents (path, or a name the agent's PATH resolves)")
	f.StringArrayVar(&o.executorArgs, "executor-arg", nil,
		"one more argument of \"k8sm-agent executor\" (repeat; e.g. --executor-arg=--kubeconfig=/etc/k8sm/node.kubeconfig); changes the executor id")
	f.StringArrayVar(&o.executorEnv, "executor-env", nil, "NAME=value given to every executor (repeat); changes the executor id")
	f.Float64Var(&o.executorCPUs, "executor-cpus", 0.25, "CPUs reserved for each k8sm executor itself")
	f.StringVar(&o.executorMem, "executor-mem", "64Mi", "memory reserved for each k8sm executor itself (a Kubernetes quantity)")
	f.Float64Var(&o.defaultCPULimit, "default-container-cpu-limit", 0.25, "CPU limit of a container that sets none (passed on to the executors)")
	f.StringVar(&o.defaultMemLimit, "default-container-mem-limit", "64Mi", "memory limit of a container that sets none (passed on to the executors)")
	f.BoolVar(&o.allowPrivileged, "allow-privileged", false, "accept privileged containers (passed on to the executors)")
	f.StringVar(&o.portStrategy, "host-port-strategy", "wildcard", "what a container port with hostPort 0 gets: wildcard (a free offered port) or fixed (none)")
	f.StringSliceVar(&o.schedulerNames, "scheduler-name", []string{"k8sm-scheduler", "default-scheduler"},
		"spec.schedulerName values this scheduler serves (repeat or comma-separate); the default takes every pod that names no scheduler, as the cluster's scheduler does: set only k8sm-scheduler when another scheduler serves default-scheduler")
	f.StringVar(&o.frameworkName, "framework-name", "k8sm", "Mesos framework name")
	f.StringVar(&o.mesosUser, "mesos-user", "root", "Mesos framework user (tasks run as this user on the agents)")
	f.StringVar(&o.mesosRole, "mesos-role", "*", "Mesos role the framework subscribes with")
	f.StringVar(&o.principal, "mesos-principal", "", "Mesos framework principal (empty: none)")
	f.DurationVar(&o.failoverTimeout, "failover-timeout", 7*24*time.Hour, "how long Mesos keeps the framework's tasks running while no scheduler is subscribed")
	f.BoolVar(&o.checkpoint, "checkpoint", true, "framework checkpointing: tasks survive agent restarts")
	f.DurationVar(&o.offerTTL, "offer-ttl", 2*time.Second, "how long an unused offer is held for pods that may come before it is declined")
	f.DurationVar(&o.refuse, "refuse", 5*time.Second, "refuse_seconds filter of declined offers")
	f.DurationVar(&o.reconcile, "reconcile-interval", 5*time.Minute, "period of implicit task reconciliation")
	f.BoolVar(&o.leaderElect, "leader-elect", true, "take part in leader election (off: lead alone; run one instance only)")
	f.StringVar(&o.stateNamespace, "state-namespace", "kube-system", "namespace of the leader Lease and the framework-id ConfigMap")
	f.StringVar(&o.stateName, "state-name", "k8sm-scheduler", "name of the leader Lease and the framework-id ConfigMap")
	f.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "leader Lease duration: how long standbys wait after the leader stops renewing")
	f.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it stops leading")
	f.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to take the Lease")
	f.StringVar(&o.listenAddress, "listen-address", "127.0.0.1:10251", "address of /healthz and /metrics (empty: none)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	return cmd
}

func run(ctx context.Context, o options, logOut io.Writer) error {
	cfg, cs, caller, err := configure(o)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := scheduler.NewMetrics(reg)

	lead := func(ctx context.Context) error {
		s, err := scheduler.New(cfg, cs, caller, m, log)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	}
	// Validate the configuration (static pods, executor) before serving.
	probe, err := scheduler.New(cfg, cs, caller, nil, log)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	identity := host + "_" + uuid.NewString()
	log.Info("k8sm-scheduler starting", "version", version, "identity", identity, "master", o.master,
		"executor_id", probe.ExecutorID(), "names", cfg.Names)

	if o.listenAddress != "" {
		ln, err := net.Listen("tcp", o.listenAddress)
		if err != nil {
			return fmt.Errorf("--listen-address: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() { _ = srv.Close() }()
		log.Info("serving /healthz and /metrics", "addr", ln.Addr().String())
	}
	if !o.leaderElect {
		m.Leader.Set(1)
		return lead(ctx)
	}
	stepDown := make(chan struct{}, 1)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			select {
			case stepDown <- struct{}{}:
			default:
			}
		}
	}()
	return scheduler.Elect(ctx, cs, scheduler.Election{
		Ref: cfg.State, Identity: identity,
		LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
	}, stepDown, m, log, lead)
}

// configure turns the flags into the scheduler's Config, an API server
// client and a Mesos caller; every error names its flag.
func configure(o options) (scheduler.Config, kubernetes.Interface, calls.Caller, error) {
	var cfg scheduler.Config
	if o.master == "" {
		return cfg, nil, nil, errors.New("--master: required (host:port of the Mesos master)")
	}
	url := o.master
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	url = strings.TrimSuffix(url, "/")
	if !strings.HasSuffix(url, "/api/v1/scheduler") {
		url += "/api/v1/scheduler"
	}
	emem, err := resource.ParseQuantity(o.executorMem)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("--executor-mem %q: %w", o.executorMem, err)
	}
	if o.executorCPUs < 0.01 || emem.Value() < 32<<20 {
		return cfg, nil, nil, fmt.Errorf("--executor-cpus %g / --executor-mem %s: Mesos needs at least 0.01 cpus and 32Mi for an executor", o.executorCPUs, o.executorMem)
	}
	dmem, err := resource.ParseQuantity(o.defaultMemLimit)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("--default-container-mem-limit %q: %w", o.defaultMemLimit, err)
	}
	if o.defaultCPULimit <= 0 || dmem.Sign() <= 0 {
		return cfg, nil, nil, errors.New("--default-container-cpu-limit and --default-container-mem-limit must be positive")
	}
	strategy, err := ports.ParseStrategy(o.portStrategy)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("--host-port-strategy: %w", err)
	}
	defaults := podspec.StandardDefaults()
	defaults.CPULimit = *resource.NewMilliQuantity(podspec.MesosMilli(o.defaultCPULimit), resource.DecimalSI)
	defaults.MemLimit = dmem
	policy := podspec.Policy{AllowPrivileged: o.allowPrivileged}
	var static []*v1.Pod
	if o.staticPodsConfig != "" {
		res, err := staticpods.Load(o.staticPodsConfig, staticpods.Options{Policy: policy, Defaults: defaults})
		if err != nil {
			return cfg, nil, nil, fmt.Errorf("--static-pods-config: %w", err)
		}
		static = res.Pods
	}
	// The flags both sides must agree on go to the executor too; they
	// are part of the executor id.
	args := []string{
		"--default-container-cpu-limit=" + fmt.Sprint(o.defaultCPULimit),
		"--default-container-mem-limit=" + o.defaultMemLimit,
		fmt.Sprintf("--allow-privileged=%t", o.allowPrivileged),
	}
	args = append(args, o.executorArgs...)
	for _, e := range o.executorEnv {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return cfg, nil, nil, fmt.Errorf("--executor-env %q: want NAME=value", e)
		}
	}
	kc := o.kubeconfig
	if kc == "" {
		kc = os.Getenv("KUBECONFIG")
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kc}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("--kubeconfig %s: %w", kc, err)
	}
	rc.UserAgent = "k8sm-scheduler/" + version
	rc.QPS, rc.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("--kubeconfig %s: %w", kc, err)
	}
	role := o.mesosRole
	info := mesos.FrameworkInfo{
		Name: o.frameworkName, User: o.mesosUser, Checkpoint: &o.checkpoint,
		FailoverTimeout: ptr.To(o.failoverTimeout.Seconds()),
		Roles:           []string{role},
		Capabilities:    []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}},
	}
	if host, err := os.Hostname(); err == nil {
		info.Hostname = &host
	}
	if o.principal != "" {
		info.Principal = &o.principal
	}
	cfg = scheduler.Config{
		Names: o.schedulerNames, Framework: info,
		Executor: scheduler.ExecutorConfig{Command: o.executorPath, Args: args, Env: o.executorEnv,
			CPUs: o.executorCPUs, MemBytes: emem.Value(), StaticPods: static, Role: role},
		Defaults: defaults, Policy: policy,
		PortStrategy: strategy, OfferTTL: o.offerTTL, RefuseSeconds: o.refuse.Seconds(),
		ReconcileInterval: o.reconcile,
		State:             scheduler.StateRef{Namespace: o.stateNamespace, Name: o.stateName},
	}
	cli := httpcli.New(httpcli.Endpoint(url), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))))
	return cfg, cs, httpsched.NewCaller(cli), nil
}
