package executor

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/pods"
)

// Verdict is the Mesos state a pod's task is in, from the pod worker's
// state (shared/DESIGN.md "Task states").
type Verdict struct {
	State  mesos.TaskState
	Reason *mesos.TaskStatus_Reason // nil: none
	// Message says why, for terminal states.
	Message string
}

// TaskVerdict maps a pod's state to its task's state: STARTING until every
// app container runs, RUNNING, FINISHED when the pod Succeeded, FAILED when
// it Failed (REASON_CONTAINER_LIMITATION_MEMORY when a container was OOM
// killed). A pod whose stop was asked (KillAsked) is not judged here: it
// becomes TASK_KILLED when its worker is done. A task never goes back from
// RUNNING to STARTING (Mesos has no such transition): a restarting
// container leaves the task RUNNING.
func TaskVerdict(prev mesos.TaskState, s pods.State) Verdict {
	if s.KillAsked {
		return Verdict{State: prev}
	}
	switch s.Phase {
	case v1.PodSucceeded:
		return Verdict{State: mesos.TASK_FINISHED, Message: "pod succeeded"}
	case v1.PodFailed:
		v := Verdict{State: mesos.TASK_FAILED, Message: "pod failed"}
		if s.Reason != "" || s.Message != "" {
			v.Message = "pod failed: " + s.Reason + " " + s.Message
		}
		for _, c := range s.Containers {
			if c.Last != nil && c.Last.Reason == "OOMKilled" {
				v.Reason = mesos.REASON_CONTAINER_LIMITATION_MEMORY.Enum()
				v.Message = "container " + c.Name + " was OOM killed"
				break
			}
		}
		return v
	}
	if prev == mesos.TASK_RUNNING {
		return Verdict{State: prev}
	}
	if s.Stage != pods.StageRunning {
		return Verdict{State: mesos.TASK_STARTING}
	}
	for _, c := range s.Containers {
		if !c.Init && !c.Running {
			return Verdict{State: mesos.TASK_STARTING}
		}
	}
	return Verdict{State: mesos.TASK_RUNNING}
}

// terminal states (mesos.proto TaskState).
func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR, mesos.TASK_LOST:
		return true
	}
	return false
}
