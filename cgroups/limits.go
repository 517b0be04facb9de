package cgroups

// Limits of one pod cgroup. CPU is in millicores, memory in bytes; zero
// means "not set" except for CPURequestMilli, which always yields shares.
type Limits struct {
	CPURequestMilli int64 // -> cpu.shares (v1) / cpu.weight (v2)
	CPULimitMilli   int64 // -> CFS quota; 0: no quota
	MemoryBytes     int64 // -> memory.limit_in_bytes / memory.max; 0: none
	Pids            int64 // -> pids.max; 0: none
}

// The kubelet's CPU constants and formulas (pkg/kubelet/cm/helpers_linux.go).
const (
	CFSPeriodMicros = 100000
	minShares       = 2
	maxShares       = 262144
	sharesPerCPU    = 1024
	minQuotaMicros  = 1000
)

// Shares is the kubelet's MilliCPUToShares.
func (l Limits) Shares() uint64 {
	s := l.CPURequestMilli * sharesPerCPU / 1000
	switch {
	case s < minShares:
		return minShares
	case s > maxShares:
		return maxShares
	}
	return uint64(s)
}

// QuotaMicros is the kubelet's MilliCPUToQuota for CFSPeriodMicros: 0 when
// there is no limit, else at least 1 ms.
func (l Limits) QuotaMicros() int64 {
	if l.CPULimitMilli <= 0 {
		return 0
	}
	q := l.CPULimitMilli * CFSPeriodMicros / 1000
	if q < minQuotaMicros {
		return minQuotaMicros
	}
	return q
}

// Weight is the kubelet's cgroup v2 conversion of shares to cpu.weight.
func (l Limits) Weight() uint64 {
	return 1 + ((l.Shares()-2)*9999)/262142
}
