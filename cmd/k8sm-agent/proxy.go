package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k8sm/k8sm/proxy"
)

// proxyOptions are the flags of the Service proxy, in the executor and in
// "k8sm-agent proxy".
type proxyOptions struct {
	iptables      string
	minSync       time.Duration
	syncPeriod    time.Duration
	fullSync      time.Duration
	masqueradeBit int
}

func (o *proxyOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.iptables, "iptables", "iptables",
		"iptables command of the node's backend: iptables, iptables-nft or iptables-legacy (its -restore and -save are used beside it)")
	f.DurationVar(&o.minSync, "proxy-min-sync-interval", time.Second,
		"least time between two syncs of the Service rules: changes inside it are batched")
	f.DurationVar(&o.syncPeriod, "proxy-sync-period", 30*time.Second,
		"how often the Service rules are checked (canary chain, jumps) even without changes")
	f.DurationVar(&o.fullSync, "proxy-full-sync-period", time.Hour,
		"how often every Service chain is rewritten even without changes (kube-proxy's is 1h; on iptables-nft a full write of 10,000 services takes tens of seconds)")
	f.IntVar(&o.masqueradeBit, "proxy-masquerade-bit", 13,
		"packet mark bit (0-31) that asks for masquerade; kube-proxy uses 14")
}

func (o *proxyOptions) validate() error {
	if o.minSync <= 0 || o.syncPeriod < o.minSync {
		return fmt.Errorf("--proxy-min-sync-interval %s and --proxy-sync-period %s: want 0 < min <= period", o.minSync, o.syncPeriod)
	}
	if o.fullSync < o.syncPeriod {
		return fmt.Errorf("--proxy-full-sync-period %s: want at least --proxy-sync-period %s", o.fullSync, o.syncPeriod)
	}
	if o.masqueradeBit < 0 || o.masqueradeBit > 31 {
		return fmt.Errorf("--proxy-masquerade-bit: want 0-31, got %d", o.masqueradeBit)
	}
	return nil
}

// runningProxy is a started proxy: Stop ends it and removes its rules.
type runningProxy struct {
	p      *proxy.Proxy
	ipt    *proxy.Exec
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
}

// startProxy programs the node's iptables from the API server's Services
// and k8sm EndpointSlices until Stop.
func startProxy(ctx context.Context, o *proxyOptions, kubeconfig string, reg prometheus.Registerer, log *slog.Logger) (*runningProxy, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("proxy: kubeconfig %s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("proxy: kubeconfig %s: %w", kubeconfig, err)
	}
	ipt, err := proxy.NewExec(o.iptables)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	cfg := proxy.Config{MinSyncInterval: o.minSync, SyncPeriod: o.syncPeriod, FullSyncPeriod: o.fullSync, Render: proxy.RenderOptions{MasqueradeBit: o.masqueradeBit}}
	if reg != nil {
		cfg.Metrics = proxy.NewMetrics(reg)
	}
	log = log.With("component", "proxy")
	p := proxy.New(cfg, ipt, log)
	if ip, err := proxy.NodeIP(); err == nil {
		log.Info("proxy starting", "iptables", o.iptables, "mode", ipt.Mode(), "node_ip", ip.String())
	} else {
		log.Warn("proxy starting; node IP unknown", "iptables", o.iptables, "mode", ipt.Mode(), "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	rp := &runningProxy{p: p, ipt: ipt, cancel: cancel, done: make(chan struct{}), log: log}
	go func() {
		defer close(rp.done)
		if err := proxy.Watch(ctx, cs, p); err != nil {
			if ctx.Err() == nil {
				log.Error("proxy: watching Services and EndpointSlices failed; no Service rules", "err", err)
			}
			return
		}
		_ = p.Run(ctx)
	}()
	return rp, nil
}

// Stop ends the proxy and removes every K8SM- chain and jump.
func (rp *runningProxy) Stop() {
	rp.cancel()
	<-rp.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := proxy.Cleanup(ctx, rp.ipt)
	if err != nil {
		rp.log.Error("proxy: removing the Service rules failed (run k8sm-agent proxy --cleanup)", "err", err)
		return
	}
	rp.log.Info("proxy stopped; Service rules removed", "chains", n)
}

// statusHandler serves the proxy's Status as JSON (the node API's /proxy).
func (rp *runningProxy) statusHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rp.p.Status())
}

func newProxyCommand() *cobra.Command {
	var (
		o          proxyOptions
		cleanup    bool
		kubeconfig string
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the Service proxy alone, or remove its iptables rules with --cleanup",
		Long: `The Service proxy makes ClusterIP:port reach one of a Service's endpoints
(the pods' HostIP:HostPort, from the EndpointSlices k8sm's scheduler writes)
through iptables rules in chains prefixed K8SM-. The executor runs it when it
has a kubeconfig; this command runs it alone until SIGINT or SIGTERM, then
removes its rules.

With --cleanup it only removes every K8SM- chain and every jump to one (for a
node whose executor died without cleaning up) and touches nothing else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if cleanup {
				ipt, err := proxy.NewExec(o.iptables)
				if err != nil {
					return err
				}
				n, err := proxy.Cleanup(cmd.Context(), ipt)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed %d K8SM- chains and the jumps to them\n", n)
				return err
			}
			if kubeconfig == "" {
				return fmt.Errorf("--kubeconfig: required (or --cleanup)")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rp, err := startProxy(ctx, &o, kubeconfig, nil, log)
			if err != nil {
				return err
			}
			<-ctx.Done()
			rp.Stop()
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cleanup, "cleanup", false, "remove every K8SM- chain and jump, then exit")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of an identity that may list and watch Services and EndpointSlices (system:node-proxier)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	o.addFlags(f)
	return cmd
}
