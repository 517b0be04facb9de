package pods

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// Stage is where a pod worker is in a pod's life.
type Stage int

const (
	StagePending      Stage = iota // sandbox being made
	StageInitializing              // init containers running, one at a time, in order
	StageRunning                   // app containers started; restarts per policy
	StageTerminating               // a stop was asked or every container is done
	StageDone                      // nothing of the pod is left on the node
)

var stageNames = [...]string{"Pending", "Initializing", "Running", "Terminating", "Done"}

func (s Stage) String() string { return stageNames[s] }

// Container is one container's state as the worker knows it.
type Container struct {
	Name     string
	Init     bool
	Running  bool
	Done     bool // terminated and will not run again
	Restarts int32
	// Waiting is the reason it is not running (ContainerCreating,
	// CrashLoopBackOff, ErrImagePull, ImagePullBackOff, PodInitializing).
	Waiting, WaitingMessage string
	Last                    *Exit // the last termination, if any
	StartedAt               time.Time
	Ready                   bool // readiness probe (true without one, once running)
	StartupDone             bool // startup probe passed (true without one)
	// backoff is the delay before the next restart after a failure.
	backoff time.Duration
	// Which probes the container has.
	hasStartup, hasReadiness bool
}

// Exit is one termination of a container.
type Exit struct {
	Code       int32
	Reason     string // Completed, Error, OOMKilled
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time
}

// State is everything the worker decides from. Only Next changes it.
type State struct {
	Stage      Stage
	Policy     v1.RestartPolicy
	Containers []*Container // init containers first, in pod order
	// KillAsked is set once a stop was asked (Kill event): the outcome is
	// then "killed", whatever the containers did.
	KillAsked bool
	// Phase is the Kubernetes phase to report.
	Phase   v1.PodPhase
	Reason  string
	Message string
	PodIP   string
	// Sandboxes counts the sandboxes made; a failure to make one after
	// the first is retried with backoff (the runtime may be restarting).
	Sandboxes      int
	sandboxBackoff time.Duration
}

// Config holds the restart backoff: kubelet-like, doubling from Base to Max.
type Config struct {
	BackoffBase time.Duration // kubelet: 10s
	BackoffMax  time.Duration // kubelet: 5m
	// BackoffReset: a container that ran this long before failing restarts
	// after Base again (kubelet: 10m).
	BackoffReset time.Duration
}

// KubeletBackoff is the kubelet's restart backoff: 10s doubling to 5m,
// reset after 10m of running. It is what a zero Config means to a worker.
func KubeletBackoff() Config {
	return Config{BackoffBase: 10 * time.Second, BackoffMax: 5 * time.Minute, BackoffReset: 10 * time.Minute}
}

// NewState is the state of a pod that has not started.
func NewState(pod *v1.Pod) State {
	s := State{Stage: StagePending, Policy: pod.Spec.RestartPolicy, Phase: v1.PodPending}
	if s.Policy == "" {
		s.Policy = v1.RestartPolicyAlways
	}
	for _, c := range pod.Spec.InitContainers {
		s.Containers = append(s.Containers, &Container{Name: c.Name, Init: true, Waiting: "PodInitializing", StartupDone: true})
	}
	for _, c := range pod.Spec.Containers {
		s.Containers = append(s.Containers, &Container{Name: c.Name, Waiting: "ContainerCreating",
			hasStartup: c.StartupProbe != nil, hasReadiness: c.ReadinessProbe != nil})
	}
	return s
}

// Events. Each is a value the worker receives on its queue.
type (
	// Start: begin running the pod.
	Start struct{}
	// SandboxReady: the sandbox runs; IP is the pod IP.
	SandboxReady struct{ IP string }
	// SandboxFailed: the sandbox could not be made.
	SandboxFailed struct{ Message string }
	// StartFailed: a container could not be started (image, create, start).
	StartFailed struct{ Name, Reason, Message string }
	// Started: a container runs.
	Started struct {
		Name string
		At   time.Time
	}
	// Exited: a container's process ended.
	Exited struct {
		Name string
		Exit Exit
	}
	// BackoffDone: the restart delay of a container has passed.
	BackoffDone struct{ Name string }
	// Probe: a probe result changed (Kind: liveness, readiness, startup).
	Probe struct {
		Name, Kind string
		OK         bool
	}
	// Kill: stop the pod (Mesos KILL or SHUTDOWN) within Grace; 0 means
	// the pod's own terminationGracePeriodSeconds, and a Grace longer than
	// that is cut to it.
	Kill struct{ Grace time.Duration }
	// Stopped: every container and process of the pod is gone.
	Stopped struct{}
	// SandboxDied: the sandbox stopped or vanished. As the kubelet does,
	// the pod is made again in a new sandbox (init containers first), or,
	// with restartPolicy Never, ends Failed.
	SandboxDied struct {
		At      time.Time
		Message string
	}
	// SandboxRetry: the delay before making a sandbox again has passed.
	SandboxRetry struct{}
	// Adopted: a container found running from an earlier worker had
	// restarted this often (its restart-count label).
	Adopted struct {
		Name     string
		Restarts int32
	}
)

// Actions. The worker carries them out in order.
type (
	// CreateSandbox makes and starts the pod's sandbox.
	CreateSandbox struct{}
	// StartContainer creates and starts a container (pulling per policy).
	StartContainer struct{ Name string }
	// RestartAfter arms a timer that sends BackoffDone{Name} after Delay.
	RestartAfter struct {
		Name  string
		Delay time.Duration
	}
	// KillContainer stops one container (liveness failure).
	KillContainer struct{ Name string }
	// StopPod stops every container (preStop hooks, stop signal, SIGKILL at
	// Grace), removes them and the pod cgroup, then sends Stopped.
	StopPod struct{ Grace time.Duration }
	// Report sends the pod's status (to Mesos and the API server).
	Report struct{}
	// RecreateSandbox stops and removes every container and the dead
	// sandbox, then makes a new sandbox (SandboxReady or SandboxFailed).
	RecreateSandbox struct{}
	// SandboxRetryAfter arms a timer that sends SandboxRetry after Delay.
	SandboxRetryAfter struct{ Delay time.Duration }
)

// Action is one of the action types above.
type Action any

// Probe kinds.
const (
	Liveness  = "liveness"
	Readiness = "readiness"
	Startup   = "startup"
)

// Next is the pod's whole transition function: pure, no I/O, no clock (times
// arrive inside events). It returns the new state and the actions to take.
// Unknown or late events (a BackoffDone after a kill, an Exited of a
// container already done) change nothing.
func (cfg Config) Next(s State, ev any) (State, []Action) {
	s = s.clone()
	switch e := ev.(type) {
	case Start:
		if s.Stage == StagePending {
			return s, []Action{CreateSandbox{}, Report{}}
		}
	case SandboxReady:
		if s.Stage != StagePending {
			break
		}
		s.PodIP = e.IP
		s.Sandboxes++
		s.sandboxBackoff = 0
		return s, append(s.startNext(), Report{})
	case SandboxFailed:
		if s.Stage != StagePending {
			break
		}
		if s.Sandboxes == 0 { // the pod never ran: fail fast, with the reason
			return s.finish(v1.PodFailed, "SandboxFailed", e.Message)
		}
		s.Reason, s.Message = "SandboxFailed", e.Message
		s.sandboxBackoff = cfg.nextDelay(s.sandboxBackoff, 0)
		return s, []Action{SandboxRetryAfter{Delay: s.sandboxBackoff}, Report{}}
	case SandboxRetry:
		if s.Stage == StagePending && s.Sandboxes > 0 {
			return s, []Action{RecreateSandbox{}}
		}
	case SandboxDied:
		if s.Stage == StagePending || s.Stage >= StageTerminating {
			break
		}
		if s.Policy == v1.RestartPolicyNever {
			return s.finish(v1.PodFailed, "SandboxDied", e.Message)
		}
		s.resetForSandbox(e)
		return s, []Action{RecreateSandbox{}, Report{}}
	case Adopted:
		if c := s.find(e.Name); c != nil && e.Restarts > c.Restarts {
			c.Restarts = e.Restarts
		}
	case StartFailed:
		c := s.find(e.Name)
		if c == nil || s.Stage >= StageTerminating {
			break
		}
		reason := e.Reason
		if reason == "ErrImagePull" && c.Waiting == "ErrImagePull" {
			reason = "ImagePullBackOff"
		}
		c.Waiting, c.WaitingMessage = reason, e.Message
		return s, []Action{cfg.backoff(c, 0), Report{}}
	case Started:
		c := s.find(e.Name)
		if c == nil || s.Stage >= StageTerminating {
			break
		}
		c.Running, c.Waiting, c.WaitingMessage, c.StartedAt = true, "", "", e.At
		// Every start probes startup again; without probes a running
		// container is started and ready at once.
		c.StartupDone = !c.hasStartup
		c.Ready = !c.Init && c.StartupDone && !c.hasReadiness
		if s.Stage == StageRunning && s.Phase == v1.PodPending {
			s.Phase = v1.PodRunning
		}
		return s, []Action{Report{}}
	case Exited:
		return cfg.exited(s, e)
	case BackoffDone:
		c := s.find(e.Name)
		if c == nil || c.Running || c.Done || s.Stage == StagePending || s.Stage >= StageTerminating {
			break
		}
		return s, []Action{StartContainer{Name: c.Name}}
	case Probe:
		return s.probe(e)
	case Kill:
		if s.Stage >= StageTerminating {
			if !s.KillAsked && s.Stage == StageTerminating {
				s.KillAsked = true // finishing anyway; the outcome is now a kill
			}
			break
		}
		s.KillAsked = true
		s.Stage = StageTerminating
		return s, []Action{StopPod(e), Report{}}
	case Stopped:
		if s.Stage != StageTerminating {
			break
		}
		s.Stage = StageDone
		for _, c := range s.Containers {
			if c.Running {
				c.Running = false
			}
		}
		if s.Phase != v1.PodSucceeded && s.Phase != v1.PodFailed {
			s.Phase = v1.PodFailed // killed before finishing: as the kubelet reports it
			if s.Reason == "" {
				s.Reason = "Killed"
			}
		}
		return s, []Action{Report{}}
	}
	return s, nil
}

// startNext starts the next init container, or every app container.
func (s *State) startNext() []Action {
	for _, c := range s.Containers {
		if c.Init && !c.Done {
			s.Stage = StageInitializing
			return []Action{StartContainer{Name: c.Name}}
		}
	}
	s.Stage = StageRunning
	var acts []Action
	for _, c := range s.Containers {
		if !c.Init && !c.Done {
			c.Waiting = "ContainerCreating"
			acts = append(acts, StartContainer{Name: c.Name})
		}
	}
	return acts
}

func (cfg Config) exited(s State, e Exited) (State, []Action) {
	c := s.find(e.Name)
	if c == nil || c.Done || (!c.Running && s.Stage != StageTerminating) {
		return s, nil
	}
	ran := e.Exit.FinishedAt.Sub(c.StartedAt)
	c.Running, c.Ready, c.Last = false, false, &e.Exit
	if s.Stage == StageTerminating {
		c.Done = true
		return s, []Action{Report{}}
	}
	restart := s.Policy == v1.RestartPolicyAlways || (s.Policy == v1.RestartPolicyOnFailure && e.Exit.Code != 0)
	if c.Init {
		switch {
		case e.Exit.Code == 0:
			c.Done = true
			return s, append(s.startNext(), Report{})
		case s.Policy == v1.RestartPolicyNever:
			c.Done = true
			return s.finish(v1.PodFailed, "InitContainerFailed",
				"init container "+c.Name+" failed: "+e.Exit.Reason)
		}
		return s, []Action{cfg.backoff(c, ran), Report{}} // init containers restart on failure
	}
	if restart {
		return s, []Action{cfg.backoff(c, ran), Report{}}
	}
	c.Done = true
	for _, o := range s.Containers {
		if !o.Init && !o.Done {
			return s, []Action{Report{}} // others still run
		}
	}
	for _, o := range s.Containers {
		if !o.Init && o.Last != nil && o.Last.Code != 0 {
			return s.finish(v1.PodFailed, "", "")
		}
	}
	return s.finish(v1.PodSucceeded, "", "")
}

// finish ends the pod with phase: every container is stopped and removed.
func (s State) finish(phase v1.PodPhase, reason, msg string) (State, []Action) {
	s.Phase, s.Reason, s.Message = phase, reason, msg
	s.Stage = StageTerminating
	return s, []Action{StopPod{}, Report{}}
}

// resetForSandbox readies the state for a new sandbox after the old one
// died: running containers count as stopped (and restarted), init
// containers run again, app containers that finished for good stay done.
func (s *State) resetForSandbox(e SandboxDied) {
	s.Stage, s.PodIP = StagePending, ""
	for _, c := range s.Containers {
		if c.Running {
			c.Running, c.Ready = false, false
			c.Last = &Exit{Code: 137, Reason: "Error", Message: "the pod sandbox died: " + e.Message,
				StartedAt: c.StartedAt, FinishedAt: e.At}
			c.Restarts++
		}
		switch {
		case c.Init:
			c.Done, c.Waiting, c.WaitingMessage = false, "PodInitializing", ""
		case !c.Done:
			c.Waiting, c.WaitingMessage = "ContainerCreating", ""
		}
	}
}

// nextDelay doubles a delay from Base up to Max, and starts from Base
// again after a run longer than BackoffReset.
func (cfg Config) nextDelay(d, ran time.Duration) time.Duration {
	if d == 0 || (cfg.BackoffReset > 0 && ran >= cfg.BackoffReset) {
		return cfg.BackoffBase
	}
	return min(2*d, cfg.BackoffMax)
}

// backoff arms a restart: the delay doubles from Base up to Max after each
// failure, and starts again from Base after a run longer than BackoffReset.
func (cfg Config) backoff(c *Container, ran time.Duration) Action {
	c.backoff = cfg.nextDelay(c.backoff, ran)
	if c.Last != nil { // it ran: a restart, not a first start
		c.Restarts++
		c.Waiting = "CrashLoopBackOff"
		c.WaitingMessage = "back-off " + c.backoff.String() + " restarting failed container " + c.Name
	}
	return RestartAfter{Name: c.Name, Delay: c.backoff}
}

func (s State) probe(e Probe) (State, []Action) {
	c := s.find(e.Name)
	if c == nil || !c.Running || s.Stage != StageRunning {
		return s, nil
	}
	switch e.Kind {
	case Startup:
		if e.OK && !c.StartupDone {
			c.StartupDone = true
			c.Ready = !c.hasReadiness
			return s, []Action{Report{}}
		}
		if !e.OK && !c.StartupDone {
			return s, []Action{KillContainer{Name: c.Name}} // startup failure restarts, as liveness does
		}
	case Liveness:
		if !e.OK && c.StartupDone {
			return s, []Action{KillContainer{Name: c.Name}}
		}
	case Readiness:
		if c.StartupDone && c.Ready != e.OK {
			c.Ready = e.OK
			return s, []Action{Report{}}
		}
	}
	return s, nil
}

func (s *State) find(name string) *Container {
	for _, c := range s.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// clone copies the state so Next never changes its argument.
func (s State) clone() State {
	cs := make([]*Container, len(s.Containers))
	for i, c := range s.Containers {
		cc := *c
		cs[i] = &cc
	}
	s.Containers = cs
	return s
}
