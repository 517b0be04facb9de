package scheduler

import (
	"fmt"
	"math"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
)

// This file is the pure core of the scheduler: offers × pods → launches and
// declines. No API server, no Mesos connection, no clock.

// Slot is what one agent offers in one placement round: all its
// outstanding offers together (one ACCEPT may name several offers of one
// agent, never offers of two agents).
type Slot struct {
	AgentID  string
	Hostname string
	OfferIDs []string
	// Labels are the Node labels pods' nodeSelector and node affinity
	// match: kubernetes.io/hostname, k8sm.io/attribute-<name>, and those of
	// the agent's Node object.
	Labels map[string]string
	// Executors are this framework's executor ids on the agent
	// (Offer.executor_ids).
	Executors []string

	node      *v1.Node // Labels as a Node, for node affinity
	cpus, mem []scalarPool
	ports     ports.Set
	// placed counts the pods on the agent (running and planned) by owner,
	// for spreading.
	placed map[string]int
}

// scalarPool is one offered scalar resource: the resource (its role,
// reservations and allocation info) and what is left of it, in
// milli-units (millicpus, or mem in 1/1000 MB).
type scalarPool struct {
	res  mesos.Resource
	left int64
}

// NewSlot collects the offers of one agent; they must all come from it.
func NewSlot(offers []mesos.Offer, extraLabels map[string]string) (*Slot, error) {
	if len(offers) == 0 {
		return nil, fmt.Errorf("no offers")
	}
	first := offers[0]
	nl, _ := podspec.NodeLabels(first.Hostname, first.Attributes)
	for k, v := range extraLabels {
		if _, ours := nl[k]; !ours {
			nl[k] = v
		}
	}
	s := &Slot{AgentID: first.AgentID.Value, Hostname: first.Hostname, Labels: nl, placed: map[string]int{},
		node: &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: first.Hostname, Labels: nl}}}
	seen := map[string]bool{}
	var all []mesos.Resource
	for _, o := range offers {
		if o.AgentID.Value != s.AgentID {
			return nil, fmt.Errorf("offer %s is from agent %s, not %s: one slot holds one agent's offers", o.ID.Value, o.AgentID.Value, s.AgentID)
		}
		s.OfferIDs = append(s.OfferIDs, o.ID.Value)
		for _, e := range o.ExecutorIDs {
			if !seen[e.Value] {
				seen[e.Value] = true
				s.Executors = append(s.Executors, e.Value)
			}
		}
		all = append(all, o.Resources...)
	}
	for _, r := range all {
		if r.GetType() != mesos.SCALAR {
			continue
		}
		p := scalarPool{res: r, left: podspec.MesosMilli(r.GetScalar().GetValue())}
		switch r.GetName() {
		case resources.NameCPUs.String():
			s.cpus = append(s.cpus, p)
		case resources.NameMem.String():
			s.mem = append(s.mem, p)
		}
	}
	s.ports = ports.FromResources(all)
	return s, nil
}

// Count records an existing pod of owner on the agent (for spreading).
func (s *Slot) Count(owner string) { s.placed[owner]++ }

func sum(ps []scalarPool) int64 {
	var n int64
	for _, p := range ps {
		n += p.left
	}
	return n
}

// take removes milli units from pools, first pool first, and returns them as
// resources with the pools' metadata. The caller checked there is enough.
func take(ps []scalarPool, milli int64) []mesos.Resource {
	var out []mesos.Resource
	for i := range ps {
		if milli == 0 {
			break
		}
		n := min(ps[i].left, milli)
		if n == 0 {
			continue
		}
		ps[i].left -= n
		milli -= n
		r := ps[i].res
		r.Scalar = &mesos.Value_Scalar{Value: podspec.MesosScalar(n)}
		r.Ranges, r.Set = nil, nil
		out = append(out, r)
	}
	return out
}

// Executor is what the k8sm executor needs on an agent that does not run it
// yet.
type Executor struct {
	ID string
	// CPUMilli and MemMilli (1/1000 MB) are the executor's own resources
	// plus the static pods'.
	CPUMilli, MemMilli int64
}

// Pod is one pending pod as placement sees it: validated and defaulted.
type Pod struct {
	Pod *v1.Pod
	// Owner groups pods that should spread over agents (the controller's
	// UID); "" for none.
	Owner string

	// cpuMilli and memMilli (1/1000 MB) are the task's resources.
	cpuMilli, memMilli int64
	fixed              []uint64 // declared host ports
	wild               int      // container ports to get a host port
	// affinity is the nodeSelector and required node affinity;
	// constrained says there is any.
	affinity    nodeaffinity.RequiredNodeAffinity
	constrained bool
}

// NewPod computes what pod needs; pod must be validated and defaulted. Its
// task asks for exactly podspec.TaskResources (the sandbox allowance
// included), the pod cgroup the executor makes for it.
func NewPod(pod *v1.Pod, strategy ports.Strategy) *Pod {
	milli, mem := podspec.TaskResources(pod)
	p := &Pod{Pod: pod, cpuMilli: milli, memMilli: podspec.MesosMilli(podspec.MemMB(mem)),
		affinity: nodeaffinity.GetRequiredNodeAffinity(pod)}
	p.Owner = ownerOf(pod)
	na := pod.Spec.Affinity
	p.constrained = len(pod.Spec.NodeSelector) > 0 ||
		(na != nil && na.NodeAffinity != nil && na.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil)
	for _, hp := range podspec.HostPorts(pod) {
		p.fixed = append(p.fixed, uint64(hp.HostPort))
	}
	if strategy == ports.Wildcard {
		p.wild = ports.Wildcards(pod)
	}
	return p
}

func ownerOf(pod *v1.Pod) string {
	for _, r := range pod.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return string(r.UID)
		}
	}
	return ""
}

// Launch is one pod placed on a slot.
type Launch struct {
	Slot *Slot
	Pod  *Pod
	// Bound is the pod with its final host ports (the executor gives its
	// containers the K8SM_PORT_* environment they imply).
	Bound *v1.Pod
	// Resources are the task's: cpus, mem and ports from the slot's pools.
	Resources []mesos.Resource
	// Executor: the first pod on an agent without our executor; the
	// executor's resources were counted against the slot too.
	Executor bool
}

// Unplaced is a pod no slot could take, and why.
type Unplaced struct {
	Pod    *Pod
	Reason string
}

// Decline is a slot on which nothing was launched.
type Decline struct {
	Slot   *Slot
	Reason string // DeclineIncompatible, DeclineUnused
}

// Decline reasons (also the "reason" label of the declined-offers metric).
const (
	DeclineIncompatible = "incompatible-executor"
	DeclineUnused       = "unused"
)

// Plan is the outcome of Place.
type Plan struct {
	Launches []Launch
	Unplaced []Unplaced
	Declines []Decline
}

// ByAgent groups the launches by slot, in slot order.
func (p *Plan) ByAgent() [][]Launch {
	idx := map[*Slot]int{}
	var out [][]Launch
	for _, l := range p.Launches {
		i, ok := idx[l.Slot]
		if !ok {
			i = len(out)
			idx[l.Slot] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], l)
	}
	return out
}

// miss is why one slot could not take one pod.
type miss int

const (
	fits miss = iota
	missIncompatible
	missSelector
	missCPU
	missMem
	missPort
	missPortCount
)

// Place pairs pods (in queue order) with slots. Each pod goes to the
// fitting slot with the fewest pods of the same owner (first such slot on a
// tie), so replicas spread; several pods may share a slot. A slot running a
// different k8sm executor is declined (DeclineIncompatible); a slot without
// ours pays the executor's resources with its first pod. Place never puts
// more on a slot than it offers and never gives one host port twice; it
// changes the slots' free resources.
func Place(pods []*Pod, slots []*Slot, ex Executor, strategy ports.Strategy) Plan {
	var plan Plan
	compatible := make([]bool, len(slots))
	hasOurs := make([]bool, len(slots))
	used := make([]bool, len(slots))
	for i, s := range slots {
		compatible[i] = true
		for _, e := range s.Executors {
			if e == ex.ID {
				hasOurs[i] = true
			} else if strings.HasPrefix(e, "k8sm-") {
				compatible[i] = false
			}
		}
	}
	var misses [missPortCount + 1]int
	for _, p := range pods {
		misses = [missPortCount + 1]int{}
		best, bestScore := -1, math.MaxInt
		for i, s := range slots {
			if !compatible[i] {
				misses[missIncompatible]++
				continue
			}
			if m := s.fit(p, ex, hasOurs[i]); m != fits {
				misses[m]++
				continue
			}
			score := s.placed[p.Owner]
			if p.Owner == "" {
				score = 0
			}
			if score < bestScore {
				best, bestScore = i, score
				if score == 0 {
					break
				}
			}
		}
		if best < 0 {
			plan.Unplaced = append(plan.Unplaced, Unplaced{Pod: p, Reason: reason(p, slots, misses[:], ex, hasOurs)})
			continue
		}
		s := slots[best]
		a, err := ports.Assign(p.Pod, s.ports, strategy)
		if err != nil {
			// fit checked the ports: only a pod-level error (a hostPort
			// declared twice) gets here, and no slot would do.
			plan.Unplaced = append(plan.Unplaced, Unplaced{Pod: p, Reason: err.Error()})
			continue
		}
		l := Launch{Slot: s, Pod: p, Bound: a.Pod}
		if !hasOurs[best] {
			l.Executor = true
			take(s.cpus, ex.CPUMilli)
			take(s.mem, ex.MemMilli)
			hasOurs[best] = true
		}
		l.Resources = append(take(s.cpus, p.cpuMilli), take(s.mem, p.memMilli)...)
		l.Resources = append(l.Resources, a.Resources...)
		s.ports = a.Remaining
		s.placed[p.Owner]++
		used[best] = true
		plan.Launches = append(plan.Launches, l)
	}
	for i, s := range slots {
		switch {
		case !compatible[i]:
			plan.Declines = append(plan.Declines, Decline{Slot: s, Reason: DeclineIncompatible})
		case !used[i]:
			plan.Declines = append(plan.Declines, Decline{Slot: s, Reason: DeclineUnused})
		}
	}
	return plan
}

// fit says whether p fits s now, or the first reason it does not.
func (s *Slot) fit(p *Pod, ex Executor, hasOurs bool) miss {
	if p.constrained {
		if ok, _ := p.affinity.Match(s.node); !ok {
			return missSelector
		}
	}
	cpu, mem := p.cpuMilli, p.memMilli
	if !hasOurs {
		cpu += ex.CPUMilli
		mem += ex.MemMilli
	}
	if sum(s.cpus) < cpu {
		return missCPU
	}
	if sum(s.mem) < mem {
		return missMem
	}
	for _, hp := range p.fixed {
		if !s.ports.Contains(hp) {
			return missPort
		}
	}
	if p.wild > 0 && s.ports.Size() < uint64(p.wild+len(p.fixed)) {
		return missPortCount
	}
	return fits
}

// reason says, for an operator, why no slot took p: one count per cause,
// the most common first, with the numbers that decide it.
func reason(p *Pod, slots []*Slot, misses []int, ex Executor, hasOurs []bool) string {
	if len(slots) == 0 {
		return "no offers from any Mesos agent"
	}
	var maxCPU, maxMem int64
	var offered []string
	for i, s := range slots {
		c, m := sum(s.cpus), sum(s.mem)
		if !hasOurs[i] {
			c -= ex.CPUMilli
			m -= ex.MemMilli
		}
		maxCPU, maxMem = max(maxCPU, c), max(maxMem, m)
		if len(offered) < 3 {
			offered = append(offered, s.ports.String())
		}
	}
	type part struct {
		n    int
		text string
	}
	var parts []part
	add := func(m miss, text string) {
		if misses[m] > 0 {
			parts = append(parts, part{misses[m], fmt.Sprintf("%d %s", misses[m], text)})
		}
	}
	add(missIncompatible, "run an incompatible k8sm executor")
	add(missSelector, fmt.Sprintf("do not match the node selector %s", selectorText(p.Pod)))
	add(missCPU, fmt.Sprintf("have too few cpus (pod needs %.3f, most free %.3f)", float64(p.cpuMilli)/1000, float64(max(maxCPU, 0))/1000))
	add(missMem, fmt.Sprintf("have too little mem (pod needs %d MB, most free %d MB)", p.memMilli/1000, max(maxMem, 0)/1000))
	if misses[missPort] > 0 {
		var want []string
		for _, hp := range p.fixed {
			want = append(want, fmt.Sprint(hp))
		}
		add(missPort, fmt.Sprintf("do not offer host port %s (offered ranges: %s)", strings.Join(want, ","), strings.Join(offered, " ")))
	}
	add(missPortCount, fmt.Sprintf("have fewer than %d free host ports", p.wild+len(p.fixed)))
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].n > parts[j].n })
	texts := make([]string, len(parts))
	for i, pt := range parts {
		texts[i] = pt.text
	}
	return fmt.Sprintf("0/%d Mesos agents fit: %s", len(slots), strings.Join(texts, "; "))
}

func selectorText(pod *v1.Pod) string {
	var s []string
	for k, v := range pod.Spec.NodeSelector {
		s = append(s, k+"="+v)
	}
	sort.Strings(s)
	if pod.Spec.Affinity != nil && pod.Spec.Affinity.NodeAffinity != nil {
		s = append(s, "(and required node affinity)")
	}
	return strings.Join(s, ",")
}
