// Package scheduler is the k8sm Mesos framework scheduler: it pairs pending
// pods with resource offers, binds them, launches Mesos tasks whose data is
// the bound pod, keeps Node objects for agents, writes HostIP:HostPort
// EndpointSlices, and takes part in leader election.
//
// Structure (DESIGN.md "Scheduler HA", "Task data", "Executor identity"):
//
//   - placement.go is the pure core: Place(pods, slots, executor) decides
//     launches, unplaced pods with an operator-readable reason, and
//     declines. It never over-commits a slot (cpus, mem, host ports) and
//     spreads pods of one controller over agents. A task asks for exactly
//     podspec.TaskResources of its pod (the sandbox allowance included)
//     plus its host ports; the executor for its own resources plus
//     staticpods.Sum. All the arithmetic is podspec's.
//   - Scheduler (scheduler.go) owns all state in one goroutine (loop).
//     Mesos events (mesos-go's scheduler controller, mesos.go), informer
//     callbacks and results of API calls arrive as messages; Binding,
//     ACCEPT, status patches and Node creation run in goroutines that post
//     results back. Each round (cycle.go) SUPPRESSes offers when nothing is
//     pending, REVIVEs when a pod arrives, places pods whose backoff (1s
//     doubling to 60s) is over, and declines offers held past the TTL.
//   - A launch binds the pod with a Binding whose annotations (task id,
//     agent id, executor id, offer id, host ports) land on the pod, then
//     ACCEPTs the agent's offers with one LAUNCH. The pod annotations are
//     the scheduler's state: a new leader rebuilds its tasks from them and
//     reconciles them explicitly (truncated exponential backoff until each
//     answered), then implicitly every ReconcileInterval.
//   - Pod deletion sends KILL; the pod object is removed once the task is
//     terminal, or 10s after its deletion deadline. A task that ends
//     without its executor (refused, lost with its agent) marks its pod
//     Failed with the Mesos state, reason and message.
//   - endpoints.go: for Services with selectors, EndpointSlices labelled
//     managed-by k8sm-scheduler.k8sm.io with the pods' host IPs and host
//     ports (DesiredSlices is pure).
//   - store.go keeps the framework id in a ConfigMap; ha.go runs the
//     scheduler only while holding a Lease (client-go leaderelection).
//
// Imports: podspec, ports, staticpods. Never agent.
package scheduler
