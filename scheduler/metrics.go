package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the scheduler (served on /metrics by the command).
type Metrics struct {
	OffersReceived   prometheus.Counter
	OffersDeclined   *prometheus.CounterVec // by reason
	PodsPending      prometheus.Gauge
	PlacementLatency prometheus.Histogram // first seen -> launched, seconds
	Launches         prometheus.Counter
	StatusUpdates    *prometheus.CounterVec // by state
	Subscribed       prometheus.Gauge
	Leader           prometheus.Gauge
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		OffersReceived: prometheus.NewCounter(prometheus.CounterOpts{Name: "k8sm_scheduler_offers_received_total", Help: "Mesos offers received."}),
		OffersDeclined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "k8sm_scheduler_offers_declined_total", Help: "Mesos offers declined, by reason (unused, incompatible-executor)."}, []string{"reason"}),
		PodsPending:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_scheduler_pods_pending", Help: "Pods waiting for an offer (invalid pods excluded)."}),
		PlacementLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "k8sm_scheduler_placement_latency_seconds",
			Help: "Time from a pod first seen pending to its launch.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		Launches:      prometheus.NewCounter(prometheus.CounterOpts{Name: "k8sm_scheduler_launches_total", Help: "Tasks launched (ACCEPTs with LAUNCH)."}),
		StatusUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "k8sm_scheduler_status_updates_total", Help: "Task status updates received, by state."}, []string{"state"}),
		Subscribed:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_scheduler_subscribed", Help: "1 while subscribed to the Mesos master."}),
		Leader:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_scheduler_leader", Help: "1 while this instance leads."}),
	}
	if reg != nil {
		reg.MustRegister(m.OffersReceived, m.OffersDeclined, m.PodsPending, m.PlacementLatency, m.Launches, m.StatusUpdates, m.Subscribed, m.Leader)
	}
	return m
}
