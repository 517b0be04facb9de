// Package runtime is the executor's adapter to the Docker Engine: it creates
// the pod sandbox (pause) and app containers with k8sm's ownership labels and
// the pod cgroup as cgroup parent, starts, stops, inspects, lists and removes
// them, streams Docker's events, runs exec probes and reads logs.
//
// Contracts (shared/DESIGN.md "Ownership"): every container created here
// carries the labels of Labels; ParseLabels is the only way ownership is
// read back, and a container without them is never k8sm's. Every call takes
// a context and, except Wait-like calls (Stop, Events, follow-mode Logs), is
// bounded by the adapter's call timeout.
//
// Imports: nothing of k8sm (the agent's pod workers declare the small
// interfaces they need and this adapter satisfies them).
package runtime
