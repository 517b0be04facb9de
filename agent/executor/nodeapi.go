package executor

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
)

// Metrics are the executor's Prometheus metrics (the node API's /metrics).
type Metrics struct {
	UpdatesSent    prometheus.Counter
	UpdatesAcked   prometheus.Counter
	UpdatesPending prometheus.Gauge
	TasksByState   *prometheus.GaugeVec
	StartLatency   prometheus.Histogram
}

// NewMetrics registers the executor's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		UpdatesSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "k8sm_executor_status_updates_sent_total",
			Help: "Task status updates made (each is kept until the agent acknowledges it)."}),
		UpdatesAcked: prometheus.NewCounter(prometheus.CounterOpts{Name: "k8sm_executor_status_updates_acked_total",
			Help: "Task status updates the agent acknowledged."}),
		UpdatesPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_executor_status_updates_pending",
			Help: "Task status updates not yet acknowledged by the agent."}),
		TasksByState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "k8sm_executor_tasks",
			Help: "Tasks by Mesos state."}, []string{"state"}),
		StartLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "k8sm_executor_pod_start_seconds",
			Help: "LAUNCH to TASK_RUNNING.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 10)}),
	}
	reg.MustRegister(m.UpdatesSent, m.UpdatesAcked, m.UpdatesPending, m.TasksByState, m.StartLatency)
	return m
}

// PodView is one task's pod as the node API shows it.
type PodView struct {
	TaskID string
	State  mesos.TaskState
	Pod    *v1.Pod
	Status v1.PodStatus
}

// Pods returns the executor's pods now; safe for concurrent use.
func (e *Executor) Pods() []PodView {
	e.viewMu.RLock()
	defer e.viewMu.RUnlock()
	out := make([]PodView, 0, len(e.view))
	for _, v := range e.view {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

// publish hands a task's newest pod status to the API server reporter and
// refreshes the node API's view of it; the loop calls it whenever a task's
// pod status changes.
func (e *Executor) publish(t *task) {
	if t.pod == nil {
		return
	}
	if e.podStatus != nil {
		e.podStatus(t.pod, t.status)
	}
	e.viewMu.Lock()
	if terminal(t.state) {
		delete(e.view, t.info.TaskID.Value)
	} else {
		e.view[t.info.TaskID.Value] = PodView{TaskID: t.info.TaskID.Value, State: t.state, Pod: t.pod, Status: t.status}
	}
	e.viewMu.Unlock()
}

// countStates refreshes the metrics that change with a task's state; the
// loop calls it after each update it makes.
func (e *Executor) countStates() {
	var res mesos.Resources
	for _, tk := range e.tasks {
		if !terminal(tk.state) {
			res = append(res, tk.info.Resources...)
		}
	}
	e.infoMu.Lock()
	e.infoRes = res
	e.infoMu.Unlock()
	m := e.cfg.Metrics
	if m == nil {
		return
	}
	m.UpdatesSent.Inc()
	m.UpdatesPending.Set(float64(e.book.Pending()))
	counts := map[string]int{}
	for _, tk := range e.tasks {
		counts[tk.state.String()]++
	}
	m.TasksByState.Reset()
	for s, n := range counts {
		m.TasksByState.WithLabelValues(s).Set(float64(n))
	}
}

// TaskIDAnnotation carries a pod's Mesos task id (shared/DESIGN.md "Task
// data"); /pods sets it on every pod it lists, static pods' included
// ("static.<uid>").
const TaskIDAnnotation = podspec.TaskIDAnnotation

// Info is the executor as "k8sm-agent diag" shows it (the node API's
// /executor).
type Info struct {
	PID           int       `json:"pid"`
	StartedAt     time.Time `json:"startedAt"`
	FrameworkID   string    `json:"frameworkID"`
	ExecutorID    string    `json:"executorID"`
	AgentID       string    `json:"agentID,omitempty"`
	ContainerID   string    `json:"containerID,omitempty"`
	AgentEndpoint string    `json:"agentEndpoint"`
	Hostname      string    `json:"hostname,omitempty"`
	// Subscribed: connected to the agent now.
	Subscribed bool   `json:"subscribed"`
	Checkpoint bool   `json:"checkpoint"`
	Cgroup     string `json:"cgroup,omitempty"`
	// MemoryLimitBytes (0: unknown or none) and MemoryUsageBytes of the
	// executor's Mesos container (itself and its pods); CPUUsageNanos its
	// CPU time.
	MemoryLimitBytes uint64 `json:"memoryLimitBytes,omitempty"`
	MemoryUsageBytes uint64 `json:"memoryUsageBytes,omitempty"`
	CPUUsageNanos    uint64 `json:"cpuUsageNanos,omitempty"`
	// CPUs and MemBytes are what Mesos gave the executor and its tasks.
	CPUs     float64 `json:"cpus,omitempty"`
	MemBytes int64   `json:"memBytes,omitempty"`
	// PortRanges are the agent's "ports" resources ("31000-32000").
	PortRanges []string `json:"portRanges,omitempty"`
}

// Info describes the executor now; safe for concurrent use.
func (e *Executor) Info() Info {
	e.viewMu.RLock()
	read, cgroup := e.stats, e.cgroupPath
	e.viewMu.RUnlock()
	m := e.cfg.Mesos
	in := Info{PID: os.Getpid(), StartedAt: e.startedAt, FrameworkID: m.FrameworkID, ExecutorID: m.ExecutorID,
		AgentEndpoint: m.AgentEndpoint, Subscribed: e.online.Load(), Checkpoint: m.Checkpoint, Cgroup: cgroup}
	e.infoMu.RLock()
	id, tasks := e.infoID, e.infoRes
	e.infoMu.RUnlock()
	in.AgentID, in.ContainerID, in.Hostname = id.AgentID, id.ContainerID, id.Agent.Hostname
	for _, r := range id.Agent.Resources {
		if r.Name == "ports" && r.Ranges != nil {
			for _, rg := range r.Ranges.Range {
				in.PortRanges = append(in.PortRanges, fmt.Sprintf("%d-%d", rg.Begin, rg.End))
			}
		}
	}
	cpus, mem, _ := podspec.FromMesos(append(append(mesos.Resources{}, id.Executor.Resources...), tasks...))
	in.CPUs, in.MemBytes = cpus, mem
	if read != nil {
		if s, err := read(""); err == nil {
			in.MemoryUsageBytes, in.CPUUsageNanos = s.MemoryUsage, s.CPUUsageNanos
			if s.MemoryLimit < unlimited {
				in.MemoryLimitBytes = s.MemoryLimit
			}
		}
	}
	return in
}

// publishStatic refreshes the node API's view of a static pod and hands
// its status to the API server reporter (its mirror pod).
func (e *Executor) publishStatic(pod *v1.Pod, r report) {
	if e.podStatus != nil {
		e.podStatus(pod, r.st)
	}
	id := StaticTaskID(pod)
	e.viewMu.Lock()
	e.view[id] = PodView{TaskID: id, State: TaskVerdict(mesos.TASK_STARTING, r.s).State, Pod: pod, Status: r.st}
	e.viewMu.Unlock()
}

// NodeAPI serves the executor's node API: /healthz, /pods (a v1 PodList
// with status), /stats/summary (kubelet stats/v1alpha1 from the cgroups),
// /containerLogs/{namespace}/{pod}/{container} (?tailLines=N&follow=true)
// and /metrics from gatherer. Callers put it on the root-only unix socket,
// and behind RequireToken on TCP.
func (e *Executor) NodeAPI(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /pods", func(w http.ResponseWriter, _ *http.Request) {
		list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, v := range e.Pods() {
			p := v.Pod.DeepCopy()
			p.Status = v.Status
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[TaskIDAnnotation] = v.TaskID
			list.Items = append(list.Items, *p)
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /stats/summary", func(w http.ResponseWriter, _ *http.Request) {
		sum, err := e.Summary(time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, sum)
	})
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", e.serveLogs)
	mux.HandleFunc("GET /executor", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, e.Info()) })
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// RequireToken lets through only requests carrying "Authorization: Bearer
// <token>"; others get 401 (the node API on TCP).
func RequireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="k8sm node API"`)
			http.Error(w, "401 Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveLogs streams a container's log as the kubelet's /containerLogs
// does: plain text, tailLines and follow from the query.
func (e *Executor) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	e.viewMu.RLock()
	logs := e.logs
	e.viewMu.RUnlock()
	if logs == nil {
		http.Error(w, "no pods run here yet", http.StatusServiceUnavailable)
		return
	}
	var pod *v1.Pod
	for _, v := range e.Pods() {
		if v.Pod.Namespace == ns && v.Pod.Name == name {
			pod = v.Pod
		}
	}
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on this node", ns, name), http.StatusNotFound)
		return
	}
	if !hasContainer(pod, ctr) {
		http.Error(w, fmt.Sprintf("pod %s/%s has no container %q", ns, name, ctr), http.StatusNotFound)
		return
	}
	tail := ""
	if t := r.URL.Query().Get("tailLines"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("tailLines: want a number >= 0, got %q", t), http.StatusBadRequest)
			return
		}
		tail = strconv.Itoa(n)
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	rc, err := logs(r.Context(), string(pod.UID), ctr, tail, follow)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer func() { _ = rc.Close() }()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := flushWriter{w, http.NewResponseController(w)}
	_, _ = io.Copy(fw, rc)
}

func hasContainer(pod *v1.Pod, name string) bool {
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

// flushWriter flushes after each write, so a followed log streams.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	_ = f.rc.Flush()
	return n, err
}

// cpuSample is a CPU usage reading, to turn the next into a rate.
type cpuSample struct {
	at    time.Time
	usage uint64
}

// Summary is the node API's /stats/summary: the executor's Mesos
// container as the node (what Mesos accounts to k8sm here), each pod's
// cgroup, and each running container's. Usage rates (usageNanoCores) come
// from the previous call's readings.
func (e *Executor) Summary(now time.Time) (*stats.Summary, error) {
	e.viewMu.RLock()
	read, node, started := e.stats, e.nodeName, e.startedAt
	e.viewMu.RUnlock()
	if read == nil {
		return nil, errors.New("no cgroup statistics yet: the executor has not subscribed")
	}
	e.samplesMu.Lock()
	defer e.samplesMu.Unlock()
	seen := map[string]bool{}
	sample := func(rel string) (*stats.CPUStats, *stats.MemoryStats, bool) {
		s, err := read(rel)
		if err != nil {
			return nil, nil, false
		}
		seen[rel] = true
		cpu, mem := e.cpuStats(rel, s, now), memStats(s, now)
		return cpu, mem, true
	}
	sum := &stats.Summary{Node: stats.NodeStats{NodeName: node, StartTime: metav1.NewTime(started)}}
	if cpu, mem, ok := sample(""); ok {
		sum.Node.CPU, sum.Node.Memory = cpu, mem
	} else {
		return nil, errors.New("the executor's container cgroup cannot be read")
	}
	sum.Pods = []stats.PodStats{}
	for _, v := range e.Pods() {
		uid := string(v.Pod.UID)
		ps := stats.PodStats{PodRef: stats.PodReference{Name: v.Pod.Name, Namespace: v.Pod.Namespace, UID: uid}, Containers: []stats.ContainerStats{}}
		if v.Status.StartTime != nil {
			ps.StartTime = *v.Status.StartTime
		}
		ps.CPU, ps.Memory, _ = sample(uid)
		for _, c := range v.Status.ContainerStatuses {
			if c.State.Running == nil {
				continue
			}
			cs := stats.ContainerStats{Name: c.Name, StartTime: c.State.Running.StartedAt}
			if id, ok := strings.CutPrefix(c.ContainerID, "docker://"); ok && id != "" {
				cs.CPU, cs.Memory, _ = sample(uid + "/" + id)
			}
			ps.Containers = append(ps.Containers, cs)
		}
		sum.Pods = append(sum.Pods, ps)
	}
	for rel := range e.samples {
		if !seen[rel] {
			delete(e.samples, rel)
		}
	}
	return sum, nil
}

func (e *Executor) cpuStats(rel string, s cgroups.Stats, now time.Time) *stats.CPUStats {
	total := s.CPUUsageNanos
	c := &stats.CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: &total}
	if prev, ok := e.samples[rel]; ok && now.After(prev.at) && total >= prev.usage {
		rate := uint64(float64(total-prev.usage) / now.Sub(prev.at).Seconds())
		c.UsageNanoCores = &rate
	}
	e.samples[rel] = cpuSample{now, total}
	return c
}

// unlimited is above any real memory limit (cgroup v1 reports "no limit"
// as the largest page-aligned int64, v2 as max).
const unlimited = uint64(1) << 62

func memStats(s cgroups.Stats, now time.Time) *stats.MemoryStats {
	usage, ws := s.MemoryUsage, s.MemoryWorkingSet
	m := &stats.MemoryStats{Time: metav1.NewTime(now), UsageBytes: &usage, WorkingSetBytes: &ws}
	if s.MemoryLimit > 0 && s.MemoryLimit < unlimited {
		avail := uint64(0)
		if s.MemoryLimit > ws {
			avail = s.MemoryLimit - ws
		}
		m.AvailableBytes = &avail
	}
	return m
}

func (e *Executor) observeStart(t *task) {
	if e.cfg.Metrics != nil && !t.launchedAt.IsZero() {
		e.cfg.Metrics.StartLatency.Observe(time.Since(t.launchedAt).Seconds())
	}
}
