package executor

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/cgroups"
)

func upd(task, uuid string) executor.Call_Update {
	return executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, UUID: []byte(uuid)}}
}

func TestBookKeepsWhatIsNotAcknowledged(t *testing.T) {
	b := NewBook()
	b.Launched(mesos.TaskInfo{TaskID: mesos.TaskID{Value: "a"}})
	b.Launched(mesos.TaskInfo{TaskID: mesos.TaskID{Value: "b"}})
	b.Made(upd("a", "1"))
	b.Made(upd("a", "2"))
	b.Made(upd("b", "3"))
	if b.Acked("a", []byte("9")) || b.Acked("b", []byte("1")) {
		t.Fatal("an unknown (task, uuid) was acknowledged")
	}
	if !b.Acked("a", []byte("1")) {
		t.Fatal("a pending update was not acknowledged")
	}
	tasks, updates := b.Unacknowledged()
	if len(tasks) != 1 || tasks[0].TaskID.Value != "b" {
		t.Fatalf("unacknowledged tasks = %v, want only b (a has an acked update)", tasks)
	}
	if len(updates) != 2 || string(updates[0].Status.UUID) != "2" || string(updates[1].Status.UUID) != "3" {
		t.Fatalf("unacknowledged updates = %v, want 2 then 3", updates)
	}
	if b.PendingFor("a") != 1 || b.Pending() != 2 {
		t.Fatalf("pending a=%d all=%d", b.PendingFor("a"), b.Pending())
	}
	// The lists are copies: changing them leaves the book alone.
	updates[0].Status.UUID = []byte("x")
	if _, u := b.Unacknowledged(); string(u[0].Status.UUID) != "2" {
		t.Fatal("Unacknowledged returned the book's own slice")
	}
}

func TestTaskVerdict(t *testing.T) {
	running := func(names ...string) pods.State {
		s := pods.State{Stage: pods.StageRunning, Phase: v1.PodRunning}
		for _, n := range names {
			s.Containers = append(s.Containers, &pods.Container{Name: n, Running: n != "down"})
		}
		return s
	}
	oom := pods.State{Phase: v1.PodFailed, Containers: []*pods.Container{{Name: "c", Last: &pods.Exit{Reason: "OOMKilled", Code: 137}}}}
	killed := running("a")
	killed.KillAsked = true
	killed.Phase = v1.PodFailed
	for _, tc := range []struct {
		name   string
		prev   mesos.TaskState
		s      pods.State
		want   mesos.TaskState
		reason *mesos.TaskStatus_Reason
	}{
		{"pending", mesos.TASK_STARTING, pods.State{Stage: pods.StagePending, Phase: v1.PodPending}, mesos.TASK_STARTING, nil},
		{"one app container down", mesos.TASK_STARTING, running("a", "down"), mesos.TASK_STARTING, nil},
		{"all running", mesos.TASK_STARTING, running("a", "b"), mesos.TASK_RUNNING, nil},
		{"a restart keeps RUNNING", mesos.TASK_RUNNING, running("a", "down"), mesos.TASK_RUNNING, nil},
		{"succeeded", mesos.TASK_RUNNING, pods.State{Phase: v1.PodSucceeded}, mesos.TASK_FINISHED, nil},
		{"failed", mesos.TASK_RUNNING, pods.State{Phase: v1.PodFailed}, mesos.TASK_FAILED, nil},
		{"oom", mesos.TASK_RUNNING, oom, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LIMITATION_MEMORY.Enum()},
		{"killed: judged when gone", mesos.TASK_RUNNING, killed, mesos.TASK_RUNNING, nil},
	} {
		v := TaskVerdict(tc.prev, tc.s)
		if v.State != tc.want || (v.Reason == nil) != (tc.reason == nil) || (v.Reason != nil && *v.Reason != *tc.reason) {
			t.Errorf("%s: verdict %v %v, want %v %v", tc.name, v.State, v.Reason, tc.want, tc.reason)
		}
	}
}

func TestShutdownBudget(t *testing.T) {
	for grace, want := range map[time.Duration]time.Duration{
		3 * time.Second:  2 * time.Second,
		5 * time.Second:  4 * time.Second,
		time.Second:      800 * time.Millisecond,
		30 * time.Second: 24 * time.Second,
	} {
		b, k, c := ShutdownBudget(grace)
		if b != want || k != b*6/10 || b >= c || c >= grace {
			t.Errorf("grace %v: budget %v kill after %v cleanup %v, want budget %v", grace, b, k, c, want)
		}
	}
}

// The node API on TCP: 401 without the exact bearer token.
func TestRequireToken(t *testing.T) {
	h := RequireToken("tok", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	for hdr, want := range map[string]int{"": 401, "Bearer": 401, "Bearer tok2": 401, "Basic tok": 401, "bearer tok": 401, "Bearer tok": 204} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/pods", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", hdr, rec.Code, want)
		}
		if want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: 401 without WWW-Authenticate", hdr)
		}
	}
	if rec := httptest.NewRecorder(); true {
		RequireToken("", h).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 401 {
			t.Errorf("an empty token lets callers in: %d", rec.Code)
		}
	}
}

// /stats/summary from cgroup readings: the node is the executor's
// container, pods and running containers by their cgroup paths, CPU rates
// from the previous reading, available memory only under a real limit.
func TestSummary(t *testing.T) {
	cpu := map[string]uint64{"": 1e9, "u1": 4e8, "u1/abc": 3e8}
	read := func(rel string) (cgroups.Stats, error) {
		c, ok := cpu[rel]
		if !ok {
			return cgroups.Stats{}, fmt.Errorf("no cgroup %q", rel)
		}
		limit := uint64(1) << 63
		if rel == "u1" {
			limit = 100 << 20
		}
		return cgroups.Stats{CPUUsageNanos: c, MemoryUsage: 30 << 20, MemoryWorkingSet: 20 << 20, MemoryLimit: limit}, nil
	}
	e := &Executor{view: map[string]PodView{}, samples: map[string]cpuSample{}, stats: read, nodeName: "n1", startedAt: time.Unix(100, 0)}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}}
	st := v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{
		{Name: "app", ContainerID: "docker://abc", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}},
		{Name: "gone", ContainerID: "docker://def", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}},
		{Name: "waiting", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}},
	}}
	e.view["t1"] = PodView{TaskID: "t1", Pod: pod, Status: st}
	t0 := time.Unix(1000, 0)
	first, err := e.Summary(t0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Node.NodeName != "n1" || first.Node.CPU.UsageNanoCores != nil || *first.Node.CPU.UsageCoreNanoSeconds != 1e9 {
		t.Fatalf("first node stats: %+v", first.Node.CPU)
	}
	if first.Node.Memory.AvailableBytes != nil {
		t.Fatal("available memory reported for an unlimited cgroup")
	}
	cpu[""], cpu["u1"] = 3e9, 9e8 // 2 s of CPU in 2 s: one core; the pod half of one
	second, err := e.Summary(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r := second.Node.CPU.UsageNanoCores; r == nil || *r != 1e9 {
		t.Fatalf("node CPU rate %v, want 1e9 nano-cores", r)
	}
	p := second.Pods[0]
	if p.PodRef.UID != "u1" || *p.CPU.UsageNanoCores != 25e7 || *p.Memory.AvailableBytes != 80<<20 {
		t.Fatalf("pod stats: ref %+v cpu %v available %v", p.PodRef, *p.CPU.UsageNanoCores, *p.Memory.AvailableBytes)
	}
	if len(p.Containers) != 2 || p.Containers[0].Name != "app" || p.Containers[0].CPU == nil || p.Containers[1].CPU != nil {
		t.Fatalf("containers: %+v (want app with figures, gone without, waiting left out)", p.Containers)
	}
	e.stats = func(string) (cgroups.Stats, error) { return cgroups.Stats{}, fmt.Errorf("gone") }
	if _, err := e.Summary(t0); err == nil {
		t.Fatal("a summary without the executor's cgroup")
	}
}
