// Package podspec defines what k8sm accepts as a pod: decoding, validation
// against a security policy, defaulting of limits, the resource sums that
// become Mesos task resources, the task id scheme and the host-port
// annotation of a bound pod. All pod arithmetic lives here.
//
// Contracts:
//   - Decode takes exactly one v1 Pod (YAML or JSON, kind Pod, apiVersion
//     v1) of at most MaxPodBytes; anything else is a *DecodeError or
//     ErrTooLarge, never a partial pod.
//   - Validate refuses what k8sm cannot run or the Policy forbids, and each
//     message names the offending field by its path (spec.containers[0]...).
//   - Default is idempotent: defaulting a defaulted pod changes nothing.
//   - Resources is a function of the pod's spec alone, in integer
//     millicores and bytes with the kubelet's rounding (MilliValue and
//     Value, up). TaskResources adds SandboxMemoryBytes and rounds memory
//     up to a MiB: it is what the scheduler asks Mesos for, what a static
//     pod adds to the executor's resources, and the pod cgroup's limit.
//     The scheduler, the executor and static pods get the same numbers from
//     the same pod, to the millicore and the byte.
//   - MesosResources and FromMesos convert exactly: millicores to "cpus"
//     and back (MesosMilli, MesosScalar), whole MiB to "mem" and back.
//   - HostPorts is the one walk of a pod's host ports.
//   - TaskID and PodUID are inverse: PodUID(TaskID(uid)) == uid.
//
// It is pure (no I/O, no clock). Imports: k8s.io/api, apimachinery and
// mesos-go's types; nothing of k8sm.
package podspec
