package podspec

import (
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
	cpus, mem := Resources(pod)
	if cpus != 0.6 || mem != 160*MiB {
		t.Fatalf("Resources = %v cpus, %d bytes; want 0.6, %d", cpus, mem, 160*MiB)
	}
	// A big init container dominates, as in the kubelet.
	pod.Spec.InitContainers[0].Resources = v1.ResourceRequirements{Limits: rl("2", "1Gi"), Requests: rl("2", "1Gi")}
	cpus, mem = Resources(pod)
	if cpus != 2 || mem != 1024*MiB {
		t.Fatalf("with big init container: %v cpus, %d bytes; want 2, %d", cpus, mem, 1024*MiB)
	}
}

func TestHostPorts(t *testing.T) {
	pod := goodPod(t)
	pod.Spec.Containers[0].Ports[0].HostPort = 31000
	pod.Spec.Containers[1].Ports = []v1.ContainerPort{{ContainerPort: 53, HostPort: 31053, Protocol: v1.ProtocolUDP}, {ContainerPort: 9}}
	want := []HostPort{
		{"httpd", "http", 8080, 31000, v1.ProtocolTCP},
		{"logger", "", 53, 31053, v1.ProtocolUDP},
	}
	if got := HostPorts(pod); !slices.Equal(got, want) {
		t.Fatalf("HostPorts = %+v, want %+v", got, want)
	}
}

func TestMesosRoundTrip(t *testing.T) {
	ports := mesos.Ranges{{Begin: 31000, End: 31000}, {Begin: 31005, End: 31010}}
	rs := MesosResources(1.25, 100*MiB+1, ports, "k8s")
	if len(rs) != 3 || rs[0].GetRole() != "k8s" || rs[1].GetScalar().GetValue() != 101 {
		t.Fatalf("MesosResources = %v", rs)
	}
	cpus, mem, got := FromMesos(rs)
	if cpus != 1.25 || mem != 101*MiB || !got.Equivalent(ports) {
		t.Fatalf("FromMesos = %v %d %v", cpus, mem, got)
	}
	if rs := MesosResources(0.5, MiB, nil, ""); len(rs) != 2 || rs[0].GetRole() != "*" {
		t.Fatalf("unreserved without ports = %v", rs)
	}
}
