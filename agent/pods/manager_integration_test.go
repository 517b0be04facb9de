//go:build integration && linux

package pods_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/test/testenv"
)

type statusLog struct {
	mu   sync.Mutex
	last map[string]v1.PodStatus
}

func (l *statusLog) get(uid string) (v1.PodStatus, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.last[uid]
	return s, ok
}

// newManager runs a manager with an executor id of this test alone; at the
// end of the test it stops every pod.
// stopAll is StopAll and, when it returns with the processes dead but
// Docker still removing containers, Drain: every pod gone and removed.
func stopAll(ctx context.Context, m *pods.Manager, killAt time.Time) error {
	err := m.StopAll(ctx, killAt)
	if errors.Is(err, pods.ErrNotRemoved) {
		return m.Drain(ctx)
	}
	return err
}

func newManager(t *testing.T, b *bed) (*pods.Manager, *statusLog) {
	t.Helper()
	b.owner.ExecutorID = testenv.RandomName(4)
	m, log, stop := runManager(t, b, b.rt)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := stopAll(sctx, m, time.Now().Add(5*time.Second)); err != nil {
			t.Errorf("cleanup StopAll: %v", err)
		}
		stop()
	})
	return m, log
}

// runManager runs a manager of b's executor on rt; stop ends its event
// loop (the pods keep running).
func runManager(t *testing.T, b *bed, rt pods.ManagerRuntime) (*pods.Manager, *statusLog, func()) {
	t.Helper()
	log := &statusLog{last: map[string]v1.PodStatus{}}
	m := pods.NewManager(pods.ManagerConfig{
		Worker: pods.WorkerConfig{
			Machine: pods.Config{BackoffBase: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond, BackoffReset: time.Minute},
			Spec: pods.SpecOptions{Owner: b.owner, HostIP: "127.0.0.1", PauseImage: testenv.PauseImage,
				VolumeRoot: b.vols},
			DockerDriver: "cgroupfs", StopTimeout: 10 * time.Second,
		},
		RelistPeriod: time.Second,
	}, rt, pods.CgroupsOf(b.cg), failureLog(t), func(uid string, s v1.PodStatus, _ pods.State) {
		log.mu.Lock()
		log.last[uid] = s
		log.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	var once sync.Once
	return m, log, func() { once.Do(func() { cancel(); <-done }) }
}

// failureLog is a logger whose lines the test prints only when it fails
// (a worker may still log after the test ends: never through t.Log then).
func failureLog(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("manager log:\n%s", buf.String())
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func launch(t *testing.T, m *pods.Manager, pod *v1.Pod) {
	t.Helper()
	podspec.Default(pod, podspec.StandardDefaults())
	if err := podspec.Validate(pod, podspec.Policy{}); err != nil {
		t.Fatal(err)
	}
	milli, mem := podspec.TaskResources(pod)
	if err := m.Launch(pod, "pod."+string(pod.UID), cgroups.Limits{CPURequestMilli: milli, MemoryBytes: mem}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testenv.WaitFor(t, time.Minute, what, ok)
}

// TestManagerRestartsFromDockerEvents: a crashing container is restarted
// by policy, its exits learnt from Docker's event stream through the
// manager; of its instances at most the current and the previous one stay.
func TestManagerRestartsFromDockerEvents(t *testing.T) {
	b := newBed(t)
	m, log := newManager(t, b)
	pod := newPod("crasher", v1.RestartPolicyAlways,
		v1.Container{Name: "c", Image: testenv.BusyboxImage, Command: []string{"sh", "-c", "sleep 0.2; exit 1"}})
	launch(t, m, pod)
	waitFor(t, "two restarts", func() bool {
		s, ok := log.get(string(pod.UID))
		return ok && len(s.ContainerStatuses) == 1 && s.ContainerStatuses[0].RestartCount >= 2
	})
	s, _ := log.get(string(pod.UID))
	if term := s.ContainerStatuses[0].LastTerminationState.Terminated; term == nil || term.ExitCode != 1 {
		t.Fatalf("last termination %+v, want exit 1", s.ContainerStatuses[0].LastTerminationState)
	}
	// After two restarts at most two instances: the current one and the
	// previous one (kept for logs --previous); the first is removed.
	list, _ := b.rt.List(context.Background(), map[string]string{runtime.LabelPodUID: string(pod.UID), runtime.LabelContainerName: "c"})
	if len(list) > 2 {
		t.Fatalf("%d instances of container c after two restarts (the current and the previous one at most)", len(list))
	}
}

// TestManagerStopAll: ten pods whose containers ignore SIGTERM are ended by
// SIGKILL at the kill point (exit 137) and are all gone when StopAll
// returns, with no worker, container or pod cgroup left. How long it took
// is logged, not asserted (timings belong to benchmarks).
func TestManagerStopAll(t *testing.T) {
	b := newBed(t)
	m, log := newManager(t, b)
	var uids []string
	for i := range 10 {
		pod := newPod(fmt.Sprintf("stubborn-%d", i), v1.RestartPolicyAlways,
			v1.Container{Name: "c", Image: testenv.BusyboxImage, Command: []string{"sh", "-c", "trap '' TERM; while true; do sleep 1; done"}})
		launch(t, m, pod)
		uids = append(uids, string(pod.UID))
	}
	waitFor(t, "all pods ready", func() bool {
		for _, u := range uids {
			s, ok := log.get(u)
			if !ok || !ready(s) {
				return false
			}
		}
		return true
	})
	// Note the containers: their exit codes tell how they ended.
	list, _ := b.rt.List(context.Background(), map[string]string{runtime.LabelExecutorID: b.owner.ExecutorID})
	codes := map[string]chan int{}
	for _, c := range list {
		if c.Labels[runtime.LabelContainerName] != "c" {
			continue
		}
		ch := make(chan int, 1)
		codes[c.ID] = ch
		go func(id string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for ctx.Err() == nil {
				if st, err := b.rt.Inspect(ctx, id); err == nil && !st.Running {
					ch <- st.ExitCode
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			ch <- -1
		}(c.ID)
	}
	if len(codes) != 10 {
		t.Fatalf("%d app containers, want 10", len(codes))
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	killAt := start.Add(2 * time.Second)
	if err := stopAll(ctx, m, killAt); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	killed := 0
	for id, ch := range codes {
		switch code := <-ch; code {
		case 137:
			killed++
		case -1: // removed before its watcher saw it stopped
		default:
			t.Errorf("container %s exited %d, want 137: it ignores SIGTERM, so only SIGKILL ends it", id[:12], code)
		}
	}
	if killed < len(codes)/2 {
		t.Errorf("only %d of %d containers were seen exiting 137", killed, len(codes))
	}
	if left := m.Pods(); len(left) != 0 {
		t.Fatalf("workers left: %v", left)
	}
	list, _ = b.rt.List(context.Background(), map[string]string{runtime.LabelExecutorID: b.owner.ExecutorID})
	if len(list) != 0 {
		t.Fatalf("%d containers left after StopAll", len(list))
	}
	if cg, _ := b.cg.PodUIDs(); len(cg) != 0 {
		t.Fatalf("pod cgroups left: %v", cg)
	}
	t.Logf("StopAll of 10 SIGTERM-ignoring pods: SIGKILL at +2s, all gone after %v (%d seen exiting 137)", took, killed)
}
