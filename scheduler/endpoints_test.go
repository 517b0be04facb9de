package scheduler

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/proxy"
)

// The proxy reads exactly the slices the endpoints controller writes.
func TestManagedByIsTheProxys(t *testing.T) {
	if ManagedBy != proxy.ManagedBy {
		t.Fatalf("scheduler writes managed-by %q, the proxy reads %q", ManagedBy, proxy.ManagedBy)
	}
}

func slicePod(name, ip string, ready bool, hostPort int32, annotated string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
		Annotations: map[string]string{podspec.TaskIDAnnotation: "pod.x"}},
		Spec: v1.PodSpec{NodeName: "n-" + ip, Containers: []v1.Container{{Name: "web",
			Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080, HostPort: hostPort}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning, HostIP: ip}}
	if annotated != "" {
		p.Annotations[podspec.HostPortsAnnotation] = annotated
	}
	st := v1.ConditionFalse
	if ready {
		st = v1.ConditionTrue
	}
	p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: st}}
	return p
}

func TestDesiredSlices(t *testing.T) {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "svc-uid"},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	notOurs := slicePod("foreign", "192.0.2.9", true, 31000, "")
	delete(notOurs.Annotations, podspec.TaskIDAnnotation)
	done := slicePod("done", "192.0.2.8", true, 31000, "")
	done.Status.Phase = v1.PodSucceeded
	pods := []*v1.Pod{
		slicePod("a", "192.0.2.1", true, 31000, ""),
		slicePod("b", "192.0.2.2", false, 31000, ""),
		// hostPort 0 in the spec, mapped at launch (wildcard): the annotation.
		slicePod("c", "192.0.2.3", true, 0, "web:8080/TCP=31005"),
		slicePod("noport", "192.0.2.4", true, 0, ""),
		slicePod("noip", "", true, 31000, ""),
		notOurs, done,
	}
	got := DesiredSlices(svc, pods, func(p *v1.Pod) string { return p.Status.HostIP })
	if len(got) != 2 {
		t.Fatalf("%d slices, want 2 (host port 31000 and 31005)", len(got))
	}
	byPort := map[int32]map[string]bool{}
	for _, s := range got {
		if s.Labels["endpointslice.kubernetes.io/managed-by"] != ManagedBy || s.Labels["kubernetes.io/service-name"] != "web" ||
			s.OwnerReferences[0].UID != "svc-uid" || len(s.Name) > 63 {
			t.Fatalf("slice meta %+v", s.ObjectMeta)
		}
		if len(s.Ports) != 1 || *s.Ports[0].Name != "http" {
			t.Fatalf("ports %+v", s.Ports)
		}
		m := map[string]bool{}
		for _, e := range s.Endpoints {
			m[e.Addresses[0]] = *e.Conditions.Ready
		}
		byPort[*s.Ports[0].Port] = m
	}
	want := map[int32]map[string]bool{31000: {"192.0.2.1": true, "192.0.2.2": false}, 31005: {"192.0.2.3": true}}
	for port, eps := range want {
		for ip, ready := range eps {
			if r, ok := byPort[port][ip]; !ok || r != ready {
				t.Fatalf("slices %v, want %v", byPort, want)
			}
		}
		if len(byPort[port]) != len(eps) {
			t.Fatalf("slices %v, want %v", byPort, want)
		}
	}
	if n := sliceName("a-very-long-service-name-that-goes-on-and-on-and-on-beyond-limits", "0123456789"); len(n) > 63 {
		t.Fatalf("slice name %q longer than 63", n)
	}
}
