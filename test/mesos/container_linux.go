package mesos

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"k8s.io/utils/ptr"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/k8sm/k8sm/test/testenv"
)

// cgroupContainer is the LinuxLauncher plus the cgroups/cpu and
// cgroups/mem isolators: /<root>/<container-id> in every v1 hierarchy
// (src/slave/containerizer/mesos/paths.cpp:600), or in the v2 tree with the
// processes in a "leaf" child.
type cgroupContainer struct {
	path string
	v1   cgroup1.Cgroup
	dirs []string
	v2   *cgroup2.Manager
	leaf *cgroup2.Manager
}

func newCgroupContainer(root, id string) (container, error) {
	c := &cgroupContainer{path: "/" + root + "/" + id}
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager("/sys/fs/cgroup", c.path, &cgroup2.Resources{})
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", c.path, err)
		}
		leaf, err := cgroup2.NewManager("/sys/fs/cgroup", c.path+"/leaf", &cgroup2.Resources{})
		if err != nil {
			_ = m.Delete()
			return nil, fmt.Errorf("create %s/leaf: %w", c.path, err)
		}
		c.v2, c.leaf, c.dirs = m, leaf, []string{filepath.Join("/sys/fs/cgroup", c.path)}
		return c, nil
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(c.path), &specs.LinuxResources{})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", c.path, err)
	}
	c.v1 = cg
	for _, s := range cg.Subsystems() {
		if p, ok := s.(interface{ Path(string) string }); ok {
			c.dirs = append(c.dirs, p.Path(c.path))
		}
	}
	sort.Strings(c.dirs)
	return c, nil
}

func (c *cgroupContainer) paths() []string { return c.dirs }

func (c *cgroupContainer) add(pid int) error {
	if c.v2 != nil {
		return c.leaf.AddProc(uint64(pid))
	}
	return c.v1.Add(cgroup1.Process{Pid: pid})
}

// update follows cgroups/subsystems/cpu.cpp:61-138 and memory.cpp:255-430:
// cpu.shares = max(1024 × cpus, 2); CFS quota when enabled; memory soft
// limit max(mem, 32MB); the hard limit (at least 32MB) only ever raised.
func (c *cgroupContainer) update(cpus float64, memMB, hard uint64, cfs bool) (uint64, error) {
	const minMem = 32 << 20
	mem := max(int64(memMB)<<20, minMem)
	shares := uint64(max(1024*cpus, 2))
	newHard := hard
	if uint64(mem) > hard {
		newHard = uint64(mem)
	}
	if c.v2 != nil {
		weight := 1 + ((shares-2)*9999)/262142 // the kernel's shares -> weight mapping
		r := &cgroup2.Resources{CPU: &cgroup2.CPU{Weight: &weight}, Memory: &cgroup2.Memory{Low: &mem}}
		if newHard != hard {
			h := int64(newHard)
			r.Memory.Max = &h
		}
		if cfs {
			q := max(int64(cpus*100000), 1000)
			r.CPU.Max = cgroup2.NewCPUMax(&q, ptr.To(uint64(100000)))
		}
		return newHard, c.v2.Update(r)
	}
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}, Memory: &specs.LinuxMemory{Reservation: &mem}}
	if newHard != hard {
		h := int64(newHard)
		r.Memory.Limit = &h
	}
	if cfs {
		q := max(int64(cpus*100000), 1000)
		r.CPU.Quota, r.CPU.Period = &q, ptr.To(uint64(100000))
	}
	return newHard, c.v1.Update(r)
}

// kill freezes the container, SIGKILLs every process of its subtree and
// thaws it (linux/cgroups.cpp:1440-1480); on v2, cgroup.kill.
func (c *cgroupContainer) kill() {
	if c.v2 != nil {
		if err := c.v2.Kill(); err != nil {
			c.killListed()
		}
		return
	}
	_ = c.v1.Freeze()
	c.killListed()
	_ = c.v1.Thaw()
}

func (c *cgroupContainer) killListed() {
	for _, pid := range c.pids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (c *cgroupContainer) pids() []int {
	var out []int
	if c.v2 != nil {
		ps, _ := c.v2.Procs(true)
		for _, p := range ps {
			out = append(out, int(p))
		}
		return out
	}
	ps, _ := c.v1.Processes(cgroup1.Freezer, true)
	for _, p := range ps {
		out = append(out, p.Pid)
	}
	return out
}

// destroy kills until the subtree is empty, then removes every cgroup
// directory deepest first.
func (c *cgroupContainer) destroy() error {
	deadline := time.Now().Add(20 * time.Second)
	for len(c.pids()) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: processes %v survive SIGKILL", c.path, c.pids())
		}
		c.kill()
		time.Sleep(10 * time.Millisecond)
	}
	var errs []error
	dirs := c.dirs
	if c.v1 != nil {
		// On a hybrid host runc makes the cgroups of Docker containers
		// parented in ours in the unified hierarchy too.
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup/unified", c.path))
	}
	for _, d := range dirs {
		if err := testenv.RemoveCgroupTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
