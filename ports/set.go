package ports

import (
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// Set is a set of offered host ports. It keeps each offered "ports"
// resource as a pool, so that ports taken from it are returned as resources
// with the same role, reservations and allocation info as they were offered.
// The zero Set is empty. Sets are values: operations return new Sets.
type Set struct {
	pools []pool
}

type pool struct {
	res    mesos.Resource // the offered resource; its Ranges are ignored
	ranges mesos.Ranges   // sorted, squashed
}

// FromResources collects the "ports" resources of an offer (any role).
func FromResources(rs []mesos.Resource) Set {
	var s Set
	for i := range rs {
		if rs[i].GetName() != resources.NamePorts.String() {
			continue
		}
		var r mesos.Ranges
		for _, v := range rs[i].GetRanges().GetRange() {
			if v.Begin > v.End {
				v.Begin, v.End = v.End, v.Begin
			}
			r = append(r, v)
		}
		if len(r) > 0 {
			s.pools = append(s.pools, pool{res: rs[i], ranges: r.Sort().Squash()})
		}
	}
	return s
}

// NewSet returns an unreserved Set of the given ranges (for tests and tools).
func NewSet(ranges ...mesos.Value_Range) Set {
	return FromResources([]mesos.Resource{resources.Build().Name(resources.NamePorts).Ranges(ranges).Resource})
}

// Ranges returns the union of all pools, sorted and squashed.
func (s Set) Ranges() mesos.Ranges {
	var all mesos.Ranges
	for _, p := range s.pools {
		all = append(all, p.ranges...)
	}
	return all.Sort().Squash()
}

// Contains reports whether port is in the set.
func (s Set) Contains(port uint64) bool {
	for _, p := range s.pools {
		if p.ranges.Search(port) >= 0 {
			return true
		}
	}
	return false
}

// Size is the number of distinct ports in the set.
func (s Set) Size() uint64 { return s.Ranges().Size() }

// Subtract returns the set without the given ports.
func (s Set) Subtract(rs mesos.Ranges) Set {
	if len(rs) == 0 {
		return s
	}
	rs = rs.Clone().Sort().Squash()
	out := Set{pools: make([]pool, 0, len(s.pools))}
	for _, p := range s.pools {
		if r := difference(p.ranges, rs); len(r) > 0 {
			out.pools = append(out.pools, pool{res: p.res, ranges: r})
		}
	}
	return out
}

// difference returns a minus b, both sorted and squashed, in one merge pass
// (mesos-go's Ranges.Remove copies all of a for every range of b).
func difference(a, b mesos.Ranges) mesos.Ranges {
	out := make(mesos.Ranges, 0, len(a)+1)
	j := 0
	for _, r := range a {
		lo := r.Begin
		for j < len(b) && b[j].End < lo {
			j++
		}
		k := j
		for k < len(b) && b[k].Begin <= r.End && lo <= r.End {
			if b[k].Begin > lo {
				out = append(out, mesos.Value_Range{Begin: lo, End: b[k].Begin - 1})
			}
			if b[k].End >= r.End {
				lo = r.End + 1 // the rest of r is removed
				break
			}
			lo = b[k].End + 1
			k++
		}
		if lo <= r.End && lo >= r.Begin {
			out = append(out, mesos.Value_Range{Begin: lo, End: r.End})
		}
	}
	return out
}

// Merge returns the union of two sets; pools are kept apart by origin.
func (s Set) Merge(o Set) Set {
	return Set{pools: append(append([]pool{}, s.pools...), o.pools...)}
}

// take returns, for the given sorted distinct ports, the resources that
// consume them: one per pool touched, in pool order, each a copy of the
// offered resource with only those ports. A port no pool holds is skipped.
func (s Set) take(ports []uint64) []mesos.Resource {
	byPool := make([][]uint64, len(s.pools))
	for _, port := range ports {
		for i, p := range s.pools {
			if p.ranges.Search(port) >= 0 {
				byPool[i] = append(byPool[i], port)
				break
			}
		}
	}
	var out []mesos.Resource
	for i, ps := range byPool {
		if len(ps) == 0 {
			continue
		}
		r := s.pools[i].res // shallow copy; the shared pointers are never written
		r.Ranges = &mesos.Value_Ranges{Range: mesos.NewRanges(ps...)}
		out = append(out, r)
	}
	return out
}

// String formats the union like "[31000-31005,31010]", for messages.
func (s Set) String() string { return FormatRanges(s.Ranges()) }

// FormatRanges formats ranges like "[31000-31005,31010]", each range as
// FormatRange does. It is the one formatting of port ranges.
func FormatRanges(rs mesos.Ranges) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = FormatRange(r)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// FormatRange formats one range like "31000-31005", or "31010" when it is
// one port.
func FormatRange(r mesos.Value_Range) string {
	s := strconv.FormatUint(r.Begin, 10)
	if r.End != r.Begin {
		s += "-" + strconv.FormatUint(r.End, 10)
	}
	return s
}

// sortedUnique sorts and de-duplicates ports in place.
func sortedUnique(ps []uint64) []uint64 {
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}
