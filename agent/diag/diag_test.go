package diag

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// fixture: one live executor with a web pod (one restart after an OOM
// kill) and a proxy; a dead executor whose pod container is still there;
// a leaked pod cgroup; a container outside its executor's cgroup; stale
// chains counted.
func fixture() Inputs {
	started := metav1.NewTime(now.Add(-90 * time.Minute))
	web := v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "11111111-2222-3333-4444-555555555555",
			Annotations: map[string]string{podspec.TaskIDAnnotation: "pod.1111"}},
		Spec: v1.PodSpec{Containers: []v1.Container{
			{Name: "web", Ports: []v1.ContainerPort{{ContainerPort: 8080, HostPort: 31005}}},
			{Name: "sidecar"},
		}},
		Status: v1.PodStatus{Phase: v1.PodRunning, StartTime: &started, ContainerStatuses: []v1.ContainerStatus{
			{Name: "web", Ready: true, RestartCount: 1, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}},
			{Name: "sidecar", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}}},
		}},
	}
	return Inputs{
		Now: now, OrphanGrace: OrphanGrace, CgroupRoot: "mesos", APIDir: "/run/k8sm/executors", DockerEndpoint: "unix:///var/run/docker.sock", DockerDriver: "cgroupfs",
		APIs: []API{
			{Socket: "/run/k8sm/executors/c-live.sock", CPU: 0.25,
				Info: nodeapi.Info{PID: 4242, StartedAt: now.Add(-2 * time.Hour), FrameworkID: "fw-1", ExecutorID: "k8sm-abc", ContainerID: "c-live",
					AgentEndpoint: "10.0.0.5:5051", Subscribed: true, Cgroup: "/mesos/c-live", MemoryLimitBytes: 64 << 20, MemoryUsageBytes: 60 << 20,
					CPUs: 1.5, PortRanges: []string{"31000-32000"}},
				Pods:    []v1.Pod{web},
				Summary: &stats.Summary{Pods: []stats.PodStats{{PodRef: stats.PodReference{UID: string(web.UID)}, Memory: &stats.MemoryStats{WorkingSetBytes: ptr.To(uint64(20 << 20)), AvailableBytes: ptr.To(uint64(44 << 20))}}}},
				Proxy:   &proxy.Status{ServicePorts: 3, Endpoints: 5, LastSync: now.Add(-10 * time.Second)}},
			{Socket: "/run/k8sm/executors/c-dead.sock", Err: fmt.Errorf("dial unix: %w", syscall.ECONNREFUSED)},
			{Socket: "/run/k8sm/executors/c-slow.sock", Err: fmt.Errorf("GET /executor: %w", context.DeadlineExceeded)},
		},
		Containers: []DockerContainer{
			{ID: "aaaaaaaaaaaa1111", Name: "k8sm-web-web", State: "running", Pid: 10, Cgroup: "/mesos/c-live/11111111-2222-3333-4444-555555555555/aaaa",
				Labels: map[string]string{runtime.LabelFrameworkID: "fw-1", runtime.LabelContainerID: "c-live", runtime.LabelPodUID: string(web.UID)}},
			{ID: "bbbbbbbbbbbb2222", Name: "k8sm-escaped", State: "running", Pid: 11, Cgroup: "/docker/bbbb",
				Labels: map[string]string{runtime.LabelFrameworkID: "fw-1", runtime.LabelContainerID: "c-live", runtime.LabelPodUID: string(web.UID)}},
			{ID: "cccccccccccc3333", Name: "k8sm-old-c", State: "exited", Created: now.Add(-time.Hour),
				Labels: runtime.Labels(runtime.Owner{FrameworkID: "fw-1", ExecutorID: "k8sm-abc", AgentID: "agent-1", ContainerID: "c-dead"},
					runtime.PodRef{TaskID: "pod.old", UID: "99999999-8888-7777-6666-555555555555", Name: "old", Namespace: "default"}, "c")},
			// Young: a pod being started by an executor diag does not see yet.
			{ID: "dddddddddddd4444", Name: "k8sm-new-c", State: "created", Created: now.Add(-10 * time.Second),
				Labels: runtime.Labels(runtime.Owner{FrameworkID: "fw-1", ExecutorID: "k8sm-abc", AgentID: "agent-1", ContainerID: "c-new"},
					runtime.PodRef{TaskID: "pod.new", UID: "12345678-8888-7777-6666-555555555555", Name: "new", Namespace: "default"}, "c")},
			// Its executor's socket does not answer in time (it is not
			// refused): maybe alive and busy, not dead.
			{ID: "eeeeeeeeeeee5555", Name: "k8sm-slow-c", State: "running", Created: now.Add(-time.Hour),
				Labels: runtime.Labels(runtime.Owner{FrameworkID: "fw-1", ExecutorID: "k8sm-abc", AgentID: "agent-1", ContainerID: "c-slow"},
					runtime.PodRef{TaskID: "pod.slow", UID: "abcdef01-8888-7777-6666-555555555555", Name: "slow", Namespace: "default"}, "c")},
		},
		PodCgroups: []PodCgroup{
			{ContainerID: "c-live", PodUID: string(web.UID), Path: "/mesos/c-live/" + string(web.UID), Procs: 3},
			{ContainerID: "c-dead", PodUID: "99999999-8888-7777-6666-555555555555", Path: "/mesos/c-dead/99999999-8888-7777-6666-555555555555"},
			{ContainerID: "spark-1", PodUID: "aaaaaaaa-8888-7777-6666-555555555555", Path: "/mesos/spark-1/aaaaaaaa-8888-7777-6666-555555555555"},
			{ContainerID: "c-slow", PodUID: "abcdef01-8888-7777-6666-555555555555", Path: "/mesos/c-slow/abcdef01-8888-7777-6666-555555555555", Procs: 2},
		},
		Chains: 12,
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -run %s -update to accept):\n%s", p, t.Name(), got)
	}
}

func TestTableAndJSONGolden(t *testing.T) {
	r := Evaluate(fixture())
	var table, js bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", table.Bytes())
	golden(t, "report.json", js.Bytes())
}

func TestProblems(t *testing.T) {
	r := Evaluate(fixture())
	if r.Worst() != Fail {
		t.Fatalf("worst %s, want FAIL (a container outside its cgroup)", r.Worst())
	}
	var lines []string
	for _, p := range r.Problems {
		lines = append(lines, string(p.Level)+" "+p.Check+" "+p.What)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"WARN executors executor container c-dead does not answer",
		"WARN memory executor k8sm-abc uses 60.0Mi of its 64.0Mi limit",
		"FAIL cgroups container bbbbbbbbbbbb (k8sm-escaped) runs in cgroup /docker/bbbb",
		"WARN orphans 1 k8sm containers whose executor is gone",
		"WARN cgroups 1 pod cgroups no pod owns (/mesos/c-dead/99999999-8888-7777-6666-555555555555)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "spark-1") {
		t.Error("a cgroup of a Mesos container that is not k8sm's is reported")
	}
	if strings.Contains(all, "K8SM- iptables chains but no running proxy") {
		t.Error("stale chains reported while a proxy runs")
	}
	if len(r.Orphans) != 1 || r.Orphans[0].ID != "cccccccccccc3333" {
		t.Fatalf("orphans %+v (the young container and the unresponsive executor's must not be)", r.Orphans)
	}
	for _, a := range Reap(context.Background(), Config{}, r, true) {
		if strings.Contains(a.What, "c-slow") || strings.Contains(a.What, "eeeeeeeeeeee") {
			t.Errorf("reap would touch what an unresponsive (maybe busy) executor has: %s", a.What)
		}
	}
	if r.Pods[0].OOMKills != 1 || r.Pods[0].Ready != "1/2" || r.Pods[0].Restarts != 1 || r.Pods[0].MemoryLimit != 64<<20 {
		t.Fatalf("pod %+v", r.Pods[0])
	}
}

func TestHealthyAndBrokenNodes(t *testing.T) {
	healthy := Inputs{Now: now, CgroupRoot: "mesos", DockerDriver: "cgroupfs"}
	if r := Evaluate(healthy); r.Worst() != OK || len(r.Problems) != 1 {
		t.Fatalf("an empty healthy node: %+v", r.Problems)
	}
	down := healthy
	down.DockerErr, down.DockerEndpoint = errors.New("connection refused"), "unix:///run/docker.sock"
	if r := Evaluate(down); r.Worst() != Fail || !strings.Contains(r.Problems[0].What, "Docker is unreachable at unix:///run/docker.sock") {
		t.Fatalf("Docker down: %+v", r.Problems)
	}
	systemd := healthy
	systemd.DockerDriver = "systemd"
	if r := Evaluate(systemd); r.Worst() != Fail {
		t.Fatalf("systemd driver: %+v", r.Problems)
	}
	stale := healthy
	stale.Chains = 4
	if r := Evaluate(stale); r.Worst() != Warn || !strings.Contains(r.Problems[0].What, "4 K8SM- iptables chains but no running proxy") {
		t.Fatalf("stale chains: %+v", r.Problems)
	}
	noIptables := healthy
	noIptables.IptablesErr = errors.New("iptables: not found")
	if r := Evaluate(noIptables); r.Worst() != Warn || r.Proxy.Chains != -1 {
		t.Fatalf("iptables missing: %+v", r.Problems)
	}
}
