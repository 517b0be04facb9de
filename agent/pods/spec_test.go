package pods

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/podspec"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two", "EMPTY": ""}
	for in, want := range map[string]string{
		"plain":          "plain",
		"$(A)":           "1",
		"x$(A)y$(B)z":    "x1ytwoz",
		"$(MISSING)":     "$(MISSING)",
		"$$(A)":          "$(A)",
		"$$":             "$",
		"$(EMPTY)-":      "-",
		"$(A":            "$(A",
		"cost $5":        "cost $5",
		"end$":           "end$",
		"$($(A))":        "$($(A))",
		"$(A)$(A)$$$(B)": "11$two",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func specPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{
			NodeName:        "node-a",
			SecurityContext: &v1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)},
			Volumes: []v1.Volume{
				{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
				{Name: "logs", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/var/log"}}},
			},
			Containers: []v1.Container{{
				Name: "httpd", Image: "k8sm.local/busybox:test",
				Command: []string{"httpd", "-p", "$(PORT)"},
				Args:    []string{"-h", "/data", "--host-port=$(K8SM_PORT_8080)", "$$(PORT)"},
				Ports: []v1.ContainerPort{
					{ContainerPort: 8080, HostPort: 31002},
					{ContainerPort: 53, HostPort: 31053, Protocol: v1.ProtocolUDP},
					{ContainerPort: 9000},
				},
				Env: []v1.EnvVar{
					{Name: "PORT", Value: "8080"},
					{Name: "URL", Value: "http://$(POD_IP):$(PORT)/"},
					{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					{Name: "NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					{Name: "CPUS", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
					{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
				},
				WorkingDir: "/data",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m"), v1.ResourceMemory: resource.MustParse("128Mi")},
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("128Mi")},
				},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "logs", MountPath: "/logs", ReadOnly: true, SubPath: "../app"}},
			}},
		},
	}
}

func specOpts() SpecOptions {
	return SpecOptions{
		Owner: runtime.Owner{FrameworkID: "fw", ExecutorID: "k8sm-1", AgentID: "ag", ContainerID: "cid"}, TaskID: "pod.uid-1",
		CgroupParent: "/mesos/cid/uid-1", SandboxID: "sandbox123", HostIP: "192.0.2.2", PodIP: "172.30.255.9",
		PauseImage: "k8sm.local/pause:test", VolumeRoot: "/sandbox/pods",
	}
}

func TestContainerSpec(t *testing.T) {
	pod := specPod()
	s, err := ContainerSpec(pod, &pod.Spec.Containers[0], specOpts())
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := []string{
		"K8SM_PORT_53_UDP=31053", "K8SM_PORT_8080=31002", "K8SM_HOST_IP=192.0.2.2",
		"PORT=8080", "URL=http://$(POD_IP):8080/", // POD_IP is defined after URL: left as written
		"POD_IP=172.30.255.9", "NAME=web", "APP=web", "CPUS=2", "MEM_MI=128",
	}
	if !reflect.DeepEqual(s.Env, wantEnv) {
		t.Errorf("env:\n got %q\nwant %q", s.Env, wantEnv)
	}
	if !reflect.DeepEqual(s.Entrypoint, []string{"httpd", "-p", "8080"}) ||
		!reflect.DeepEqual(s.Cmd, []string{"-h", "/data", "--host-port=31002", "$(PORT)"}) {
		t.Errorf("command %q args %q", s.Entrypoint, s.Cmd)
	}
	if s.MemoryBytes != 128<<20 || s.CPUShares != 256 || s.CPUQuota != 150000 || s.CPUPeriod != 100000 {
		t.Errorf("resources: mem %d shares %d quota %d/%d", s.MemoryBytes, s.CPUShares, s.CPUQuota, s.CPUPeriod)
	}
	if s.NetworkMode != "container:sandbox123" || s.IpcMode != "container:sandbox123" || s.PidMode != "" || s.User != "1000" {
		t.Errorf("namespaces/user: %q %q %q %q", s.NetworkMode, s.IpcMode, s.PidMode, s.User)
	}
	wantMounts := []runtime.Mount{{Source: "/sandbox/pods/uid-1/volumes/data", Target: "/data"}, {Source: "/var/log/app", Target: "/logs", ReadOnly: true}}
	if !reflect.DeepEqual(s.Mounts, wantMounts) {
		t.Errorf("mounts %+v (a subPath cannot climb out of its volume)", s.Mounts)
	}
	if _, p, c, err := runtime.ParseLabels(s.Labels); err != nil || c != "httpd" || p.TaskID != "pod.uid-1" || s.CgroupParent != "/mesos/cid/uid-1" {
		t.Errorf("labels %v %+v %q, parent %q", err, p, c, s.CgroupParent)
	}

	sb := SandboxSpec(pod, specOpts())
	wantPorts := []runtime.PortMapping{{ContainerPort: 8080, HostPort: 31002, Protocol: "tcp", HostIP: "192.0.2.2"},
		{ContainerPort: 53, HostPort: 31053, Protocol: "udp", HostIP: "192.0.2.2"}}
	if !reflect.DeepEqual(sb.Ports, wantPorts) || sb.Image != "k8sm.local/pause:test" || sb.Labels[runtime.LabelContainerName] != runtime.SandboxName {
		t.Errorf("sandbox: %+v", sb)
	}
}

// As the kubelet: the sandbox publishes, and K8SM_PORT_* maps, only the app
// containers' host ports; its memory is the allowance in the task's.
func TestSandboxPublishesAppContainersHostPorts(t *testing.T) {
	pod := specPod()
	pod.Spec.InitContainers = []v1.Container{{Name: "setup", Image: "k8sm.local/busybox:test",
		Ports: []v1.ContainerPort{{ContainerPort: 81, HostPort: 31081}}}}
	sb := SandboxSpec(pod, specOpts())
	if len(sb.Ports) != 2 || sb.Ports[0].HostPort != 31002 || sb.Ports[1].HostPort != 31053 {
		t.Errorf("sandbox ports %+v, want the app container's 31002 and 31053 only", sb.Ports)
	}
	if sb.MemoryBytes != podspec.SandboxMemoryBytes {
		t.Errorf("sandbox memory %d, want %d", sb.MemoryBytes, podspec.SandboxMemoryBytes)
	}
	s, err := ContainerSpec(pod, &pod.Spec.Containers[0], specOpts())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.Env {
		if strings.HasPrefix(e, "K8SM_PORT_81") {
			t.Errorf("env %s: an init container's host port", e)
		}
	}
}

func TestContainerSpecRefusesWhatItCannotServe(t *testing.T) {
	for name, mutate := range map[string]func(*v1.Pod){
		`env[0] (S): only fieldRef`: func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "S", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{Key: "k"}}}}
		},
		`fieldRef "status.podIPs"`: func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIPs"}}}}
		},
		`volumeMounts[0]: no volume "nope"`: func(p *v1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "nope" },
	} {
		pod := specPod()
		mutate(pod)
		_, err := ContainerSpec(pod, &pod.Spec.Containers[0], specOpts())
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), `container "httpd"`) {
			t.Errorf("err = %v, want it to name %s", err, name)
		}
	}
}
