package podspec

import (
	"fmt"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The annotations the scheduler puts on a pod it binds (DESIGN.md "Task
// data"); they are on the pod in the API server and in TaskInfo.data, and
// are how a new scheduler leader rebuilds its state.
const (
	TaskIDAnnotation     = "k8sm.io/task-id"
	AgentIDAnnotation    = "k8sm.io/agent-id"
	ExecutorIDAnnotation = "k8sm.io/executor-id"
	OfferIDAnnotation    = "k8sm.io/offer-id"
)

// TaskIDPrefix starts every k8sm task id: pod.<pod-uid>.
const TaskIDPrefix = "pod."

// TaskID is the Mesos task id of the pod with uid.
func TaskID(uid types.UID) string { return TaskIDPrefix + string(uid) }

// PodUID is the pod uid in a task id, or "" if id is not a k8sm task id.
func PodUID(taskID string) types.UID {
	uid, ok := strings.CutPrefix(taskID, TaskIDPrefix)
	if !ok {
		return ""
	}
	return types.UID(uid)
}

// HostPortsAnnotation records, on the pod in the API server, the host port
// each container port got: a pod's spec cannot change after creation, and
// ports with hostPort 0 get theirs at launch (the wildcard strategy). The
// value is "container:containerPort/PROTOCOL=hostPort" entries joined by
// ",", as FormatHostPorts writes them.
const HostPortsAnnotation = "k8sm.io/host-ports"

// FormatHostPorts is the HostPortsAnnotation value of a bound pod.
func FormatHostPorts(pod *v1.Pod) string {
	var b strings.Builder
	for i, hp := range HostPorts(pod) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d/%s=%d", hp.Container, hp.ContainerPort, hp.Protocol, hp.HostPort)
	}
	return b.String()
}

// BoundHostPort is the host port of container's containerPort/proto from a
// HostPortsAnnotation value (0: none).
func BoundHostPort(annotation, container string, containerPort int32, proto v1.Protocol) int32 {
	if proto == "" {
		proto = v1.ProtocolTCP
	}
	want := fmt.Sprintf("%s:%d/%s=", container, containerPort, proto)
	for _, e := range strings.Split(annotation, ",") {
		if v, ok := strings.CutPrefix(e, want); ok {
			n, err := strconv.ParseInt(v, 10, 32)
			if err == nil && n > 0 && n < 65536 {
				return int32(n)
			}
		}
	}
	return 0
}
