package podspec

import (
	"strconv"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
)

// MiB is the unit of Mesos "mem" resources.
const MiB = 1 << 20

// Resources returns the pod's limits as Mesos sees them: the sum of its
// containers' cpu and memory limits, where init containers count as the
// kubelet counts them (the larger of the largest init container and the sum
// of the app containers). Call it on a defaulted pod: containers without a
// limit add nothing. cpus has millicore precision.
func Resources(pod *v1.Pod) (cpus float64, memBytes int64) {
	l := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{
		ExcludeOverhead:       true,
		SkipPodLevelResources: true,
	})
	cpu, mem := l[v1.ResourceCPU], l[v1.ResourceMemory]
	return float64(cpu.MilliValue()) / 1000, mem.Value()
}

// HostPort is one container port that claims a port on the node.
type HostPort struct {
	Container     string
	Name          string
	ContainerPort int32
	HostPort      int32
	Protocol      v1.Protocol // TCP when the pod left it empty
}

// HostPorts lists, in declaration order (init containers first), every
// container port with a non-zero hostPort.
func HostPorts(pod *v1.Pod) []HostPort {
	var out []HostPort
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort == 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = v1.ProtocolTCP
				}
				out = append(out, HostPort{cs[i].Name, p.Name, p.ContainerPort, p.HostPort, proto})
			}
		}
	}
	return out
}

// MemMB converts bytes to Mesos "mem" megabytes (MiB), rounding up so a
// limit is never under-reserved.
func MemMB(memBytes int64) float64 {
	return float64((memBytes + MiB - 1) / MiB)
}

// MesosResources builds the Mesos resources cpus, mem and (when non-empty)
// ports for role; role "" leaves the resources unreserved ("*").
func MesosResources(cpus float64, memBytes int64, ports mesos.Ranges, role string) mesos.Resources {
	withRole := func(b *resources.Builder) mesos.Resource {
		if role != "" && role != "*" {
			b = b.Role(role)
		}
		return b.Resource
	}
	out := mesos.Resources{
		withRole(resources.NewCPUs(cpus)),
		withRole(resources.NewMemory(MemMB(memBytes))),
	}
	if len(ports) > 0 {
		out = append(out, withRole(resources.Build().Name(resources.NamePorts).Ranges(ports)))
	}
	return out
}

// FromMesos sums Mesos resources of any role: cpus, mem in bytes, and the
// union of all "ports" ranges (sorted and squashed).
func FromMesos(rs []mesos.Resource) (cpus float64, memBytes int64, ports mesos.Ranges) {
	var milli int64
	for i := range rs {
		r := &rs[i]
		switch r.GetName() {
		case resources.NameCPUs.String():
			milli += int64(r.GetScalar().GetValue()*1000 + 0.5)
		case resources.NameMem.String():
			memBytes += int64(r.GetScalar().GetValue() * MiB)
		case resources.NamePorts.String():
			for _, pr := range r.GetRanges().GetRange() {
				ports = append(ports, mesos.Value_Range{Begin: pr.Begin, End: pr.End})
			}
		}
	}
	return float64(milli) / 1000, memBytes, ports.Sort().Squash()
}

// AttributeLabelPrefix prefixes the Node label made of a Mesos agent
// attribute: attribute zone:z1 is label k8sm.io/attribute-zone=z1.
const AttributeLabelPrefix = "k8sm.io/attribute-"

// NodeLabels are the labels of the Node of a Mesos agent:
// kubernetes.io/hostname and one k8sm.io/attribute-<name> per text or
// scalar attribute. Attributes that make no valid label are returned in
// skipped ("name=value"), for a warning.
func NodeLabels(hostname string, attrs []mesos.Attribute) (labels map[string]string, skipped []string) {
	labels = map[string]string{v1.LabelHostname: hostname}
	for _, a := range attrs {
		var v string
		switch {
		case a.Text != nil:
			v = a.Text.Value
		case a.Scalar != nil:
			v = strconv.FormatFloat(a.Scalar.Value, 'f', -1, 64)
		default:
			skipped = append(skipped, a.Name+" (ranges or set)")
			continue
		}
		key := AttributeLabelPrefix + a.Name
		if len(validation.IsQualifiedName(key)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			skipped = append(skipped, a.Name+"="+v)
			continue
		}
		labels[key] = v
	}
	return labels, skipped
}
