package cgroups

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot builds a cgroup v1 tree in a temp dir: hierarchies with the
// executor cgroup /mesos/exec, and cpuset values to inherit.
func fakeV1(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, h := range []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio", "systemd"} {
		if err := os.MkdirAll(filepath.Join(root, h, "mesos", "exec"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"", "mesos", "mesos/exec"} {
		write(t, filepath.Join(root, "cpuset", d, "cpuset.cpus"), "0-1")
		write(t, filepath.Join(root, "cpuset", d, "cpuset.mems"), "0")
	}
	return root
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestFakeV1CreateUpdateStatsDelete(t *testing.T) {
	root := fakeV1(t)
	m, err := New(Config{Root: root, Parent: "/mesos/exec"})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := m.Create("pod-1", Limits{CPURequestMilli: 250, CPULimitMilli: 500, MemoryBytes: 64 << 20, Pids: 100})
	if err != nil {
		t.Fatal(err)
	}
	dir := func(h, f string) string { return filepath.Join(root, h, "mesos", "exec", "pod-1", f) }
	for file, want := range map[string]string{
		dir("memory", "memory.limit_in_bytes"): "67108864",
		dir("cpu", "cpu.shares"):               "256",
		dir("cpu", "cpu.cfs_quota_us"):         "50000",
		dir("cpu", "cpu.cfs_period_us"):        "100000",
		dir("pids", "pids.max"):                "100",
		dir("cpuset", "cpuset.cpus"):           "0-1", // inherited from the executor cgroup
	} {
		if got := read(t, file); got != want {
			t.Errorf("%s = %q, want %q", strings.TrimPrefix(file, root), got, want)
		}
	}
	if _, err := os.Stat(dir("systemd", "")); err != nil {
		t.Errorf("pod cgroup missing in the named systemd hierarchy: %v", err)
	}

	if err := pc.Update(Limits{CPURequestMilli: 1000, MemoryBytes: 128 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir("cpu", "cpu.cfs_quota_us")); got != "-1" {
		t.Errorf("quota after removing the CPU limit = %s, want -1", got)
	}
	if got := read(t, dir("memory", "memory.limit_in_bytes")); got != "134217728" {
		t.Errorf("memory limit after update = %s", got)
	}

	// What the kernel would report.
	write(t, dir("memory", "memory.usage_in_bytes"), "50000")
	write(t, dir("memory", "memory.max_usage_in_bytes"), "60000")
	write(t, dir("memory", "memory.failcnt"), "0")
	write(t, dir("memory", "memory.stat"), "cache 0\nrss 0\ntotal_inactive_file 20000\n")
	write(t, dir("memory", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
	write(t, dir("cpuacct", "cpuacct.usage"), "123456789")
	write(t, dir("cpuacct", "cpuacct.usage_percpu"), "100000000 23456789")
	write(t, dir("cpuacct", "cpuacct.stat"), "user 1\nsystem 1\n")
	write(t, dir("pids", "pids.current"), "7")
	s, err := pc.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryUsage != 50000 || s.MemoryWorkingSet != 30000 || s.OOMKills != 3 || s.CPUUsageNanos != 123456789 || s.Pids != 7 {
		t.Errorf("stats = %+v", s)
	}
	if uids, err := m.PodUIDs(); err != nil || len(uids) != 1 || uids[0] != "pod-1" {
		t.Errorf("PodUIDs = %v, %v", uids, err)
	}

	// A container cgroup Docker left below the pod goes too.
	if err := os.MkdirAll(dir("memory", "container-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pc.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio", "systemd"} {
		if _, err := os.Stat(dir(h, "")); !os.IsNotExist(err) {
			t.Errorf("%s: pod cgroup left after Delete (%v)", h, err)
		}
	}
}

func TestFakeV2CreateAndLeaf(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "mesos", "exec"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "mesos", "mesos/exec"} {
		write(t, filepath.Join(root, d, "cgroup.controllers"), "cpu memory pids")
		write(t, filepath.Join(root, d, "cgroup.subtree_control"), "")
	}
	m, err := New(Config{Root: root, Unified: true, Parent: "/mesos/exec"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.EnterLeaf(4242); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(root, "mesos/exec/executor/cgroup.procs")); got != "4242" {
		t.Errorf("leaf cgroup.procs = %q", got)
	}
	if got := read(t, filepath.Join(root, "mesos/exec/cgroup.subtree_control")); got != "+cpu +memory +pids" {
		t.Errorf("executor subtree_control = %q", got)
	}
	if _, err := m.Create("pod-2", Limits{CPURequestMilli: 1000, CPULimitMilli: 1500, MemoryBytes: 32 << 20, Pids: 50}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "mesos/exec/pod-2")
	for file, want := range map[string]string{
		"memory.max": "33554432", "cpu.max": "150000 100000", "cpu.weight": "39", "pids.max": "50",
	} {
		if got := read(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if uids, _ := m.PodUIDs(); len(uids) != 1 || uids[0] != "pod-2" {
		t.Errorf("PodUIDs = %v (the executor leaf is no pod)", uids)
	}
}

func TestNewRejects(t *testing.T) {
	root := fakeV1(t)
	for _, cfg := range []Config{
		{Root: "relative", Parent: "/mesos/x"},
		{Root: root, Parent: "/"},
		{Root: root, Parent: "mesos/x"},
		{Root: t.TempDir(), Parent: "/mesos/x"},         // no hierarchy
		{Root: root, Parent: "/mesos/x", Unified: true}, // no cgroup.controllers
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	m, _ := New(Config{Root: root, Parent: "/mesos/exec"})
	for _, uid := range []string{"", "..", "a/b", LeafName} {
		if _, err := m.Create(uid, Limits{}); err == nil {
			t.Errorf("Create(%q) accepted", uid)
		}
	}
}
