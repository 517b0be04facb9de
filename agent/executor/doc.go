// Package executor is the k8sm Mesos executor's event loop: it speaks the
// Mesos v1 executor HTTP API through mesos-go (api/v1/lib) and turns
// events into pod operations and pod statuses into task status updates.
// It knows Mesos; package agent/pods, which runs the pods, does not.
//
// # Contracts (shared/DESIGN.md, shared/MESOS.md (b))
//
//   - One goroutine (Run) owns all state. The subscription's events, pod
//     status reports (Report, which never blocks and coalesces per pod),
//     the ends of UPDATE calls, pod endings and timers all arrive as
//     messages on its queues. It publishes what the node API reads (Pods,
//     Info: package agent/nodeapi's Source) under one lock. It never waits
//     for the agent.
//   - LAUNCH: the task data is decoded, defaulted and validated by podspec;
//     bad data or a policy refusal is TASK_FAILED with REASON_TASK_INVALID
//     and a message naming the field, and the executor serves on.
//     Otherwise TASK_STARTING, then TASK_RUNNING when every app container
//     runs, TASK_FINISHED on Succeeded, TASK_FAILED on Failed
//     (REASON_CONTAINER_LIMITATION_MEMORY after an OOM kill), TASK_FAILED
//     when the pod is not running within the launch grace period.
//     LAUNCH_GROUP: TASK_FAILED for each task, REASON_TASK_GROUP_INVALID.
//   - KILL: the pod stops with the kill policy's grace period (or its own);
//     TASK_KILLED once it is gone.
//   - Every update has a fresh RFC 4122 UUID and the PodStatus JSON as
//     data, and stays in the Book until the agent's ACKNOWLEDGED; a new
//     SUBSCRIBE lists every unacknowledged task and update. The Book feeds
//     the sender: UPDATE calls go out on their own goroutines, at most 16
//     at once, one at a time per task in the order made, SHUTDOWN's
//     TASK_KILLED included. A failed call breaks the subscription so that
//     the next SUBSCRIBE carries it and everything after it.
//   - A broken connection: with checkpointing, re-subscribe with backoff
//     capped at MESOS_SUBSCRIPTION_BACKOFF_MAX until MESOS_RECOVERY_TIMEOUT,
//     pods running meanwhile; after that, or without checkpointing, stop
//     every pod and return an error.
//   - SHUTDOWN: StopAll within ShutdownBudget of the grace period (Mesos
//     sends no SIGTERM and kills the whole cgroup at the grace period):
//     from the kill point on every pod process left is SIGKILLed through
//     the pod cgroups, and as soon as none is left (at the latest at the
//     budget's end) every live task gets TASK_KILLED; removing containers
//     Docker is still tearing down goes on (Drain) until the cleanup point
//     (90% of the grace period), then Run returns nil. What is not removed
//     by then the next executor's reaper removes.
//   - With no live task for the suicide timeout, Run returns nil.
//   - Static pods packed in ExecutorInfo.data (staticpods.Pack) start at
//     the first SUBSCRIBED, named <name>-<agent hostname> and bound to the
//     node as the kubelet does; they are not tasks and send no updates;
//     their status goes to Node.PodStatus and Node.MirrorPod makes their
//     mirror pods; one that cannot run is logged and skipped.
//
// The node side (Docker, cgroups, the pod manager) is started by the
// caller's StartNode at the first SUBSCRIBED, when the Mesos container id
// that the ownership labels carry is known.
//
// Imports: agent/nodeapi (its types only), agent/pods, cgroups, podspec,
// staticpods. Never scheduler.
package executor
