package ports

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// BenchmarkAssign100PortsFrom1000Ranges: a pod with 100 ports (10 declared,
// 90 wildcard) against an offer of 1,000 discontinuous ranges.
func BenchmarkAssign100PortsFrom1000Ranges(b *testing.B) {
	var rs []mesos.Value_Range
	for i := range uint64(1000) {
		rs = append(rs, rg(20000+4*i, 20000+4*i+1)) // 2 ports, then a gap of 2
	}
	offer := NewSet(rs...)
	var ps [][]int32
	for i := range int32(100) {
		hp := int32(0)
		if i%10 == 0 {
			hp = 22000 + 4*i // inside the offer, beyond where wildcards land
		}
		ps = append(ps, []int32{1000 + i, hp})
	}
	p := pod(ps...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Assign(p, offer, Wildcard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "assignments/s")
}
