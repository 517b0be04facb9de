package executor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// countStates refreshes what changes with a task's state: the node API's
// resources and the metrics; the loop calls it after each update it makes.
func (e *Executor) countStates() {
	e.publishResources()
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

func (e *Executor) observeStart(t *task) {
	if e.cfg.Metrics != nil && !t.launchedAt.IsZero() {
		e.cfg.Metrics.StartLatency.Observe(time.Since(t.launchedAt).Seconds())
	}
}
