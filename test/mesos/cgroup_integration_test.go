//go:build integration

package mesos

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dockercontainer "github.com/docker/docker/api/types/container"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/k8sm/k8sm/test/testenv"
)

// cgroupCluster is a cluster whose agent uses the LinuxLauncher on the
// machine's real cgroups, below a fake Mesos root the test made.
func cgroupCluster(t *testing.T, mod func(*AgentConfig)) (*cluster, *testenv.MesosCgroup) {
	t.Helper()
	root := testenv.NewMesosCgroup(t)
	c := newCluster(t, func(a *AgentConfig) {
		a.Cgroups = true
		a.CgroupRoot = strings.TrimPrefix(root.Path, "/")
		a.CgroupsEnableCFS = true
		if mod != nil {
			mod(a)
		}
	})
	return c, root
}

func readCgroupFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// memDir is the container's memory cgroup directory (v1) or its v2 one.
func memDir(t *testing.T, es ExecutorState) string {
	t.Helper()
	for _, d := range es.Cgroups {
		if strings.HasPrefix(d, "/sys/fs/cgroup/memory/") || !strings.Contains(strings.TrimPrefix(d, "/sys/fs/cgroup/"), "/") {
			return d
		}
	}
	if len(es.Cgroups) == 1 {
		return es.Cgroups[0]
	}
	t.Fatalf("no memory cgroup among %v", es.Cgroups)
	return ""
}

func TestCgroupPlacementAndLimits(t *testing.T) {
	c, root := cgroupCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("cgroups"), protobuf())
	ex := testExecutorInfo(t, "ex1", "normal") // 0.1 cpus, 32 MB
	s.Launch(s.Offer(), testTask("t1", taskRun, ex))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	es := c.executor(t, "ex1")

	// The executor's first view of itself: already in /<root>/<container-id>
	// in every v1 hierarchy.
	want := root.Path + "/" + es.ContainerID
	cg := readSandbox(t, es.Directory, "cgroup.txt")
	for _, line := range strings.Split(strings.TrimSpace(cg), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if parts[1] == "" && parts[0] == "0" {
			continue // the hybrid host's unified line: Mesos uses v1 here
		}
		if parts[2] != want && parts[2] != want+"/leaf" {
			t.Errorf("executor started in %s, want %s", line, want)
		}
	}
	if len(es.Cgroups) < 4 {
		t.Fatalf("container cgroups = %v, want one per hierarchy", es.Cgroups)
	}

	// LAUNCH came after the container grew to executor + task: 32+64 MB,
	// shares 1024 × 0.6.
	if got := readSandbox(t, es.Directory, "launch-t1.txt"); got != "mem="+strconv.Itoa(96<<20)+" cpu=614" {
		t.Fatalf("limits at LAUNCH of t1: %s, want mem=%d cpu=614", got, 96<<20)
	}
	md := memDir(t, es)
	if got := readCgroupFile(t, filepath.Join("/sys/fs/cgroup/cpu", want), "cpu.cfs_quota_us"); got != "60000" {
		t.Errorf("cfs quota = %s, want 60000 (0.6 cpus)", got)
	}

	// A second task grows the container again before its LAUNCH; when it
	// ends, the soft limit shrinks, the hard limit stays (raise-only).
	s.Launch(s.Offer(), testTask("t2", taskFinish, ex))
	s.Ack(s.Update("t2", mesos.TASK_RUNNING))
	s.Ack(s.Update("t2", mesos.TASK_FINISHED))
	if got := readSandbox(t, es.Directory, "launch-t2.txt"); got != "mem="+strconv.Itoa(160<<20)+" cpu=1126" {
		t.Fatalf("limits at LAUNCH of t2: %s, want mem=%d cpu=1126", got, 160<<20)
	}
	waitFor(t, "the soft limit to shrink", func() bool {
		return readCgroupFile(t, md, "memory.soft_limit_in_bytes") == strconv.Itoa(96<<20)
	})
	if got := readCgroupFile(t, md, "memory.limit_in_bytes"); got != strconv.Itoa(160<<20) {
		t.Errorf("hard limit after t2 ended = %s, want %d (only ever raised)", got, 160<<20)
	}
	if got := readCgroupFile(t, filepath.Join("/sys/fs/cgroup/cpu", want), "cpu.shares"); got != "614" {
		t.Errorf("cpu.shares after t2 ended = %s, want 614", got)
	}
}

// TestCgroupDestroyKillsEverything: SHUTDOWN to an executor that ignores
// it, with a SIGTERM-ignoring tree that partly left the process group and a
// Docker container parented inside the executor's cgroup, as a k8sm pod is.
// At the grace period the agent freezes and kills the whole subtree.
func TestCgroupDestroyKillsEverything(t *testing.T) {
	dc := testenv.RequireDocker(t)
	c, root := cgroupCluster(t, func(a *AgentConfig) { a.ExecutorShutdownGracePeriod = 2 * time.Second })
	s := subscribe(t, c, frameworkInfo("destroy"), protobuf())
	s.Launch(s.Offer(), testTask("t1", taskStubborn, testExecutorInfo(t, "ex1", "stubborn")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	es := c.executor(t, "ex1")
	group := waitGroupMembers(t, es.PID, 3) // executor, sh, sleep (the other sleep left)
	procs := cgroupProcs(t, memDir(t, es))
	if len(procs) < 4 {
		t.Fatalf("container cgroup holds %v, want the executor, sh and both sleeps", procs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "k8sm-mesos-test-" + testenv.RandomName(6)
	parent := root.Path + "/" + es.ContainerID + "/pod"
	created, err := dc.ContainerCreate(ctx, &dockercontainer.Config{Image: "k8sm.local/busybox:test", Cmd: []string{"sh", "-c", `trap "" TERM; sleep 1000`},
		Labels: map[string]string{"io.k8sm.test": "mesos-double"}},
		&dockercontainer.HostConfig{Resources: dockercontainer.Resources{CgroupParent: parent}}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dc.ContainerRemove(context.Background(), created.ID, dockercontainer.RemoveOptions{Force: true})
	})
	if err := dc.ContainerStart(ctx, created.ID, dockercontainer.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	s.Must(calls.Shutdown("ex1", c.a.ID()))
	st := s.Update("t1", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED {
		t.Fatalf("reason = %v, want EXECUTOR_TERMINATED", st.GetReason())
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("destroyed after %v, before the 2s grace period", d)
	}
	for _, p := range append(group, procs...) {
		if processAlive(p) {
			t.Errorf("process %d survived the destroy", p)
		}
	}
	waitFor(t, "Docker to see its container killed", func() bool {
		j, err := dc.ContainerInspect(ctx, created.ID)
		return err == nil && !j.State.Running && j.State.ExitCode == 137
	})
	for _, d := range es.Cgroups {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after the destroy", d)
		}
	}
}

func TestCgroupRegistrationTimeoutDestroys(t *testing.T) {
	c, _ := cgroupCluster(t, func(a *AgentConfig) { a.ExecutorRegistrationTimeout = 300 * time.Millisecond })
	s := subscribe(t, c, frameworkInfo("silent"), protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "silent")))
	es := c.executor(t, "ex1")
	st := s.Update("t1", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT {
		t.Fatalf("reason = %v", st.GetReason())
	}
	if processAlive(es.PID) {
		t.Fatal("silent executor alive after its registration timeout")
	}
	for _, d := range es.Cgroups {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left", d)
		}
	}
}

func cgroupProcs(t *testing.T, dir string) []int {
	t.Helper()
	var out []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return nil
	})
	return out
}
