// Package pods runs pods on the node's Docker engine inside the executor's
// Mesos cgroup, the kubelet part of the executor that knows nothing of Mesos.
//
// # Pieces
//
//   - Config.Next, the pure transition function next(state, event) ->
//     (state, actions). It does no I/O and reads no clock: times arrive in
//     events, restart delays leave as actions. Table and property tests pin it.
//   - Worker, one goroutine per pod that owns the pod's State. It turns
//     runtime results, Docker events, relists, probe results and timers
//     (through an injectable k8s.io/utils clock) into events, and actions
//     into runtime calls; it reports every status change through its
//     callback.
//   - Manager, the node's set of workers: Launch, Kill, Done, Adopt, StopAll,
//     Logs, Close, and Run, which routes Docker's event stream to workers and
//     relists on a period and after every reconnect (the PLEG).
//   - Reaper and Orphans, the level-triggered orphan collector.
//   - SandboxSpec / ContainerSpec, pod -> Docker container specs.
//
// # The pod state machine
//
//	           Start                SandboxReady
//	Pending ──────────> Pending ──────────────┬──> Initializing ──(last init exits 0)──┐
//	(CreateSandbox)                           │     init fails, policy Never ──> Terminating
//	                                          └──(no init containers)──> Running <────┘
//	Running: Exited -> restart after backoff (Always; OnFailure and code != 0)
//	         or done; all app containers done -> Succeeded/Failed -> Terminating
//	         liveness/startup failure -> KillContainer -> Exited -> same rules
//	SandboxDied: policy Never -> Failed; else every container is ended,
//	         inits rerun, the sandbox is remade (RecreateSandbox) with backoff
//	any stage before Terminating ──Kill──> Terminating (StopPod) ──Stopped──> Done
//
// # Contracts
//
//   - Ownership is labels only (shared/DESIGN.md "Ownership"): every container
//     is made with runtime.Labels and a container without them, or one of
//     another live executor, is never touched, not even by the reaper.
//   - Every container of a pod has the pod cgroup as cgroup parent; the pod
//     cgroup is a child of the executor's Mesos cgroup. Stopping a pod ends
//     with KillAll and Delete of that cgroup, so nothing of it survives.
//   - Never duplicated: a worker acts only on containers it made or adopted;
//     a container found vanished (relist) counts as exited with 137, and a new
//     one is made only through the state machine's restart rules.
//   - Adopt keeps running the containers of pods the caller still wants (same
//     pod UID and task id) and removes every other container of this executor
//     (its executor id, on its own agent, in its own framework).
//   - Orphans is the one definition of an orphan container (the reaper's and
//     diag's): complete k8sm labels, of the agent and framework in scope,
//     older than the grace, of an executor container that is gone or of a
//     task the live one does not run. Executor ids are the same hash on every
//     agent and agents may share a dockerd: another agent's containers are
//     never this executor's to remove.
//   - "Kill the pod" (a Kill with its grace period) is not "the executor is
//     stopping": Close ends the workers and leaves pods running for a later
//     Adopt; StopAll stops them all in parallel and returns only when no
//     container and no process in any pod cgroup is left, or says what is left.
//   - emptyDir volumes live at EmptyDirPath(VolumeRoot, pod UID, volume) and
//     are removed with the pod.
//   - A restarted container's previous instance is kept (one, as the
//     kubelet keeps one) for Logs with Previous and its status's
//     lastState.terminated.containerID; the one before it goes at the next
//     restart, all of them with the pod.
//   - Exec, Attach and PortForward (the kubelet API's streams, nodeapi.Streams)
//     reach a pod's running container through Docker; PortForward dials the
//     port inside the sandbox's network namespace.
//
// Imports: cgroups (limits and the cgroup manager), podspec (host ports,
// the sandbox allowance), ports (the K8SM_PORT_* environment),
// agent/runtime (container specs and labels), agent/nodeapi (its log
// options and stream interface). Docker and the cgroup tree
// are behind the small Runtime and Cgroups interfaces so the worker is
// unit-tested on validating fakes.
package pods
