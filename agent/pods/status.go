package pods

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StatusInput is what a status is built from besides the machine's state.
type StatusInput struct {
	Pod       *v1.Pod
	HostIP    string
	StartTime metav1.Time // when the worker accepted the pod
	Now       metav1.Time // transition time of conditions that change now
	// Prev is the last status reported; conditions that did not change keep
	// their transition times from it.
	Prev *v1.PodStatus
	// ContainerIDs are the Docker ids of the containers' current instances
	// by name: each status's containerID ("docker://<id>", as the kubelet
	// writes it).
	ContainerIDs map[string]string
	// PreviousIDs are the Docker ids of the instances before the current
	// ones (kept after a restart): lastState.terminated.containerID of a
	// running container.
	PreviousIDs map[string]string
}

// Status is the pod's v1.PodStatus as the kubelet would report it: phase,
// the PodScheduled, Initialized, ContainersReady and Ready conditions, and a
// status per container (state, last termination, restarts, readiness). It
// is pure.
func Status(s State, in StatusInput) v1.PodStatus {
	st := v1.PodStatus{
		Phase:     s.Phase,
		Reason:    s.Reason,
		Message:   s.Message,
		HostIP:    in.HostIP,
		PodIP:     s.PodIP,
		StartTime: &in.StartTime,
	}
	if in.HostIP != "" {
		st.HostIPs = []v1.HostIP{{IP: in.HostIP}}
	}
	if s.PodIP != "" {
		st.PodIPs = []v1.PodIP{{IP: s.PodIP}}
	}
	images := map[string]string{}
	for _, c := range append(append([]v1.Container{}, in.Pod.Spec.InitContainers...), in.Pod.Spec.Containers...) {
		images[c.Name] = c.Image
	}
	initialized, ready := true, len(in.Pod.Spec.Containers) > 0
	for _, c := range s.Containers {
		cs := containerStatus(c, images[c.Name])
		if id := in.ContainerIDs[c.Name]; id != "" && cs.State.Waiting == nil {
			cs.ContainerID = "docker://" + id
		}
		if last := cs.LastTerminationState.Terminated; last != nil {
			// Waiting to restart, the current instance is the one that
			// ended; running again, the previous one is.
			id := in.PreviousIDs[c.Name]
			if cs.State.Waiting != nil {
				id = in.ContainerIDs[c.Name]
			}
			if id != "" {
				last.ContainerID = "docker://" + id
			}
		}
		if c.Init {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			if !c.Done || c.Last == nil || c.Last.Code != 0 {
				initialized = false
			}
			continue
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			ready = false
		}
	}
	if s.Stage >= StageTerminating {
		ready = false
	}
	var prev []v1.PodCondition
	if in.Prev != nil {
		prev = in.Prev.Conditions
	}
	cond := func(t v1.PodConditionType, ok bool, reason string) v1.PodCondition {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, LastTransitionTime: in.Now}
		if ok {
			c.Status = v1.ConditionTrue
		} else {
			c.Reason = reason
		}
		for _, p := range prev {
			if p.Type == t && p.Status == c.Status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	st.Conditions = []v1.PodCondition{
		cond(v1.PodScheduled, true, ""),
		cond(v1.PodInitialized, initialized, "ContainersNotInitialized"),
		cond(v1.ContainersReady, ready, "ContainersNotReady"),
		cond(v1.PodReady, ready, "ContainersNotReady"),
	}
	return st
}

func containerStatus(c *Container, image string) v1.ContainerStatus {
	cs := v1.ContainerStatus{
		Name:         c.Name,
		Image:        image,
		Ready:        c.Ready && c.Running,
		RestartCount: c.Restarts,
	}
	started := c.Running && c.StartupDone
	cs.Started = &started
	switch {
	case c.Running:
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}
		if c.Last != nil {
			cs.LastTerminationState.Terminated = terminated(c.Last)
		}
	case c.Done && c.Last != nil:
		cs.State.Terminated = terminated(c.Last)
	default:
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: c.Waiting, Message: c.WaitingMessage}
		if c.Last != nil {
			cs.LastTerminationState.Terminated = terminated(c.Last)
		}
	}
	return cs
}

func terminated(e *Exit) *v1.ContainerStateTerminated {
	return &v1.ContainerStateTerminated{
		ExitCode:   e.Code,
		Reason:     e.Reason,
		Message:    e.Message,
		StartedAt:  metav1.NewTime(e.StartedAt),
		FinishedAt: metav1.NewTime(e.FinishedAt),
	}
}
