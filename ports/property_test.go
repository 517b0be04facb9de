package ports

import (
	"math/rand/v2"
	"slices"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"
)

// protocol is the model's: TCP when the pod left it empty.
func protocol(p *v1.ContainerPort) v1.Protocol {
	if p.Protocol == "" {
		return v1.ProtocolTCP
	}
	return p.Protocol
}

// checkAssignment holds Assign's result against a model of what it must do.
func checkAssignment(t *testing.T, p *v1.Pod, offer Set, s Strategy, a *Assignment, err error) {
	t.Helper()
	type key struct {
		port  int32
		proto v1.Protocol
	}
	// The model: which declared ports there are, and whether it can work.
	var fixed []uint64
	seen := map[key]bool{}
	possible, wild := true, 0
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.HostPort == 0 {
				wild++
				continue
			}
			k := key{cp.HostPort, protocol(&cp)}
			if seen[k] || cp.HostPort < 0 || !offer.Contains(uint64(cp.HostPort)) {
				possible = false
			}
			seen[k] = true
			fixed = append(fixed, uint64(cp.HostPort))
		}
	}
	fixed = sortedUnique(fixed)
	free := offer.Subtract(mesos.NewRanges(fixed...)).Ranges()
	if s == Wildcard && uint64(wild) > free.Size() {
		possible = false
	}
	if !possible {
		if err == nil {
			t.Fatalf("Assign succeeded where it cannot: offer %s pod ports %v", offer, hostPorts(p))
		}
		return
	}
	if err != nil {
		t.Fatalf("Assign failed where capacity exists: %v (offer %s, pod ports %v)", err, offer, hostPorts(p))
	}

	// The result: every port in the offer, none given twice, the lowest free
	// ones to wildcards, and the resources exactly what was taken.
	var got, wildGot []uint64
	in, out := hostPorts(p), hostPorts(a.Pod)
	for i := range in {
		switch {
		case in[i] != 0 && out[i] != in[i]:
			t.Fatalf("declared hostPort %d changed to %d", in[i], out[i])
		case in[i] == 0 && s == Fixed && out[i] != 0:
			t.Fatalf("fixed strategy gave hostPort 0 the port %d", out[i])
		case in[i] == 0 && s == Wildcard:
			if out[i] == 0 {
				t.Fatal("wildcard left a hostPort 0")
			}
			wildGot = append(wildGot, uint64(out[i]))
		}
		if out[i] != 0 {
			if !offer.Contains(uint64(out[i])) {
				t.Fatalf("assigned port %d outside the offer %s", out[i], offer)
			}
			got = append(got, uint64(out[i]))
		}
	}
	for _, w := range wildGot {
		if slices.Contains(fixed, w) {
			t.Fatalf("wildcard port %d was also declared", w)
		}
	}
	if len(sortedUnique(slices.Clone(wildGot))) != len(wildGot) {
		t.Fatalf("a port was assigned twice: %v", wildGot)
	}
	if want := lowest(free, len(wildGot)); !slices.Equal(sortedUnique(slices.Clone(wildGot)), want) {
		t.Fatalf("wildcard ports %v, want the lowest free %v", wildGot, want)
	}
	taken := mesos.NewRanges(got...)
	if !consumed(a.Resources).Equivalent(taken) {
		t.Fatalf("resources %s, want %s", FormatRanges(consumed(a.Resources)), FormatRanges(taken))
	}
	if !a.Remaining.Ranges().Equivalent(offer.Subtract(taken).Ranges()) {
		t.Fatalf("remaining %s, want %s", a.Remaining, offer.Subtract(taken))
	}
}

// lowest returns the n lowest ports of sorted ranges, by enumeration.
func lowest(rs mesos.Ranges, n int) []uint64 {
	var out []uint64
	for _, r := range rs {
		for p := r.Begin; p <= r.End && len(out) < n; p++ {
			out = append(out, p)
		}
	}
	if out == nil {
		out = []uint64{}
	}
	return out
}

func randomOffer(r *rand.Rand) Set {
	var rs []mesos.Value_Range
	for range r.IntN(12) {
		b := uint64(30000 + r.IntN(200))
		rs = append(rs, rg(b, b+uint64(r.IntN(8))))
	}
	// Sometimes a second, reserved pool.
	s := NewSet(rs...)
	if r.IntN(3) == 0 {
		b := uint64(30100 + r.IntN(100))
		s = s.Merge(FromResources([]mesos.Resource{NewSet(rg(b, b+3)).pools[0].res}).Subtract(nil))
	}
	return s
}

func randomPod(r *rand.Rand) *v1.Pod {
	var ps [][]int32
	for i := range r.IntN(10) {
		hp := int32(0)
		if r.IntN(2) == 0 {
			hp = int32(29990 + r.IntN(230))
		}
		ps = append(ps, []int32{int32(1000 + i), hp, int32(r.IntN(2))})
	}
	return pod(ps...)
}

// TestAssignProperties: over random discontinuous offers and random pods,
// Assign never gives a port twice, never leaves the offer, takes the lowest
// free ports, and succeeds exactly when capacity exists.
func TestAssignProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(614, 1))
	for range 20000 {
		offer, p := randomOffer(r), randomPod(r)
		s := Fixed
		if r.IntN(2) == 0 {
			s = Wildcard
		}
		a, err := Assign(p, offer, s)
		checkAssignment(t, p, offer, s, a, err)
	}
}
