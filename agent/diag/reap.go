package diag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/proxy"
)

// Action is one thing Reap does (or, with dry run, would do).
type Action struct {
	What string `json:"what"`
	Done bool   `json:"done"`
	Err  string `json:"error,omitempty"`
}

// Reap removes what the report found orphaned, and only that: containers
// with k8sm's labels whose executor is gone, pod cgroups no pod owns below
// k8sm executors' Mesos cgroups, the sockets of dead executors, and every
// K8SM- iptables chain when no proxy runs. With dryRun it only says what it
// would do.
func Reap(ctx context.Context, cfg Config, r *Report, dryRun bool) []Action {
	var acts []Action
	do := func(what string, fn func() error) {
		a := Action{What: what}
		if !dryRun {
			if err := fn(); err != nil {
				a.Err = err.Error()
			} else {
				a.Done = true
			}
		}
		acts = append(acts, a)
	}
	if len(r.Orphans) > 0 {
		d, err := runtime.New(runtime.Config{Endpoint: cfg.DockerEndpoint, CallTimeout: cfg.timeout()}, slog.New(slog.DiscardHandler))
		for _, o := range r.Orphans {
			do(fmt.Sprintf("remove container %s (%s, pod %s) of dead executor container %s", short(o.ID), o.Name, o.Pod, short(o.ContainerID)), func() error {
				if err != nil {
					return err
				}
				return d.Remove(ctx, o.ID)
			})
		}
		if d != nil {
			_ = d.Close()
		}
	}
	for _, rel := range r.LeakedCgroups {
		do("remove pod cgroup "+rel, func() error { return removeCgroup(ctx, cfg, rel) })
	}
	for _, e := range r.Executors {
		if !e.Alive && !e.Unresponsive {
			do("remove the socket of dead executor container "+short(e.ContainerID)+": "+e.Socket, func() error {
				if err := os.Remove(e.Socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				return nil
			})
		}
	}
	if r.Proxy.Chains > 0 && !r.Proxy.Running && cfg.Iptables != "" {
		do(fmt.Sprintf("remove %d K8SM- iptables chains and the jumps to them", r.Proxy.Chains), func() error {
			ipt, err := proxy.NewExec(cfg.Iptables)
			if err != nil {
				return err
			}
			_, err = proxy.Cleanup(ctx, ipt)
			return err
		})
	}
	return acts
}

// removeCgroup kills what is left in a pod cgroup and removes it from every
// hierarchy (the cgroups package's KillAll and Delete, as the executor
// does for its own pods).
func removeCgroup(ctx context.Context, cfg Config, rel string) error {
	root := "/" + strings.Trim(cfg.CgroupRoot, "/") + "/"
	if !strings.HasPrefix(rel, root) || strings.Contains(rel, "..") {
		return fmt.Errorf("refusing to remove %s: not below the Mesos cgroup root %s", rel, root)
	}
	parent, uid := path.Split(rel)
	_, v1 := os.Stat(filepath.Join(cfg.CgroupFS, "cgroup.controllers"))
	m, err := cgroups.New(cgroups.Config{Root: cfg.CgroupFS, Unified: v1 == nil, Parent: path.Clean(parent)})
	if err != nil {
		return err
	}
	pc, err := m.Load(uid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone meanwhile
	}
	if err != nil {
		return err
	}
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pc.KillAll(kctx); err != nil {
		return err
	}
	return pc.Delete(kctx)
}
