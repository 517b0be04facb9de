package ports

import (
	"fmt"
	"strconv"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/podspec"
)

// Strategy says what a declared container port with hostPort 0 gets.
type Strategy string

const (
	// Fixed leaves hostPort 0 pod-private: only declared hostPorts are
	// claimed from the offer.
	Fixed Strategy = "fixed"
	// Wildcard gives every declared container port with hostPort 0 a free
	// offered port, lowest first.
	Wildcard Strategy = "wildcard"
)

// ParseStrategy accepts "fixed" or "wildcard".
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case Fixed, Wildcard:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("unknown host port strategy %q: want %q or %q", s, Fixed, Wildcard)
}

// HostIPEnv names the variable through which the executor tells containers
// the node's host IP; its value is only known on the node.
const HostIPEnv = "K8SM_HOST_IP"

// EnvName is the variable that carries the host port mapped to a container
// port: K8SM_PORT_<containerPort> for TCP, K8SM_PORT_<containerPort>_<PROTOCOL>
// for other protocols (so a TCP and a UDP port 53 do not collide).
func EnvName(containerPort int32, proto v1.Protocol) string {
	n := "K8SM_PORT_" + strconv.Itoa(int(containerPort))
	if proto != "" && proto != v1.ProtocolTCP {
		n += "_" + string(proto)
	}
	return n
}

// Assignment is the outcome of Assign.
type Assignment struct {
	// Pod is a deep copy of the input pod with every final hostPort set.
	Pod *v1.Pod
	// Resources are the "ports" resources the pod consumes, one per offered
	// pool touched, with the pool's role and reservations.
	Resources []mesos.Resource
	// Remaining is the offered set minus what the pod consumed, for placing
	// further pods in the same offer.
	Remaining Set
}

// NotOfferedError: a declared hostPort is not among the offered ports.
type NotOfferedError struct {
	Pod           string
	Container     string
	ContainerPort int32
	HostPort      int32
	Offered       string // the offered ranges, formatted
}

func (e *NotOfferedError) Error() string {
	return fmt.Sprintf("pod %s: container %q port %d: hostPort %d is not in the offered port ranges %s",
		e.Pod, e.Container, e.ContainerPort, e.HostPort, e.Offered)
}

// DuplicateHostPortError: one pod declares the same hostPort and protocol
// twice.
type DuplicateHostPortError struct {
	Pod       string
	Container string
	HostPort  int32
	Protocol  v1.Protocol
}

func (e *DuplicateHostPortError) Error() string {
	return fmt.Sprintf("pod %s: container %q: hostPort %d/%s is declared twice in the pod", e.Pod, e.Container, e.HostPort, e.Protocol)
}

// NoCapacityError: the wildcard ports of a pod outnumber the free offered
// ports.
type NoCapacityError struct {
	Pod     string
	Needed  int
	Free    uint64
	Offered string
}

func (e *NoCapacityError) Error() string {
	return fmt.Sprintf("pod %s: needs %d host ports for hostPort 0, only %d free in the offered port ranges %s",
		e.Pod, e.Needed, e.Free, e.Offered)
}

// wildcards are the declared container ports of pod with hostPort 0, in
// declaration order (init containers first), pointing into pod: the ports
// Wildcard gives a host port.
func wildcards(pod *v1.Pod) []*v1.ContainerPort {
	var out []*v1.ContainerPort
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			for j := range cs[i].Ports {
				if cs[i].Ports[j].HostPort == 0 {
					out = append(out, &cs[i].Ports[j])
				}
			}
		}
	}
	return out
}

// Wildcards is the number of declared container ports of pod with
// hostPort 0: how many host ports Wildcard takes beyond the declared ones
// (podspec.HostPorts).
func Wildcards(pod *v1.Pod) int { return len(wildcards(pod)) }

// Assign picks the host ports of pod from offered. Declared hostPorts must be
// offered and unique per protocol (the same number under TCP and UDP consumes
// one Mesos port); with Wildcard, each declared port with hostPort 0 takes the
// lowest free offered port. Errors are *NotOfferedError,
// *DuplicateHostPortError or *NoCapacityError. Assign is pure: the input pod
// is not modified.
func Assign(pod *v1.Pod, offered Set, strategy Strategy) (*Assignment, error) {
	out := pod.DeepCopy()
	name := out.Namespace + "/" + out.Name

	type key struct {
		port  int32
		proto v1.Protocol
	}
	seen := map[key]bool{}
	var claimed []uint64
	var offeredText string // formatted lazily: only errors need it
	offeredString := func() string {
		if offeredText == "" {
			offeredText = offered.String()
		}
		return offeredText
	}
	for _, hp := range podspec.HostPorts(out) {
		k := key{hp.HostPort, hp.Protocol}
		if seen[k] {
			return nil, &DuplicateHostPortError{Pod: name, Container: hp.Container, HostPort: hp.HostPort, Protocol: hp.Protocol}
		}
		seen[k] = true
		if hp.HostPort < 0 || !offered.Contains(uint64(hp.HostPort)) {
			return nil, &NotOfferedError{Pod: name, Container: hp.Container, ContainerPort: hp.ContainerPort,
				HostPort: hp.HostPort, Offered: offeredString()}
		}
		claimed = append(claimed, uint64(hp.HostPort))
	}
	claimed = sortedUnique(claimed)

	if strategy == Wildcard {
		if wild := wildcards(out); len(wild) > 0 {
			free := offered.Subtract(mesos.NewRanges(claimed...)).Ranges()
			if uint64(len(wild)) > free.Size() {
				return nil, &NoCapacityError{Pod: name, Needed: len(wild), Free: free.Size(), Offered: offeredString()}
			}
			next := lowestFirst(free)
			for _, cp := range wild {
				p := next()
				cp.HostPort = int32(p)
				claimed = append(claimed, p)
			}
			claimed = sortedUnique(claimed)
		}
	}

	a := &Assignment{Pod: out, Resources: offered.take(claimed)}
	a.Remaining = offered.Subtract(mesos.NewRanges(claimed...))
	return a, nil
}

// lowestFirst yields the ports of sorted, squashed ranges in ascending order;
// the caller asks no more often than there are ports.
func lowestFirst(rs mesos.Ranges) func() uint64 {
	i, cur := 0, uint64(0)
	if len(rs) > 0 {
		cur = rs[0].Begin
	}
	return func() uint64 {
		p := cur
		if cur == rs[i].End {
			i++
			if i < len(rs) {
				cur = rs[i].Begin
			}
		} else {
			cur++
		}
		return p
	}
}
