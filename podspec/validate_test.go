package podspec

import (
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goodPod is a valid pod that each case breaks in one way.
func goodPod(t testing.TB) *v1.Pod {
	t.Helper()
	pod, err := Decode(readFile(t, "testdata/web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(pod, Policy{}); err != nil {
		t.Fatalf("testdata/web.yaml must be valid: %v", err)
	}
	return pod
}

// errorFields returns the field paths Validate reports.
func errorFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	var fs []string
	for _, e := range ve.Errs {
		fs = append(fs, e.Field)
	}
	return fs
}

func TestValidate(t *testing.T) {
	c0, c1 := "spec.containers[0]", "spec.containers[1]"
	for _, tc := range []struct {
		name   string
		policy Policy
		mutate func(p *v1.Pod)
		want   []string // the exact field paths reported, in order
	}{
		{"valid", Policy{}, func(*v1.Pod) {}, nil},
		{"bad name", Policy{}, func(p *v1.Pod) { p.Name = "Web_1" }, []string{"metadata.name"}},
		{"bad namespace", Policy{}, func(p *v1.Pod) { p.Namespace = "a.b" }, []string{"metadata.namespace"}},
		{"no containers", Policy{}, func(p *v1.Pod) { p.Spec.Containers = nil }, []string{"spec.containers"}},
		{"duplicate container name", Policy{}, func(p *v1.Pod) { p.Spec.Containers[1].Name = "httpd" }, []string{c1 + ".name"}},
		{"init and app share a name", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].Name = "seed" }, []string{c0 + ".name"}},
		{"missing image", Policy{}, func(p *v1.Pod) { p.Spec.Containers[1].Image = " " }, []string{c1 + ".image"}},
		{"host port out of range", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 70000 }, []string{c0 + ".ports[0].hostPort"}},
		{"container port zero", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 }, []string{c0 + ".ports[0].containerPort"}},
		{"same container port twice", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[1].Ports = []v1.ContainerPort{{ContainerPort: 8080}}
		}, []string{c1 + ".ports[0].containerPort"}},
		{"same port, other protocol is fine", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[1].Ports = []v1.ContainerPort{{ContainerPort: 8080, Protocol: v1.ProtocolUDP}}
		}, nil},
		{"same host port twice", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].Ports[0].HostPort = 31000
			p.Spec.Containers[1].Ports = []v1.ContainerPort{{ContainerPort: 9090, HostPort: 31000}}
		}, []string{c1 + ".ports[0].hostPort"}},
		{"duplicate port name", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[1].Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 9090}}
		}, []string{c1 + ".ports[0].name"}},
		{"SCTP", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = v1.ProtocolSCTP }, []string{c0 + ".ports[0].protocol"}},
		{"hostIP", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].Ports[0].HostIP = "0.0.0.0" }, []string{c0 + ".ports[0].hostIP"}},
		{"request above limit", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}
		}, []string{c0 + ".resources.requests[cpu]"}},
		{"negative limit", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Limits[v1.ResourceMemory] = resource.MustParse("-1Mi")
		}, []string{c0 + ".resources.limits[memory]"}},
		{"absurd exponent", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Limits[v1.ResourceCPU] = resource.MustParse("1E9999999")
		}, []string{c0 + ".resources.limits[cpu]"}},
		{"more memory than anything has", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[1].Resources.Requests[v1.ResourceMemory] = resource.MustParse("2Ei")
		}, []string{c1 + ".resources.requests[memory]"}},
		{"gpu", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"] = resource.MustParse("1")
		}, []string{c0 + ".resources.limits[nvidia.com/gpu]"}},
		{"restart policy", Policy{}, func(p *v1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []string{"spec.restartPolicy"}},
		{"grpc probe", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: 1}}}
		}, []string{c0 + ".livenessProbe.grpc"}},
		{"probe with two handlers", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].ReadinessProbe.Exec = &v1.ExecAction{Command: []string{"true"}}
		}, []string{c0 + ".readinessProbe"}},
		{"liveness success threshold", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].LivenessProbe.SuccessThreshold = 2 }, []string{c0 + ".livenessProbe.successThreshold"}},
		{"probe without port", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].ReadinessProbe.TCPSocket.Port = intstr.IntOrString{}
		}, []string{c0 + ".readinessProbe.tcpSocket.port"}},
		{"configMap volume", Policy{}, func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}})
		}, []string{"spec.volumes[1]"}},
		{"mount of a missing volume", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "nope" }, []string{c0 + ".volumeMounts[0].name"}},
		{"relative mount path", Policy{}, func(p *v1.Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "data" }, []string{c0 + ".volumeMounts[0].mountPath"}},
		{"postStart hook", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"x"}}}}
		}, []string{c0 + ".lifecycle.postStart"}},
		{"sidecar init container", Policy{}, func(p *v1.Pod) {
			p.Spec.InitContainers[0].RestartPolicy = ptr.To(v1.ContainerRestartPolicyAlways)
		}, []string{"spec.initContainers[0].restartPolicy"}},

		// The security policy, "baseline"-like.
		{"privileged refused", Policy{}, func(p *v1.Pod) {
			p.Spec.Containers[1].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(true)}
		}, []string{c1 + ".securityContext.privileged"}},
		{"privileged allowed", Policy{AllowPrivileged: true}, func(p *v1.Pod) {
			p.Spec.Containers[1].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(true)}
		}, nil},
		{"host namespaces refused", Policy{}, func(p *v1.Pod) {
			p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true
		}, []string{"spec.hostNetwork", "spec.hostPID", "spec.hostIPC"}},
		{"host namespaces allowed one by one", Policy{AllowHostNetwork: true, AllowHostIPC: true}, func(p *v1.Pod) {
			p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true
		}, []string{"spec.hostPID"}},
		{"hostPath refused", Policy{}, func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/var/log"}}})
		}, []string{"spec.volumes[1].hostPath"}},
		{"hostPath allowed", Policy{AllowHostPath: true}, func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/var/log"}}})
		}, nil},
		{"capabilities", Policy{AllowedCapabilities: []v1.Capability{"CAP_NET_ADMIN"}}, func(p *v1.Pod) {
			p.Spec.InitContainers[0].SecurityContext = &v1.SecurityContext{Capabilities: &v1.Capabilities{
				Add: []v1.Capability{"CHOWN", "net_admin", "SYS_ADMIN"}}}
		}, []string{"spec.initContainers[0].securityContext.capabilities.add[2]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := goodPod(t)
			tc.mutate(pod)
			got := errorFields(t, Validate(pod, tc.policy))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fields = %q, want %q\n(%v)", got, tc.want, Validate(pod, tc.policy))
			}
		})
	}
}

// golden compares got with testdata/<name>, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from golden (go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// An operator reads these messages: pin their exact text.
func TestValidationMessagesGolden(t *testing.T) {
	pod := goodPod(t)
	pod.Spec.HostNetwork = true
	pod.Spec.Containers[0].Ports[0].HostPort = 70000
	pod.Spec.Containers[1].Name = "httpd"
	pod.Spec.Containers[1].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(true)}
	pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}})
	err := Validate(pod, Policy{})
	if err == nil {
		t.Fatal("no error for a pod with five problems")
	}
	golden(t, "validate_errors.golden", strings.ReplaceAll(err.Error(), "; ", ";\n")+"\n")
}
