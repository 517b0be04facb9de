//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k8sm/k8sm/agent/executor"
	"github.com/k8sm/k8sm/agent/kubenode"
	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
)

// nodeStarter wires the real node side for the executor: the Docker
// adapter, pod cgroups below the executor's Mesos cgroup, the pod manager,
// and the reaping of containers of dead executors.
func nodeStarter(o *executorOptions, sandbox, agentEndpoint string, api func() *nodeapi.Server, log *slog.Logger) executor.StartNode {
	return func(ctx context.Context, id executor.Identity, report executor.Report) (executor.Node, error) {
		mgr, cg, info, err := startPods(ctx, o, sandbox, agentEndpoint, id, report, log)
		if err != nil {
			return executor.Node{}, err
		}
		api().SetNode(nodeapi.Node{Name: id.Agent.Hostname, CgroupPath: cg.Parent(), Stats: cg.StatsOf, Logs: mgr.Logs, Streams: mgr})
		node := executor.Node{Pods: mgr}
		if o.kubeconfig == "" {
			log.Info("no --kubeconfig: Mesos-only mode, pod status travels only in Mesos updates; no kubelet API")
			return node, nil
		}
		cs, err := kubeClient(o)
		if err != nil {
			return executor.Node{}, err
		}
		ip := hostIP(o, agentEndpoint)
		port, err := startKubelet(ctx, &o.kubelet, cs, api(), id.Agent.Hostname, ip, log)
		if err != nil {
			return executor.Node{}, err
		}
		host := kubenode.ReadHost("/")
		host.KernelVersion, host.OSImage, host.DockerVersion = info.KernelVersion, info.OperatingSystem, info.ServerVersion
		rep, err := startReporter(ctx, cs, id, ip, port, kubenode.SystemInfo(host, version), log)
		if err != nil {
			return executor.Node{}, err
		}
		node.PodStatus, node.MirrorPod = rep.PodStatus, rep.Mirror
		return node, nil
	}
}

func hostIP(o *executorOptions, agentEndpoint string) string {
	if o.hostIP != "" {
		return o.hostIP
	}
	h, _, _ := net.SplitHostPort(agentEndpoint)
	return h
}

// startPods brings up Docker, the pod cgroups and the pod manager; it
// returns what Docker told of itself.
func startPods(ctx context.Context, o *executorOptions, sandbox, agentEndpoint string, id executor.Identity, report executor.Report, log *slog.Logger) (*pods.Manager, *cgroups.Manager, runtime.Info, error) {
	rt, err := runtime.New(runtime.Config{Endpoint: o.dockerEndpoint}, log)
	if err != nil {
		return nil, nil, runtime.Info{}, err
	}
	info, err := rt.Info(ctx)
	if err != nil {
		return nil, nil, runtime.Info{}, fmt.Errorf("docker at %s: %w", o.dockerEndpoint, err)
	}
	if err := cgroups.CheckDockerDriver(info.CgroupDriver); err != nil {
		return nil, nil, runtime.Info{}, err
	}
	unified := cgroups.HostUnified()
	paths, err := cgroups.Self("/proc")
	if err != nil {
		return nil, nil, runtime.Info{}, err
	}
	parent, err := paths.MesosContainer(unified, o.cgroupRoot)
	if errors.Is(err, cgroups.ErrNotBelowRoot) {
		err = fmt.Errorf("--cgroup-root %s: %w", o.cgroupRoot, err)
	}
	if err != nil {
		return nil, nil, runtime.Info{}, err
	}
	cg, err := cgroups.New(cgroups.Config{Root: "/sys/fs/cgroup", Unified: unified, Parent: parent})
	if err != nil {
		return nil, nil, runtime.Info{}, err
	}
	if err := cg.EnterLeaf(os.Getpid()); err != nil {
		return nil, nil, runtime.Info{}, err
	}
	hostIP := hostIP(o, agentEndpoint)
	owner := runtime.Owner{FrameworkID: id.FrameworkID, ExecutorID: id.ExecutorID, AgentID: id.AgentID, ContainerID: id.ContainerID}
	mgr := pods.NewManager(pods.ManagerConfig{Worker: pods.WorkerConfig{
		Spec:         pods.SpecOptions{Owner: owner, HostIP: hostIP, BindIP: o.bindIP, PauseImage: o.pauseImage, VolumeRoot: filepath.Join(sandbox, "pods")},
		DockerDriver: info.CgroupDriver,
	}}, rt, pods.CgroupsOf(cg), log, report)
	go func() {
		if err := mgr.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("pod manager ended", "err", err)
		}
	}()
	// A new executor owns no pod yet: every container of an earlier
	// executor container of this framework is an orphan.
	if _, err := mgr.Adopt(ctx, nil); err != nil {
		log.Warn("adopt at start", "err", err)
	}
	// Then a level-triggered reaper: containers of dead executor
	// containers, or of tasks no worker runs.
	r := &pods.Reaper{RT: rt, Log: log, AgentID: id.AgentID, FrameworkID: id.FrameworkID, Live: id.ContainerID, Tasks: mgr.Tasks}
	r.Start(ctx, o.reapInterval)
	return mgr, cg, info, nil
}

// startReporter registers this agent as a Node (named after its
// hostname, the node identity's name) and starts the lease, NodeReady
// heartbeat and pod status writes.
func startReporter(ctx context.Context, cs kubernetes.Interface, id executor.Identity, ip string, kubeletPort int32, info v1.NodeSystemInfo, log *slog.Logger) (*kubenode.Reporter, error) {
	name := id.Agent.Hostname
	labels, skipped := podspec.NodeLabels(name, id.Agent.Attributes)
	for _, a := range skipped {
		log.Warn("agent attribute not usable as a Node label; skipped", "attribute", a)
	}
	milli, mem, _ := podspec.FromMesos(id.Agent.Resources)
	emilli, emem, _ := podspec.FromMesos(id.Executor.Resources)
	capacity := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewMilliQuantity(milli-emilli, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(mem-emem, resource.BinarySI),
		v1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
	rep, err := kubenode.New(kubenode.Config{NodeName: name, Labels: labels, Capacity: capacity, HostIP: ip, KubeletPort: kubeletPort, NodeInfo: info}, cs, log)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := rep.Run(ctx); err != nil {
			log.Error("API server reporter ended: no Node and pod status updates", "err", err)
		}
	}()
	return rep, nil
}

// kubeClient is the node's API server client, from --kubeconfig.
func kubeClient(o *executorOptions) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", o.kubeconfig, err)
	}
	// The kubelet's --kube-api-qps/--kube-api-burst defaults: client-go's
	// own (5/10) made a burst of 100 pods wait for their status writes.
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", o.kubeconfig, err)
	}
	return cs, nil
}
