package nodeapi

import (
	"errors"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/k8sm/k8sm/cgroups"
)

// cpuSample is a CPU usage reading, to turn the next into a rate.
type cpuSample struct {
	at    time.Time
	usage uint64
}

// Summary is /stats/summary: the executor's Mesos container as the node
// (what Mesos accounts to k8sm here), each pod's cgroup, and each running
// container's. Usage rates (usageNanoCores) come from the previous call's
// readings.
func (s *Server) Summary(now time.Time) (*stats.Summary, error) {
	n := s.getNode()
	if n.Stats == nil {
		return nil, errors.New("no cgroup statistics yet: the executor has not subscribed")
	}
	s.samplesMu.Lock()
	defer s.samplesMu.Unlock()
	seen := map[string]bool{}
	sample := func(rel string) (*stats.CPUStats, *stats.MemoryStats, bool) {
		st, err := n.Stats(rel)
		if err != nil {
			return nil, nil, false
		}
		seen[rel] = true
		return s.cpuStats(rel, st, now), memStats(st, now), true
	}
	sum := &stats.Summary{Node: stats.NodeStats{NodeName: n.Name, StartTime: metav1.NewTime(s.startedAt)}}
	if cpu, mem, ok := sample(""); ok {
		sum.Node.CPU, sum.Node.Memory = cpu, mem
	} else {
		return nil, errors.New("the executor's container cgroup cannot be read")
	}
	sum.Pods = []stats.PodStats{}
	for _, v := range s.src.Pods() {
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
	for rel := range s.samples {
		if !seen[rel] {
			delete(s.samples, rel)
		}
	}
	return sum, nil
}

func (s *Server) cpuStats(rel string, st cgroups.Stats, now time.Time) *stats.CPUStats {
	total := st.CPUUsageNanos
	c := &stats.CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: &total}
	if prev, ok := s.samples[rel]; ok && now.After(prev.at) && total >= prev.usage {
		rate := uint64(float64(total-prev.usage) / now.Sub(prev.at).Seconds())
		c.UsageNanoCores = &rate
	}
	s.samples[rel] = cpuSample{now, total}
	return c
}

// unlimited is above any real memory limit (cgroup v1 reports "no limit"
// as the largest page-aligned int64, v2 as max).
const unlimited = uint64(1) << 62

func memStats(st cgroups.Stats, now time.Time) *stats.MemoryStats {
	usage, ws := st.MemoryUsage, st.MemoryWorkingSet
	m := &stats.MemoryStats{Time: metav1.NewTime(now), UsageBytes: &usage, WorkingSetBytes: &ws}
	if st.MemoryLimit > 0 && st.MemoryLimit < unlimited {
		avail := uint64(0)
		if st.MemoryLimit > ws {
			avail = st.MemoryLimit - ws
		}
		m.AvailableBytes = &avail
	}
	return m
}
