package scheduler

import (
	"encoding/json"
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/podspec"
)

// NewTask turns a launch into the TaskInfo of DESIGN.md "Task data": the
// bound pod (nodeName, final host ports, limits, the four k8sm.io/
// annotations) as JSON in data, id pod.<uid>, and a kill policy from the
// pod's termination grace period. It returns the bound pod too.
func NewTask(l Launch, info *mesos.ExecutorInfo) (mesos.TaskInfo, *v1.Pod, error) {
	pod := l.Bound.DeepCopy()
	pod.Spec.NodeName = l.Slot.Hostname
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	id := podspec.TaskID(pod.UID)
	for k, v := range BindAnnotations(id, l.Slot.AgentID, info.ExecutorID.Value, l.Slot.OfferIDs[0], pod) {
		pod.Annotations[k] = v
	}
	if pod.Kind == "" {
		pod.Kind, pod.APIVersion = "Pod", "v1"
	}
	data, err := json.Marshal(pod)
	if err != nil {
		return mesos.TaskInfo{}, nil, fmt.Errorf("encode pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	t := mesos.TaskInfo{
		Name:      pod.Namespace + "/" + pod.Name,
		TaskID:    mesos.TaskID{Value: id},
		AgentID:   mesos.AgentID{Value: l.Slot.AgentID},
		Resources: l.Resources,
		Executor:  info,
		Data:      data,
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		t.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: *g * 1e9}}
	}
	return t, pod, nil
}

// BindAnnotations are put on the pod in the API server by its Binding (the
// API server copies a Binding's annotations onto the pod): the task's
// identity and, when the pod has host ports, the ports it got.
func BindAnnotations(taskID, agentID, executorID, offerID string, bound *v1.Pod) map[string]string {
	a := map[string]string{
		podspec.TaskIDAnnotation:     taskID,
		podspec.AgentIDAnnotation:    agentID,
		podspec.ExecutorIDAnnotation: executorID,
		podspec.OfferIDAnnotation:    offerID,
	}
	if hp := podspec.FormatHostPorts(bound); hp != "" {
		a[podspec.HostPortsAnnotation] = hp
	}
	return a
}
