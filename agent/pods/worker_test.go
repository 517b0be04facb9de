package pods

import (
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/runtime"
)

func statusOf(st v1.PodStatus, name string) v1.ContainerStatus {
	for _, c := range st.ContainerStatuses {
		if c.Name == name {
			return c
		}
	}
	return v1.ContainerStatus{}
}

func podReady(st v1.PodStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// TestWorkerRestartBackoffOnFakeClock: a crashing container restarts after
// 10s, 20s, 40s, 40s (cap), never before its delay, and the status shows
// CrashLoopBackOff and the restart count.
func TestWorkerRestartBackoffOnFakeClock(t *testing.T) {
	b := newFakeBed(t, fakePod(v1.RestartPolicyAlways, v1.Container{Name: "web"}), nil, nil)
	b.until("web started", func() bool { return b.rt.startsOf("web") == 1 })
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second} {
		b.rt.die(b.rt.current("web"), 1)
		b.armed()
		cs := statusOf(b.status(), "web")
		if cs.RestartCount != int32(i+1) || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
			t.Fatalf("restart %d: status %+v", i+1, cs)
		}
		// The restart timer is due in want: not fired a millisecond
		// before (the fake clock runs due timers inside Step), fired then.
		b.clk.Step(want - time.Millisecond)
		if n := b.clk.Waiters(); n != 1 {
			t.Fatalf("restart %d: the timer of %v fired by %v (%d timers left)", i+1, want, want-time.Millisecond, n)
		}
		time.Sleep(5 * time.Millisecond) // a wrong early start would show now
		if n := b.rt.startsOf("web"); n != i+1 {
			t.Fatalf("restart %d: started before its delay (%d starts)", i+1, n)
		}
		b.clk.Step(time.Millisecond)
		if n := b.clk.Waiters(); n != 0 {
			t.Fatalf("restart %d: the timer did not fire at %v (%d timers left)", i+1, want, n)
		}
		b.until("web restarted", func() bool { return b.rt.startsOf("web") == i+2 && b.rt.current("web") != "" })
	}
}

// TestWorkerProbesOnFakeClock: readiness drives Ready, failing liveness
// (failureThreshold 2) restarts the container, which probes from scratch.
func TestWorkerProbesOnFakeClock(t *testing.T) {
	var ready, live atomic.Bool
	ready.Store(true)
	live.Store(true)
	rt := newFakeRuntime(t, "pause", "app")
	rt.exec = func(cmd []string) int {
		ok := map[string]*atomic.Bool{"ready": &ready, "live": &live}[cmd[0]].Load()
		if ok {
			return 0
		}
		return 1
	}
	probe := func(cmd string, threshold int32) *v1.Probe {
		return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{cmd}}},
			PeriodSeconds: 10, TimeoutSeconds: 1, FailureThreshold: threshold, SuccessThreshold: 1}
	}
	b := newFakeBed(t, fakePod(v1.RestartPolicyAlways, v1.Container{Name: "web",
		ReadinessProbe: probe("ready", 1), LivenessProbe: probe("live", 2)}), nil, rt)
	tick := func() { b.clk.Step(10 * time.Second); time.Sleep(2 * time.Millisecond) }
	b.until("ready", func() bool { tick(); return podReady(b.status()) })

	ready.Store(false)
	b.until("not ready", func() bool { tick(); return !podReady(b.status()) })
	if b.rt.startsOf("web") != 1 {
		t.Fatal("a readiness failure restarted the container")
	}
	ready.Store(true)
	b.until("ready again", func() bool { tick(); return podReady(b.status()) })

	live.Store(false)
	b.until("liveness restart", func() bool { tick(); return b.rt.startsOf("web") == 2 })
	live.Store(true)
	b.until("ready after the restart", func() bool { tick(); return podReady(b.status()) })
	if cs := statusOf(b.status(), "web"); cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil {
		t.Fatalf("after a liveness restart: %+v", cs)
	}
}

// TestWorkerRemakesADeadSandbox: when the pause container dies, the app
// container is stopped, a new sandbox is made and the app joins it; the
// fake fails the test if two instances ever ran at once.
func TestWorkerRemakesADeadSandbox(t *testing.T) {
	b := newFakeBed(t, fakePod(v1.RestartPolicyAlways, v1.Container{Name: "web"}), nil, nil)
	b.until("web started", func() bool { return b.rt.startsOf("web") == 1 })
	b.rt.die(b.rt.current(runtime.SandboxName), 255)
	b.until("a new sandbox and web in it", func() bool {
		return b.rt.startsOf(runtime.SandboxName) == 2 && b.rt.startsOf("web") == 2 && b.rt.current("web") != ""
	})
	b.until("status running again", func() bool {
		cs := statusOf(b.status(), "web")
		return cs.State.Running != nil && cs.RestartCount == 1
	})
}

// TestWorkerNoticesAVanishedContainer: a relist that lacks the running
// container reports it ContainerStatusUnknown and restarts it once.
func TestWorkerNoticesAVanishedContainer(t *testing.T) {
	b := newFakeBed(t, fakePod(v1.RestartPolicyAlways, v1.Container{Name: "web"}), nil, nil)
	b.until("web started", func() bool { return b.rt.current("web") != "" })
	gone := b.rt.current("web")
	b.rt.mu.Lock()
	delete(b.rt.cs, gone) // removed behind the worker's back, no event
	b.rt.mu.Unlock()
	list, _ := b.rt.List(t.Context(), nil)
	running := map[string]bool{}
	for _, c := range list {
		running[c.ID] = c.State == "running"
	}
	b.w.Relisted(time.Now(), running)
	b.w.Relisted(time.Now(), running) // twice: still one restart
	b.armed()
	cs := statusOf(b.status(), "web")
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.Reason != "ContainerStatusUnknown" {
		t.Fatalf("vanished container status: %+v", cs)
	}
	b.firesAfter(10 * time.Second) // the restart delay
	b.until("restarted once", func() bool { return b.rt.startsOf("web") == 2 && b.rt.current("web") != "" })
}

// TestWorkerResumesAdoptedContainers: a worker given an earlier worker's
// running containers creates nothing, reports Running with the restart
// count of the label, and restarts an adopted container that had exited.
func TestWorkerResumesAdoptedContainers(t *testing.T) {
	rt := newFakeRuntime(t, "pause", "app")
	first := newFakeBed(t, fakePod(v1.RestartPolicyAlways, v1.Container{Name: "a"}, v1.Container{Name: "b"}), nil, rt)
	first.until("both started", func() bool { return rt.current("a") != "" && rt.current("b") != "" })
	rt.die(rt.current("a"), 1)
	first.armed()
	first.clk.Step(10 * time.Second)
	first.until("a restarted", func() bool { return rt.startsOf("a") == 2 && rt.current("a") != "" })
	first.stop()
	rt.die(rt.current("b"), 3) // b exits while no one watches

	found, _ := rt.List(t.Context(), map[string]string{runtime.LabelPodUID: "uid-p"})
	rt.mu.Lock()
	rt.starts = map[string]int{}
	creates := rt.next
	rt.mu.Unlock()
	second := newFakeBed(t, fakePod(v1.RestartPolicyAlways, v1.Container{Name: "a"}, v1.Container{Name: "b"}), found, rt)
	second.until("resumed status", func() bool {
		st := second.status()
		return st.Phase == v1.PodRunning && statusOf(st, "a").RestartCount == 1
	})
	if a := statusOf(second.status(), "a"); a.State.Running == nil {
		t.Fatalf("adopted a not running: %+v", a)
	}
	second.firesAfter(10 * time.Second) // b's restart delay
	second.until("b restarted", func() bool { return rt.startsOf("b") == 1 })
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.next != creates+1 || rt.starts["a"] != 0 || rt.starts[runtime.SandboxName] != 0 {
		t.Fatalf("adoption made containers: %d creates, starts %v", rt.next-creates, rt.starts)
	}
}
