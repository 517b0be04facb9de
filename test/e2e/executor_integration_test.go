//go:build integration && linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/podspec"
	k8smsched "github.com/k8sm/k8sm/scheduler"
	"github.com/k8sm/k8sm/staticpods"
	mesosd "github.com/k8sm/k8sm/test/mesos"
	"github.com/k8sm/k8sm/test/testenv"
)

// agentBinary and schedulerBinary are built for this run (TestMain).
var agentBinary, schedulerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "k8sm-e2e-")
	if err != nil {
		panic(err)
	}
	agentBinary = filepath.Join(dir, "k8sm-agent")
	schedulerBinary = filepath.Join(dir, "k8sm-scheduler")
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/k8sm/k8sm/cmd/k8sm-agent", "github.com/k8sm/k8sm/cmd/k8sm-scheduler")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build k8sm-agent and k8sm-scheduler: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// node is one Mesos agent of the double, with the real executor.
type node struct {
	m       *mesosd.Master
	a       *mesosd.Agent
	dc      *client.Client
	root    *testenv.MesosCgroup
	port    int // the one host port the agent offers
	sched   *mesosd.Scheduler
	exInfo  mesos.ExecutorInfo
	exID    string
	workDir string
	apiDir  string // the executors' node API sockets
}

func newNode(t testing.TB, grace time.Duration) *node {
	t.Helper()
	return newNamedNode(t, grace, "e2e-node")
}

// newNamedNode is a node whose agent has hostname and attributes
// rack:r1;zone:z1; extra are more executor flags.
func newNamedNode(t testing.TB, grace time.Duration, hostname string, extra ...string) *node {
	t.Helper()
	dc := testenv.RequireDocker(t)
	root := testenv.NewMesosCgroup(t)
	n := &node{dc: dc, root: root, port: testenv.FreeTCPPort(t), workDir: t.TempDir(), apiDir: t.TempDir(), exID: "k8sm-e2e-" + testenv.RandomName(6)}
	m, err := mesosd.NewMaster(mesosd.MasterConfig{AllocationInterval: 50 * time.Millisecond,
		Log: doubleLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	res, err := mesosd.ParseResources(fmt.Sprintf("cpus:64;mem:65536;ports:[%d-%d]", n.port, n.port))
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := mesosd.ParseAttributes("rack:r1;zone:z1")
	if err != nil {
		t.Fatal(err)
	}
	n.a, err = m.AddAgent(mesosd.AgentConfig{
		Hostname: hostname, Resources: res, Attributes: attrs, WorkDir: n.workDir,
		Cgroups: true, CgroupRoot: strings.TrimPrefix(root.Path, "/"),
		ExecutorShutdownGracePeriod: grace, StatusUpdateRetryMin: 200 * time.Millisecond, StatusUpdateRetryMax: time.Second,
		ExecutorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	args := []string{agentBinary, "executor", "--docker-endpoint", testenv.DockerHost, "--pause-image", testenv.PauseImage,
		"--cgroup-root", root.Path, "--host-ip", "127.0.0.1", "--log-level", "debug", "--launch-grace-period", "1m",
		"--node-api-dir", n.apiDir}
	args = append(args, extra...)
	n.exInfo = mesos.ExecutorInfo{
		Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: n.exID}, Name: ptr.To("k8sm"),
		Command:   &mesos.CommandInfo{Value: &agentBinary, Shell: ptr.To(false), Arguments: args},
		Resources: []mesos.Resource{scalar("cpus", 0.25), scalar("mem", 64)},
	}
	info := mesos.FrameworkInfo{User: "root", Name: "k8sm-e2e", Checkpoint: ptr.To(true)}
	n.sched = mesosd.Subscribe(t, m.SchedulerURL(), info, codecs.ByMediaType[codecs.MediaTypeProtobuf])
	t.Cleanup(func() {
		// After the double's Close: containers a failed test left behind
		// (the reaper's job on a real node) are removed here.
		for _, c := range n.containersOf(t) {
			_ = dc.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range n.a.Executors() {
				if b, err := os.ReadFile(filepath.Join(e.Directory, "stderr")); err == nil {
					t.Logf("executor %s stderr:\n%s", e.ExecutorID, b)
				}
			}
		}
	})
	return n
}

// doubleLog is the double's logger: the test's log for tests, none for
// benchmarks (whose log is always printed).
func doubleLog(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends the double's logs to the test's log (shown on failure).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// podTask is the Mesos task the scheduler makes of pod for this node's
// agent (scheduler.NewTask): the pod defaulted as the scheduler defaults it,
// its task resources and host ports, bound to the agent. The offer is taken
// only at launch, so the offer id annotation names none. data, when not
// nil, replaces the bound pod as the task's data.
func (n *node) podTask(t testing.TB, pod *v1.Pod, data []byte) mesos.TaskInfo {
	t.Helper()
	pod = pod.DeepCopy()
	podspec.Default(pod, podspec.StandardDefaults())
	milliCPU, mem := podspec.TaskResources(pod)
	var ports mesos.Ranges
	for _, hp := range podspec.HostPorts(pod) {
		ports = append(ports, mesos.Value_Range{Begin: uint64(hp.HostPort), End: uint64(hp.HostPort)})
	}
	ex := n.exInfo
	task, _, err := k8smsched.NewTask(k8smsched.Launch{
		Bound:     pod,
		Slot:      &k8smsched.Slot{AgentID: n.a.ID(), Hostname: n.a.Info().Hostname, OfferIDs: []string{"not-yet-offered"}},
		Resources: podspec.MesosResources(milliCPU, mem, ports, ""),
	}, &ex)
	if err != nil {
		t.Fatal(err)
	}
	if data != nil {
		task.Data = data
	}
	return task
}

func newPod(name string, containers ...v1.Container) *v1.Pod {
	return &v1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uuid.NewString())},
		Spec:       v1.PodSpec{NodeName: "e2e-node", Containers: containers, TerminationGracePeriodSeconds: ptr.To(int64(2))},
	}
}

func webPod(port int) *v1.Pod {
	return newPod("web",
		v1.Container{Name: "web", Image: testenv.BusyboxImage,
			Command: []string{"sh", "-c", "mkdir -p /www && echo hello-k8sm > /www/index.html && echo web up && exec httpd -f -p 8080 -h /www"},
			Ports:   []v1.ContainerPort{{ContainerPort: 8080, HostPort: int32(port)}}},
		v1.Container{Name: "sidecar", Image: testenv.BusyboxImage,
			Command: []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"}})
}

func stubbornPod(name string) *v1.Pod {
	return newPod(name, v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"}})
}

func (n *node) launch(tasks ...mesos.TaskInfo) {
	n.sched.Launch(n.sched.Offer(), tasks...)
}

// expect waits for task's update in state, acknowledges it and returns it.
func (n *node) expect(task string, state mesos.TaskState) *mesos.TaskStatus {
	st := n.sched.Update(task, state)
	n.sched.Ack(st)
	return st
}

// ackUntil acknowledges every update, however often it comes (a dropped
// ACKNOWLEDGE makes the agent resend), until each task has been in state.
func (n *node) ackUntil(t testing.TB, tasks []mesos.TaskInfo, state mesos.TaskState) {
	t.Helper()
	reached := map[string]bool{}
	for len(reached) < len(tasks) {
		e := n.sched.Next(fmt.Sprintf("updates until %d tasks are %s", len(tasks), state), func(e *scheduler.Event) bool {
			return e.Type == scheduler.Event_UPDATE
		})
		st := e.Update.Status
		if st.GetState() == state {
			reached[st.TaskID.Value] = true
		}
		if st.UUID != nil {
			_ = n.sched.Call(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
		}
	}
}

func podStatus(t *testing.T, st *mesos.TaskStatus) v1.PodStatus {
	t.Helper()
	var ps v1.PodStatus
	if err := json.Unmarshal(st.Data, &ps); err != nil {
		t.Fatalf("update data is not a PodStatus: %v: %q", err, st.Data)
	}
	return ps
}

// containersOf lists the Docker containers of this node's executor.
// containersOfRun lists the containers of one executor container (one
// run of the executor), running or not.
func (n *node) containersOfRun(t testing.TB, containerID string) []container.Summary {
	t.Helper()
	var out []container.Summary
	for _, c := range n.containersOf(t) {
		if c.Labels[runtime.LabelContainerID] == containerID {
			out = append(out, c)
		}
	}
	return out
}

func (n *node) containersOf(t testing.TB) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := n.dc.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []container.Summary
	for _, c := range list {
		if c.Labels[runtime.LabelExecutorID] == n.exID {
			out = append(out, c)
		}
	}
	return out
}

// nodeAPI GETs path from the executor's node API socket.
func (n *node) nodeAPI(t testing.TB, containerID, path string) (int, string) {
	t.Helper()
	sock := filepath.Join(n.apiDir, containerID+".sock")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://executor" + path)
	if err != nil {
		t.Fatalf("node API %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkStatsSummary: /stats/summary has the executor's container as the
// node and the pod with both its containers, from their cgroups, and CPU
// rates from the second call on.
func checkStatsSummary(t *testing.T, n *node, containerID string, pod *v1.Pod) {
	t.Helper()
	var sum stats.Summary
	for range 2 {
		code, body := n.nodeAPI(t, containerID, "/stats/summary")
		if err := json.Unmarshal([]byte(body), &sum); code != 200 || err != nil {
			t.Fatalf("/stats/summary: %d %v %q", code, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	nd := sum.Node
	if nd.NodeName != "e2e-node" || nd.Memory == nil || nd.Memory.WorkingSetBytes == nil || *nd.Memory.WorkingSetBytes == 0 ||
		nd.CPU == nil || nd.CPU.UsageCoreNanoSeconds == nil || *nd.CPU.UsageCoreNanoSeconds == 0 || nd.CPU.UsageNanoCores == nil {
		t.Fatalf("/stats/summary node: %+v", nd)
	}
	if len(sum.Pods) != 1 || sum.Pods[0].PodRef.UID != string(pod.UID) {
		t.Fatalf("/stats/summary pods: %+v, want the web pod", sum.Pods)
	}
	ps := sum.Pods[0]
	if ps.Memory == nil || *ps.Memory.WorkingSetBytes == 0 || ps.Memory.AvailableBytes == nil || ps.CPU == nil || ps.CPU.UsageNanoCores == nil {
		t.Fatalf("/stats/summary pod without cgroup figures: cpu %+v memory %+v", ps.CPU, ps.Memory)
	}
	names := map[string]bool{}
	for _, c := range ps.Containers {
		if c.Memory == nil || *c.Memory.UsageBytes == 0 || c.CPU == nil {
			t.Fatalf("/stats/summary container %s without cgroup figures: %+v", c.Name, c)
		}
		names[c.Name] = true
	}
	if !names["web"] || !names["sidecar"] {
		t.Fatalf("/stats/summary containers %v, want web and sidecar", names)
	}
	if *ps.Memory.UsageBytes > *nd.Memory.UsageBytes {
		t.Fatalf("the pod uses %d bytes, more than the executor's whole container (%d)", *ps.Memory.UsageBytes, *nd.Memory.UsageBytes)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, mesosd.Wait, what, cond)
}

func TestPodLaunchRunKill(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apiAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreeTCPPort(t))
	n := newNamedNode(t, 5*time.Second, "e2e-node", "--node-api-address", apiAddr, "--node-api-token-file", tokenFile)
	pod := webPod(n.port)
	task := n.podTask(t, pod, nil)
	id := task.TaskID.Value
	n.launch(task)
	if ps := podStatus(t, n.expect(id, mesos.TASK_STARTING)); ps.Phase != v1.PodPending {
		t.Fatalf("STARTING with phase %s", ps.Phase)
	}
	run := n.expect(id, mesos.TASK_RUNNING)
	if ps := podStatus(t, run); ps.Phase != v1.PodRunning || len(ps.ContainerStatuses) != 2 {
		t.Fatalf("RUNNING with pod status %+v", ps)
	}

	// Served at HostIP:HostPort.
	var body string
	waitFor(t, "the page at the host port", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(n.port) + "/index.html")
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if strings.TrimSpace(body) != "hello-k8sm" {
		t.Fatalf("page = %q", body)
	}

	// Every pod process is inside the executor's Mesos cgroup.
	es := n.a.Executors()[0]
	want := n.root.Path + "/" + es.ContainerID + "/"
	ctrs := n.containersOf(t)
	if len(ctrs) != 3 {
		t.Fatalf("containers of the executor: %d, want sandbox + 2", len(ctrs))
	}
	for _, c := range ctrs {
		j, err := n.dc.ContainerInspect(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", j.State.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if strings.Contains(line, ":memory:") && !strings.Contains(line, want) {
				t.Errorf("container %s runs in %s, outside %s", c.Labels[runtime.LabelContainerName], line, want)
			}
		}
	}

	// The node API, on the executor's root-only socket.
	if fi, err := os.Stat(filepath.Join(n.apiDir, es.ContainerID+".sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node API socket: %v %v, want mode 0600", fi, err)
	}
	if code, body := n.nodeAPI(t, es.ContainerID, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	code, body := n.nodeAPI(t, es.ContainerID, "/pods")
	var list v1.PodList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("/pods: %d %v %q", code, err, body)
	}
	if len(list.Items) != 1 || list.Items[0].UID != pod.UID || list.Items[0].Status.Phase != v1.PodRunning {
		t.Fatalf("/pods lists %+v, want the web pod Running", list.Items)
	}
	if _, metrics := n.nodeAPI(t, es.ContainerID, "/metrics"); !strings.Contains(metrics, "k8sm_executor_status_updates_sent_total 2") ||
		!strings.Contains(metrics, `k8sm_executor_tasks{state="TASK_RUNNING"} 1`) || !strings.Contains(metrics, "k8sm_executor_pod_start_seconds_count 1") {
		t.Fatalf("/metrics lacks the executor's figures:\n%s", metrics)
	}
	checkStatsSummary(t, n, es.ContainerID, pod)
	if code, logs := n.nodeAPI(t, es.ContainerID, "/containerLogs/default/web/web?tailLines=5"); code != 200 || strings.TrimSpace(logs) != "web up" {
		t.Fatalf("/containerLogs of web: %d %q, want the container's output", code, logs)
	}
	if code, _ := n.nodeAPI(t, es.ContainerID, "/containerLogs/default/web/nope"); code != 404 {
		t.Fatalf("/containerLogs of a container the pod lacks: %d, want 404", code)
	}
	// On TCP, only with the bearer token.
	get := func(token string) int {
		req, _ := http.NewRequest("GET", "http://"+apiAddr+"/pods", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("node API on TCP: %v", err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if anon, wrong, right := get(""), get("guess"), get("s3cret-token"); anon != 401 || wrong != 401 || right != 200 {
		t.Fatalf("node API on TCP: anonymous %d, wrong token %d, right token %d; want 401 401 200", anon, wrong, right)
	}

	n.sched.Must(calls.Kill(id, n.a.ID()))
	n.expect(id, mesos.TASK_KILLED)
	if left := n.containersOf(t); len(left) != 0 {
		t.Fatalf("%d containers left after TASK_KILLED", len(left))
	}
}

func TestBadTaskDataThenAGoodPod(t *testing.T) {
	n := newNode(t, 5*time.Second)
	bad := stubbornPod("bad")
	bad.Spec.Containers[0].Image = ""
	notJSON := n.podTask(t, stubbornPod("garbage"), []byte("{not json"))
	invalid := n.podTask(t, bad, nil)
	n.launch(notJSON, invalid)
	for _, tc := range []struct {
		task mesos.TaskInfo
		want string
	}{{notJSON, "invalid pod"}, {invalid, "image"}} {
		st := n.expect(tc.task.TaskID.Value, mesos.TASK_FAILED)
		if st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), tc.want) {
			t.Errorf("%s: reason %v message %q, want TASK_INVALID naming %q", tc.task.Name, st.GetReason(), st.GetMessage(), tc.want)
		}
	}
	good := n.podTask(t, stubbornPod("good"), nil)
	n.launch(good)
	n.expect(good.TaskID.Value, mesos.TASK_STARTING)
	n.expect(good.TaskID.Value, mesos.TASK_RUNNING)
}

// TestShutdownStopsEveryPodInTheGracePeriod: SHUTDOWN with 50 pods whose
// containers ignore SIGTERM, within a 10s grace period (an agent's
// --executor_shutdown_grace_period; Mesos' default 5s passes on an idle
// 2-core machine, TASK_KILLED made by ~3.4s, but not reliably under -race
// beside the other packages' tests in CI): every
// task is TASK_KILLED by the executor with no pod process left, and the
// executor exits by itself before the agent's grace period kill. Docker
// may still be removing containers then (on a small machine its teardown
// of 100 containers takes longer than the grace period): they are not
// running, and the next executor's reaper removes them.
func TestShutdownStopsEveryPodInTheGracePeriod(t *testing.T) {
	const pods = 50
	grace := 10 * time.Second
	n := newNode(t, grace)
	var tasks []mesos.TaskInfo
	for i := range pods {
		tasks = append(tasks, n.podTask(t, stubbornPod(fmt.Sprintf("stubborn-%d", i)), nil))
	}
	// Starting 50 pods is not what this test measures: on a loaded CI
	// machine it took longer than the default wait for the first RUNNING.
	n.sched.Timeout = 3 * time.Minute
	n.launch(tasks...)
	for _, tk := range tasks {
		n.expect(tk.TaskID.Value, mesos.TASK_STARTING)
	}
	for _, tk := range tasks {
		n.expect(tk.TaskID.Value, mesos.TASK_RUNNING)
	}
	n.sched.Timeout = 0
	es := n.a.Executors()[0]
	if got := n.podProcs(t, es.ContainerID); got < pods {
		t.Fatalf("%d pod processes before SHUTDOWN, want at least %d", got, pods)
	}
	start := time.Now()
	n.sched.Must(calls.Shutdown(n.exID, n.a.ID()))
	// Each TASK_KILLED must come from the executor, which means the agent
	// took it before its grace-period kill (after it, the agent reports the
	// tasks itself, SOURCE_AGENT), and must have been made within the grace
	// period (its timestamp). When the scheduler sees it is up to the
	// agent's and master's forwarding, which Mesos does not bound.
	var made time.Duration
	for _, tk := range tasks {
		st := n.expect(tk.TaskID.Value, mesos.TASK_KILLED)
		if st.GetSource() != mesos.SOURCE_EXECUTOR {
			t.Fatalf("%s killed by the agent, not the executor: %v", tk.TaskID.Value, st)
		}
		made = max(made, time.Unix(0, int64(st.GetTimestamp()*1e9)).Sub(start))
	}
	took := time.Since(start)
	if made >= grace {
		t.Fatalf("the last TASK_KILLED was made %v after SHUTDOWN, not within the %v grace period", made, grace)
	}
	if left := n.podProcs(t, es.ContainerID); left != 0 {
		t.Fatalf("%d pod processes left once every task is TASK_KILLED", left)
	}
	waitFor(t, "the executor's exit", func() bool {
		for _, e := range n.a.Executors() {
			if e.ContainerID == es.ContainerID && e.State != "TERMINATED" {
				return false
			}
		}
		return true
	})
	b, _ := os.ReadFile(filepath.Join(es.Directory, "stderr"))
	if !strings.Contains(string(b), "k8sm executor done") {
		t.Fatalf("the executor did not finish by itself (killed at the grace period?):\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(n.apiDir, es.ContainerID+".sock")); err == nil {
		t.Fatal("the node API socket is left after the executor's exit")
	}
	left := n.containersOfRun(t, es.ContainerID)
	for _, c := range left {
		if c.State == "running" {
			// dockerd may lag behind the kernel: give it time to notice.
			waitFor(t, "Docker to see the killed containers exit", func() bool {
				for _, c := range n.containersOfRun(t, es.ContainerID) {
					if c.State == "running" {
						return false
					}
				}
				return true
			})
			break
		}
	}
	t.Logf("SHUTDOWN of %d SIGTERM-ignoring pods: all TASK_KILLED made by %v and seen by the scheduler after %v (grace %v); %d of %d containers still being removed at the executor's exit",
		pods, made, took, grace, len(left), 2*pods)
	if len(left) > 0 {
		// The next executor of the framework on this node reaps them.
		next := n.podTask(t, stubbornPod("next"), nil)
		n.launch(next)
		n.expect(next.TaskID.Value, mesos.TASK_STARTING)
		n.expect(next.TaskID.Value, mesos.TASK_RUNNING)
		waitFor(t, "the next executor to reap the containers left", func() bool {
			return len(n.containersOfRun(t, es.ContainerID)) == 0
		})
	}
}

// podProcs counts the processes in the pod cgroups below the executor's
// Mesos container cgroup (every child but the executor's own leaf).
func (n *node) podProcs(t testing.TB, containerID string) int {
	t.Helper()
	dir := filepath.Join(n.root.Dir("memory"), containerID)
	count := 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the executor's cgroup: %v", err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "leaf" {
			continue
		}
		// Container cgroups come and go during the walk: what is gone
		// holds no process.
		_ = filepath.WalkDir(filepath.Join(dir, e.Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			count += len(strings.Fields(string(b)))
			return nil
		})
	}
	return count
}

// TestPodOutcomes: a pod that exits 0 is TASK_FINISHED; an OOM-killed one
// is TASK_FAILED with the memory reason, while the executor and its other
// pods keep going.
func TestPodOutcomes(t *testing.T) {
	n := newNode(t, 5*time.Second)
	done := newPod("done", v1.Container{Name: "c", Image: testenv.BusyboxImage, Command: []string{"sh", "-c", "sleep 1.5; exit 0"}})
	done.Spec.RestartPolicy = v1.RestartPolicyNever
	hog := newPod("hog", v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", "sleep 1.5; a=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 60"},
		Resources: v1.ResourceRequirements{Limits: v1.ResourceList{
			v1.ResourceMemory: resource.MustParse("32Mi"), v1.ResourceCPU: resource.MustParse("250m")}}})
	hog.Spec.RestartPolicy = v1.RestartPolicyNever
	keeper := stubbornPod("keeper")
	tasks := []mesos.TaskInfo{n.podTask(t, done, nil), n.podTask(t, hog, nil), n.podTask(t, keeper, nil)}
	n.launch(tasks...)
	// The agent forwards a task's next update only once the scheduler
	// acknowledged the one before.
	for _, tk := range tasks {
		n.expect(tk.TaskID.Value, mesos.TASK_STARTING)
		n.expect(tk.TaskID.Value, mesos.TASK_RUNNING)
	}
	fin := n.expect(tasks[0].TaskID.Value, mesos.TASK_FINISHED)
	if ps := podStatus(t, fin); ps.Phase != v1.PodSucceeded {
		t.Fatalf("FINISHED with phase %s", ps.Phase)
	}
	failed := n.expect(tasks[1].TaskID.Value, mesos.TASK_FAILED)
	if failed.GetReason() != mesos.REASON_CONTAINER_LIMITATION_MEMORY {
		t.Fatalf("OOM-killed pod: reason %v message %q", failed.GetReason(), failed.GetMessage())
	}
	// The executor still serves: the keeper is killed on request.
	n.sched.Must(calls.Kill(tasks[2].TaskID.Value, n.a.ID()))
	n.expect(tasks[2].TaskID.Value, mesos.TASK_KILLED)
}

// TestAgentRestartKeepsPods: with checkpointing, the agent goes away and
// comes back; the executor re-subscribes, its pod never stops, and the
// updates made meanwhile are delivered.
func TestAgentRestartKeepsPods(t *testing.T) {
	n := newNode(t, 5*time.Second)
	task := n.podTask(t, stubbornPod("survivor"), nil)
	id := task.TaskID.Value
	n.launch(task)
	n.expect(id, mesos.TASK_STARTING)
	n.expect(id, mesos.TASK_RUNNING)
	before := n.containersOf(t)
	n.a.Stop()
	time.Sleep(500 * time.Millisecond) // the agent is away; the executor retries
	if err := n.a.Start(); err != nil {
		t.Fatal(err)
	}
	// A KILL sent before the executor is back would be lost, as with a
	// real agent: wait for its stream.
	waitFor(t, "the executor's re-subscription", func() bool {
		es := n.a.Executors()
		return len(es) == 1 && es[0].State == "RUNNING" && es[0].Connected
	})
	after := n.containersOf(t)
	ids := map[string]bool{}
	for _, c := range before {
		ids[c.ID] = true
	}
	for _, c := range after {
		if !ids[c.ID] {
			t.Fatalf("container %s is new after the agent restart", c.Labels[runtime.LabelContainerName])
		}
	}
	if len(after) != len(before) {
		t.Fatalf("containers across the agent restart: %d -> %d", len(before), len(after))
	}
	for _, c := range after {
		if c.State != "running" {
			t.Fatalf("container %s is %s after the agent restart", c.Labels[runtime.LabelContainerName], c.State)
		}
	}
	n.sched.Must(calls.Kill(id, n.a.ID()))
	n.expect(id, mesos.TASK_KILLED)
}

// TestDroppedAcksLoseNothing: the agent loses a fifth of its ACKNOWLEDGED
// events to the executor and the master a fifth of the scheduler's
// acknowledgements; every task still reaches RUNNING and then KILLED.
func TestDroppedAcksLoseNothing(t *testing.T) {
	const pods = 10 // about 30 acks each way: some are dropped in any run
	n := newNode(t, 5*time.Second)
	agentFaults, masterFaults := &mesosd.Faults{Seed: 7, DropAcks: 0.2}, &mesosd.Faults{Seed: 8, DropAcks: 0.2}
	n.a.SetFaults(agentFaults)
	n.m.SetFaults(masterFaults)
	var tasks []mesos.TaskInfo
	for i := range pods {
		tasks = append(tasks, n.podTask(t, stubbornPod(fmt.Sprintf("acks-%d", i)), nil))
	}
	n.launch(tasks...)
	n.ackUntil(t, tasks, mesos.TASK_RUNNING)
	for _, tk := range tasks {
		n.sched.Must(calls.Kill(tk.TaskID.Value, n.a.ID()))
	}
	n.ackUntil(t, tasks, mesos.TASK_KILLED)
	a, m := agentFaults.Injected().AcksDropped, masterFaults.Injected().AcksDropped
	if a == 0 || m == 0 {
		t.Fatalf("dropped %d ACKNOWLEDGED and %d ACKNOWLEDGE: too few to prove anything (change the seeds)", a, m)
	}
	t.Logf("dropped %d ACKNOWLEDGED events and %d scheduler acknowledgements; nothing lost", a, m)
}

// TestKilledExecutorIsReplacedAndReaped: kill -9 of the executor. The
// agent destroys its container (the pods' processes die with it) and fails
// its tasks; the next executor on the node removes what Docker still has
// of them.
func TestKilledExecutorIsReplacedAndReaped(t *testing.T) {
	n := newNode(t, 5*time.Second)
	first := n.podTask(t, stubbornPod("first"), nil)
	n.launch(first)
	n.expect(first.TaskID.Value, mesos.TASK_STARTING)
	n.expect(first.TaskID.Value, mesos.TASK_RUNNING)
	es := n.a.Executors()[0]
	if err := syscall.Kill(es.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := n.expect(first.TaskID.Value, mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || st.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("task of a killed executor: %v", st)
	}
	if left := n.containersOf(t); len(left) == 0 {
		t.Fatal("Docker kept no record of the killed executor's containers: nothing to reap, the test proves nothing")
	}
	second := n.podTask(t, stubbornPod("second"), nil)
	n.launch(second)
	n.expect(second.TaskID.Value, mesos.TASK_STARTING)
	n.expect(second.TaskID.Value, mesos.TASK_RUNNING)
	waitFor(t, "the old containers reaped", func() bool {
		for _, c := range n.containersOf(t) {
			if c.Labels[runtime.LabelContainerID] == es.ContainerID {
				return false
			}
		}
		return true
	})
}

// packStatic is one static pod manifest as the scheduler ships it: read by
// staticpods.Load (which gives each a content-derived UID), packed for
// ExecutorInfo.data.
func packStatic(t testing.TB, name string) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: default}\nspec:\n  containers:\n  - name: c\n    image: " +
		testenv.BusyboxImage + "\n    command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 0.2; done\"]\n"
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := staticpods.Load(dir, staticpods.Options{Defaults: podspec.StandardDefaults()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pods) != 1 {
		t.Fatalf("loaded %d static pods, skipped %v", len(res.Pods), res.Skipped)
	}
	data, err := staticpods.Pack(res.Pods)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestStaticPodsRunWithTheExecutor: pods packed into ExecutorInfo.data run
// as soon as the executor subscribes, beside its tasks, and stop with it.
func TestStaticPodsRunWithTheExecutor(t *testing.T) {
	n := newNode(t, 5*time.Second)
	n.exInfo.Data = packStatic(t, "node-agent")
	task := n.podTask(t, stubbornPod("task-pod"), nil)
	n.launch(task)
	n.expect(task.TaskID.Value, mesos.TASK_STARTING)
	n.expect(task.TaskID.Value, mesos.TASK_RUNNING)
	waitFor(t, "the static pod's container running", func() bool {
		for _, c := range n.containersOf(t) {
			// Named as the kubelet names static pods: <name>-<node name>.
			if c.Labels[runtime.LabelPodName] == "node-agent-e2e-node" && c.Labels[runtime.LabelContainerName] == "c" && c.State == "running" &&
				strings.HasPrefix(c.Labels[runtime.LabelTaskID], "static.") {
				return true
			}
		}
		return false
	})
	n.sched.Must(calls.Shutdown(n.exID, n.a.ID()))
	n.expect(task.TaskID.Value, mesos.TASK_KILLED)
	waitFor(t, "every container gone, the static pod's too", func() bool { return len(n.containersOf(t)) == 0 })
}

// TestPeriodicReaperRemovesOrphans: a container labelled as this live
// executor's but of a task that does not run here is removed by the
// periodic reaper; a container without k8sm labels is never touched.
func TestPeriodicReaperRemovesOrphans(t *testing.T) {
	n := newNamedNode(t, 5*time.Second, "e2e-node", "--reap-interval", "300ms")
	task := n.podTask(t, stubbornPod("real"), nil)
	n.launch(task)
	n.expect(task.TaskID.Value, mesos.TASK_STARTING)
	n.expect(task.TaskID.Value, mesos.TASK_RUNNING)
	es := n.a.Executors()[0]
	ctx := context.Background()
	owner := runtime.Owner{FrameworkID: n.sched.ID, ExecutorID: n.exID, AgentID: n.a.ID(), ContainerID: es.ContainerID}
	mk := func(name string, labels map[string]string) string {
		c, err := n.dc.ContainerCreate(ctx, &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "1000"}, Labels: labels},
			&container.HostConfig{}, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.dc.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
		return c.ID
	}
	ghost := mk("k8sm-e2e-ghost-"+testenv.RandomName(4), runtime.Labels(owner, runtime.PodRef{TaskID: "pod.ghost", UID: "ghost", Name: "ghost", Namespace: "default"}, "c"))
	stranger := mk("k8sm-e2e-stranger-"+testenv.RandomName(4), map[string]string{"io.k8sm.test": "not ours"})
	waitFor(t, "the orphan reaped", func() bool {
		_, err := n.dc.ContainerInspect(ctx, ghost)
		return cerrdefs.IsNotFound(err)
	})
	if _, err := n.dc.ContainerInspect(ctx, stranger); err != nil {
		t.Fatalf("a container without k8sm labels was touched: %v", err)
	}
	for _, c := range n.containersOf(t) {
		if c.Labels[runtime.LabelTaskID] == task.TaskID.Value && c.State != "running" {
			t.Fatalf("the live task's container %s is %s", c.Labels[runtime.LabelContainerName], c.State)
		}
	}
	if len(n.containersOf(t)) != 2 {
		t.Fatalf("the live task's sandbox and container should remain, found %d", len(n.containersOf(t)))
	}
}
