package podspec

import (
	"math/rand/v2"
	"slices"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"
)

func TestResourcesSumsLimits(t *testing.T) {
	pod := goodPod(t)
	Default(pod, StandardDefaults())
	// httpd 500m/128Mi + logger 100m/32Mi (request 16Mi clamped to 32Mi);
	// the init container (250m/64Mi default) is smaller than that sum.
	milli, mem := Resources(pod)
	if milli != 600 || mem != 160*MiB {
		t.Fatalf("Resources = %dm, %d bytes; want 600m, %d", milli, mem, 160*MiB)
	}
	// A big init container dominates, as in the kubelet.
	pod.Spec.InitContainers[0].Resources = v1.ResourceRequirements{Limits: rl("2", "1Gi"), Requests: rl("2", "1Gi")}
	milli, mem = Resources(pod)
	if milli != 2000 || mem != 1024*MiB {
		t.Fatalf("with big init container: %dm, %d bytes; want 2000m, %d", milli, mem, 1024*MiB)
	}
}

// TestResourcesRoundUp: the kubelet's rounding (MilliValue and Value round
// up), in integers, so 1001m stays 1001m.
func TestResourcesRoundUp(t *testing.T) {
	for _, tc := range []struct {
		cpu, mem     []string
		milli, bytes int64
	}{
		{[]string{"1001m"}, []string{"7"}, 1001, 7},
		{[]string{"0.3", "0.0001"}, []string{"0.5", "1G"}, 301, 1 + 1_000_000_000},
		{[]string{"1.0005", "2"}, []string{"129Mi", "1k"}, 3001, 129*MiB + 1000},
	} {
		pod := &v1.Pod{}
		for i := range tc.cpu {
			pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{
				Resources: v1.ResourceRequirements{Limits: rl(tc.cpu[i], tc.mem[i])}})
		}
		milli, mem := Resources(pod)
		if milli != tc.milli || mem != tc.bytes {
			t.Errorf("Resources(%v, %v) = %dm, %d bytes; want %dm, %d", tc.cpu, tc.mem, milli, mem, tc.milli, tc.bytes)
		}
		tm, tb := TaskResources(pod)
		if want := (tc.bytes + SandboxMemoryBytes + MiB - 1) / MiB * MiB; tm != tc.milli || tb != want {
			t.Errorf("TaskResources(%v, %v) = %dm, %d bytes; want %dm, %d", tc.cpu, tc.mem, tm, tb, tc.milli, want)
		}
	}
}

func TestTaskResourcesAddSandbox(t *testing.T) {
	pod := goodPod(t)
	Default(pod, StandardDefaults())
	milli, mem := TaskResources(pod)
	if milli != 600 || mem != 160*MiB+SandboxMemoryBytes {
		t.Fatalf("TaskResources = %dm, %d bytes; want 600m, %d", milli, mem, 160*MiB+SandboxMemoryBytes)
	}
	// What the scheduler asks Mesos for comes back as the same numbers.
	m, b, _ := FromMesos(MesosResources(milli, mem, nil, ""))
	if m != milli || b != mem {
		t.Fatalf("through Mesos: %dm, %d bytes; want %dm, %d", m, b, milli, mem)
	}
}

func TestHostPorts(t *testing.T) {
	pod := goodPod(t)
	pod.Spec.Containers[0].Ports[0].HostPort = 31000
	pod.Spec.Containers[1].Ports = []v1.ContainerPort{{ContainerPort: 53, HostPort: 31053, Protocol: v1.ProtocolUDP}, {ContainerPort: 9}}
	pod.Spec.InitContainers[0].Ports = []v1.ContainerPort{{Name: "setup", ContainerPort: 81, HostPort: 31081}}
	want := []HostPort{
		{Container: pod.Spec.InitContainers[0].Name, Name: "setup", ContainerPort: 81, HostPort: 31081, Protocol: v1.ProtocolTCP, Init: true},
		{Container: "httpd", Name: "http", ContainerPort: 8080, HostPort: 31000, Protocol: v1.ProtocolTCP},
		{Container: "logger", ContainerPort: 53, HostPort: 31053, Protocol: v1.ProtocolUDP},
	}
	if got := HostPorts(pod); !slices.Equal(got, want) {
		t.Fatalf("HostPorts = %+v, want %+v", got, want)
	}
}

func TestMesosRoundTrip(t *testing.T) {
	ports := mesos.Ranges{{Begin: 31000, End: 31000}, {Begin: 31005, End: 31010}}
	rs := MesosResources(1250, 100*MiB+1, ports, "k8s")
	if len(rs) != 3 || rs[0].GetRole() != "k8s" || rs[0].GetScalar().GetValue() != 1.25 || rs[1].GetScalar().GetValue() != 101 {
		t.Fatalf("MesosResources = %v", rs)
	}
	milli, mem, got := FromMesos(rs)
	if milli != 1250 || mem != 101*MiB || !got.Equivalent(ports) {
		t.Fatalf("FromMesos = %dm %d %v", milli, mem, got)
	}
	if rs := MesosResources(500, MiB, nil, ""); len(rs) != 2 || rs[0].GetRole() != "*" {
		t.Fatalf("unreserved without ports = %v", rs)
	}
	// A fraction of a MB (an agent may offer one) is rounded down to a byte.
	half := MesosResources(0, 0, nil, "")
	half[1].Scalar.Value = 0.5
	if _, mem, _ := FromMesos(half); mem != MiB/2 {
		t.Fatalf("0.5 MB = %d bytes, want %d", mem, MiB/2)
	}
}

// TestMesosMilliExact: millicores survive the trip through Mesos' float
// "cpus" exactly, summed over several resources too.
func TestMesosMilliExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(n int64) {
		if got := MesosMilli(MesosScalar(n)); got != n {
			t.Fatalf("MesosMilli(MesosScalar(%d)) = %d", n, got)
		}
	}
	for n := int64(0); n < 1_000_000; n++ {
		check(n)
	}
	for range 100_000 {
		check(r.Int64N(1 << 50))
	}
	var rs mesos.Resources
	var sum int64
	for range 50 {
		n := r.Int64N(100_000)
		sum += n
		rs = append(rs, MesosResources(n, 0, nil, "")[0])
	}
	if got, _, _ := FromMesos(rs); got != sum {
		t.Fatalf("FromMesos of 50 cpus resources = %dm, want %dm", got, sum)
	}
}
