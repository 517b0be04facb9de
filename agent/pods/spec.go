package pods

import (
	"cmp"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
)

// SpecOptions is what the node adds to a pod to make its containers.
type SpecOptions struct {
	Owner        runtime.Owner
	TaskID       string
	CgroupParent string // the pod cgroup (cgroups.DockerParent)
	SandboxID    string // app containers join its namespaces
	HostIP       string
	// BindIP is the address host ports are published on (default
	// HostIP).
	BindIP     string
	PodIP      string
	PauseImage string
	// VolumeRoot holds the pods' emptyDir volumes (the executor's sandbox
	// directory): volume v of pod u is VolumeRoot/u/volumes/v (EmptyDirPath).
	// The worker makes them before the pod's containers and removes the
	// pod's directory when the pod is gone.
	VolumeRoot string
}

// EmptyDirPath is the host directory of emptyDir volume of pod podUID.
func EmptyDirPath(root, podUID, volume string) string {
	return filepath.Join(root, podUID, "volumes", volume)
}

// SandboxSpec is the pod's pause container: it owns the network and IPC
// namespaces and publishes every host port of the pod's app containers
// (podspec.HostPorts, as the kubelet: not init containers') on the host IP.
func SandboxSpec(pod *v1.Pod, o SpecOptions) runtime.ContainerSpec {
	s := runtime.ContainerSpec{
		Image:        o.PauseImage,
		Labels:       runtime.Labels(o.Owner, ref(pod, o), runtime.SandboxName),
		CgroupParent: o.CgroupParent,
		MemoryBytes:  podspec.SandboxMemoryBytes, // the allowance the pod's task resources include
		CPUShares:    2,
		IpcMode:      "shareable",
	}
	for _, hp := range podspec.HostPorts(pod) {
		if hp.Init {
			continue // as the kubelet: only app containers' ports are published
		}
		s.Ports = append(s.Ports, runtime.PortMapping{ContainerPort: int(hp.ContainerPort), HostPort: int(hp.HostPort),
			Protocol: strings.ToLower(string(hp.Protocol)), HostIP: cmp.Or(o.BindIP, o.HostIP)})
	}
	return s
}

func ref(pod *v1.Pod, o SpecOptions) runtime.PodRef {
	return runtime.PodRef{TaskID: o.TaskID, UID: string(pod.UID), Name: pod.Name, Namespace: pod.Namespace}
}

// ContainerSpec makes the runtime spec of container c of a defaulted,
// validated pod: command and args with $(VAR) expanded as the kubelet does,
// env (values, fieldRef and resourceFieldRef of the pod's own fields, plus
// K8SM_PORT_<containerPort> for every mapped port and K8SM_HOST_IP), working
// dir, emptyDir and hostPath mounts, its own limits, the sandbox's network,
// IPC and (with shareProcessNamespace) PID namespaces, the ownership labels,
// privileges and runAsUser, stdin, stdinOnce and tty (for attach). A field k8sm cannot serve is an error naming it.
func ContainerSpec(pod *v1.Pod, c *v1.Container, o SpecOptions) (runtime.ContainerSpec, error) {
	env, err := containerEnv(pod, c, o)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	vars := map[string]string{}
	envList := make([]string, 0, len(env))
	for _, e := range env {
		vars[e.name] = e.value
		envList = append(envList, e.name+"="+e.value)
	}
	s := runtime.ContainerSpec{
		Image:        c.Image,
		Entrypoint:   expandAll(c.Command, vars),
		Cmd:          expandAll(c.Args, vars),
		Env:          envList,
		WorkingDir:   c.WorkingDir,
		Labels:       runtime.Labels(o.Owner, ref(pod, o), c.Name),
		CgroupParent: o.CgroupParent,
		NetworkMode:  "container:" + o.SandboxID,
		IpcMode:      "container:" + o.SandboxID,
		Stdin:        c.Stdin,
		StdinOnce:    c.StdinOnce,
		TTY:          c.TTY,
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		s.PidMode = "container:" + o.SandboxID
	}
	lim, req := c.Resources.Limits, c.Resources.Requests
	l := cgroups.Limits{CPURequestMilli: req.Cpu().MilliValue(), CPULimitMilli: lim.Cpu().MilliValue()}
	s.MemoryBytes = lim.Memory().Value()
	s.CPUShares = int64(l.Shares())
	if q := l.QuotaMicros(); q > 0 {
		s.CPUQuota, s.CPUPeriod = q, cgroups.CFSPeriodMicros
	}
	if sc := c.SecurityContext; sc != nil {
		s.Privileged = sc.Privileged != nil && *sc.Privileged
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				s.CapAdd = append(s.CapAdd, string(cp))
			}
		}
		if sc.RunAsUser != nil {
			s.User = strconv.FormatInt(*sc.RunAsUser, 10)
		}
	}
	if s.User == "" && pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.RunAsUser != nil {
		s.User = strconv.FormatInt(*pod.Spec.SecurityContext.RunAsUser, 10)
	}
	volumes := map[string]*v1.Volume{}
	for i := range pod.Spec.Volumes {
		volumes[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	for i, m := range c.VolumeMounts {
		v := volumes[m.Name]
		var src string
		switch {
		case v == nil:
			return s, fmt.Errorf("container %q volumeMounts[%d]: no volume %q", c.Name, i, m.Name)
		case v.EmptyDir != nil:
			src = EmptyDirPath(o.VolumeRoot, string(pod.UID), v.Name)
		case v.HostPath != nil:
			src = v.HostPath.Path
		default:
			return s, fmt.Errorf("container %q volumeMounts[%d]: volume %q: only emptyDir and hostPath are supported", c.Name, i, m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+m.SubPath))
		}
		s.Mounts = append(s.Mounts, runtime.Mount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return s, nil
}

type envVar struct{ name, value string }

// containerEnv resolves the container's environment in order: k8sm's own
// variables first, then the container's, each expanding $(VAR) references
// to those before it (the kubelet's rule).
func containerEnv(pod *v1.Pod, c *v1.Container, o SpecOptions) ([]envVar, error) {
	var out []envVar
	index := map[string]int{}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			out[i].value = value
			return
		}
		index[name] = len(out)
		out = append(out, envVar{name, value})
	}
	var mapped []envVar
	for _, hp := range podspec.HostPorts(pod) {
		if !hp.Init {
			mapped = append(mapped, envVar{ports.EnvName(hp.ContainerPort, hp.Protocol), strconv.Itoa(int(hp.HostPort))})
		}
	}
	sort.Slice(mapped, func(i, j int) bool { return mapped[i].name < mapped[j].name })
	for _, e := range mapped {
		set(e.name, e.value)
	}
	set(ports.HostIPEnv, o.HostIP)

	vars := func() map[string]string {
		m := make(map[string]string, len(out))
		for _, e := range out {
			m[e.name] = e.value
		}
		return m
	}
	for i, e := range c.Env {
		path := fmt.Sprintf("container %q env[%d] (%s)", c.Name, i, e.Name)
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars()))
			continue
		}
		switch {
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, e.ValueFrom.FieldRef.FieldPath, o)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			set(e.Name, v)
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := resourceValue(c, e.ValueFrom.ResourceFieldRef)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			set(e.Name, v)
		default:
			return nil, fmt.Errorf("%s: only fieldRef and resourceFieldRef are supported (no Secrets or ConfigMaps)", path)
		}
	}
	return out, nil
}

func fieldValue(pod *v1.Pod, fieldPath string, o SpecOptions) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return o.PodIP, nil
	case "status.hostIP":
		return o.HostIP, nil
	}
	if k, ok := strings.CutPrefix(fieldPath, "metadata.labels['"); ok && strings.HasSuffix(k, "']") {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(fieldPath, "metadata.annotations['"); ok && strings.HasSuffix(k, "']") {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", fmt.Errorf("fieldRef %q is not supported", fieldPath)
}

// resourceValue follows the API's rounding: cpu in units of the divisor,
// rounded up; memory in units of the divisor, rounded up.
func resourceValue(c *v1.Container, r *v1.ResourceFieldSelector) (string, error) {
	if r.ContainerName != "" && r.ContainerName != c.Name {
		return "", fmt.Errorf("resourceFieldRef of another container (%q) is not supported", r.ContainerName)
	}
	var q = c.Resources.Limits
	var name v1.ResourceName
	switch r.Resource {
	case "limits.cpu", "requests.cpu":
		name = v1.ResourceCPU
	case "limits.memory", "requests.memory":
		name = v1.ResourceMemory
	default:
		return "", fmt.Errorf("resourceFieldRef %q is not supported", r.Resource)
	}
	if strings.HasPrefix(r.Resource, "requests.") {
		q = c.Resources.Requests
	}
	v := q[name]
	div := r.Divisor
	if div.IsZero() {
		if name == v1.ResourceCPU {
			return strconv.FormatInt((v.MilliValue()+999)/1000, 10), nil
		}
		return strconv.FormatInt(v.Value(), 10), nil
	}
	if name == v1.ResourceCPU {
		d := div.MilliValue()
		return strconv.FormatInt((v.MilliValue()+d-1)/d, 10), nil
	}
	d := div.Value()
	return strconv.FormatInt((v.Value()+d-1)/d, 10), nil
}

func expandAll(ss []string, vars map[string]string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, vars)
	}
	return out
}

// expand replaces $(NAME) with the value of NAME when it is defined, keeps
// $(NAME) as written when it is not, and turns $$ into $ — the kubelet's
// rule for command, args and env values.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
