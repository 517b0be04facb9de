package podspec

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults are the resource defaults of shared/DESIGN.md "Resources".
type Defaults struct {
	CPULimit resource.Quantity // limit of a container that declares no CPU
	MemLimit resource.Quantity // limit of a container that declares no memory
	MinCPU   resource.Quantity // nothing gets less (Mesos' executor minimum)
	MinMem   resource.Quantity
}

// StandardDefaults returns k8sm's defaults: 0.25 cpu and 64 MiB per container
// without limits, at least 0.01 cpu and 32 MiB.
func StandardDefaults() Defaults {
	return Defaults{
		CPULimit: resource.MustParse("250m"),
		MemLimit: resource.MustParse("64Mi"),
		MinCPU:   resource.MustParse("10m"),
		MinMem:   resource.MustParse("32Mi"),
	}
}

// Default fills in, in place, what the API server and kubelet would, plus
// k8sm's resource rules. For cpu and memory of every container: neither limit
// nor request -> both the default limit; request only -> limit = request;
// limit only -> request = limit; then both raised to the minimum. It also
// defaults the namespace ("default"), restartPolicy (Always), the termination
// grace period (30 s), imagePullPolicy (Always for :latest or untagged
// images, else IfNotPresent), port protocols (TCP) and probe timings. Default
// is idempotent.
func Default(pod *v1.Pod, d Defaults) {
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	s := &pod.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = v1.RestartPolicyAlways
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := int64(v1.DefaultTerminationGracePeriodSeconds)
		s.TerminationGracePeriodSeconds = &g
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = v1.DNSClusterFirst
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i], d)
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i], d)
	}
}

func defaultContainer(c *v1.Container, d Defaults) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = pullPolicyFor(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = v1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = v1.TerminationMessageReadFile
	}
	for j := range c.Ports {
		if c.Ports[j].Protocol == "" {
			c.Ports[j].Protocol = v1.ProtocolTCP
		}
	}
	defaultResource(&c.Resources, v1.ResourceCPU, d.CPULimit, d.MinCPU)
	defaultResource(&c.Resources, v1.ResourceMemory, d.MemLimit, d.MinMem)
	for _, p := range []*v1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
}

func defaultResource(r *v1.ResourceRequirements, name v1.ResourceName, def, minimum resource.Quantity) {
	if r.Limits == nil {
		r.Limits = v1.ResourceList{}
	}
	if r.Requests == nil {
		r.Requests = v1.ResourceList{}
	}
	lim, hasLim := r.Limits[name]
	req, hasReq := r.Requests[name]
	if (hasLim && unwieldy(lim)) || (hasReq && unwieldy(req)) {
		return // Validate refuses it; comparing it could take seconds
	}
	switch {
	case !hasLim && !hasReq:
		lim, req = def.DeepCopy(), def.DeepCopy()
	case !hasLim:
		lim = req.DeepCopy()
	case !hasReq:
		req = lim.DeepCopy()
	}
	if lim.Cmp(minimum) < 0 {
		lim = minimum.DeepCopy()
	}
	if req.Cmp(minimum) < 0 {
		req = minimum.DeepCopy()
	}
	r.Limits[name], r.Requests[name] = lim, req
}

func defaultProbe(p *v1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = v1.URISchemeHTTP
		}
	}
}

// pullPolicyFor follows the API server: images tagged :latest or untagged
// (and without a digest) are pulled Always, others IfNotPresent.
func pullPolicyFor(image string) v1.PullPolicy {
	if strings.Contains(image, "@") {
		return v1.PullIfNotPresent
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 || name[i+1:] == "latest" {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}
