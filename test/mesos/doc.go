// Package mesos is a test double of a Mesos cluster: one master and any
// number of agents in one process, speaking the real v1 HTTP APIs
// (/api/v1/scheduler on the master, /api/v1/executor on each agent) with
// mesos-go v0.0.11's own generated types and RecordIO framing, so that any
// correct Mesos framework or HTTP executor works against it unchanged.
// No real Mesos can be installed on the machines k8sm is tested on; this
// double is what every executor and scheduler end-to-end result rests on,
// so each behaviour cites the Mesos doc or source it follows
// (shared/MESOS.md section (d) is the checklist).
//
// # What is real
//
// Executors are real child processes started from ExecutorInfo.command in a
// sandbox <work>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>
// with the agent's MESOS_* environment (durations in stout's format, as
// mesos-go's config.FromEnv requires). With AgentConfig.Cgroups the
// executor is placed, before it runs its first instruction, in
// /<cgroup-root>/<container-id> of every cgroup v1 hierarchy (or the v2
// tree, processes in a "leaf" child), limits follow the executor's plus its
// live tasks' resources (grown before a LAUNCH is sent, shrunk before a
// terminal update is forwarded, the hard memory limit only ever raised),
// and destroying the container freezes and SIGKILLs its whole subtree, the
// pods an executor started included. Without cgroups the PosixLauncher is
// used: a process group killed with SIGKILL. No SIGTERM is ever sent.
//
// # Contracts
//
//   - Master: SUBSCRIBE with Mesos-Stream-Id, HEARTBEAT events, offers of
//     each registered agent's unused resources (one outstanding offer per
//     agent and framework), ACCEPT/LAUNCH/LAUNCH_GROUP validation
//     (TASK_ERROR, TASK_LOST/DROPPED for invalid offers), DECLINE filters
//     that hold only resources within what was refused, REVIVE, SUPPRESS,
//     KILL (unknown task: reconciliation), RECONCILE implicit and explicit,
//     ACKNOWLEDGE relayed to the agent, MESSAGE, SHUTDOWN, TEARDOWN,
//     failover within failover_timeout, FAILURE on executor exit.
//   - Agent: the executor API's status codes and validation, SUBSCRIBED
//     first, replay and de-duplication of unacknowledged updates, TASK_DROPPED
//     or TASK_LOST for launched tasks the executor does not list,
//     ACKNOWLEDGED as soon as the agent has an update, per-task ordered
//     forwarding with retries until the scheduler acknowledges, KILL
//     routing, SHUTDOWN then destroy at the grace period, registration
//     timeout, agent restart (Stop/Start) with reconnect or cleanup
//     recovery and the re-registration timeout, executor authentication
//     tokens.
//   - Faults injects seeded, reproducible drops, duplicates, delays and
//     cuts of events, and drops of acknowledgements.
//
// One mutex guards the master and all its agents, as libprocess runs one
// actor message at a time; nothing blocks while holding it. Master.Close
// destroys every executor container and waits for each to be reaped; timers
// of a closed double do nothing.
//
// This package is test-only: it may import anything, and nothing of k8sm
// imports it except tests and the mesos-double command.
package mesos
