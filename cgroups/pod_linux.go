package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config of a Manager.
type Config struct {
	// Root is where the cgroup hierarchies are mounted: /sys/fs/cgroup on
	// a real host, a temporary directory in tests.
	Root string
	// Unified is true on a pure cgroup v2 host; false on v1 and hybrid
	// hosts, whose controllers are all in v1 hierarchies.
	Unified bool
	// Parent is the executor's cgroup (for example /mesos/<container-id>),
	// the same path in every hierarchy. Pods are created below it.
	Parent string
}

// HostUnified reports whether this host's controllers live in cgroup v2.
func HostUnified() bool { return cgroups.Mode() == cgroups.Unified }

// LeafName is the child of the executor cgroup that the executor process
// moves into on cgroup v2 (see EnterLeaf).
const LeafName = "executor"

// Manager creates and finds the pod cgroups below one executor cgroup.
type Manager struct {
	cfg Config
	v1  []cgroup1.Subsystem // every v1 hierarchy under Root (nil on v2)
}

// v1Constructors are the v1 hierarchies a pod cgroup is created in. Docker's
// --cgroup-parent applies to every hierarchy, so the pod cgroup must exist
// (and be removed) in all of them, not only in those that get limits.
var v1Constructors = []struct {
	name string
	make func(root string) cgroup1.Subsystem
}{
	{"cpu", func(r string) cgroup1.Subsystem { return cgroup1.NewCpu(r) }},
	{"cpuacct", func(r string) cgroup1.Subsystem { return cgroup1.NewCpuacct(r) }},
	{"cpuset", func(r string) cgroup1.Subsystem { return cgroup1.NewCpuset(r) }},
	{"memory", func(r string) cgroup1.Subsystem { return cgroup1.NewMemory(r) }},
	{"pids", func(r string) cgroup1.Subsystem { return cgroup1.NewPids(r) }},
	{"freezer", func(r string) cgroup1.Subsystem { return cgroup1.NewFreezer(r) }},
	{"blkio", func(r string) cgroup1.Subsystem { return cgroup1.NewBlkio(r) }},
	{"devices", func(r string) cgroup1.Subsystem { return cgroup1.NewDevices(r) }},
	{"net_cls", func(r string) cgroup1.Subsystem { return cgroup1.NewNetCls(r) }},
	{"net_prio", func(r string) cgroup1.Subsystem { return cgroup1.NewNetPrio(r) }},
	{"perf_event", func(r string) cgroup1.Subsystem { return cgroup1.NewPerfEvent(r) }},
	{"rdma", func(r string) cgroup1.Subsystem { return cgroup1.NewRdma(r) }},
	{"systemd", func(r string) cgroup1.Subsystem { return cgroup1.NewNamed(r, "systemd") }},
}

// New validates cfg and finds the v1 hierarchies under cfg.Root. It creates
// nothing.
func New(cfg Config) (*Manager, error) {
	if !filepath.IsAbs(cfg.Root) {
		return nil, fmt.Errorf("cgroups: root %q must be an absolute path", cfg.Root)
	}
	if !path.IsAbs(cfg.Parent) || path.Clean(cfg.Parent) == "/" {
		return nil, fmt.Errorf("cgroups: executor cgroup %q must be an absolute path below the root", cfg.Parent)
	}
	cfg.Parent = path.Clean(cfg.Parent)
	m := &Manager{cfg: cfg}
	if cfg.Unified {
		if _, err := os.Stat(filepath.Join(cfg.Root, "cgroup.controllers")); err != nil {
			return nil, fmt.Errorf("cgroups: no cgroup v2 hierarchy at %s: %w", cfg.Root, err)
		}
		return m, nil
	}
	for _, c := range v1Constructors {
		if st, err := os.Stat(filepath.Join(cfg.Root, c.name)); err == nil && st.IsDir() {
			m.v1 = append(m.v1, c.make(cfg.Root))
		}
	}
	if len(m.v1) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup v1 hierarchy under %s", cfg.Root)
	}
	return m, nil
}

// Parent is the executor cgroup path.
func (m *Manager) Parent() string { return m.cfg.Parent }

// PodPath is the cgroup path of a pod: <executor cgroup>/<pod-uid>.
func (m *Manager) PodPath(podUID string) (string, error) {
	if podUID == "" || podUID == LeafName || strings.ContainsAny(podUID, "/\x00") || podUID == "." || podUID == ".." {
		return "", fmt.Errorf("cgroups: invalid pod uid %q for a cgroup name", podUID)
	}
	return path.Join(m.cfg.Parent, podUID), nil
}

func (m *Manager) hierarchy() ([]cgroup1.Subsystem, error) { return m.v1, nil }

// PodCgroup is one pod's cgroup in every hierarchy.
type PodCgroup struct {
	path string
	m    *Manager
	v1   cgroup1.Cgroup
	v2   *cgroup2.Manager
}

// Path is the pod cgroup's path (relative to each hierarchy's root).
func (p *PodCgroup) Path() string { return p.path }

// Create makes the pod cgroup (idempotent) with limits: memory limit, CPU
// shares from the request and CFS quota from the limit (kubelet formulas),
// optional pids limit; on v1 cpuset inherits the parent's cpus and mems.
func (m *Manager) Create(podUID string, l Limits) (*PodCgroup, error) {
	p, err := m.PodPath(podUID)
	if err != nil {
		return nil, err
	}
	pc := &PodCgroup{path: p, m: m}
	if m.cfg.Unified {
		pc.v2, err = cgroup2.NewManager(m.cfg.Root, p, v2Resources(l))
	} else {
		pc.v1, err = cgroup1.New(cgroup1.StaticPath(p), v1Resources(l), cgroup1.WithHierarchy(m.hierarchy))
	}
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", p, err)
	}
	return pc, nil
}

// Load returns the existing cgroup of a pod, without changing it.
func (m *Manager) Load(podUID string) (*PodCgroup, error) {
	p, err := m.PodPath(podUID)
	if err != nil {
		return nil, err
	}
	return m.load(p)
}

// StatsOf reads the usage of a cgroup below the executor's: rel "" is the
// executor's cgroup itself (its pods included), "<pod uid>" a pod's,
// "<pod uid>/<docker id>" a container's with Docker's cgroupfs driver.
func (m *Manager) StatsOf(rel string) (Stats, error) {
	if rel != "" && (path.IsAbs(rel) || path.Clean(rel) != rel || strings.HasPrefix(rel, "..")) {
		return Stats{}, fmt.Errorf("cgroup stats: %q is not a path below the executor's cgroup", rel)
	}
	pc, err := m.load(path.Join(m.cfg.Parent, rel))
	if err != nil {
		return Stats{}, err
	}
	return pc.Stats()
}

func (m *Manager) load(p string) (*PodCgroup, error) {
	var err error
	if _, err := os.Stat(m.primaryDir(p)); err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", p, err)
	}
	pc := &PodCgroup{path: p, m: m}
	if m.cfg.Unified {
		pc.v2, err = cgroup2.Load(p, cgroup2.WithMountpoint(m.cfg.Root))
	} else {
		pc.v1, err = cgroup1.Load(cgroup1.StaticPath(p), cgroup1.WithHierarchy(m.hierarchy))
	}
	if err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", p, err)
	}
	return pc, nil
}

// PodUIDs lists the pod cgroups that exist below the executor cgroup (the
// v2 leaf excluded), sorted: what is there, whether or not a pod owns it.
func (m *Manager) PodUIDs() ([]string, error) {
	entries, err := os.ReadDir(m.primaryDir(m.cfg.Parent))
	if err != nil {
		return nil, fmt.Errorf("list pod cgroups of %s: %w", m.cfg.Parent, err)
	}
	var uids []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != LeafName {
			uids = append(uids, e.Name())
		}
	}
	sort.Strings(uids)
	return uids, nil
}

// primaryDir is a cgroup's directory in the hierarchy that decides whether
// it exists: memory on v1, the unified tree on v2.
func (m *Manager) primaryDir(p string) string {
	if m.cfg.Unified {
		return filepath.Join(m.cfg.Root, p)
	}
	for _, s := range m.v1 {
		if s.Name() == cgroup1.Memory {
			return filepath.Join(m.cfg.Root, "memory", p)
		}
	}
	return filepath.Join(m.cfg.Root, string(m.v1[0].Name()), p)
}

// dirs are a cgroup's directories in every hierarchy.
func (m *Manager) dirs(p string) []string {
	if m.cfg.Unified {
		return []string{filepath.Join(m.cfg.Root, p)}
	}
	var out []string
	for _, s := range m.v1 {
		if pt, ok := s.(interface{ Path(string) string }); ok {
			out = append(out, pt.Path(p))
		}
	}
	return out
}

// EnterLeaf moves process pid (the executor itself) into
// <executor cgroup>/executor and, on cgroup v2, enables in the executor
// cgroup's subtree_control every controller it has, so that pod cgroups can
// carry limits (v2 allows no processes in a cgroup that delegates
// controllers). On v1, where that rule does not exist, it does nothing.
func (m *Manager) EnterLeaf(pid int) error {
	if !m.cfg.Unified {
		return nil
	}
	leaf, err := cgroup2.NewManager(m.cfg.Root, path.Join(m.cfg.Parent, LeafName), &cgroup2.Resources{})
	if err != nil {
		return fmt.Errorf("create executor leaf cgroup: %w", err)
	}
	if err := leaf.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("move executor (pid %d) into its leaf cgroup: %w", pid, err)
	}
	parent, err := cgroup2.Load(m.cfg.Parent, cgroup2.WithMountpoint(m.cfg.Root))
	if err != nil {
		return fmt.Errorf("load executor cgroup: %w", err)
	}
	ctrls, err := parent.Controllers()
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", m.cfg.Parent, err)
	}
	// Only controllers the executor cgroup already has: those are enabled
	// in every ancestor, so nothing above it changes.
	b := strings.Join(prefixed(ctrls, "+"), " ")
	if err := os.WriteFile(filepath.Join(m.cfg.Root, m.cfg.Parent, "cgroup.subtree_control"), []byte(b), 0); err != nil {
		return fmt.Errorf("enable controllers %v below %s: %w", ctrls, m.cfg.Parent, err)
	}
	return nil
}

func prefixed(ss []string, p string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// Update changes the pod cgroup's limits.
func (p *PodCgroup) Update(l Limits) error {
	var err error
	if p.v2 != nil {
		err = p.v2.Update(v2Resources(l))
	} else {
		err = p.v1.Update(v1Resources(l))
	}
	if err != nil {
		return fmt.Errorf("update cgroup %s: %w", p.path, err)
	}
	return nil
}

// Stats is what a pod cgroup uses.
type Stats struct {
	MemoryUsage      uint64 // bytes, page cache included
	MemoryWorkingSet uint64 // usage minus inactive file cache (kubelet's definition)
	MemoryLimit      uint64
	OOMKills         uint64 // processes the kernel OOM-killed in this cgroup
	CPUUsageNanos    uint64
	Pids             uint64
}

// Stats reads the pod cgroup's usage.
func (p *PodCgroup) Stats() (Stats, error) {
	var s Stats
	if p.v2 != nil {
		m, err := p.v2.Stat()
		if err != nil {
			return s, fmt.Errorf("stats of cgroup %s: %w", p.path, err)
		}
		if mem := m.GetMemory(); mem != nil {
			s.MemoryUsage, s.MemoryLimit = mem.GetUsage(), mem.GetUsageLimit()
			s.MemoryWorkingSet = sub(mem.GetUsage(), mem.GetInactiveFile())
		}
		s.OOMKills = m.GetMemoryEvents().GetOomKill()
		s.CPUUsageNanos = m.GetCPU().GetUsageUsec() * 1000
		s.Pids = m.GetPids().GetCurrent()
		return s, nil
	}
	m, err := p.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return s, fmt.Errorf("stats of cgroup %s: %w", p.path, err)
	}
	if mem := m.GetMemory(); mem != nil {
		s.MemoryUsage, s.MemoryLimit = mem.GetUsage().GetUsage(), mem.GetUsage().GetLimit()
		s.MemoryWorkingSet = sub(mem.GetUsage().GetUsage(), mem.GetTotalInactiveFile())
	}
	s.OOMKills = m.GetMemoryOomControl().GetOomKill()
	s.CPUUsageNanos = m.GetCPU().GetUsage().GetTotal()
	s.Pids = m.GetPids().GetCurrent()
	return s, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// OOMKills is the number of OOM kills the kernel counted in the pod cgroup
// (v1 memory.oom_control oom_kill, v2 memory.events oom_kill). The agent
// polls it: an increase means a container of the pod was OOM-killed.
func (p *PodCgroup) OOMKills() (uint64, error) {
	s, err := p.Stats()
	return s.OOMKills, err
}

// AddProc moves process pid into the pod cgroup in every hierarchy. (Docker
// places containers itself through --cgroup-parent; this is for processes
// the executor starts directly.)
func (p *PodCgroup) AddProc(pid int) error {
	var err error
	if p.v2 != nil {
		err = p.v2.AddProc(uint64(pid))
	} else {
		err = p.v1.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("move pid %d into cgroup %s: %w", pid, p.path, err)
	}
	return nil
}

// Procs lists every process in the pod cgroup and its descendants.
func (p *PodCgroup) Procs() ([]int, error) {
	var pids []int
	if p.v2 != nil {
		ps, err := p.v2.Procs(true)
		if err != nil {
			return nil, fmt.Errorf("processes of cgroup %s: %w", p.path, err)
		}
		for _, x := range ps {
			pids = append(pids, int(x))
		}
		return pids, nil
	}
	// The freezer (or memory) hierarchy sees every process of the pod.
	ps, err := p.v1.Processes(p.procsSubsystem(), true)
	if err != nil {
		return nil, fmt.Errorf("processes of cgroup %s: %w", p.path, err)
	}
	seen := map[int]bool{}
	for _, x := range ps {
		if !seen[x.Pid] {
			seen[x.Pid] = true
			pids = append(pids, x.Pid)
		}
	}
	return pids, nil
}

func (p *PodCgroup) procsSubsystem() cgroup1.Name {
	for _, s := range p.m.v1 {
		if s.Name() == cgroup1.Freezer {
			return cgroup1.Freezer
		}
	}
	return cgroup1.Memory
}

// KillAll SIGKILLs every process in the pod cgroup and its descendants and
// returns once none is left, or ctx's error with what is left. On v1 the
// cgroup is frozen first so nothing can fork during the kill; v2 uses
// cgroup.kill where the kernel has it.
func (p *PodCgroup) KillAll(ctx context.Context) error {
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pids, err := p.Procs()
		switch {
		case errors.Is(err, fs.ErrNotExist) && p.gone():
			return nil
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV):
			// A child cgroup (a container's) was removed while we walked
			// the tree: look again.
			pids = []int{-1}
		case err != nil:
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if p.v2 != nil {
			if err := p.v2.Kill(); err != nil {
				return fmt.Errorf("kill cgroup %s: %w", p.path, err)
			}
		} else {
			p.killFrozen()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill cgroup %s: %d processes left: %w", p.path, len(pids), ctx.Err())
		case <-time.After(delay):
		}
	}
}

// gone reports whether the pod cgroup's own directory no longer exists
// (a vanished child is not that).
func (p *PodCgroup) gone() bool {
	dir := filepath.Join(p.m.cfg.Root, p.path)
	if p.v2 == nil {
		dir = filepath.Join(p.m.cfg.Root, string(p.procsSubsystem()), p.path)
	}
	_, err := os.Stat(dir)
	return errors.Is(err, fs.ErrNotExist)
}

// killFrozen freezes the v1 pod cgroup (when there is a freezer), SIGKILLs
// every process, and thaws it so the signals are delivered.
func (p *PodCgroup) killFrozen() {
	frozen := p.procsSubsystem() == cgroup1.Freezer && p.v1.Freeze() == nil
	if pids, err := p.Procs(); err == nil {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: already gone
		}
	}
	if frozen {
		_ = p.v1.Thaw()
	}
}

// Delete removes the pod cgroup and every cgroup below it (Docker's
// container cgroups) in every hierarchy, deepest first, retrying while the
// kernel still reports them busy, until ctx is done. It fails while
// processes are left (call KillAll first). On success no directory is left.
func (p *PodCgroup) Delete(ctx context.Context) error {
	if pids, err := p.Procs(); err == nil && len(pids) > 0 {
		return fmt.Errorf("delete cgroup %s: %d processes still in it", p.path, len(pids))
	}
	dirs := p.m.dirs(p.path)
	if !p.m.cfg.Unified {
		// On a hybrid host runc also makes the containers' cgroups in the
		// unified hierarchy, which holds no controller: remove them too.
		dirs = append(dirs, filepath.Join(p.m.cfg.Root, "unified", p.path))
	}
	for _, d := range dirs {
		if err := removeTree(ctx, d); err != nil {
			return fmt.Errorf("delete cgroup %s: %w", p.path, err)
		}
	}
	return nil
}

// removeTree removes a cgroup directory and its descendants, deepest first.
func removeTree(ctx context.Context, dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- { // WalkDir lists parents first
		for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
			err := rmdir(dirs[i])
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EAGAIN) {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s busy: %w", dirs[i], ctx.Err())
			case <-time.After(delay):
			}
		}
	}
	return nil
}

// rmdir removes a cgroup directory. On a real cgroupfs the control files
// vanish with it; on a fake one (a plain directory in tests) they are files
// that must go first.
func rmdir(d string) error {
	err := syscall.Rmdir(d)
	if !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	entries, rerr := os.ReadDir(d)
	if rerr != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			_ = os.Remove(filepath.Join(d, e.Name()))
		}
	}
	return syscall.Rmdir(d)
}

func v1Resources(l Limits) *specs.LinuxResources {
	shares, period := l.Shares(), uint64(CFSPeriodMicros)
	quota := l.QuotaMicros()
	if quota == 0 {
		quota = -1 // no limit; also resets a previous one
	}
	mem := l.MemoryBytes
	if mem <= 0 {
		mem = -1
	}
	r := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
		Memory: &specs.LinuxMemory{Limit: &mem},
	}
	if l.Pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &l.Pids}
	}
	return r
}

func v2Resources(l Limits) *cgroup2.Resources {
	w := l.Weight()
	period := uint64(CFSPeriodMicros)
	var quota *int64
	if q := l.QuotaMicros(); q > 0 {
		quota = &q
	}
	mem := l.MemoryBytes
	if mem <= 0 {
		mem = -1 // "max"
	}
	r := &cgroup2.Resources{
		CPU:    &cgroup2.CPU{Weight: &w, Max: cgroup2.NewCPUMax(quota, &period)},
		Memory: &cgroup2.Memory{Max: &mem},
	}
	if l.Pids > 0 {
		r.Pids = &cgroup2.Pids{Max: l.Pids}
	}
	return r
}
