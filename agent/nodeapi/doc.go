// Package nodeapi is the executor's node HTTP API: what "k8sm-agent diag",
// operators and (behind a bearer token) monitoring read from a running
// executor. The kubelet server of the next step lives here too.
//
// # Contracts
//
//   - It reads, never writes: the pods and the executor's identity come
//     from a Source (the executor publishes them under one lock; Source
//     methods are safe for concurrent use and never block on Mesos), the
//     cgroup readings and container logs from the Node that SetNode hands
//     over once the executor has subscribed. Before that, /stats/summary,
//     /containerLogs and the executor's usage figures are unavailable (503
//     or absent), everything else answers.
//   - Endpoints: GET /healthz ("ok"), /pods (a v1 PodList with status, each
//     pod annotated with its task id, podspec.TaskIDAnnotation, static pods
//     "static.<uid>"), /stats/summary (kubelet stats/v1alpha1: the
//     executor's Mesos container as the node, pod and container cgroups,
//     CPU rates from the previous call), /containerLogs/{ns}/{pod}/{container}
//     (?tailLines=N&follow=true, plain text, 404 naming what is missing),
//     /executor (Info as JSON) and /metrics (the gatherer's).
//   - RequireToken guards the API on TCP: 401 without the exact bearer
//     token; the root-only unix socket needs none.
//
// Imports: cgroups, podspec, ports. Never agent/executor, agent/pods or
// scheduler: the executor imports this package, not the other way round.
package nodeapi
