//go:build integration && linux

package pods_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/test/testenv"
)

// stopSignalImage builds (locally, from the busybox test image) an image
// whose STOPSIGNAL is SIGUSR1, and removes it after the test.
func stopSignalImage(t *testing.T) string {
	t.Helper()
	tag := "k8sm.local/stopsig-" + testenv.RandomName(4) + ":test"
	docker := func(args ...string) *exec.Cmd {
		c := exec.Command("/usr/bin/docker", args...)
		c.Env = append(os.Environ(), "DOCKER_HOST="+testenv.DockerHost, "DOCKER_BUILDKIT=0")
		return c
	}
	build := docker("build", "-q", "-t", tag, "-")
	build.Stdin = strings.NewReader("FROM " + testenv.BusyboxImage + "\nSTOPSIGNAL SIGUSR1\n")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = docker("rmi", "-f", tag).Run() })
	return tag
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestPreStopHookThenImageStopSignal: a kill runs the preStop exec hook
// first, then sends the image's stop signal (SIGUSR1 here, not SIGTERM),
// which the container handles and exits 0 long before the grace period.
func TestPreStopHookThenImageStopSignal(t *testing.T) {
	b := newBed(t)
	image := stopSignalImage(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pod := newPod("hooks", v1.RestartPolicyAlways, v1.Container{Name: "app", Image: image, ImagePullPolicy: v1.PullNever,
		Command: []string{"sh", "-c", "trap 'echo usr1 >> /v/log; exit 0' USR1; trap 'echo term >> /v/log' TERM; " +
			"echo up >> /v/log; while :; do sleep 0.1; done"},
		VolumeMounts: []v1.VolumeMount{{Name: "v", MountPath: "/v"}},
		Lifecycle: &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{
			Command: []string{"sh", "-c", "echo prestop >> /v/log"}}}}})
	pod.Spec.Volumes = []v1.Volume{{Name: "v", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: dir}}}}
	grace := int64(60)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	w, statuses, done := b.run(t, pod)
	waitStatus(t, statuses, "Ready", ready)

	w.Send(pods.Kill{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := readLines(t, filepath.Join(dir, "log")), []string{"up", "prestop", "usr1"}; !slices.Equal(got, want) {
		t.Fatalf("the container saw %v, want %v (hook, then the image's stop signal)", got, want)
	}
	final := waitStatus(t, statuses, "stopped", func(s v1.PodStatus) bool { return s.Reason == "Killed" })
	if term := final.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 {
		t.Fatalf("app ended %+v, want exit 0 from its USR1 handler, not a SIGKILL", final.ContainerStatuses[0].State)
	}
}

// TestEmptyDirIsSharedAndRemoved: two containers share an emptyDir under
// the volume root; it is gone with the pod.
func TestEmptyDirIsSharedAndRemoved(t *testing.T) {
	b := newBed(t)
	pod := newPod("share", v1.RestartPolicyNever,
		v1.Container{Name: "writer", Image: testenv.BusyboxImage, Command: []string{"sh", "-c", "echo hi > /d/f; sleep 30"},
			VolumeMounts: []v1.VolumeMount{{Name: "d", MountPath: "/d"}}},
		v1.Container{Name: "reader", Image: testenv.BusyboxImage, Command: []string{"sh", "-c", "until grep -q hi /d/f; do sleep 0.1; done"},
			VolumeMounts: []v1.VolumeMount{{Name: "d", MountPath: "/d"}}})
	pod.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	w, statuses, done := b.run(t, pod)
	waitStatus(t, statuses, "reader done", func(s v1.PodStatus) bool {
		for _, c := range s.ContainerStatuses {
			if c.Name == "reader" && c.State.Terminated != nil {
				return c.State.Terminated.ExitCode == 0
			}
		}
		return false
	})
	vol := pods.EmptyDirPath(b.vols, string(pod.UID), "d")
	if got := readLines(t, filepath.Join(vol, "f")); !slices.Equal(got, []string{"hi"}) {
		t.Fatalf("emptyDir holds %v", got)
	}
	w.Send(pods.Kill{Grace: time.Second})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.vols, string(pod.UID))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the pod's volumes outlive it: %v", err)
	}
}

func containerIDs(t *testing.T, rt *runtime.Docker, uid string) map[string]string {
	t.Helper()
	list, err := rt.List(context.Background(), map[string]string{runtime.LabelPodUID: uid})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, c := range list {
		ids[c.Labels[runtime.LabelContainerName]] = c.ID
	}
	return ids
}

// TestAdoptAfterRestartingTheRuntime: a new manager on a new runtime object
// adopts the wanted pod's running containers without restarting them (same
// ids, same start), reports it Ready, and removes the containers of a pod
// that is no longer wanted.
func TestAdoptAfterRestartingTheRuntime(t *testing.T) {
	b := newBed(t)
	b.owner.ExecutorID = testenv.RandomName(4)
	m1, log1, stop1 := runManager(t, b, b.rt)
	keep := newPod("keep", v1.RestartPolicyAlways, v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", "sleep 3600"}, ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{
			Exec: &v1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1}})
	drop := newPod("drop", v1.RestartPolicyAlways, v1.Container{Name: "c", Image: testenv.BusyboxImage, Command: []string{"sleep", "3600"}})
	launch(t, m1, keep)
	launch(t, m1, drop)
	for _, p := range []*v1.Pod{keep, drop} {
		waitFor(t, p.Name+" ready", func() bool { s, ok := log1.get(string(p.UID)); return ok && ready(s) })
	}
	before := containerIDs(t, b.rt, string(keep.UID))
	started := func(id string) time.Time {
		st, err := b.rt.Inspect(context.Background(), id)
		if err != nil || !st.Running {
			t.Fatalf("container %s: running %v, %v", id[:12], st.Running, err)
		}
		return st.StartedAt
	}
	startedBefore := started(before["c"])
	m1.Close()
	stop1()

	rt2, err := runtime.New(runtime.Config{Endpoint: testenv.DockerHost}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt2.Close() }()
	m2, log2, stop2 := runManager(t, b, rt2)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := stopAll(ctx, m2, time.Now().Add(2*time.Second)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		stop2()
	})
	milli, mem := podspec.TaskResources(keep)
	adopted, err := m2.Adopt(context.Background(), []pods.Wanted{{Pod: keep, TaskID: "pod." + string(keep.UID),
		Limits: cgroups.Limits{CPURequestMilli: milli, MemoryBytes: mem}}})
	if err != nil || !slices.Equal(adopted, []string{string(keep.UID)}) {
		t.Fatalf("adopted %v, %v", adopted, err)
	}
	waitFor(t, "adopted pod ready", func() bool { s, ok := log2.get(string(keep.UID)); return ok && ready(s) })
	after := containerIDs(t, b.rt, string(keep.UID))
	if !maps2Equal(before, after) || !started(after["c"]).Equal(startedBefore) {
		t.Fatalf("adoption replaced containers: before %v after %v", before, after)
	}
	if left := containerIDs(t, b.rt, string(drop.UID)); len(left) != 0 {
		t.Fatalf("containers of the pod no longer wanted are left: %v", left)
	}
	if s, _ := log2.get(string(keep.UID)); s.ContainerStatuses[0].RestartCount != 0 || s.Phase != v1.PodRunning {
		t.Fatalf("adopted status: %+v", s)
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSandboxRemovedBehindOurBack: removing a running pod's sandbox with
// Docker directly makes the worker remake the pod: a new sandbox and one
// app container in it, never two.
func TestSandboxRemovedBehindOurBack(t *testing.T) {
	b := newBed(t)
	m, log := newManager(t, b)
	pod := newPod("phoenix", v1.RestartPolicyAlways, v1.Container{Name: "c", Image: testenv.BusyboxImage, Command: []string{"sleep", "3600"}})
	grace := int64(2) // sleep as PID 1 ignores SIGTERM: the old c waits out the grace
	pod.Spec.TerminationGracePeriodSeconds = &grace
	launch(t, m, pod)
	uid := string(pod.UID)
	waitFor(t, "ready", func() bool { s, ok := log.get(uid); return ok && ready(s) })
	before := containerIDs(t, b.rt, uid)
	if err := b.rt.Remove(context.Background(), before[runtime.SandboxName]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod made again", func() bool {
		s, ok := log.get(uid)
		return ok && ready(s) && s.ContainerStatuses[0].RestartCount == 1
	})
	after := containerIDs(t, b.rt, uid)
	if len(after) != 2 || after[runtime.SandboxName] == before[runtime.SandboxName] || after["c"] == before["c"] {
		t.Fatalf("containers after the remake: %v (before %v); want a new sandbox and a new c", after, before)
	}
	list, _ := b.rt.List(context.Background(), map[string]string{runtime.LabelPodUID: uid})
	for _, c := range list {
		if c.State != "running" {
			t.Errorf("container %s is %s", c.Labels[runtime.LabelContainerName], c.State)
		}
	}
}

// TestLogs: the last lines of a container's output, and following it.
func TestLogs(t *testing.T) {
	b := newBed(t)
	m, log := newManager(t, b)
	pod := newPod("talker", v1.RestartPolicyAlways, v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", "for i in 1 2 3; do echo line$i; done; echo err >&2; sleep 2; while :; do echo tick; sleep 0.2; done"}})
	launch(t, m, pod)
	uid := string(pod.UID)
	waitFor(t, "ready", func() bool { s, ok := log.get(uid); return ok && ready(s) })
	var got []string
	waitFor(t, "four lines of output", func() bool {
		rc, err := m.Logs(context.Background(), uid, "c", nodeapi.LogOptions{TailLines: ptr.To[int64](4)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rc.Close() }()
		out, _ := io.ReadAll(rc)
		got = strings.Fields(string(out))
		return slices.Contains(got, "err")
	})
	// stdout and stderr are copied apart: only each stream's order holds.
	if s := slices.Sorted(slices.Values(got)); !slices.Equal(s, []string{"err", "line1", "line2", "line3"}) ||
		slices.Index(got, "line1") > slices.Index(got, "line3") {
		t.Fatalf("tail 4 = %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := m.Logs(ctx, uid, "c", nodeapi.LogOptions{TailLines: ptr.To[int64](0), Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	sc := bufio.NewScanner(rc)
	if !sc.Scan() || sc.Text() != "tick" {
		t.Fatalf("follow: %q, %v", sc.Text(), sc.Err())
	}
	if _, err := m.Logs(ctx, uid, "nope", nodeapi.LogOptions{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("logs of a container that does not exist: %v", err)
	}
}

// TestDockerRestart: a private dockerd is restarted under a running pod.
// Its containers stop with it; once it is back, the manager's event stream
// reconnects, the relist finds the sandbox dead, and the pod is made again:
// a new sandbox and one app container, both running, restart count 1.
func TestDockerRestart(t *testing.T) {
	b := newBed(t)
	d := testenv.NewDockerd(t)
	rt, err := runtime.New(runtime.Config{Endpoint: d.Host}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	b.owner.ExecutorID = testenv.RandomName(4)
	m, log, stop := runManager(t, b, rt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := stopAll(ctx, m, time.Now().Add(2*time.Second)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		stop()
	})
	pod := newPod("survivor", v1.RestartPolicyAlways, v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"}})
	launch(t, m, pod)
	uid := string(pod.UID)
	waitFor(t, "ready", func() bool { s, ok := log.get(uid); return ok && ready(s) })
	before := containerIDs(t, rt, uid)

	d.Restart(t)
	waitFor(t, "the pod made again after the daemon restart", func() bool {
		s, ok := log.get(uid)
		return ok && ready(s) && s.ContainerStatuses[0].RestartCount == 1
	})
	list, err := rt.List(context.Background(), map[string]string{runtime.LabelPodUID: uid})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, c := range list {
		names[c.Labels[runtime.LabelContainerName]]++
		if c.State != "running" {
			t.Errorf("%s is %s", c.Labels[runtime.LabelContainerName], c.State)
		}
		if c.ID == before[c.Labels[runtime.LabelContainerName]] {
			t.Errorf("%s is the container from before the restart", c.Labels[runtime.LabelContainerName])
		}
	}
	if names[runtime.SandboxName] != 1 || names["c"] != 1 || len(list) != 2 {
		t.Fatalf("containers after the restart: %v; want one sandbox and one c", names)
	}
}
