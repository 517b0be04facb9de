package nodeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
)

// source is a fixed Source.
type source struct {
	pods []PodView
	info Info
}

func (s *source) Pods() []PodView { return s.pods }
func (s *source) Info() Info      { return s.info }

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
	rec := httptest.NewRecorder()
	RequireToken("", h).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 401 {
		t.Errorf("an empty token lets callers in: %d", rec.Code)
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
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}}
	st := v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{
		{Name: "app", ContainerID: "docker://abc", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}},
		{Name: "gone", ContainerID: "docker://def", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}},
		{Name: "waiting", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}},
	}}
	s := New(&source{pods: []PodView{{TaskID: "t1", Pod: pod, Status: st}}}, nil)
	if _, err := s.Summary(time.Now()); err == nil {
		t.Fatal("a summary before the node side is up")
	}
	s.SetNode(Node{Name: "n1", Stats: read})
	t0 := time.Unix(1000, 0)
	first, err := s.Summary(t0)
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
	second, err := s.Summary(t0.Add(2 * time.Second))
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
	s.SetNode(Node{Name: "n1", Stats: func(string) (cgroups.Stats, error) { return cgroups.Stats{}, fmt.Errorf("gone") }})
	if _, err := s.Summary(t0); err == nil {
		t.Fatal("a summary without the executor's cgroup")
	}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// /pods lists the Source's pods with status and task id; /executor adds
// the process and the cgroup's usage to the Source's Info; /containerLogs
// finds the pod by name and names what is missing.
func TestEndpoints(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"},
		Spec: v1.PodSpec{InitContainers: []v1.Container{{Name: "init"}}, Containers: []v1.Container{{Name: "app"}}}}
	src := &source{
		pods: []PodView{{TaskID: "pod.u1", Pod: pod, Status: v1.PodStatus{Phase: v1.PodRunning}}},
		info: Info{FrameworkID: "fw", ExecutorID: "ex", Subscribed: true, CPUs: 1.5},
	}
	s := New(src, nil)
	if rec := get(t, s, "/healthz"); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Fatalf("/healthz: %d %q", rec.Code, rec.Body)
	}
	var list v1.PodList
	if err := json.Unmarshal(get(t, s, "/pods").Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Status.Phase != v1.PodRunning || list.Items[0].Annotations[podspec.TaskIDAnnotation] != "pod.u1" {
		t.Fatalf("/pods: %+v", list.Items)
	}
	if pod.Annotations != nil {
		t.Fatal("/pods wrote into the Source's pod")
	}
	if rec := get(t, s, "/containerLogs/ns/web/app"); rec.Code != 503 {
		t.Fatalf("logs before the node side: %d, want 503", rec.Code)
	}
	if rec := get(t, s, "/metrics"); rec.Code != 404 {
		t.Fatalf("/metrics without a gatherer: %d", rec.Code)
	}
	s.SetNode(Node{Name: "n1", CgroupPath: "/mesos/c1",
		Stats: func(string) (cgroups.Stats, error) {
			return cgroups.Stats{MemoryUsage: 7, CPUUsageNanos: 9, MemoryLimit: 64 << 20}, nil
		},
		Logs: func(_ context.Context, uid, ctr string, o LogOptions) (io.ReadCloser, error) {
			tail := ""
			if o.TailLines != nil {
				tail = fmt.Sprint(*o.TailLines)
			}
			return io.NopCloser(strings.NewReader(fmt.Sprintf("%s %s tail=%s follow=%t\n", uid, ctr, tail, o.Follow))), nil
		}})
	var in Info
	if err := json.Unmarshal(get(t, s, "/executor").Body.Bytes(), &in); err != nil {
		t.Fatal(err)
	}
	if in.FrameworkID != "fw" || in.PID == 0 || in.Cgroup != "/mesos/c1" || in.MemoryUsageBytes != 7 || in.CPUUsageNanos != 9 || in.MemoryLimitBytes != 64<<20 || in.CPUs != 1.5 {
		t.Fatalf("/executor: %+v", in)
	}
	for path, want := range map[string]string{
		"/containerLogs/ns/web/app?tailLines=3&follow=true": "200 u1 app tail=3 follow=true\n",
		"/containerLogs/ns/web/init":                        "200 u1 init tail= follow=false\n",
		"/containerLogs/ns/web/app?tailLines=-1":            "422 tailLines: want a whole number >= 0, got \"-1\"\n",
		"/containerLogs/ns/web/db":                          "404 pod ns/web has no container \"db\"\n",
		"/containerLogs/ns/api/app":                         "404 pod ns/api is not on this node\n",
	} {
		rec := get(t, s, path)
		if got := fmt.Sprintf("%d %s", rec.Code, rec.Body); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
