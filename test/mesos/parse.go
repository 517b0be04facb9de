package mesos

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ParseResources reads the agent's --resources text the way
// Resources::parse does (src/common/resources.cpp, docs/attributes-resources.md):
// "name(role):value;..." where value is a scalar, a range list "[a-b,c-d]"
// or a set "{a,b}". The role defaults to "*" and is left unset, as for
// unreserved resources.
func ParseResources(text string) (mesos.Resources, error) {
	var out mesos.Resources
	for _, item := range splitItems(text) {
		name, value, ok := strings.Cut(item, ":")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("resource %q: want name:value", item)
		}
		r := mesos.Resource{Name: name}
		if open := strings.IndexByte(name, '('); open >= 0 {
			if !strings.HasSuffix(name, ")") {
				return nil, fmt.Errorf("resource %q: bad role", item)
			}
			r.Name = name[:open]
			if role := name[open+1 : len(name)-1]; role != "*" {
				return nil, fmt.Errorf("resource %q: reserved resources are not supported by the double", item)
			}
		}
		v, err := parseValue(value)
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", item, err)
		}
		if v.Type == mesos.TEXT {
			return nil, fmt.Errorf("resource %q: a resource is a scalar, ranges or a set", item)
		}
		r.Type = v.Type.Enum()
		r.Scalar, r.Ranges, r.Set = v.Scalar, v.Ranges, v.Set
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("resource %q: %w", item, err)
		}
		out.Add1(r)
	}
	return out, nil
}

// ParseAttributes reads --attributes: "name:value;..." where a value is a
// scalar, ranges, or else text (docs/attributes-resources.md).
func ParseAttributes(text string) ([]mesos.Attribute, error) {
	var out []mesos.Attribute
	for _, item := range splitItems(text) {
		name, value, ok := strings.Cut(item, ":")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("attribute %q: want name:value", item)
		}
		v, err := parseValue(value)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", item, err)
		}
		out = append(out, mesos.Attribute{Name: name, Type: v.Type, Scalar: v.Scalar, Ranges: v.Ranges, Set: v.Set, Text: v.Text})
	}
	return out, nil
}

func splitItems(text string) []string {
	var out []string
	for _, s := range strings.Split(text, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseValue(v string) (mesos.Value, error) {
	switch {
	case strings.HasPrefix(v, "["):
		if !strings.HasSuffix(v, "]") {
			return mesos.Value{}, fmt.Errorf("ranges %q: missing ]", v)
		}
		var rs mesos.Value_Ranges
		for _, part := range strings.Split(v[1:len(v)-1], ",") {
			b, e, ok := strings.Cut(strings.TrimSpace(part), "-")
			lo, err1 := strconv.ParseUint(b, 10, 64)
			hi, err2 := strconv.ParseUint(e, 10, 64)
			if !ok || err1 != nil || err2 != nil || lo > hi {
				return mesos.Value{}, fmt.Errorf("range %q: want begin-end", part)
			}
			rs.Range = append(rs.Range, mesos.Value_Range{Begin: lo, End: hi})
		}
		return mesos.Value{Type: mesos.RANGES, Ranges: &rs}, nil
	case strings.HasPrefix(v, "{"):
		if !strings.HasSuffix(v, "}") {
			return mesos.Value{}, fmt.Errorf("set %q: missing }", v)
		}
		var items []string
		for _, s := range strings.Split(v[1:len(v)-1], ",") {
			items = append(items, strings.TrimSpace(s))
		}
		return mesos.Value{Type: mesos.SET, Set: &mesos.Value_Set{Item: items}}, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return mesos.Value{Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: f}}, nil
	}
	return mesos.Value{Type: mesos.TEXT, Text: &mesos.Value_Text{Value: v}}, nil
}

// FormatDuration prints a duration as stout's operator<< does for the
// MESOS_* environment (3rdparty/stout/include/stout/duration.hpp:276): the
// largest unit that gives a whole number, suffixes ns us ms secs mins hrs
// days weeks. mesos-go's config.FromEnv accepts only these ("5s" fails).
func FormatDuration(d time.Duration) string {
	units := []struct {
		d    time.Duration
		name string
	}{
		{7 * 24 * time.Hour, "weeks"}, {24 * time.Hour, "days"}, {time.Hour, "hrs"},
		{time.Minute, "mins"}, {time.Second, "secs"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"},
	}
	for _, u := range units {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// Faults make the double's network flaky on purpose: each event written to
// a scheduler or executor stream, and each acknowledgement, meets its fate
// from one seeded generator, so a failing run can be replayed with its
// seed. Shares are probabilities in [0, 1]. The zero value (or a nil
// *Faults) injects nothing.
type Faults struct {
	Seed int64
	// DropEvents loses an event (the stream goes on).
	DropEvents float64
	// DuplicateEvents writes an event twice.
	DuplicateEvents float64
	// DelayEvents holds the stream up to MaxDelay before an event.
	DelayEvents float64
	MaxDelay    time.Duration
	// CutStreams closes the stream instead of writing the event.
	CutStreams float64
	// DropAcks loses a scheduler ACKNOWLEDGE on its way to the agent, and an
	// ACKNOWLEDGED event on its way to the executor.
	DropAcks float64

	mu    sync.Mutex
	rng   *rand.Rand
	count FaultCounts
}

// FaultCounts says how many faults of each kind were injected.
type FaultCounts struct {
	Dropped, Duplicated, Delayed, Cut, AcksDropped int
}

// Injected returns how many faults were injected so far.
func (f *Faults) Injected() FaultCounts {
	if f == nil {
		return FaultCounts{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

type fate struct {
	drop, dup, cut bool
	delay          time.Duration
}

func (f *Faults) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	if f.rng == nil {
		f.rng = rand.New(rand.NewSource(f.Seed)) //nolint:gosec // reproducible by design
	}
	return f.rng.Float64() < p
}

func (f *Faults) event() fate {
	if f == nil {
		return fate{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out fate
	out.cut = f.roll(f.CutStreams)
	out.drop = f.roll(f.DropEvents)
	out.dup = f.roll(f.DuplicateEvents)
	if f.roll(f.DelayEvents) && f.MaxDelay > 0 {
		out.delay = time.Duration(f.rng.Int63n(int64(f.MaxDelay)))
	}
	switch {
	case out.cut:
		f.count.Cut++
	case out.drop:
		f.count.Dropped++
	default:
		if out.dup {
			f.count.Duplicated++
		}
		if out.delay > 0 {
			f.count.Delayed++
		}
	}
	return out
}

func (f *Faults) dropAck() bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	drop := f.roll(f.DropAcks)
	if drop {
		f.count.AcksDropped++
	}
	return drop
}
