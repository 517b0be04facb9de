package diag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/k8sm/k8sm/agent/runtime"
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
	base := cgroupDir(cfg)
	for _, rel := range r.LeakedCgroups {
		do("remove pod cgroup "+rel, func() error { return removeCgroup(ctx, cfg, base, rel) })
	}
	for _, e := range r.Executors {
		if !e.Alive {
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

// removeCgroup kills what is left in a pod cgroup (in every hierarchy it
// has) and removes its directories, deepest first.
func removeCgroup(ctx context.Context, cfg Config, base, rel string) error {
	if !strings.HasPrefix(rel, "/"+strings.Trim(cfg.CgroupRoot, "/")+"/") || strings.Contains(rel, "..") {
		return fmt.Errorf("refusing to remove %s: not below the Mesos cgroup root", rel)
	}
	dirs := []string{filepath.Join(base, rel)}
	if base != cfg.CgroupFS { // v1: the pod has a directory in every hierarchy
		hs, _ := os.ReadDir(cfg.CgroupFS)
		for _, h := range hs {
			if d := filepath.Join(cfg.CgroupFS, h.Name(), rel); h.Name() != filepath.Base(base) {
				if _, err := os.Stat(d); err == nil {
					dirs = append(dirs, d)
				}
			}
		}
	}
	for _, d := range dirs {
		if err := killTree(ctx, d); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		var all []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, p := range all {
			if err := syscall.Rmdir(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", p, err)
			}
		}
	}
	return nil
}

// killTree SIGKILLs every process of a cgroup tree until none is left.
func killTree(ctx context.Context, dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pids []int
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d processes left in %s", len(pids), dir)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
