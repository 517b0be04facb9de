package podspec

import (
	"math"
	"strconv"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
)

// MiB is the unit of Mesos "mem" resources.
const MiB = 1 << 20

// SandboxMemoryBytes is the memory a pod's sandbox (its pause container,
// which needs about 1 MiB) may use: the pause container's own limit, and
// an allowance TaskResources adds to every pod.
const SandboxMemoryBytes = 16 * MiB

// Resources returns the pod's limits: the sum of its containers' cpu and
// memory limits, where init containers count as the kubelet counts them
// (the larger of the largest init container and the sum of the app
// containers). Call it on a defaulted pod: containers without a limit add
// nothing. The sums are in integers with the kubelet's rounding:
// resource.Quantity.MilliValue for cpu and Value for memory, both rounding
// up ("0.0001" cpu is 1m, "0.5" memory is 1 byte).
func Resources(pod *v1.Pod) (milliCPU, memBytes int64) {
	l := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{
		ExcludeOverhead:       true,
		SkipPodLevelResources: true,
	})
	cpu, mem := l[v1.ResourceCPU], l[v1.ResourceMemory]
	return cpu.MilliValue(), mem.Value()
}

// TaskResources are a pod's task resources: Resources plus
// SandboxMemoryBytes, with memory rounded up to a whole MiB (the unit of
// Mesos "mem", so that MesosResources and FromMesos carry it exactly). The
// scheduler asks Mesos for exactly this (and static pods add exactly this
// to the executor's resources), and the executor's pod cgroup limit is
// exactly this: the cgroup's limit equals the task's resources.
func TaskResources(pod *v1.Pod) (milliCPU, memBytes int64) {
	milliCPU, memBytes = Resources(pod)
	return milliCPU, roundUpMiB(memBytes + SandboxMemoryBytes)
}

func roundUpMiB(b int64) int64 { return (b + MiB - 1) / MiB * MiB }

// HostPort is one container port that claims a port on the node.
type HostPort struct {
	Container     string
	Name          string
	ContainerPort int32
	HostPort      int32
	Protocol      v1.Protocol // TCP when the pod left it empty
	// Init: declared by an init container. Its port is claimed from
	// Mesos like the others, but the kubelet (and k8sm) publish and map
	// only the app containers' host ports.
	Init bool
}

// HostPorts lists, in declaration order (init containers first), every
// container port with a non-zero hostPort. It is the one walk of a pod's
// host ports: the scheduler claims them, the sandbox publishes them and
// the containers' K8SM_PORT_* environment and diag show them from it.
func HostPorts(pod *v1.Pod) []HostPort {
	var out []HostPort
	for k, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort == 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = v1.ProtocolTCP
				}
				out = append(out, HostPort{Container: cs[i].Name, Name: p.Name, ContainerPort: p.ContainerPort,
					HostPort: p.HostPort, Protocol: proto, Init: k == 0})
			}
		}
	}
	return out
}

// Mesos keeps scalar resources as fixed point with three decimal digits:
// "cpus" in cores, "mem" in MB (MiB). k8sm counts cpus in millicores and
// mem in bytes; these conversions are the only ones.

// MesosMilli is a Mesos scalar in thousandths: millicores of "cpus", 1/1000
// MB of "mem". It is math.Round(v*1000), exact for every value Mesos sends
// (and for every float64(n)/1000 with |n| < 2^50).
func MesosMilli(v float64) int64 { return int64(math.Round(v * 1000)) }

// MesosScalar is the Mesos scalar of milli thousandths: milli/1000, which
// MesosMilli turns back into milli exactly.
func MesosScalar(milli int64) float64 { return float64(milli) / 1000 }

// MemMB converts bytes to Mesos "mem" megabytes (MiB), rounding up so a
// limit is never under-reserved. It is exact for a multiple of MiB, as
// every TaskResources memory is.
func MemMB(memBytes int64) float64 {
	return float64((memBytes + MiB - 1) / MiB)
}

// MesosResources builds the Mesos resources cpus (milliCPU/1000), mem
// (MemMB(memBytes): whole MiB, rounded up) and, when non-empty, ports for
// role; role "" leaves the resources unreserved ("*"). FromMesos returns
// milliCPU exactly, and memBytes exactly when it is a multiple of MiB.
func MesosResources(milliCPU, memBytes int64, ports mesos.Ranges, role string) mesos.Resources {
	withRole := func(b *resources.Builder) mesos.Resource {
		if role != "" && role != "*" {
			b = b.Role(role)
		}
		return b.Resource
	}
	out := mesos.Resources{
		withRole(resources.NewCPUs(MesosScalar(milliCPU))),
		withRole(resources.NewMemory(MemMB(memBytes))),
	}
	if len(ports) > 0 {
		out = append(out, withRole(resources.Build().Name(resources.NamePorts).Ranges(ports)))
	}
	return out
}

// FromMesos sums Mesos resources of any role: cpus in millicores (exact),
// mem in bytes (exact for whole MB; a fraction of a MB is rounded down to
// a byte), and the union of all "ports" ranges (sorted and squashed).
func FromMesos(rs []mesos.Resource) (milliCPU, memBytes int64, ports mesos.Ranges) {
	var milliMB int64
	for i := range rs {
		r := &rs[i]
		switch r.GetName() {
		case resources.NameCPUs.String():
			milliCPU += MesosMilli(r.GetScalar().GetValue())
		case resources.NameMem.String():
			milliMB += MesosMilli(r.GetScalar().GetValue())
		case resources.NamePorts.String():
			for _, pr := range r.GetRanges().GetRange() {
				ports = append(ports, mesos.Value_Range{Begin: pr.Begin, End: pr.End})
			}
		}
	}
	memBytes = milliMB/1000*MiB + milliMB%1000*MiB/1000
	return milliCPU, memBytes, ports.Sort().Squash()
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
