package proxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the proxy's Prometheus metrics (the node API's /metrics).
type Metrics struct {
	SyncSeconds  *prometheus.HistogramVec // by kind: full, partial
	SyncErrors   prometheus.Counter
	ServicePorts prometheus.Gauge
	Endpoints    prometheus.Gauge
	LastSync     prometheus.Gauge
	RestoreBytes prometheus.Histogram
}

// NewMetrics registers the proxy's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SyncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "k8sm_proxy_sync_seconds",
			Help: "Time of a sync (render and iptables-restore), by kind (full, partial).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)},
			[]string{"kind"}),
		SyncErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "k8sm_proxy_sync_errors_total",
			Help: "Syncs that failed (the next one is a full resync)."}),
		ServicePorts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_proxy_service_ports",
			Help: "Service ports programmed."}),
		Endpoints: prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_proxy_endpoints",
			Help: "Usable endpoints programmed."}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "k8sm_proxy_last_sync_timestamp_seconds",
			Help: "When the last successful sync ended."}),
		RestoreBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "k8sm_proxy_restore_bytes",
			Help: "Size of each iptables-restore input.", Buckets: prometheus.ExponentialBuckets(256, 4, 10)}),
	}
	reg.MustRegister(m.SyncSeconds, m.SyncErrors, m.ServicePorts, m.Endpoints, m.LastSync, m.RestoreBytes)
	return m
}
