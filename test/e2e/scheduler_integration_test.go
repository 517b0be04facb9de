//go:build integration && linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/scheduler"
	mesosd "github.com/k8sm/k8sm/test/mesos"
	"github.com/k8sm/k8sm/test/testenv"
)

// cluster is a Mesos double master with two agents (hostnames
// k8sm-sched1/2, zones z1/z2, disjoint host port ranges: they share this
// host's network), the real API server and kube-controller-manager, and
// k8sm-scheduler processes.
type cluster struct {
	t      testing.TB
	m      *mesosd.Master
	agents []*mesosd.Agent
	kube   kubernetes.Interface
	name   string // scheduler name, state (Lease, ConfigMap) name, pod label
	root   *testenv.MesosCgroup
	apiDir string
	static string // --static-pods-config, when set
	scheds []*sched
}

// logged says whether a scheduler logged all of parts on one line.
func (c *cluster) logged(parts ...string) bool {
	for _, s := range c.scheds {
		for _, l := range strings.Split(s.log(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				return true
			}
		}
	}
	return false
}

var clusterNodes = []string{"k8sm-sched1", "k8sm-sched2"}

// clusterHostIP is the node IP the executors report (the API server
// refuses loopback endpoint addresses): TEST-NET-1, never routed. Host
// ports are published on 127.0.0.1, where the test reaches them.
const clusterHostIP = "192.0.2.10"

func newCluster(t testing.TB) *cluster {
	t.Helper()
	return newSizedCluster(t, 2, 2048)
}

// newSizedCluster: agents of cpus and mem (MB) each.
func newSizedCluster(t testing.TB, cpus, mem int) *cluster {
	t.Helper()
	dc := testenv.RequireDocker(t)
	kube := testenv.RequireKube(t)
	testenv.RequireKubeAs(t, testenv.SchedulerIdentity)
	c := &cluster{t: t, kube: kube, name: "k8sm-t-" + testenv.RandomName(6), root: testenv.NewMesosCgroup(t), apiDir: t.TempDir()}
	m, err := mesosd.NewMaster(mesosd.MasterConfig{AllocationInterval: 100 * time.Millisecond, Log: doubleLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	c.m = m
	t.Cleanup(m.Close)
	for i, host := range clusterNodes {
		res, err := mesosd.ParseResources(fmt.Sprintf("cpus:%d;mem:%d;ports:[%d-%d]", cpus, mem, 31100+20*i, 31119+20*i))
		if err != nil {
			t.Fatal(err)
		}
		attrs, _ := mesosd.ParseAttributes(fmt.Sprintf("zone:z%d", i+1))
		a, err := m.AddAgent(mesosd.AgentConfig{Hostname: host, Resources: res, Attributes: attrs, WorkDir: t.TempDir(),
			Cgroups: true, CgroupRoot: strings.TrimPrefix(c.root.Path, "/"), ExecutorShutdownGracePeriod: 5 * time.Second,
			StatusUpdateRetryMin: 200 * time.Millisecond, StatusUpdateRetryMax: time.Second,
			ExecutorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				"K8SM_KUBECONFIG=" + testenv.KubeconfigFor("system:node:"+host)}})
		if err != nil {
			t.Fatal(err)
		}
		c.agents = append(c.agents, a)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			for _, a := range c.agents {
				for _, e := range a.Executors() {
					if b, err := os.ReadFile(filepath.Join(e.Directory, "stderr")); err == nil {
						t.Logf("executor %s on %s stderr:\n%s", e.ExecutorID, a.ID(), tail(b, 6000))
					}
				}
			}
		}
		// After the double's Close (cleanups run last-first): what a
		// failed test left behind goes.
		sel := metav1.ListOptions{LabelSelector: "test=" + c.name}
		_ = kube.AppsV1().Deployments("default").DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
		pods, _ := kube.CoreV1().Pods("default").List(ctx, sel)
		for _, p := range pods.Items {
			_ = kube.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
		}
		_ = kube.CoreV1().Services("default").Delete(ctx, c.name, metav1.DeleteOptions{})
		_ = kube.CoreV1().ConfigMaps("kube-system").Delete(ctx, c.name, metav1.DeleteOptions{})
		_ = kube.CoordinationV1().Leases("kube-system").Delete(ctx, c.name, metav1.DeleteOptions{})
		for _, n := range clusterNodes {
			_ = kube.CoreV1().Nodes().Delete(ctx, n, metav1.DeleteOptions{})
		}
		cs, err := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "io.k8sm.pod-namespace=default"))})
		if err == nil {
			for _, ct := range cs {
				for _, a := range c.agents {
					if ct.Labels["io.k8sm.agent-id"] == a.ID() {
						_ = dc.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true})
					}
				}
			}
		}
	})
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// sched is one k8sm-scheduler process.
type sched struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (s *sched) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *sched) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// start runs k8sm-scheduler against the cluster; extra are more flags.
func (c *cluster) start(extra ...string) *sched {
	c.t.Helper()
	s := c.startQuiet(extra...)
	c.scheds = append(c.scheds, s)
	return s
}

func (c *cluster) startQuiet(extra ...string) *sched {
	c.t.Helper()
	args := []string{"--master", c.m.Addr(), "--kubeconfig", testenv.KubeconfigFor(testenv.SchedulerIdentity),
		"--scheduler-name", c.name, "--state-name", c.name, "--executor-path", agentBinary,
		"--executor-arg=--docker-endpoint=" + testenv.DockerHost, "--executor-arg=--pause-image=" + testenv.PauseImage,
		"--executor-arg=--cgroup-root=" + c.root.Path, "--executor-arg=--host-ip=" + clusterHostIP, "--executor-arg=--host-port-bind-address=127.0.0.1",
		"--executor-arg=--proxy=false", "--executor-arg=--node-api-dir=" + c.apiDir, "--executor-arg=--log-level=debug",
		"--executor-arg=--launch-grace-period=2m", "--executor-arg=--kubelet-port=0", "--executor-arg=--kubelet-address=127.0.0.1",
		"--offer-ttl", "1s", "--refuse", "1s", "--listen-address", "",
		"--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms",
		"--log-level", "debug"}
	if c.static != "" {
		args = append(args, "--static-pods-config", c.static)
	}
	args = append(args, extra...)
	s := &sched{cmd: exec.Command(schedulerBinary, args...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	c.t.Cleanup(func() {
		s.stop()
		if c.t.Failed() {
			c.t.Logf("k8sm-scheduler (pid %d) log:\n%s", s.cmd.Process.Pid, tail([]byte(s.log()), 20000))
		}
	})
	return s
}

func (s *sched) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *sched) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// waitLong waits for cond up to 3 minutes (launches through Docker on a
// loaded CI machine).
func waitLong(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 3*time.Minute, what, cond)
}

func (c *cluster) podTemplate(cpu string) v1.PodTemplateSpec {
	return v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"test": c.name, "app": c.name}},
		Spec: v1.PodSpec{
			SchedulerName:                 c.name,
			TerminationGracePeriodSeconds: ptr.To(int64(2)),
			// Until the executor serves projected service-account
			// volumes (issue 21): the stock API server's ServiceAccount
			// admission adds one to every pod that does not opt out.
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []v1.Container{{Name: "web", Image: testenv.BusyboxImage,
				Command: []string{"sh", "-c", "mkdir -p /www && echo hello-from-$HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"},
				Ports:   []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Resources: v1.ResourceRequirements{Limits: v1.ResourceList{
					v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("32Mi")}}}},
		},
	}
}

// deploy creates the test's Deployment of replicas pods of podTemplate(cpu).
func (c *cluster) deploy(replicas int32, cpu string) {
	c.t.Helper()
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: "default", Labels: map[string]string{"test": c.name}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": c.name}},
			Template: c.podTemplate(cpu)},
	}
	if _, err := c.kube.AppsV1().Deployments("default").Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) pods() []v1.Pod {
	c.t.Helper()
	l, err := c.kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "test=" + c.name})
	if err != nil {
		c.t.Fatal(err)
	}
	return l.Items
}

func (c *cluster) running(n int) []v1.Pod {
	c.t.Helper()
	var got []v1.Pod
	waitLong(c.t, fmt.Sprintf("%d pods Running", n), func() bool {
		got = got[:0]
		for _, p := range c.pods() {
			if p.Status.Phase == v1.PodRunning && p.DeletionTimestamp == nil {
				got = append(got, p)
			}
		}
		return len(got) == n
	})
	return got
}

func (c *cluster) tasks(state string) int {
	n := 0
	for _, f := range c.m.State().Frameworks {
		for _, t := range f.Tasks {
			if t.State == state {
				n++
			}
		}
	}
	return n
}

// A Deployment of 3 replicas becomes 3 running pods spread over both
// agents, each bound with the task annotations and reachable at its
// HostIP:HostPort, which the Service's k8sm EndpointSlices list; a pod
// bigger than any agent stays Pending with an event saying why; deleting
// a pod kills its task and removes the pod; the Nodes carry the agents'
// attributes.
func TestSchedulerRunsADeployment(t *testing.T) {
	c := newCluster(t)
	c.start()
	ctx := context.Background()
	c.deploy(3, "200m")
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: "default"},
		Spec: v1.ServiceSpec{Selector: map[string]string{"app": c.name},
			Ports: []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	if _, err := c.kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := c.running(3)
	perNode := map[string]int{}
	hostPorts := map[int32]bool{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		for _, a := range []string{podspec.TaskIDAnnotation, podspec.AgentIDAnnotation, podspec.ExecutorIDAnnotation, podspec.OfferIDAnnotation} {
			if p.Annotations[a] == "" {
				t.Fatalf("pod %s lacks annotation %s: %v", p.Name, a, p.Annotations)
			}
		}
		hp := podspec.BoundHostPort(p.Annotations[podspec.HostPortsAnnotation], "web", 8080, v1.ProtocolTCP)
		if hp < 31100 || hp > 31139 {
			t.Fatalf("pod %s host port %d (annotation %q), want one from the offers", p.Name, hp, p.Annotations[podspec.HostPortsAnnotation])
		}
		hostPorts[hp] = true
		body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", hp))
		if !strings.HasPrefix(body, "hello-from-") {
			t.Fatalf("pod %s at host port %d answered %q", p.Name, hp, body)
		}
	}
	if len(perNode) != 2 {
		t.Fatalf("pods per node %v, want them spread over both agents", perNode)
	}
	for i, n := range clusterNodes {
		node, err := c.kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if node.Labels["k8sm.io/attribute-zone"] != fmt.Sprintf("z%d", i+1) || node.Labels[v1.LabelHostname] != n {
			t.Fatalf("Node %s labels %v", n, node.Labels)
		}
	}
	// The Service's k8sm EndpointSlices: the host IP at each pod's host
	// port.
	waitLong(t, "k8sm EndpointSlices listing the 3 pods", func() bool {
		sl, err := c.kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + c.name + "," + discoveryv1.LabelManagedBy + "=" + scheduler.ManagedBy})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int32]bool{}
		for _, s := range sl.Items {
			for _, e := range s.Endpoints {
				if e.Addresses[0] == clusterHostIP && e.Conditions.Ready != nil && *e.Conditions.Ready {
					for _, p := range s.Ports {
						if *p.Name == "http" {
							seen[*p.Port] = true
						}
					}
				}
			}
		}
		return len(seen) == 3 && seen[firstKey(hostPorts)]
	})

	// Bigger than any agent: Pending, with the reason in an event.
	big := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.name + "-big", Namespace: "default", Labels: map[string]string{"test": c.name}},
		Spec: c.podTemplate("16").Spec}
	if _, err := c.kube.CoreV1().Pods("default").Create(ctx, big, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "a FailedScheduling event for the big pod", func() bool {
		evs, err := c.kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + big.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Reason == "FailedScheduling" && strings.Contains(e.Message, "have too few cpus (pod needs 16.000") {
				return true
			}
		}
		return false
	})
	if p, err := c.kube.CoreV1().Pods("default").Get(ctx, big.Name, metav1.GetOptions{}); err != nil || p.Spec.NodeName != "" || p.Status.Phase != v1.PodPending {
		t.Fatalf("big pod: %v, node %q phase %s", err, p.Spec.NodeName, p.Status.Phase)
	}

	// Deleting a pod kills its task; the pod object goes; the
	// ReplicaSet replaces it.
	victim := pods[0]
	if err := c.kube.CoreV1().Pods("default").Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the deleted pod's task TASK_KILLED and the pod gone", func() bool {
		_, err := c.kube.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{})
		return err != nil && c.logged("task TASK_KILLED", "pod=default/"+victim.Name, "source=SOURCE_EXECUTOR")
	})
	for _, f := range c.m.State().Frameworks {
		for _, tk := range f.Tasks {
			if tk.ID == victim.Annotations[podspec.TaskIDAnnotation] && tk.State != "TASK_KILLED" {
				t.Fatalf("the deleted pod's task is %s", tk.State)
			}
		}
	}
	c.running(3)
}

func firstKey(m map[int32]bool) int32 {
	for k := range m {
		return k
	}
	return 0
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	var body string
	waitLong(t, "an answer from "+url, func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		body = strings.TrimSpace(string(b))
		return resp.StatusCode == 200
	})
	return body
}

func leaseHolder(t testing.TB, c *cluster) string {
	l, err := c.kube.CoordinationV1().Leases("kube-system").Get(context.Background(), c.name, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Killing the leader with pods running: the standby takes over as the same
// framework, reconciles, kills nothing, and schedules the next pod.
func TestSchedulerFailover(t *testing.T) {
	c := newCluster(t)
	a := c.start()
	waitLong(t, "a leader", func() bool { return leaseHolder(t, c) != "" })
	b := c.start()
	ctx := context.Background()
	mk := func(name string) {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"test": c.name}},
			Spec: c.podTemplate("100m").Spec}
		if _, err := c.kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk(c.name + "-1")
	mk(c.name + "-2")
	c.running(2)
	cm, err := c.kube.CoreV1().ConfigMaps("kube-system").Get(ctx, c.name, metav1.GetOptions{})
	if err != nil || cm.Data[scheduler.FrameworkIDKey] == "" {
		t.Fatalf("stored framework id: %v %v", err, cm)
	}
	fid := cm.Data[scheduler.FrameworkIDKey]
	leader, standby := a, b
	if !strings.Contains(a.log(), "msg=leading") {
		leader, standby = b, a
	}
	first := leaseHolder(t, c)
	leader.kill()
	waitLong(t, "the standby to lead", func() bool { h := leaseHolder(t, c); return h != "" && h != first })
	waitLong(t, "the new leader to re-subscribe and reconcile", func() bool {
		l := standby.log()
		return strings.Contains(l, "framework re-subscribed") && strings.Contains(l, "reconciling tasks") &&
			strings.Contains(l, "task TASK_RUNNING")
	})
	if !strings.Contains(standby.log(), "framework_id="+fid) {
		t.Fatalf("the new leader did not subscribe as framework %s", fid)
	}
	st := c.m.State()
	if len(st.Frameworks) != 1 || st.Frameworks[0].ID != fid || !st.Frameworks[0].Active {
		t.Fatalf("master frameworks %+v, want %s only, active", st.Frameworks, fid)
	}
	if n := c.tasks("TASK_RUNNING"); n != 2 || c.logged("TASK_KILLED") {
		t.Fatalf("tasks RUNNING %d after failover (want 2), or a task was killed", n)
	}
	mk(c.name + "-3")
	c.running(3)
}

// Static pods reach every executor and count against its resources; a
// changed executor flag makes a new executor id, and agents that run the
// old executor are declined.
func TestSchedulerStaticPodsAndExecutorIdentity(t *testing.T) {
	c := newCluster(t)
	c.static = t.TempDir()
	if err := os.Chmod(c.static, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: node-agent, namespace: default}
spec:
  containers:
  - name: c
    image: ` + testenv.BusyboxImage + `
    command: [sh, -c, "trap 'exit 0' TERM; while :; do sleep 1; done"]
    resources: {limits: {cpu: 500m, memory: 128Mi}}
`
	if err := os.WriteFile(filepath.Join(c.static, "agent.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	s1 := c.start()
	ctx := context.Background()
	c.deploy(2, "100m")
	pods := c.running(2)
	if pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Fatalf("both replicas on %s", pods[0].Spec.NodeName)
	}
	// Each executor runs the static pod: its mirror pod shows up.
	for _, n := range clusterNodes {
		waitLong(t, "the static pod's mirror on "+n, func() bool {
			p, err := c.kube.CoreV1().Pods("default").Get(ctx, "node-agent-"+n, metav1.GetOptions{})
			return err == nil && p.Status.Phase == v1.PodRunning
		})
	}
	// The executor's resources include the static pod's: 0.25 + 0.5
	// cpus, 64 + 128 MB + 16 MB (the static pod's sandbox allowance).
	var exID string
	for _, a := range c.agents {
		for _, e := range a.Executors() {
			exID = e.ExecutorID
		}
	}
	info, ok := executorInfoOf(c, exID)
	if !ok {
		t.Fatalf("no ExecutorInfo for %s", exID)
	}
	milli, mem, _ := podspec.FromMesos(info.Resources)
	if milli != 750 || mem != 208<<20 {
		t.Fatalf("executor resources %dm cpus %d bytes, want 750m and 208 MiB", milli, mem)
	}
	s1.stop()
	_ = c.kube.CoreV1().Pods("default").Delete(ctx, "node-agent-k8sm-sched1", metav1.DeleteOptions{})
	_ = c.kube.CoreV1().Pods("default").Delete(ctx, "node-agent-k8sm-sched2", metav1.DeleteOptions{})

	// Another executor flag: another id; both agents still run the old
	// executor, so a new pod waits and their offers are declined.
	s2 := c.start("--executor-arg=--reap-interval=2m")
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.name + "-new", Namespace: "default", Labels: map[string]string{"test": c.name}},
		Spec: c.podTemplate("100m").Spec}
	if _, err := c.kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "declining incompatible offer from both agents", func() bool {
		l := s2.log()
		return strings.Contains(l, "declining incompatible offer") && strings.Contains(l, "hostname=k8sm-sched1") &&
			strings.Contains(l, "hostname=k8sm-sched2")
	})
	if strings.Contains(s2.log(), "executor_id="+exID) {
		t.Fatalf("the changed executor flag kept the executor id %s", exID)
	}
	got, err := c.kube.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil || got.Spec.NodeName != "" {
		t.Fatalf("new pod: %v, bound to %q; want it pending", err, got.Spec.NodeName)
	}
}

// executorInfoOf is the ExecutorInfo an agent runs executor id with.
func executorInfoOf(c *cluster, id string) (mesos.ExecutorInfo, bool) {
	for _, a := range c.agents {
		if ei, found := a.ExecutorInfo(id); found {
			return ei, true
		}
	}
	return mesos.ExecutorInfo{}, false
}

// BenchmarkScheduler100Pods: 100 pods created at once -> all Running
// (scheduler, two agents, real executors and Docker), in seconds; the
// baseline is the same 100 pods launched straight through one agent by a
// test framework that already holds the offer (BenchmarkHundredPods).
func BenchmarkScheduler100Pods(b *testing.B) {
	for b.Loop() {
		c := newSizedCluster(b, 8, 8192)
		c.start()
		ctx := context.Background()
		start := time.Now()
		for i := range 100 {
			p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", c.name, i), Namespace: "default", Labels: map[string]string{"test": c.name}},
				Spec: c.podTemplate("50m").Spec}
			p.Spec.Containers[0].Ports = nil
			p.Spec.Containers[0].Command = []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"}
			if _, err := c.kube.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		c.running(100)
		b.ReportMetric(time.Since(start).Seconds(), "s/100pods")
		b.StopTimer()
		sel := metav1.ListOptions{LabelSelector: "test=" + c.name}
		_ = c.kube.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
		waitLong(b, "the 100 pods removed", func() bool { return len(c.pods()) == 0 })
		b.StartTimer()
	}
}
