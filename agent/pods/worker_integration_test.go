//go:build integration && linux

package pods_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/test/testenv"
)

type bed struct {
	rt    *runtime.Docker
	cg    *cgroups.Manager
	mc    *testenv.MesosCgroup
	owner runtime.Owner
	vols  string // emptyDir volumes
}

func newBed(t testing.TB) *bed {
	t.Helper()
	testenv.RequireDocker(t)
	mc := testenv.NewMesosCgroup(t)
	rt, err := runtime.New(runtime.Config{Endpoint: testenv.DockerHost}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	cg, err := cgroups.New(cgroups.Config{Root: "/sys/fs/cgroup", Unified: cgroups.HostUnified(), Parent: mc.Path})
	if err != nil {
		t.Fatal(err)
	}
	return &bed{rt: rt, cg: cg, mc: mc, vols: t.TempDir(), owner: runtime.Owner{FrameworkID: "fw", ExecutorID: "k8sm-test", AgentID: "agent", ContainerID: mc.ID}}
}

// run starts a worker for pod and routes Docker's die events of the pod to
// it. It returns the statuses reported and the worker's end.
func (b *bed) run(t *testing.T, pod *v1.Pod) (*pods.Worker, <-chan v1.PodStatus, <-chan error) {
	t.Helper()
	podspec.Default(pod, podspec.StandardDefaults())
	if err := podspec.Validate(pod, podspec.Policy{AllowHostPath: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	t.Cleanup(func() { // whatever the test did, nothing of the pod stays
		list, _ := b.rt.List(context.Background(), map[string]string{runtime.LabelPodUID: string(pod.UID)})
		for _, c := range list {
			_ = b.rt.Remove(context.Background(), c.ID)
		}
	})
	milli, mem := podspec.TaskResources(pod)
	cfg := pods.WorkerConfig{
		Machine: pods.Config{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second, BackoffReset: time.Minute},
		Spec: pods.SpecOptions{Owner: b.owner, TaskID: "pod." + string(pod.UID), HostIP: "127.0.0.1",
			PauseImage: testenv.PauseImage, VolumeRoot: b.vols},
		Limits:       cgroups.Limits{CPURequestMilli: milli, CPULimitMilli: milli, MemoryBytes: mem},
		DockerDriver: "cgroupfs",
		StopTimeout:  20 * time.Second,
	}
	statuses := make(chan v1.PodStatus, 1000)
	w := pods.NewWorker(cfg, pod, b.rt, pods.CgroupsOf(b.cg), nil, func(s v1.PodStatus, _ pods.State) { statuses <- s })
	evs, _ := b.rt.Events(ctx, runtime.LabelPodUID+"="+string(pod.UID))
	go func() {
		for e := range evs {
			if e.Action == "die" {
				w.ContainerDied(e.ID)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return w, statuses, done
}

// waitStatus returns the first reported status that satisfies ok.
func waitStatus(t *testing.T, statuses <-chan v1.PodStatus, what string, ok func(v1.PodStatus) bool) v1.PodStatus {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case s := <-statuses:
			if ok(s) {
				return s
			}
		case <-timeout:
			t.Fatalf("no status with %s within 60s", what)
		}
	}
}

func ready(s v1.PodStatus) bool {
	for _, c := range s.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func newPod(name string, policy v1.RestartPolicy, cs ...v1.Container) *v1.Pod {
	return &v1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(testenv.RandomName(6))},
		Spec:       v1.PodSpec{RestartPolicy: policy, Containers: cs},
	}
}

// TestWorkerRunsAndKillsAPod: a two-container pod serves on its host port,
// every process sits below the Mesos cgroup, and a kill removes every
// container and the pod cgroup.
func TestWorkerRunsAndKillsAPod(t *testing.T) {
	b := newBed(t)
	port := int32(testenv.FreeTCPPort(t))
	pod := newPod("web", v1.RestartPolicyAlways,
		v1.Container{Name: "httpd", Image: testenv.BusyboxImage,
			Command: []string{"sh", "-c", "mkdir -p /www && echo $(NAME) > /www/index.html && exec httpd -f -p 8080 -h /www"},
			Env:     []v1.EnvVar{{Name: "NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			Ports:   []v1.ContainerPort{{ContainerPort: 8080, HostPort: port}}},
		v1.Container{Name: "sidecar", Image: testenv.BusyboxImage,
			Command: []string{"sh", "-c", "trap '' TERM; while true; do sleep 1; done"}}, // ignores SIGTERM
	)
	grace := int64(30)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	w, statuses, done := b.run(t, pod)

	st := waitStatus(t, statuses, "Ready", ready)
	if st.Phase != v1.PodRunning || st.PodIP == "" || len(st.ContainerStatuses) != 2 {
		t.Fatalf("ready status: phase %s ip %q containers %d", st.Phase, st.PodIP, len(st.ContainerStatuses))
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if strings.TrimSpace(string(body)) != "web" {
		t.Fatalf("served %q, want the pod name from a fieldRef", body)
	}
	list, err := b.rt.List(context.Background(), map[string]string{runtime.LabelPodUID: string(pod.UID)})
	if err != nil || len(list) != 3 {
		t.Fatalf("containers of the pod: %d, %v; want sandbox + 2", len(list), err)
	}
	for _, c := range list {
		s, err := b.rt.Inspect(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		pcg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", s.Pid))
		if !strings.Contains(string(pcg), ":"+b.mc.Path+"/"+string(pod.UID)+"/") {
			t.Errorf("%s outside the pod cgroup:\n%s", s.Name, pcg)
		}
	}

	start := time.Now()
	w.Send(pods.Kill{Grace: 2 * time.Second}) // shorter than the pod's 30 s
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not finish after Kill")
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("kill took %v with a 2s grace", took)
	}
	final := waitStatus(t, statuses, "a killed pod", func(s v1.PodStatus) bool { return s.Reason == "Killed" })
	if final.Phase != v1.PodFailed {
		t.Errorf("killed pod phase %s", final.Phase)
	}
	if list, _ := b.rt.List(context.Background(), map[string]string{runtime.LabelPodUID: string(pod.UID)}); len(list) != 0 {
		t.Errorf("%d containers left after the kill", len(list))
	}
	if uids, err := b.cg.PodUIDs(); err != nil || len(uids) != 0 {
		t.Errorf("pod cgroups left: %v %v", uids, err)
	}
}

// TestWorkerOOMAndOutcome: a container over its 32 MiB limit is OOMKilled,
// its sibling finishes, and with restartPolicy Never the pod fails.
func TestWorkerOOMAndOutcome(t *testing.T) {
	b := newBed(t)
	pod := newPod("oom", v1.RestartPolicyNever,
		v1.Container{Name: "hog", Image: testenv.BusyboxImage,
			Command:   []string{"sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 60"},
			Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("32Mi")}}},
		v1.Container{Name: "ok", Image: testenv.BusyboxImage, Command: []string{"sh", "-c", "sleep 1"}},
	)
	_, statuses, done := b.run(t, pod)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("pod did not finish")
	}
	final := waitStatus(t, statuses, "Failed", func(s v1.PodStatus) bool { return s.Phase == v1.PodFailed })
	byName := map[string]v1.ContainerStatus{}
	for _, c := range final.ContainerStatuses {
		byName[c.Name] = c
	}
	if term := byName["hog"].State.Terminated; term == nil || term.Reason != "OOMKilled" {
		t.Errorf("hog: %+v, want terminated OOMKilled", byName["hog"].State)
	}
	if term := byName["ok"].State.Terminated; term == nil || term.ExitCode != 0 {
		t.Errorf("ok: %+v, want terminated with 0", byName["ok"].State)
	}
	if uids, _ := b.cg.PodUIDs(); len(uids) != 0 {
		t.Errorf("pod cgroups left: %v", uids)
	}
}
