// Package pods runs pods: one worker goroutine per pod owns its state, and a
// pure transition function decides what to do next.
//
// The transition function (Config.Next) takes the state and one event and
// returns the new state and the actions to carry out. It does no I/O and
// reads no clock: times arrive in events, restart delays leave as actions.
// The worker (to come) turns runtime results, Docker events, probe results
// and timers into events, and actions into runtime calls.
//
//	           Start                SandboxReady
//	Pending ──────────> Pending ──────────────┬──> Initializing ──(last init exits 0)──┐
//	(CreateSandbox)                           │     init fails, policy Never ──> Terminating
//	                                          └──(no init containers)──> Running <────┘
//	Running: Exited -> restart after backoff (Always; OnFailure and code != 0)
//	         or done; all app containers done -> Succeeded/Failed -> Terminating
//	         liveness/startup failure -> KillContainer -> Exited -> same rules
//	any stage before Terminating ──Kill──> Terminating (StopPod) ──Stopped──> Done
//
// "Kill the pod" (Kill event) is not "the executor is stopping": the
// executor's own shutdown cancels workers through their context, while a
// Kill is a pod event with its own grace period.
//
// Imports: nothing of k8sm.
package pods
