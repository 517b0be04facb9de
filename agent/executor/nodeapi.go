package executor

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// NodeAPI serves the executor's node API: /healthz, /pods (a v1 PodList
// with status) and /metrics from gatherer. Callers put it on the
// root-only unix socket.
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
			list.Items = append(list.Items, *p)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

func (e *Executor) observeStart(t *task) {
	if e.cfg.Metrics != nil && !t.launchedAt.IsZero() {
		e.cfg.Metrics.StartLatency.Observe(time.Since(t.launchedAt).Seconds())
	}
}
