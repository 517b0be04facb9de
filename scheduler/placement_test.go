package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
)

var testEx = Executor{ID: "k8sm-ours", CPUMilli: 250, MemMilli: 64000}

func offer(id, agent string, cpus, mem float64, lo, hi uint64, attrs string, executors ...string) mesos.Offer {
	o := mesos.Offer{ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: agent}, Hostname: agent,
		Resources: mesos.Resources{resources.NewCPUs(cpus).Resource, resources.NewMemory(mem).Resource}}
	if hi > 0 {
		o.Resources = append(o.Resources, resources.Build().Name(resources.NamePorts).Ranges(mesos.Ranges{{Begin: lo, End: hi}}).Resource)
	}
	for _, a := range strings.Split(attrs, ";") {
		if k, v, ok := strings.Cut(a, ":"); ok {
			o.Attributes = append(o.Attributes, mesos.Attribute{Name: k, Type: mesos.TEXT, Text: &mesos.Value_Text{Value: v}})
		}
	}
	for _, e := range executors {
		o.ExecutorIDs = append(o.ExecutorIDs, mesos.ExecutorID{Value: e})
	}
	return o
}

func slot(t testing.TB, os ...mesos.Offer) *Slot {
	t.Helper()
	s, err := NewSlot(os, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testPod(name, cpu, mem string, hostPorts ...int32) *v1.Pod {
	c := v1.Container{Name: "c", Image: "busybox", Resources: v1.ResourceRequirements{Limits: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}}}
	for i, hp := range hostPorts {
		c.Ports = append(c.Ports, v1.ContainerPort{ContainerPort: int32(8080 + i), HostPort: hp})
	}
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.PodSpec{Containers: []v1.Container{c}}}
	podspec.Default(p, podspec.StandardDefaults())
	return p
}

func placeable(pods ...*v1.Pod) []*Pod {
	out := make([]*Pod, len(pods))
	for i, p := range pods {
		out[i] = NewPod(p, ports.Wildcard)
	}
	return out
}

func TestPlacePacksAndPaysForTheExecutorOnce(t *testing.T) {
	s := slot(t, offer("o1", "a1", 1.25, 1024, 31000, 31010, ""))
	plan := Place(placeable(testPod("p1", "500m", "128Mi"), testPod("p2", "500m", "128Mi"), testPod("p3", "500m", "128Mi")),
		[]*Slot{s}, testEx, ports.Wildcard)
	if len(plan.Launches) != 2 || len(plan.Unplaced) != 1 {
		t.Fatalf("launches %d unplaced %d, want 2 and 1 (0.25 executor + 2 × 0.5 = 1.25 cpus)", len(plan.Launches), len(plan.Unplaced))
	}
	if !plan.Launches[0].Executor || plan.Launches[1].Executor {
		t.Fatalf("executor paid by %v/%v, want the first launch only", plan.Launches[0].Executor, plan.Launches[1].Executor)
	}
	// The pod's limits plus the sandbox allowance.
	milli, mem, _ := podspec.FromMesos(plan.Launches[0].Resources)
	if milli != 500 || mem != 128<<20+podspec.SandboxMemoryBytes {
		t.Fatalf("task resources %dm cpus %d bytes, want 500m and %d", milli, mem, 128<<20+podspec.SandboxMemoryBytes)
	}
	if r := plan.Unplaced[0].Reason; !strings.Contains(r, "too few cpus (pod needs 0.500, most free 0.000)") {
		t.Fatalf("reason %q", r)
	}
}

func TestPlaceReasons(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		slots []mesos.Offer
		want  string
	}{
		{"too big", testPod("big", "8", "64Mi"), []mesos.Offer{offer("o1", "a1", 4, 4096, 0, 0, "")},
			"0/1 Mesos agents fit: 1 have too few cpus (pod needs 8.000, most free 3.750)"},
		{"too much mem", testPod("fat", "1", "8Gi"), []mesos.Offer{offer("o1", "a1", 4, 4096, 0, 0, "")},
			"1 have too little mem (pod needs 8208 MB, most free 4032 MB)"},
		{"port not offered", testPod("web", "100m", "64Mi", 8080), []mesos.Offer{offer("o1", "a1", 4, 4096, 31000, 32000, "")},
			"1 do not offer host port 8080 (offered ranges: [31000-32000])"},
		{"selector", func() *v1.Pod {
			p := testPod("z3", "100m", "64Mi")
			p.Spec.NodeSelector = map[string]string{"k8sm.io/attribute-zone": "z3"}
			return p
		}(), []mesos.Offer{offer("o1", "a1", 4, 4096, 0, 0, "zone:z1"), offer("o2", "a2", 4, 4096, 0, 0, "zone:z2")},
			"2 do not match the node selector k8sm.io/attribute-zone=z3"},
		{"incompatible", testPod("p", "100m", "64Mi"), []mesos.Offer{offer("o1", "a1", 4, 4096, 0, 0, "", "k8sm-old")},
			"1 run an incompatible k8sm executor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var slots []*Slot
			for _, o := range tc.slots {
				slots = append(slots, slot(t, o))
			}
			plan := Place(placeable(tc.pod), slots, testEx, ports.Wildcard)
			if len(plan.Unplaced) != 1 || !strings.Contains(plan.Unplaced[0].Reason, tc.want) {
				t.Fatalf("plan %+v, want unplaced with %q", plan.Unplaced, tc.want)
			}
		})
	}
}

func TestPlaceSelectorAndIncompatibleDecline(t *testing.T) {
	p := testPod("z2", "100m", "64Mi")
	p.Spec.NodeSelector = map[string]string{"k8sm.io/attribute-zone": "z2"}
	slots := []*Slot{slot(t, offer("o1", "a1", 4, 4096, 0, 0, "zone:z1")), slot(t, offer("o2", "a2", 4, 4096, 0, 0, "zone:z2")),
		slot(t, offer("o3", "a3", 4, 4096, 0, 0, "zone:z2", "k8sm-old"))}
	plan := Place(placeable(p), slots, testEx, ports.Wildcard)
	if len(plan.Launches) != 1 || plan.Launches[0].Slot.AgentID != "a2" {
		t.Fatalf("launches %+v, want one on a2", plan.Launches)
	}
	reasons := map[string]string{}
	for _, d := range plan.Declines {
		reasons[d.Slot.AgentID] = d.Reason
	}
	if reasons["a1"] != DeclineUnused || reasons["a3"] != DeclineIncompatible || len(reasons) != 2 {
		t.Fatalf("declines %v", reasons)
	}
}

func TestPlaceSpreadsReplicas(t *testing.T) {
	slots := []*Slot{slot(t, offer("o1", "a1", 8, 8192, 0, 0, "")), slot(t, offer("o2", "a2", 8, 8192, 0, 0, ""))}
	slots[0].Count("rs-1") // one replica runs on a1 already
	var pods []*v1.Pod
	for i := range 3 {
		p := testPod(fmt.Sprintf("r%d", i), "100m", "64Mi")
		p.OwnerReferences = []metav1.OwnerReference{{UID: "rs-1", Controller: ptr.To(true), Kind: "ReplicaSet", Name: "rs", APIVersion: "apps/v1"}}
		pods = append(pods, p)
	}
	plan := Place(placeable(pods...), slots, testEx, ports.Wildcard)
	per := map[string]int{}
	for _, l := range plan.Launches {
		per[l.Slot.AgentID]++
	}
	if per["a1"] != 1 || per["a2"] != 2 {
		t.Fatalf("spread %v, want a1:1 a2:2 (with the running one, 2 and 2)", per)
	}
}

func TestPlaceWildcardPortsAndEnv(t *testing.T) {
	s := slot(t, offer("o1", "a1", 4, 4096, 31000, 31001, ""))
	plan := Place(placeable(testPod("w1", "100m", "64Mi", 0), testPod("w2", "100m", "64Mi", 0), testPod("w3", "100m", "64Mi", 0)),
		[]*Slot{s}, testEx, ports.Wildcard)
	if len(plan.Launches) != 2 || len(plan.Unplaced) != 1 {
		t.Fatalf("launches %d unplaced %d, want 2 and 1 (two offered ports)", len(plan.Launches), len(plan.Unplaced))
	}
	got := map[int32]bool{}
	for _, l := range plan.Launches {
		hp := l.Bound.Spec.Containers[0].Ports[0].HostPort
		got[hp] = true
		// The port environment is the executor's to set, in one place.
		if env := l.Bound.Spec.Containers[0].Env; len(env) != 0 {
			t.Fatalf("the scheduler added env %v for host port %d", env, hp)
		}
	}
	if !got[31000] || !got[31001] {
		t.Fatalf("host ports %v", got)
	}
}

// Property: whatever the pods and offers, Place never gives a slot more
// cpus, mem or ports than it offered, never gives one host port twice on an
// agent, and every launched task's resources are the pod's needs.
func TestPlaceProperties(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		var slots []*Slot
		type cap struct{ cpu, mem int64 }
		caps := map[string]cap{}
		for i := range 1 + r.IntN(6) {
			id := fmt.Sprintf("a%d", i)
			cpus, mem := float64(r.IntN(40))/10, float64(r.IntN(4096))
			lo := uint64(31000 + r.IntN(50))
			var ex []string
			if r.IntN(4) == 0 {
				ex = append(ex, testEx.ID)
			}
			if r.IntN(8) == 0 {
				ex = append(ex, "k8sm-other")
			}
			slots = append(slots, slot(t, offer("o"+id, id, cpus, mem, lo, lo+uint64(r.IntN(10)), "zone:z"+fmt.Sprint(r.IntN(2)), ex...)))
			caps[id] = cap{int64(cpus*1000 + 0.5), int64(mem) * 1000}
		}
		var pods []*v1.Pod
		for i := range r.IntN(30) {
			var hps []int32
			for range r.IntN(3) {
				if r.IntN(2) == 0 {
					hps = append(hps, 0)
				} else {
					hps = append(hps, int32(31000+r.IntN(60)))
				}
			}
			p := testPod(fmt.Sprintf("p%d", i), fmt.Sprintf("%dm", 10+r.IntN(1500)), fmt.Sprintf("%dMi", 32+r.IntN(600)), hps...)
			if r.IntN(5) == 0 {
				p.Spec.NodeSelector = map[string]string{"k8sm.io/attribute-zone": "z1"}
			}
			pods = append(pods, p)
		}
		plan := Place(placeable(pods...), slots, testEx, ports.Wildcard)
		used := map[string]cap{}
		portsUsed := map[string]map[uint64]bool{}
		for _, l := range plan.Launches {
			a := l.Slot.AgentID
			milli, mem, rs := podspec.FromMesos(l.Resources)
			u := used[a]
			u.cpu += milli
			u.mem += mem / podspec.MiB * 1000
			if l.Executor {
				u.cpu += testEx.CPUMilli
				u.mem += testEx.MemMilli
			}
			used[a] = u
			if portsUsed[a] == nil {
				portsUsed[a] = map[uint64]bool{}
			}
			for _, rg := range rs {
				for p := rg.Begin; p <= rg.End; p++ {
					if portsUsed[a][p] {
						t.Fatalf("seed %d: host port %d given twice on %s", seed, p, a)
					}
					portsUsed[a][p] = true
				}
			}
			for _, hp := range podspec.HostPorts(l.Bound) {
				if !portsUsed[a][uint64(hp.HostPort)] {
					t.Fatalf("seed %d: pod %s host port %d not in its task's resources", seed, l.Bound.Name, hp.HostPort)
				}
			}
			for _, e := range l.Slot.Executors {
				if e == "k8sm-other" {
					t.Fatalf("seed %d: launched on an agent with an incompatible executor", seed)
				}
			}
			if sel := l.Pod.Pod.Spec.NodeSelector["k8sm.io/attribute-zone"]; sel != "" && l.Slot.Labels["k8sm.io/attribute-zone"] != sel {
				t.Fatalf("seed %d: node selector not honoured", seed)
			}
		}
		for a, u := range used {
			if c := caps[a]; u.cpu > c.cpu || u.mem > c.mem {
				t.Fatalf("seed %d: agent %s over-committed: used %+v of %+v", seed, a, u, c)
			}
		}
		if len(plan.Launches)+len(plan.Unplaced) != len(pods) {
			t.Fatalf("seed %d: %d launched + %d unplaced of %d pods", seed, len(plan.Launches), len(plan.Unplaced), len(pods))
		}
	}
}

// BenchmarkPlace10kPods1kOffers: the placement target (≥ 5,000
// decisions/s); a decision is one pod launched or left pending.
func BenchmarkPlace10kPods1kOffers(b *testing.B) {
	var pods []*Pod
	for i := range 10000 {
		var p *v1.Pod
		if i%10 == 0 {
			p = testPod(fmt.Sprintf("p%d", i), "100m", "64Mi", 0)
		} else {
			p = testPod(fmt.Sprintf("p%d", i), "250m", "128Mi")
		}
		p.OwnerReferences = []metav1.OwnerReference{{UID: types.UID(fmt.Sprintf("rs-%d", i%50)), Controller: ptr.To(true)}}
		pods = append(pods, NewPod(p, ports.Wildcard))
	}
	offers := make([]mesos.Offer, 1000)
	for i := range offers {
		offers[i] = offer(fmt.Sprintf("o%d", i), fmt.Sprintf("a%d", i), 2, 2048, 31000, 32000, "zone:z1")
	}
	decisions := 0
	for b.Loop() {
		b.StopTimer()
		slots := make([]*Slot, len(offers))
		for i := range offers {
			slots[i], _ = NewSlot(offers[i:i+1], nil)
		}
		b.StartTimer()
		plan := Place(pods, slots, testEx, ports.Wildcard)
		decisions += len(plan.Launches) + len(plan.Unplaced)
	}
	b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
}
