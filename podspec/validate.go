package podspec

import (
	"fmt"
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Policy is the node's security policy, close to Pod Security "baseline":
// each host-level privilege is refused unless allowed here.
type Policy struct {
	AllowPrivileged  bool
	AllowHostNetwork bool
	AllowHostPID     bool
	AllowHostIPC     bool
	AllowHostPath    bool
	// AllowedCapabilities may be added to containers on top of
	// BaselineCapabilities (names with or without the CAP_ prefix).
	AllowedCapabilities []v1.Capability
}

// BaselineCapabilities may always be added: Pod Security "baseline" allows
// them (they are Docker's default set anyway).
var BaselineCapabilities = []v1.Capability{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// ValidationError lists every problem of one pod, each with its field path.
type ValidationError struct {
	Pod  string // namespace/name as given
	Errs field.ErrorList
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		msgs[i] = fe.Error()
	}
	return fmt.Sprintf("invalid pod %q: %s", e.Pod, strings.Join(msgs, "; "))
}

// supportedResources are the resource names k8sm turns into Mesos resources.
var supportedResources = sets.New(v1.ResourceCPU, v1.ResourceMemory)

// maxQuantity bounds what one container may declare, far above any machine,
// so that sums never overflow (Resources works in int64 millicores and bytes).
var maxQuantity = map[v1.ResourceName]resource.Quantity{
	v1.ResourceCPU:    resource.MustParse("1M"), // a million cores
	v1.ResourceMemory: resource.MustParse("1Ei"),
}

// unwieldy reports a quantity whose decimal form is so large or so precise
// (say 1e9999999) that comparing it would take seconds: it is refused before
// any arithmetic. It looks at a copy, since AsDec changes the receiver's form.
func unwieldy(q resource.Quantity) bool {
	if _, ok := q.AsInt64(); ok {
		return false
	}
	c := q.DeepCopy()
	d := c.AsDec()
	return d.Scale() < -30 || d.Scale() > 30 || d.UnscaledBig().BitLen() > 128
}

// Validate checks what matters on a node (names, unique container names,
// ports valid and unique per protocol, resources), what k8sm supports
// (restart policies, exec/httpGet/tcpSocket probes, emptyDir and hostPath
// volumes, preStop exec hooks) and the security policy. It returns nil or a
// *ValidationError listing every problem. It does not modify the pod and may
// be called before or after Default.
func Validate(pod *v1.Pod, policy Policy) error {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	for _, m := range validation.IsDNS1123Subdomain(pod.Name) {
		errs = append(errs, field.Invalid(meta.Child("name"), pod.Name, m))
	}
	if pod.Namespace != "" {
		for _, m := range validation.IsDNS1123Label(pod.Namespace) {
			errs = append(errs, field.Invalid(meta.Child("namespace"), pod.Namespace, m))
		}
	}
	spec := field.NewPath("spec")
	errs = append(errs, validateSpec(&pod.Spec, spec)...)
	errs = append(errs, validatePolicy(&pod.Spec, spec, policy)...)
	if len(errs) == 0 {
		return nil
	}
	name := pod.Name
	if pod.Namespace != "" {
		name = pod.Namespace + "/" + pod.Name
	}
	return &ValidationError{Pod: name, Errs: errs}
}

func validateSpec(s *v1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), "a pod needs at least one container"))
	}
	switch s.RestartPolicy {
	case "", v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), s.RestartPolicy,
			[]string{string(v1.RestartPolicyAlways), string(v1.RestartPolicyOnFailure), string(v1.RestartPolicyNever)}))
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be >= 0"))
	}
	if len(s.Overhead) > 0 {
		errs = append(errs, field.Forbidden(p.Child("overhead"), "pod overhead is not supported by k8sm"))
	}
	if s.Resources != nil {
		errs = append(errs, field.Forbidden(p.Child("resources"), "pod-level resources are not supported by k8sm; set them per container"))
	}
	if len(s.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("ephemeralContainers"), "not supported by k8sm"))
	}

	volumes := sets.New[string]()
	for i := range s.Volumes {
		vp := p.Child("volumes").Index(i)
		v := &s.Volumes[i]
		for _, m := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, field.Invalid(vp.Child("name"), v.Name, m))
		}
		if volumes.Has(v.Name) {
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		volumes.Insert(v.Name)
		errs = append(errs, validateVolumeSource(&v.VolumeSource, vp)...)
	}

	names := sets.New[string]()
	type portKey struct {
		port  int32
		proto v1.Protocol
	}
	containerPorts := map[portKey]string{}
	hostPorts := map[portKey]string{}
	portNames := sets.New[string]()
	check := func(c *v1.Container, cp *field.Path, init bool) {
		for _, m := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(cp.Child("name"), c.Name, m))
		}
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
		}
		names.Insert(c.Name)
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(cp.Child("image"), ""))
		}
		switch c.ImagePullPolicy {
		case "", v1.PullAlways, v1.PullIfNotPresent, v1.PullNever:
		default:
			errs = append(errs, field.NotSupported(cp.Child("imagePullPolicy"), c.ImagePullPolicy,
				[]string{string(v1.PullAlways), string(v1.PullIfNotPresent), string(v1.PullNever)}))
		}
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(cp.Child("restartPolicy"), "sidecar containers are not supported by k8sm"))
		}
		for j := range c.Ports {
			pp := cp.Child("ports").Index(j)
			port := &c.Ports[j]
			proto := port.Protocol
			if proto == "" {
				proto = v1.ProtocolTCP
			}
			if proto != v1.ProtocolTCP && proto != v1.ProtocolUDP {
				errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, []string{"TCP", "UDP"}))
			}
			if port.Name != "" {
				for _, m := range validation.IsValidPortName(port.Name) {
					errs = append(errs, field.Invalid(pp.Child("name"), port.Name, m))
				}
				if portNames.Has(port.Name) {
					errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
				}
				portNames.Insert(port.Name)
			}
			for _, m := range validation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, m))
			}
			if port.HostPort != 0 {
				for _, m := range validation.IsValidPortNum(int(port.HostPort)) {
					errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, m))
				}
			}
			if port.HostIP != "" {
				errs = append(errs, field.Forbidden(pp.Child("hostIP"), "k8sm publishes host ports on the node's host IP; hostIP must be empty"))
			}
			if init { // init containers do not run beside the others
				continue
			}
			if prev, dup := containerPorts[portKey{port.ContainerPort, proto}]; dup {
				errs = append(errs, field.Duplicate(pp.Child("containerPort"),
					fmt.Sprintf("%d/%s (also declared by container %q)", port.ContainerPort, proto, prev)))
			}
			containerPorts[portKey{port.ContainerPort, proto}] = c.Name
			if port.HostPort != 0 {
				if prev, dup := hostPorts[portKey{port.HostPort, proto}]; dup {
					errs = append(errs, field.Duplicate(pp.Child("hostPort"),
						fmt.Sprintf("%d/%s (also declared by container %q)", port.HostPort, proto, prev)))
				}
				hostPorts[portKey{port.HostPort, proto}] = c.Name
			}
		}
		errs = append(errs, validateResources(&c.Resources, cp.Child("resources"))...)
		errs = append(errs, validateMounts(c, cp, volumes)...)
		errs = append(errs, validateProbe(c.LivenessProbe, cp.Child("livenessProbe"), true)...)
		errs = append(errs, validateProbe(c.ReadinessProbe, cp.Child("readinessProbe"), false)...)
		errs = append(errs, validateProbe(c.StartupProbe, cp.Child("startupProbe"), true)...)
		if init && (c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil) {
			errs = append(errs, field.Forbidden(cp, "init containers may not have probes"))
		}
		if l := c.Lifecycle; l != nil {
			if l.PostStart != nil {
				errs = append(errs, field.Forbidden(cp.Child("lifecycle", "postStart"), "not supported by k8sm"))
			}
			if l.PreStop != nil && (l.PreStop.Exec == nil || l.PreStop.HTTPGet != nil || l.PreStop.TCPSocket != nil || l.PreStop.Sleep != nil) {
				errs = append(errs, field.NotSupported(cp.Child("lifecycle", "preStop"), "", []string{"exec"}))
			}
		}
	}
	for i := range s.InitContainers {
		check(&s.InitContainers[i], p.Child("initContainers").Index(i), true)
	}
	for i := range s.Containers {
		check(&s.Containers[i], p.Child("containers").Index(i), false)
	}
	return errs
}

func validateVolumeSource(v *v1.VolumeSource, p *field.Path) field.ErrorList {
	switch {
	case v.EmptyDir != nil:
		if v.EmptyDir.Medium != v1.StorageMediumDefault && v.EmptyDir.Medium != v1.StorageMediumMemory {
			return field.ErrorList{field.NotSupported(p.Child("emptyDir", "medium"), v.EmptyDir.Medium, []string{"", "Memory"})}
		}
		if l := v.EmptyDir.SizeLimit; l != nil {
			max := maxQuantity[v1.ResourceMemory]
			if unwieldy(*l) || l.Cmp(max) > 0 || l.Sign() < 0 {
				return field.ErrorList{field.Invalid(p.Child("emptyDir", "sizeLimit"), "(out of range)", "must be between 0 and "+max.String())}
			}
		}
		return nil
	case v.HostPath != nil:
		if !path.IsAbs(v.HostPath.Path) {
			return field.ErrorList{field.Invalid(p.Child("hostPath", "path"), v.HostPath.Path, "must be an absolute path")}
		}
		return nil
	}
	return field.ErrorList{field.Forbidden(p, "k8sm supports only emptyDir and hostPath volumes")}
}

func validateResources(r *v1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range []struct {
		name string
		list v1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for name, q := range l.list {
			rp := p.Child(l.name).Key(string(name))
			if !supportedResources.Has(name) {
				errs = append(errs, field.NotSupported(rp, name, []string{"cpu", "memory"}))
				continue
			}
			if unwieldy(q) || q.Cmp(maxQuantity[name]) > 0 {
				max := maxQuantity[name]
				errs = append(errs, field.Invalid(rp, "(too large)", "must be at most "+max.String()))
				continue
			}
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(rp, q.String(), "must be >= 0"))
			}
		}
	}
	if len(errs) > 0 {
		return errs // do not compare quantities already found wrong
	}
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	if len(r.Claims) > 0 {
		errs = append(errs, field.Forbidden(p.Child("claims"), "not supported by k8sm"))
	}
	return errs
}

func validateMounts(c *v1.Container, p *field.Path, volumes sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if !volumes.Has(m.Name) {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if !path.IsAbs(m.MountPath) {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		}
		if paths.Has(m.MountPath) {
			errs = append(errs, field.Duplicate(mp.Child("mountPath"), m.MountPath))
		}
		paths.Insert(m.MountPath)
	}
	return errs
}

func validateProbe(pr *v1.Probe, p *field.Path, needsSuccessOne bool) field.ErrorList {
	if pr == nil {
		return nil
	}
	var errs field.ErrorList
	h := pr.ProbeHandler
	n := 0
	if h.Exec != nil {
		n++
		if len(h.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), ""))
		}
	}
	if h.HTTPGet != nil {
		n++
		if h.HTTPGet.Port.IntValue() == 0 && h.HTTPGet.Port.StrVal == "" {
			errs = append(errs, field.Required(p.Child("httpGet", "port"), ""))
		}
		if s := h.HTTPGet.Scheme; s != "" && s != v1.URISchemeHTTP && s != v1.URISchemeHTTPS {
			errs = append(errs, field.NotSupported(p.Child("httpGet", "scheme"), s, []string{"HTTP", "HTTPS"}))
		}
	}
	if h.TCPSocket != nil {
		n++
		if h.TCPSocket.Port.IntValue() == 0 && h.TCPSocket.Port.StrVal == "" {
			errs = append(errs, field.Required(p.Child("tcpSocket", "port"), ""))
		}
	}
	if h.GRPC != nil {
		errs = append(errs, field.Forbidden(p.Child("grpc"), "not supported by k8sm; use exec, httpGet or tcpSocket"))
	}
	if n != 1 && h.GRPC == nil {
		errs = append(errs, field.Invalid(p, fmt.Sprintf("%d handlers", n), "exactly one of exec, httpGet or tcpSocket is required"))
	}
	for _, f := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds},
		{"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold}} {
		if f.v < 0 {
			errs = append(errs, field.Invalid(p.Child(f.name), f.v, "must be >= 0"))
		}
	}
	if needsSuccessOne && pr.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	return errs
}

func validatePolicy(s *v1.PodSpec, p *field.Path, policy Policy) field.ErrorList {
	var errs field.ErrorList
	if s.HostNetwork && !policy.AllowHostNetwork {
		errs = append(errs, field.Forbidden(p.Child("hostNetwork"), "host networking is not allowed on this node"))
	}
	if s.HostPID && !policy.AllowHostPID {
		errs = append(errs, field.Forbidden(p.Child("hostPID"), "sharing the host PID namespace is not allowed on this node"))
	}
	if s.HostIPC && !policy.AllowHostIPC {
		errs = append(errs, field.Forbidden(p.Child("hostIPC"), "sharing the host IPC namespace is not allowed on this node"))
	}
	if !policy.AllowHostPath {
		for i := range s.Volumes {
			if s.Volumes[i].HostPath != nil {
				errs = append(errs, field.Forbidden(p.Child("volumes").Index(i).Child("hostPath"), "hostPath volumes are not allowed on this node"))
			}
		}
	}
	allowed := sets.New[string]()
	for _, c := range append(append([]v1.Capability{}, BaselineCapabilities...), policy.AllowedCapabilities...) {
		allowed.Insert(normCap(c))
	}
	check := func(c *v1.Container, cp *field.Path) {
		sc := c.SecurityContext
		if sc == nil {
			return
		}
		if sc.Privileged != nil && *sc.Privileged && !policy.AllowPrivileged {
			errs = append(errs, field.Forbidden(cp.Child("securityContext", "privileged"), "privileged containers are not allowed on this node"))
		}
		if sc.Capabilities != nil {
			for j, c := range sc.Capabilities.Add {
				if !allowed.Has(normCap(c)) {
					errs = append(errs, field.Forbidden(cp.Child("securityContext", "capabilities", "add").Index(j),
						fmt.Sprintf("capability %s is not allowed on this node", c)))
				}
			}
		}
	}
	for i := range s.InitContainers {
		check(&s.InitContainers[i], p.Child("initContainers").Index(i))
	}
	for i := range s.Containers {
		check(&s.Containers[i], p.Child("containers").Index(i))
	}
	return errs
}

func normCap(c v1.Capability) string {
	return strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
}
