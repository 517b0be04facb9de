package testenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MesosRoot is the cgroup under which the test "Mesos" containers live, as the
// Mesos agent's --cgroups_root=mesos would put them.
const MesosRoot = "/mesos"

// MesosCgroup stands in for the cgroup a Mesos agent creates for an executor
// container: Path is "/mesos/<ID>" in every mounted hierarchy.
type MesosCgroup struct {
	ID   string
	Path string
	// V1 maps each cgroup v1 hierarchy (controller name, or "systemd" for
	// the named hierarchy) to the cgroup's directory in it.
	V1 map[string]string
	// Unified is the cgroup's directory in the cgroup2 hierarchy ("" when
	// none is mounted).
	Unified string
}

// Dir returns the cgroup's directory in a v1 controller's hierarchy, or in
// the unified hierarchy for "" (and on a pure v2 host, for any controller).
func (m *MesosCgroup) Dir(controller string) string {
	if d, ok := m.V1[controller]; ok {
		return d
	}
	if cgroups.Mode() == cgroups.Unified {
		return m.Unified
	}
	if controller == "" {
		return m.Unified
	}
	return ""
}

// unifiedMount returns where the cgroup2 hierarchy is mounted, or "".
func unifiedMount() string {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return "/sys/fs/cgroup"
	case cgroups.Hybrid:
		return "/sys/fs/cgroup/unified"
	}
	return ""
}

// NewMesosCgroup creates /mesos/k8sm-test-<random> in every mounted cgroup
// hierarchy (v1 controllers with cpuset inherited from the parent, the named
// systemd hierarchy, and cgroup2 where mounted). It moves nothing into it.
// On cleanup it SIGKILLs whatever a test left inside, removes the whole
// subtree, and removes /mesos too if it created it and it is empty.
func NewMesosCgroup(t testing.TB) *MesosCgroup {
	t.Helper()
	RequireRoot(t)
	if cgroups.Mode() == cgroups.Unavailable {
		Skip(t, "no cgroup hierarchy mounted at /sys/fs/cgroup")
	}
	m := &MesosCgroup{ID: RandomName(8), V1: map[string]string{}}
	m.Path = MesosRoot + "/" + m.ID
	unlock := lockMesosRoot(t)
	defer unlock()
	// When the bed makes /mesos, a marker says so; the last test to leave
	// removes it then (concurrent test packages share it).
	if _, err := os.Stat("/sys/fs/cgroup/memory" + MesosRoot); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(mesosMarker, nil, 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}

	if cgroups.Mode() != cgroups.Unified {
		cg, err := cgroup1.New(cgroup1.StaticPath(m.Path), &specs.LinuxResources{})
		if err != nil {
			t.Fatalf("testenv: create v1 cgroup %s: %v", m.Path, err)
		}
		for _, s := range cg.Subsystems() {
			if p, ok := s.(interface{ Path(string) string }); ok {
				m.V1[string(s.Name())] = p.Path(m.Path)
			}
		}
	}
	if mnt := unifiedMount(); mnt != "" {
		if _, err := cgroup2.NewManager(mnt, m.Path, &cgroup2.Resources{}); err != nil {
			t.Fatalf("testenv: create v2 cgroup %s under %s: %v", m.Path, mnt, err)
		}
		m.Unified = filepath.Join(mnt, m.Path)
	}
	t.Cleanup(func() {
		dirs := []string{m.Unified}
		for _, d := range m.V1 {
			dirs = append(dirs, d)
		}
		for _, d := range dirs {
			if d == "" {
				continue
			}
			if err := RemoveCgroupTree(d); err != nil {
				t.Errorf("testenv: remove cgroup %s: %v", d, err)
			}
		}
		unlock := lockMesosRoot(t)
		defer unlock()
		if _, err := os.Stat(mesosMarker); err != nil {
			return // /mesos was there before the bed: not ours to remove
		}
		var roots []string
		for _, r := range append(v1Roots(), unifiedMount()) {
			if r != "" {
				roots = append(roots, filepath.Join(r, MesosRoot))
			}
		}
		for _, d := range roots {
			if entries, _ := os.ReadDir(d); hasDir(entries) {
				return // another test still has its cgroup there
			}
		}
		for _, d := range roots {
			_ = syscall.Rmdir(d)
		}
		_ = os.Remove(mesosMarker)
	})
	return m
}

// mesosMarker exists while /mesos is the bed's own (teardown.sh reads it too).
const mesosMarker = RunDir + "/mesos-cgroup-created"

// lockMesosRoot serializes the creation and removal of /mesos between test
// processes.
func lockMesosRoot(t testing.TB) func() {
	t.Helper()
	return lockFile(t, RunDir+"/mesos-cgroup.lock")
}

func hasDir(entries []os.DirEntry) bool {
	for _, e := range entries {
		if e.IsDir() {
			return true
		}
	}
	return false
}

// v1Roots lists the mounted cgroup v1 hierarchy directories under
// /sys/fs/cgroup (real mounts, not the cpu,cpuacct style symlinks).
func v1Roots() []string {
	var roots []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		if e.IsDir() && e.Name() != "unified" {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return roots
}

// RemoveCgroupTree SIGKILLs every process in the cgroup directory dir and
// its descendants, then removes the directories deepest first, retrying while
// the kernel still reports them busy. A missing dir is not an error.
func RemoveCgroupTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // a child removed while we walk (Docker's, say): one less
			}
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
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range dirs {
		for {
			killProcs(d)
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// killProcs SIGKILLs the processes of one cgroup directory; a frozen v1
// freezer cgroup is thawed first, since a frozen process cannot die.
func killProcs(dir string) {
	if st := filepath.Join(dir, "freezer.state"); fileExists(st) {
		_ = os.WriteFile(st, []byte("THAWED"), 0)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
