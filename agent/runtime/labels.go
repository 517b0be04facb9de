package runtime

import "fmt"

// Ownership labels (shared/DESIGN.md "Ownership").
const (
	LabelFrameworkID  = "io.k8sm.framework-id"
	LabelExecutorID   = "io.k8sm.executor-id"
	LabelAgentID      = "io.k8sm.agent-id"
	LabelContainerID  = "io.k8sm.container-id" // the Mesos container id of the executor
	LabelTaskID       = "io.k8sm.task-id"
	LabelPodUID       = "io.k8sm.pod-uid"
	LabelPodName      = "io.k8sm.pod-name"
	LabelPodNamespace = "io.k8sm.pod-namespace"
	// LabelContainerName is the pod's container name, or SandboxName for
	// the pause container (an addition to the DESIGN set, for status and
	// diag).
	LabelContainerName = "io.k8sm.container-name"
	// LabelRestartCount is how often the container had restarted when
	// this instance was made (as the kubelet's restartCount annotation), so
	// a worker that adopts it reports the same count.
	LabelRestartCount = "io.k8sm.restart-count"
)

// SandboxName is the container name label of a pod's sandbox.
const SandboxName = "POD"

// Owner identifies the executor that owns a container.
type Owner struct {
	FrameworkID string
	ExecutorID  string
	AgentID     string
	ContainerID string // Mesos container id of the executor
}

// PodRef identifies the pod (and Mesos task) a container belongs to.
type PodRef struct {
	TaskID    string
	UID       string
	Name      string
	Namespace string
}

// Labels returns the ownership labels of one container of a pod.
func Labels(o Owner, p PodRef, container string) map[string]string {
	return map[string]string{
		LabelFrameworkID:   o.FrameworkID,
		LabelExecutorID:    o.ExecutorID,
		LabelAgentID:       o.AgentID,
		LabelContainerID:   o.ContainerID,
		LabelTaskID:        p.TaskID,
		LabelPodUID:        p.UID,
		LabelPodName:       p.Name,
		LabelPodNamespace:  p.Namespace,
		LabelContainerName: container,
	}
}

// ParseLabels reads ownership back. It fails unless every label of Labels
// is present and the identifying ones are non-empty: such a container is not
// k8sm's, and nothing may act on it.
func ParseLabels(l map[string]string) (Owner, PodRef, string, error) {
	for _, k := range []string{LabelFrameworkID, LabelExecutorID, LabelAgentID, LabelContainerID,
		LabelTaskID, LabelPodUID, LabelPodName, LabelPodNamespace, LabelContainerName} {
		v, ok := l[k]
		if !ok {
			return Owner{}, PodRef{}, "", fmt.Errorf("not a k8sm container: label %s missing", k)
		}
		if v == "" && k != LabelPodNamespace {
			return Owner{}, PodRef{}, "", fmt.Errorf("not a k8sm container: label %s empty", k)
		}
	}
	return Owner{l[LabelFrameworkID], l[LabelExecutorID], l[LabelAgentID], l[LabelContainerID]},
		PodRef{l[LabelTaskID], l[LabelPodUID], l[LabelPodName], l[LabelPodNamespace]},
		l[LabelContainerName], nil
}
