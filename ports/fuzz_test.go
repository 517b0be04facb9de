package ports

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// FuzzAssign: offers and pods built from arbitrary bytes never panic Assign
// and always satisfy the same model as the property test. Byte layout: the
// first byte picks the strategy and the number of ranges n; then n pairs
// (start, width) of ranges over 30000-30255; then (hostPort, protocol) pairs
// of ports, hostPort 0 for "any".
func FuzzAssign(f *testing.F) {
	f.Add([]byte{0x83, 0, 0, 2, 3, 10, 4, 0, 0, 0, 1, 2, 0, 3, 1})
	f.Add([]byte{0x02, 0, 255, 255, 0, 0, 0, 0, 0})
	f.Add([]byte{0x01, 5, 0, 5, 0, 5, 1, 6, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		s := Fixed
		if data[0]&0x80 != 0 {
			s = Wildcard
		}
		n := int(data[0] & 0x0f)
		data = data[1:]
		var rs []mesos.Value_Range
		for ; n > 0 && len(data) >= 2; n-- {
			b := 30000 + uint64(data[0])
			rs = append(rs, rg(b, b+uint64(data[1]%16)))
			data = data[2:]
		}
		var ps [][]int32
		for i := 0; len(data) >= 2 && i < 64; i++ {
			hp := int32(0)
			if data[0] != 0 {
				hp = 29990 + int32(data[0])
			}
			ps = append(ps, []int32{int32(1000 + i), hp, int32(data[1] & 1)})
			data = data[2:]
		}
		p, offer := pod(ps...), NewSet(rs...)
		a, err := Assign(p, offer, s)
		checkAssignment(t, p, offer, s, a, err)
	})
}
