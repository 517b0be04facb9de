//go:build integration && linux

package cgroups_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/test/testenv"
)

const helperEnv = "K8SM_CGROUP_HELPER"

// TestMain turns the test binary into a helper process when asked: it waits
// for a line on stdin (sent once it is in its cgroup), then acts.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode)
		return
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	signal.Ignore(syscall.SIGTERM)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	switch mode {
	case "fork": // keeps starting children
		for i := 0; i < 30; i++ {
			_ = exec.Command("/bin/sleep", "1000").Start()
			time.Sleep(20 * time.Millisecond)
		}
	case "hog": // far more than its 32 MiB cgroup allows
		b := make([]byte, 256<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
	}
	time.Sleep(time.Hour)
}

// startHelper starts a helper in mode, moves it into pc, then lets it go.
func startHelper(t testing.TB, pc *cgroups.PodCgroup, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := pc.AddProc(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	return cmd
}

func newManager(t testing.TB) (*cgroups.Manager, *testenv.MesosCgroup) {
	t.Helper()
	mc := testenv.NewMesosCgroup(t)
	if cgroups.HostUnified() != (mc.V1["memory"] == "") {
		t.Fatalf("cgroup mode mismatch: HostUnified %v, v1 memory dir %q", cgroups.HostUnified(), mc.V1["memory"])
	}
	m, err := cgroups.New(cgroups.Config{Root: "/sys/fs/cgroup", Unified: cgroups.HostUnified(), Parent: mc.Path})
	if err != nil {
		t.Fatal(err)
	}
	return m, mc
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// leftovers lists every directory below the executor cgroup in every
// hierarchy: after Delete there must be none.
func leftovers(t testing.TB, mc *testenv.MesosCgroup) []string {
	t.Helper()
	var out []string
	dirs := []string{mc.Unified}
	for _, d := range mc.V1 {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

func killAndDelete(t testing.TB, pc *cgroups.PodCgroup) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pc.KillAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pc.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

func skipUnlessV1(t *testing.T) {
	if cgroups.HostUnified() {
		testenv.SkipHost(t, "this test reads cgroup v1 files; on a v2 host TestV2Real covers the same ground")
	}
}

// TestCreateLimitsAndPlacement: a pod cgroup carries the limits in the
// kernel's files and a process put in it is there in every hierarchy.
func TestCreateLimitsAndPlacement(t *testing.T) {
	skipUnlessV1(t)
	m, mc := newManager(t)
	pc, err := m.Create("pod-a", cgroups.Limits{CPURequestMilli: 500, CPULimitMilli: 250, MemoryBytes: 48 << 20, Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		filepath.Join(mc.V1["memory"], "pod-a", "memory.limit_in_bytes"): strconv.Itoa(48 << 20),
		filepath.Join(mc.V1["cpu"], "pod-a", "cpu.shares"):               "512",
		filepath.Join(mc.V1["cpu"], "pod-a", "cpu.cfs_quota_us"):         "25000",
		filepath.Join(mc.V1["pids"], "pod-a", "pids.max"):                "64",
		filepath.Join(mc.V1["cpuset"], "pod-a", "cpuset.cpus"):           readFile(t, filepath.Join(mc.V1["cpuset"], "cpuset.cpus")),
	} {
		if got := readFile(t, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	cmd := startHelper(t, pc, "sleep")
	pcg := readFile(t, fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	for _, ctrl := range []string{"memory", "cpu", "freezer", "pids"} {
		if !strings.Contains(pcg, ":"+ctrl+":"+pc.Path()+"\n") && !strings.HasSuffix(pcg, ":"+ctrl+":"+pc.Path()) {
			t.Errorf("process not in %s:%s:\n%s", ctrl, pc.Path(), pcg)
		}
	}
	if pids, err := pc.Procs(); err != nil || len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("Procs = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
	}
	if err := pc.Update(cgroups.Limits{CPURequestMilli: 500, MemoryBytes: 96 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(mc.V1["memory"], "pod-a", "memory.limit_in_bytes")); got != strconv.Itoa(96<<20) {
		t.Errorf("memory limit after Update = %s", got)
	}
	killAndDelete(t, pc)
	if l := leftovers(t, mc); len(l) != 0 {
		t.Fatalf("left after Delete: %v", l)
	}
}

// TestOOMObserved: a memory hog in a 32 MiB pod cgroup is OOM-killed by the
// kernel and the pod cgroup's OOM count shows it.
func TestOOMObserved(t *testing.T) {
	m, _ := newManager(t)
	pc, err := m.Create("pod-oom", cgroups.Limits{CPURequestMilli: 100, MemoryBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killAndDelete(t, pc) })
	before, err := pc.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	cmd := startHelper(t, pc, "hog")
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hog ended with %v (%v), want SIGKILL by the OOM killer", err, cmd.ProcessState)
	}
	after, err := pc.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("OOM kills %d -> %d: the kill was not observed", before, after)
	}
}

// TestKillAll50: 25 processes that ignore SIGTERM and 25 that keep forking
// are all gone after KillAll, and Delete leaves nothing.
func TestKillAll50(t *testing.T) {
	m, mc := newManager(t)
	pc, err := m.Create("pod-kill", cgroups.Limits{CPURequestMilli: 100, MemoryBytes: 512 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		mode := "sleep"
		if i%2 == 1 {
			mode = "fork"
		}
		startHelper(t, pc, mode)
	}
	// Wait until the forkers have children of their own.
	testenv.WaitFor(t, 30*time.Second, "more than 75 processes in the cgroup", func() bool {
		pids, err := pc.Procs()
		if err != nil {
			t.Fatal(err)
		}
		return len(pids) > 75
	})
	killAndDelete(t, pc)
	if pids, err := pc.Procs(); err == nil && len(pids) > 0 {
		t.Fatalf("%d processes survived KillAll", len(pids))
	}
	if l := leftovers(t, mc); len(l) != 0 {
		t.Fatalf("left after Delete: %v", l)
	}
}

// TestCreateDelete1000: a thousand cycles leak no directory.
func TestCreateDelete1000(t *testing.T) {
	m, mc := newManager(t)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		pc, err := m.Create(fmt.Sprintf("pod-%d", i%7), cgroups.Limits{CPURequestMilli: 100, CPULimitMilli: 200, MemoryBytes: 32 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if l := leftovers(t, mc); len(l) != 0 {
		t.Fatalf("leaked after 1000 cycles: %v", l)
	}
	if uids, err := m.PodUIDs(); err != nil || len(uids) != 0 {
		t.Fatalf("PodUIDs = %v, %v", uids, err)
	}
}

// TestDockerContainerContained: with the test bed's dockerd (cgroupfs
// driver), DockerParent places a container in the pod cgroup, inside the
// Mesos executor cgroup, and KillAll ends it.
func TestDockerContainerContained(t *testing.T) {
	dc := testenv.RequireDocker(t)
	m, mc := newManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := dc.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := m.Create("pod-docker", cgroups.Limits{CPURequestMilli: 100, MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := cgroups.DockerParent(pc.Path(), info.CgroupDriver)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dc.ContainerCreate(ctx, &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "600"}},
		&container.HostConfig{Resources: container.Resources{CgroupParent: parent, Memory: 32 << 20}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
	if err := dc.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	ci, err := dc.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := mc.Path + "/pod-docker/" + c.ID
	if pcg := readFile(t, fmt.Sprintf("/proc/%d/cgroup", ci.State.Pid)); !strings.Contains(pcg, ":"+want) {
		t.Fatalf("container process not under %s:\n%s", want, pcg)
	}
	if err := pc.KillAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitC, errC := dc.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case r := <-waitC:
		if r.StatusCode != 137 {
			t.Errorf("container exit %d after KillAll, want 137 (SIGKILL)", r.StatusCode)
		}
	case err := <-errC:
		t.Fatal(err)
	}
	if err := dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestV2Real runs on hosts whose controllers live in cgroup v2.
func TestV2Real(t *testing.T) {
	if !cgroups.HostUnified() {
		testenv.SkipHost(t, "host has no controller-enabled cgroup v2 hierarchy (hybrid or v1: every controller is bound to v1); "+
			"the v2 code paths run against the fake in TestFakeV2CreateAndLeaf")
	}
	m, mc := newManager(t)
	pc, err := m.Create("pod-v2", cgroups.Limits{CPURequestMilli: 100, CPULimitMilli: 200, MemoryBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(mc.Unified, "pod-v2", "memory.max")); got != strconv.Itoa(32<<20) {
		t.Errorf("memory.max = %s", got)
	}
	startHelper(t, pc, "fork")
	killAndDelete(t, pc)
	if l := leftovers(t, mc); len(l) != 0 {
		t.Fatalf("left after Delete: %v", l)
	}
}

// BenchmarkCreateLimitDelete: one pod cgroup's life without processes
// (goal: <= 2 ms).
func BenchmarkCreateLimitDelete(b *testing.B) {
	m, _ := newManager(b)
	ctx := context.Background()
	l := cgroups.Limits{CPURequestMilli: 250, CPULimitMilli: 500, MemoryBytes: 64 << 20, Pids: 100}
	for b.Loop() {
		pc, err := m.Create("pod-bench", l)
		if err != nil {
			b.Fatal(err)
		}
		if err := pc.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKillAll100: KillAll of 100 processes ignoring SIGTERM (goal:
// <= 200 ms). Starting the processes is not timed.
func BenchmarkKillAll100(b *testing.B) {
	ctx := context.Background()
	benchKill100(b, func(pc *cgroups.PodCgroup, _ []*exec.Cmd) {
		if err := pc.KillAll(ctx); err != nil {
			b.Fatal(err)
		}
	})
}

// benchKill100 times kill (only) against a fresh pod cgroup of 100
// SIGTERM-ignoring processes per iteration.
func benchKill100(b *testing.B, kill func(*cgroups.PodCgroup, []*exec.Cmd)) {
	m, _ := newManager(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		pc, err := m.Create(fmt.Sprintf("pod-k%d", i), cgroups.Limits{CPURequestMilli: 100, MemoryBytes: 2 << 30})
		if err != nil {
			b.Fatal(err)
		}
		cmds := make([]*exec.Cmd, 100)
		for j := range cmds {
			cmds[j] = startHelper(b, pc, "sleep")
		}
		b.StartTimer()
		kill(pc, cmds)
		b.StopTimer()
		for _, c := range cmds {
			_ = c.Wait() // reap now, not at cleanup: 100 zombies an iteration add up
		}
		if err := pc.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkBaselineRawMkdirRmdir is the floor for BenchmarkCreateLimitDelete:
// the same directories and limit files by bare syscalls (v1 hosts).
func BenchmarkBaselineRawMkdirRmdir(b *testing.B) {
	if cgroups.HostUnified() {
		testenv.SkipHost(b, "the raw mkdir/rmdir baseline is of cgroup v1 directories")
	}
	_, mc := newManager(b)
	var dirs []string
	for _, d := range mc.V1 {
		dirs = append(dirs, filepath.Join(d, "pod-raw"))
	}
	files := map[string]string{
		filepath.Join(mc.V1["memory"], "pod-raw", "memory.limit_in_bytes"): strconv.Itoa(64 << 20),
		filepath.Join(mc.V1["cpu"], "pod-raw", "cpu.shares"):               "256",
		filepath.Join(mc.V1["cpu"], "pod-raw", "cpu.cfs_quota_us"):         "50000",
		filepath.Join(mc.V1["pids"], "pod-raw", "pids.max"):                "100",
	}
	cpus := readFile(b, filepath.Join(mc.V1["cpuset"], "cpuset.cpus"))
	mems := readFile(b, filepath.Join(mc.V1["cpuset"], "cpuset.mems"))
	files[filepath.Join(mc.V1["cpuset"], "pod-raw", "cpuset.cpus")] = cpus
	files[filepath.Join(mc.V1["cpuset"], "pod-raw", "cpuset.mems")] = mems
	for b.Loop() {
		for _, d := range dirs {
			if err := os.Mkdir(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for f, v := range files {
			if err := os.WriteFile(f, []byte(v), 0); err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBaselineKill100 is the floor for BenchmarkKillAll100: SIGKILL
// to each of 100 known pids, then wait until the cgroup is empty, with no
// freezer and no listing before the kill.
func BenchmarkBaselineKill100(b *testing.B) {
	benchKill100(b, func(pc *cgroups.PodCgroup, cmds []*exec.Cmd) {
		for _, c := range cmds {
			_ = syscall.Kill(c.Process.Pid, syscall.SIGKILL)
		}
		for {
			pids, err := pc.Procs()
			if err != nil {
				b.Fatal(err)
			}
			if len(pids) == 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}
