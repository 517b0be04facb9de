//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/k8sm/k8sm/agent/executor"
	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
)

// nodeStarter wires the real node side for the executor: the Docker
// adapter, pod cgroups below the executor's Mesos cgroup, the pod manager,
// and the reaping of containers of dead executors.
func nodeStarter(o *executorOptions, sandbox, agentEndpoint string, log *slog.Logger) executor.StartNode {
	return func(ctx context.Context, id executor.Identity, report executor.Report) (executor.Pods, error) {
		rt, err := runtime.New(runtime.Config{Endpoint: o.dockerEndpoint}, log)
		if err != nil {
			return nil, err
		}
		info, err := rt.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("docker at %s: %w", o.dockerEndpoint, err)
		}
		if _, err := cgroups.DockerParent("/probe", info.CgroupDriver); err != nil {
			return nil, err
		}
		unified := cgroups.HostUnified()
		paths, err := cgroups.Self("/proc")
		if err != nil {
			return nil, err
		}
		parent, err := paths.Executor(unified)
		if err != nil {
			return nil, err
		}
		// On cgroup v2 Mesos runs the executor in <container>/leaf.
		parent = strings.TrimSuffix(parent, "/leaf")
		if want := "/" + strings.Trim(o.cgroupRoot, "/") + "/"; !strings.HasPrefix(parent+"/", want) {
			return nil, fmt.Errorf("the executor runs in cgroup %s, not below --cgroup-root %s: pods would escape Mesos' accounting", parent, want)
		}
		cg, err := cgroups.New(cgroups.Config{Root: "/sys/fs/cgroup", Unified: unified, Parent: parent})
		if err != nil {
			return nil, err
		}
		if err := cg.EnterLeaf(os.Getpid()); err != nil {
			return nil, err
		}
		hostIP := o.hostIP
		if hostIP == "" {
			hostIP, _, _ = net.SplitHostPort(agentEndpoint)
		}
		owner := runtime.Owner{FrameworkID: id.FrameworkID, ExecutorID: id.ExecutorID, AgentID: id.AgentID, ContainerID: id.ContainerID}
		mgr := pods.NewManager(pods.ManagerConfig{Worker: pods.WorkerConfig{
			Machine:      pods.Config{BackoffBase: 10 * time.Second, BackoffMax: 5 * time.Minute, BackoffReset: 10 * time.Minute},
			Spec:         pods.SpecOptions{Owner: owner, HostIP: hostIP, PauseImage: o.pauseImage, VolumeRoot: filepath.Join(sandbox, "pods")},
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
		r := &pods.Reaper{RT: rt, Log: log, FrameworkID: id.FrameworkID, Live: id.ContainerID,
			Tasks: func() map[string]bool { return map[string]bool{} }}
		if _, err := r.Pass(ctx, time.Now()); err != nil {
			log.Warn("reap at start", "err", err)
		}
		return mgr, nil
	}
}
