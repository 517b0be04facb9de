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
//   - /containerLogs takes the kubelet's query: follow, previous (the
//     instance before the current one; 400 "previous terminated container
//     ... not found" when there is none), timestamps, tailLines (and the
//     legacy tail), limitBytes, sinceSeconds, sinceTime; a bad value is 422
//     naming the option.
//   - RequireToken guards the API on TCP: 401 without the exact bearer
//     token; the root-only unix socket needs none.
//   - Kubelet is the kubelet API as the API server calls it (port 10250):
//     the endpoints above plus /exec, /attach, /run and /portForward with
//     the kubelet's paths (with or without the pod uid), streamed by
//     k8s.io/kubelet/pkg/cri/streaming (SPDY and WebSocket) over the
//     Node's Streams. Every request is authenticated by the caller's
//     authenticator (k8s.io/apiserver's delegating one: client
//     certificates, TokenReview; 401 "Unauthorized" without a user) and
//     authorized by its authorizer on the node's subresources as the
//     kubelet asks them (KubeletAttributes; 403 naming user, verb and
//     subresources).
//
// Imports: cgroups, podspec, ports, k8s.io/apiserver (authn/authz
// interfaces), k8s.io/kubelet's streaming server. Never agent/executor,
// agent/pods or scheduler: they import this package, not the other way
// round.
package nodeapi
