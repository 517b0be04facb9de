package ports

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rg(b, e uint64) mesos.Value_Range { return mesos.Value_Range{Begin: b, End: e} }

// pod builds a one-container pod from (containerPort, hostPort) pairs; a
// third value 1 makes the port UDP.
func pod(ports ...[]int32) *v1.Pod {
	c := v1.Container{Name: "app", Image: "i"}
	for _, p := range ports {
		cp := v1.ContainerPort{ContainerPort: p[0], HostPort: p[1]}
		if len(p) > 2 && p[2] == 1 {
			cp.Protocol = v1.ProtocolUDP
		}
		c.Ports = append(c.Ports, cp)
	}
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: v1.PodSpec{Containers: []v1.Container{c}}}
}

func hostPorts(p *v1.Pod) []int32 {
	var out []int32
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			out = append(out, cp.HostPort)
		}
	}
	return out
}

func consumed(rs []mesos.Resource) mesos.Ranges {
	var all mesos.Ranges
	for _, r := range rs {
		all = append(all, r.GetRanges().GetRange()...)
	}
	return all.Sort().Squash()
}

func TestAssign(t *testing.T) {
	offer := NewSet(rg(31000, 31000), rg(31002, 31005)) // discontinuous, as in k8sm #614
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		strategy Strategy
		want     []int32
		wantEnv  []string
		err      any
	}{
		{"fixed keeps 0 private", pod([]int32{80, 0}, []int32{81, 31003}), Fixed, []int32{0, 31003}, []string{"K8SM_PORT_81=31003"}, nil},
		{"wildcard lowest first across a gap", pod([]int32{80, 0}, []int32{81, 0}, []int32{82, 0}), Wildcard,
			[]int32{31000, 31002, 31003}, []string{"K8SM_PORT_80=31000", "K8SM_PORT_81=31002", "K8SM_PORT_82=31003"}, nil},
		{"wildcard skips declared ports", pod([]int32{80, 0}, []int32{81, 31000}), Wildcard, []int32{31002, 31000}, nil, nil},
		{"fills the offer exactly", pod([]int32{1, 0}, []int32{2, 0}, []int32{3, 0}, []int32{4, 0}, []int32{5, 0}), Wildcard,
			[]int32{31000, 31002, 31003, 31004, 31005}, nil, nil},
		{"one more than the offer", pod([]int32{1, 0}, []int32{2, 0}, []int32{3, 0}, []int32{4, 0}, []int32{5, 0}, []int32{6, 0}), Wildcard,
			nil, nil, &NoCapacityError{}},
		{"declared port in the gap", pod([]int32{80, 31001}), Fixed, nil, nil, &NotOfferedError{}},
		{"same port twice", pod([]int32{80, 31002}, []int32{81, 31002}), Fixed, nil, nil, &DuplicateHostPortError{}},
		{"same port, TCP and UDP", pod([]int32{53, 31002}, []int32{53, 31002, 1}), Fixed, []int32{31002, 31002},
			[]string{"K8SM_PORT_53=31002", "K8SM_PORT_53_UDP=31002"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.pod.DeepCopy()
			a, err := Assign(tc.pod, offer, tc.strategy)
			if tc.err != nil {
				target := tc.err
				switch tc.err.(type) {
				case *NoCapacityError:
					var e *NoCapacityError
					target = &e
				case *NotOfferedError:
					var e *NotOfferedError
					target = &e
				case *DuplicateHostPortError:
					var e *DuplicateHostPortError
					target = &e
				}
				if !errors.As(err, target) {
					t.Fatalf("err = %v, want %T", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hostPorts(a.Pod); !slices.Equal(got, tc.want) {
				t.Errorf("host ports = %v, want %v", got, tc.want)
			}
			if tc.wantEnv != nil {
				// The environment the executor gives the assigned pod's
				// containers (agent/pods sets it with EnvName).
				var env []string
				for _, c := range a.Pod.Spec.Containers {
					for _, p := range c.Ports {
						if p.HostPort != 0 {
							env = append(env, EnvName(p.ContainerPort, p.Protocol)+"="+strconv.Itoa(int(p.HostPort)))
						}
					}
				}
				if !slices.Equal(env, tc.wantEnv) {
					t.Errorf("env = %v, want %v", env, tc.wantEnv)
				}
			}
			if hostPorts(tc.pod)[0] != hostPorts(in)[0] {
				t.Error("Assign modified its input pod")
			}
		})
	}
}

func TestErrorNamesPodPortAndRanges(t *testing.T) {
	_, err := Assign(pod([]int32{8080, 8080}), NewSet(rg(31000, 32000)), Fixed)
	want := `pod ns/web: container "app" port 8080: hostPort 8080 is not in the offered port ranges [31000-32000]`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

// Ports come back as resources of the pool they were offered in.
func TestRolesKept(t *testing.T) {
	role := "k8s"
	offered := FromResources([]mesos.Resource{
		resources.NewCPUs(2).Resource,
		resources.Build().Name(resources.NamePorts).Ranges(mesos.Ranges{rg(31000, 31001)}).Resource,
		resources.Build().Name(resources.NamePorts).Role(role).Ranges(mesos.Ranges{rg(40000, 40009)}).Resource,
	})
	a, err := Assign(pod([]int32{1, 40005}, []int32{2, 0}, []int32{3, 0}, []int32{4, 0}), offered, Wildcard)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Resources) != 2 {
		t.Fatalf("resources = %v, want one per pool", a.Resources)
	}
	if a.Resources[0].GetRole() != "*" || !consumed(a.Resources[:1]).Equivalent(mesos.Ranges{rg(31000, 31001)}) {
		t.Errorf("unreserved pool: %v", a.Resources[0])
	}
	if a.Resources[1].GetRole() != role || !consumed(a.Resources[1:]).Equivalent(mesos.Ranges{rg(40000, 40000), rg(40005, 40005)}) {
		t.Errorf("reserved pool: %v", a.Resources[1])
	}
	if got := a.Remaining.Ranges(); !got.Equivalent(mesos.Ranges{rg(40001, 40004), rg(40006, 40009)}) {
		t.Errorf("remaining = %s", FormatRanges(got))
	}
}

func TestSetOps(t *testing.T) {
	s := NewSet(rg(10, 20), rg(15, 30), rg(40, 40))
	if !s.Ranges().Equivalent(mesos.Ranges{rg(10, 30), rg(40, 40)}) || s.Size() != 22 {
		t.Fatalf("set %s size %d", s, s.Size())
	}
	d := s.Subtract(mesos.Ranges{rg(12, 13), rg(40, 40)})
	if d.String() != "[10-11,14-30]" || d.Contains(12) || !d.Contains(14) || d.Contains(40) {
		t.Fatalf("subtract: %s", d)
	}
	if s.String() != "[10-30,40]" {
		t.Fatalf("subtract changed its receiver: %s", s)
	}
	m := d.Merge(NewSet(rg(12, 12)))
	if m.String() != "[10-12,14-30]" {
		t.Fatalf("merge: %s", m)
	}
	if _, err := ParseStrategy("random"); err == nil {
		t.Fatal("ParseStrategy accepted random")
	}
}

func TestFormatRanges(t *testing.T) {
	for _, tc := range []struct {
		rs   mesos.Ranges
		want string
	}{
		{nil, "[]"},
		{mesos.Ranges{rg(31010, 31010)}, "[31010]"},
		{mesos.Ranges{rg(31000, 31005), rg(31010, 31010)}, "[31000-31005,31010]"},
	} {
		if got := FormatRanges(tc.rs); got != tc.want {
			t.Errorf("FormatRanges(%v) = %q, want %q", tc.rs, got, tc.want)
		}
	}
	if got := FormatRange(rg(31000, 32000)); got != "31000-32000" {
		t.Errorf("FormatRange = %q", got)
	}
}

// Wildcards counts what Assign gives a port with Wildcard, init
// containers' ports included.
func TestWildcardsIsWhatAssignFills(t *testing.T) {
	p := pod([]int32{80, 0}, []int32{81, 31001}, []int32{53, 0, 1})
	p.Spec.InitContainers = []v1.Container{{Name: "init", Ports: []v1.ContainerPort{{ContainerPort: 9}}}}
	if n := Wildcards(p); n != 3 {
		t.Fatalf("Wildcards = %d, want 3", n)
	}
	a, err := Assign(p, NewSet(rg(31000, 31010)), Wildcard)
	if err != nil {
		t.Fatal(err)
	}
	if n := Wildcards(a.Pod); n != 0 {
		t.Fatalf("after Assign: %d ports without a host port", n)
	}
	if got := consumed(a.Resources); got.Size() != 4 || a.Pod.Spec.InitContainers[0].Ports[0].HostPort != 31000 {
		t.Fatalf("consumed %s, init port %d; want 4 ports, the init container's the lowest",
			FormatRanges(got), a.Pod.Spec.InitContainers[0].Ports[0].HostPort)
	}
}

// difference agrees with mesos-go's Ranges.Remove, range by range.
func TestDifferenceMatchesRemove(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 5000 {
		var a, b mesos.Ranges
		for range r.IntN(8) {
			x := uint64(r.IntN(60))
			a = append(a, rg(x, x+uint64(r.IntN(6))))
		}
		for range r.IntN(8) {
			x := uint64(r.IntN(60))
			b = append(b, rg(x, x+uint64(r.IntN(6))))
		}
		a, b = a.Sort().Squash(), b.Sort().Squash()
		want := a.Clone()
		for _, x := range b {
			if len(want) > 0 {
				want = want.Remove(x)
			}
		}
		if got := difference(a, b); !got.Equivalent(want) || (len(got) == 0) != (len(want) == 0) {
			t.Fatalf("difference(%s, %s) = %s, want %s", FormatRanges(a), FormatRanges(b), FormatRanges(got), FormatRanges(want))
		}
	}
}
