package nodeapi

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// PodView is one pod as the node API shows it: its task id (static pods
// "static.<uid>"), the pod as launched, and its newest status.
type PodView struct {
	TaskID string
	Pod    *v1.Pod
	Status v1.PodStatus
}

// Info is the executor as "k8sm-agent diag" shows it (GET /executor). The
// Source fills who the executor is and what Mesos gave it; the server
// adds the process and its cgroup's usage.
type Info struct {
	PID           int       `json:"pid"`
	StartedAt     time.Time `json:"startedAt"`
	FrameworkID   string    `json:"frameworkID"`
	ExecutorID    string    `json:"executorID"`
	AgentID       string    `json:"agentID,omitempty"`
	ContainerID   string    `json:"containerID,omitempty"`
	AgentEndpoint string    `json:"agentEndpoint"`
	Hostname      string    `json:"hostname,omitempty"`
	// Subscribed: connected to the agent now.
	Subscribed bool   `json:"subscribed"`
	Checkpoint bool   `json:"checkpoint"`
	Cgroup     string `json:"cgroup,omitempty"`
	// MemoryLimitBytes (0: unknown or none) and MemoryUsageBytes of the
	// executor's Mesos container (itself and its pods); CPUUsageNanos its
	// CPU time.
	MemoryLimitBytes uint64 `json:"memoryLimitBytes,omitempty"`
	MemoryUsageBytes uint64 `json:"memoryUsageBytes,omitempty"`
	CPUUsageNanos    uint64 `json:"cpuUsageNanos,omitempty"`
	// CPUs and MemBytes are what Mesos gave the executor and its live
	// tasks.
	CPUs     float64 `json:"cpus,omitempty"`
	MemBytes int64   `json:"memBytes,omitempty"`
	// PortRanges are the agent's "ports" resources ("31000-32000").
	PortRanges []string `json:"portRanges,omitempty"`
}
