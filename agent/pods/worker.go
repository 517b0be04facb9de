package pods

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
)

// Runtime is what a worker needs of the container runtime
// (*runtime.Docker satisfies it). All calls block; Stop blocks up to grace.
type Runtime interface {
	EnsureImage(ctx context.Context, ref, policy string) error
	Create(ctx context.Context, s runtime.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (runtime.State, error)
	Exec(ctx context.Context, id string, cmd []string) (int, []byte, error)
}

// PodCgroup is what a worker needs of its pod cgroup (*cgroups.PodCgroup).
type PodCgroup interface {
	Path() string
	KillAll(ctx context.Context) error
	Delete(ctx context.Context) error
}

// Cgroups creates pod cgroups (see CgroupsOf for *cgroups.Manager).
type Cgroups interface {
	CreatePod(podUID string, l cgroups.Limits) (PodCgroup, error)
}

type managerCgroups struct{ m *cgroups.Manager }

func (c managerCgroups) CreatePod(uid string, l cgroups.Limits) (PodCgroup, error) {
	return c.m.Create(uid, l)
}

// CgroupsOf adapts a *cgroups.Manager.
func CgroupsOf(m *cgroups.Manager) Cgroups { return managerCgroups{m} }

// WorkerConfig is a worker's fixed input.
type WorkerConfig struct {
	Machine      Config
	Spec         SpecOptions    // SandboxID and PodIP are filled in by the worker
	Limits       cgroups.Limits // of the whole pod cgroup
	DockerDriver string         // Docker's cgroup driver (systemd is refused)
	StopTimeout  time.Duration  // bound of StopPod beyond the grace period; default 10s
}

// Worker is the one goroutine that owns a pod: it alone changes the pod's
// state, from events on its queue; actions are carried out in order.
type Worker struct {
	cfg    WorkerConfig
	pod    *v1.Pod
	rt     Runtime
	cg     Cgroups
	log    *slog.Logger
	report func(v1.PodStatus, State)

	mu    sync.Mutex
	queue []any
	wake  chan struct{}

	state   State
	ids     map[string]string // container name -> current Docker id
	names   map[string]string // Docker id -> container name
	sandbox string
	podCg   PodCgroup
	timers  map[string]*time.Timer // restart timer by container name
	start   metav1.Time
	last    *v1.PodStatus
	probes  map[string]*probeLoops // by container name
}

// probeLoops are the probe goroutines of one container instance.
type probeLoops struct {
	id          string
	startup, lr context.CancelFunc // nil when not running
}

// NewWorker makes the worker of a defaulted, validated pod. report gets
// every status the pod's state asks to report; it must not block for long.
func NewWorker(cfg WorkerConfig, pod *v1.Pod, rt Runtime, cg Cgroups, log *slog.Logger, report func(v1.PodStatus, State)) *Worker {
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{
		cfg: cfg, pod: pod, rt: rt, cg: cg, report: report,
		log:   log.With("pod", pod.Namespace+"/"+pod.Name, "uid", string(pod.UID)),
		wake:  make(chan struct{}, 1),
		state: NewState(pod),
		ids:   map[string]string{}, names: map[string]string{},
		probes: map[string]*probeLoops{}, timers: map[string]*time.Timer{},
	}
}

// Send queues an event; it never blocks and never drops.
func (w *Worker) Send(ev any) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// ContainerDied tells the worker that Docker reported a container of its pod
// dead (an event, or a relist). It inspects the container and queues Exited.
func (w *Worker) ContainerDied(id string) { w.Send(died{id}) }

type died struct{ id string }

func (w *Worker) next() (any, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil, false
	}
	ev := w.queue[0]
	w.queue = w.queue[1:]
	return ev, true
}

// Run starts the pod and handles its events until the pod is done (nothing
// of it left on the node) or ctx ends; ctx ending leaves the containers
// running (the executor stopping is not a pod kill).
func (w *Worker) Run(ctx context.Context) error {
	w.start = metav1.Now()
	w.Send(Start{})
	defer func() {
		for _, t := range w.timers {
			t.Stop()
		}
		for _, l := range w.probes {
			l.stop()
		}
	}()
	for {
		ev, ok := w.next()
		if !ok {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if d, isDied := ev.(died); isDied {
			ev = w.exitOf(ctx, d.id)
			if ev == nil {
				continue
			}
		}
		var acts []Action
		w.state, acts = w.cfg.Machine.Next(w.state, ev)
		for _, a := range acts {
			w.do(ctx, a)
		}
		w.syncProbes(ctx)
		if w.state.Stage == StageDone {
			return nil
		}
	}
}

// exitOf turns a death notice into an Exited event, or nil for a container
// that is not this pod's current one.
func (w *Worker) exitOf(ctx context.Context, id string) any {
	name, ok := w.names[id]
	if !ok || w.ids[name] != id {
		return nil
	}
	st, err := w.rt.Inspect(ctx, id)
	if err != nil {
		w.log.Warn("inspect of a dead container failed", "container", name, "err", err)
		return Exited{Name: name, Exit: Exit{Code: 137, Reason: "Error", Message: err.Error(), FinishedAt: time.Now()}}
	}
	if st.Running {
		return nil
	}
	reason := "Completed"
	switch {
	case st.OOMKilled:
		reason = "OOMKilled"
	case st.ExitCode != 0:
		reason = "Error"
	}
	return Exited{Name: name, Exit: Exit{Code: int32(st.ExitCode), Reason: reason, Message: st.Error,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}}
}

func (w *Worker) do(ctx context.Context, a Action) {
	switch a := a.(type) {
	case CreateSandbox:
		ip, err := w.createSandbox(ctx)
		if err != nil {
			w.log.Error("sandbox failed", "err", err)
			w.Send(SandboxFailed{Message: err.Error()})
			return
		}
		w.log.Info("sandbox running", "ip", ip)
		w.Send(SandboxReady{IP: ip})
	case StartContainer:
		w.startContainer(ctx, a.Name)
	case RestartAfter:
		// One timer per container: a new delay replaces the old one, so a
		// pod that crash-loops for days holds no more timers than it has
		// containers.
		if t := w.timers[a.Name]; t != nil {
			t.Stop()
		}
		w.timers[a.Name] = time.AfterFunc(a.Delay, func() { w.Send(BackoffDone{Name: a.Name}) })
	case KillContainer:
		if id := w.ids[a.Name]; id != "" {
			if err := w.rt.Stop(ctx, id, w.grace(0)); err != nil {
				w.log.Warn("stop container", "container", a.Name, "err", err)
			}
		}
	case StopPod:
		w.stopPod(ctx, a.Grace)
		w.Send(Stopped{})
	case Report:
		st := Status(w.state, StatusInput{Pod: w.pod, HostIP: w.cfg.Spec.HostIP, StartTime: w.start, Now: metav1.Now(), Prev: w.last})
		w.last = &st
		if w.report != nil {
			w.report(st, w.state)
		}
	}
}

func (w *Worker) createSandbox(ctx context.Context) (string, error) {
	pc, err := w.cg.CreatePod(string(w.pod.UID), w.cfg.Limits)
	if err != nil {
		return "", err
	}
	w.podCg = pc
	parent, err := cgroups.DockerParent(pc.Path(), w.cfg.DockerDriver)
	if err != nil {
		return "", err
	}
	w.cfg.Spec.CgroupParent = parent
	if err := w.rt.EnsureImage(ctx, w.cfg.Spec.PauseImage, runtime.PullIfNotPresent); err != nil {
		return "", err
	}
	id, err := w.rt.Create(ctx, SandboxSpec(w.pod, w.cfg.Spec))
	if err != nil {
		return "", err
	}
	w.sandbox = id
	if err := w.rt.Start(ctx, id); err != nil {
		return "", err
	}
	st, err := w.rt.Inspect(ctx, id)
	if err != nil {
		return "", err
	}
	w.cfg.Spec.SandboxID, w.cfg.Spec.PodIP = id, st.IP
	return st.IP, nil
}

func (w *Worker) container(name string) *v1.Container {
	for _, cs := range [][]v1.Container{w.pod.Spec.InitContainers, w.pod.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

func (w *Worker) startContainer(ctx context.Context, name string) {
	c := w.container(name)
	if c == nil {
		return
	}
	if err := w.rt.EnsureImage(ctx, c.Image, string(c.ImagePullPolicy)); err != nil {
		reason := "ErrImagePull"
		if errors.Is(err, runtime.ErrImageNeverPull) {
			reason = "ErrImageNeverPull"
		}
		w.Send(StartFailed{Name: name, Reason: reason, Message: err.Error()})
		return
	}
	if old := w.ids[name]; old != "" { // the previous run: gone before the next
		if err := w.rt.Remove(ctx, old); err != nil {
			w.log.Warn("remove previous container", "container", name, "err", err)
		}
		delete(w.names, old)
	}
	spec, err := ContainerSpec(w.pod, c, w.cfg.Spec)
	if err != nil {
		w.Send(StartFailed{Name: name, Reason: "CreateContainerConfigError", Message: err.Error()})
		return
	}
	id, err := w.rt.Create(ctx, spec)
	if err != nil {
		w.Send(StartFailed{Name: name, Reason: "CreateContainerError", Message: err.Error()})
		return
	}
	w.ids[name], w.names[id] = id, name
	if err := w.rt.Start(ctx, id); err != nil {
		w.Send(StartFailed{Name: name, Reason: "RunContainerError", Message: err.Error()})
		return
	}
	at := time.Now()
	if st, err := w.rt.Inspect(ctx, id); err == nil {
		at = st.StartedAt
		if !st.Running { // it already ended: its death notice may have come first
			w.Send(Started{Name: name, At: at})
			w.Send(died{id})
			return
		}
	}
	w.log.Info("container started", "container", name, "id", id[:min(12, len(id))])
	w.Send(Started{Name: name, At: at})
}

// grace is the pod's termination grace, or the asked one when shorter.
func (w *Worker) grace(asked time.Duration) time.Duration {
	g := time.Duration(v1.DefaultTerminationGracePeriodSeconds) * time.Second
	if p := w.pod.Spec.TerminationGracePeriodSeconds; p != nil {
		g = time.Duration(*p) * time.Second
	}
	if asked > 0 && asked < g {
		g = asked
	}
	return g
}

// stopPod stops every container in parallel (stop signal, SIGKILL at the
// grace period), removes them and the sandbox, kills whatever is left in the
// pod cgroup and deletes it.
func (w *Worker) stopPod(ctx context.Context, asked time.Duration) {
	grace := w.grace(asked)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+w.cfg.StopTimeout)
	defer cancel()
	// At the end of the grace period every process of the pod gets SIGKILL
	// through its cgroup, at once and exactly then, not container by
	// container on dockerd's timers (which also round up to seconds).
	if w.podCg != nil {
		killer := time.AfterFunc(grace, func() {
			if err := w.podCg.KillAll(ctx); err != nil {
				w.log.Error("kill at the end of the grace period", "err", err)
			}
		})
		defer killer.Stop()
	}
	var wg sync.WaitGroup
	for name, id := range w.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Docker's own SIGKILL comes a second after ours: a backstop.
			if err := w.rt.Stop(ctx, id, grace+time.Second); err != nil {
				w.log.Warn("stop container", "container", name, "err", err)
			}
		}()
	}
	wg.Wait()
	// Remove in parallel too: under load each removal takes a while.
	ids := map[string]string{}
	for name, id := range w.ids {
		ids[name] = id
	}
	if w.sandbox != "" {
		ids[runtime.SandboxName] = w.sandbox
	}
	for name, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.rt.Remove(ctx, id); err != nil {
				w.log.Warn("remove container", "container", name, "err", err)
			}
		}()
	}
	wg.Wait()
	if w.podCg != nil {
		if err := w.podCg.KillAll(ctx); err != nil {
			w.log.Error("processes left in the pod cgroup", "err", err)
		}
		if err := w.podCg.Delete(ctx); err != nil {
			w.log.Error("delete pod cgroup", "err", err)
		}
	}
	w.log.Info("pod stopped", "grace", grace.String())
}

// syncProbes makes the probe goroutines match the state: a running
// container probes startup until it passes, then liveness and readiness;
// a container that stopped or was replaced, or a pod that is stopping,
// probes nothing.
func (w *Worker) syncProbes(ctx context.Context) {
	for _, c := range w.state.Containers {
		spec := w.container(c.Name)
		id := w.ids[c.Name]
		l := w.probes[c.Name]
		if l != nil && (l.id != id || !c.Running || w.state.Stage != StageRunning) {
			l.stop()
			delete(w.probes, c.Name)
			l = nil
		}
		if c.Init || !c.Running || w.state.Stage != StageRunning || spec == nil {
			continue
		}
		if l == nil {
			l = &probeLoops{id: id}
			w.probes[c.Name] = l
		}
		launch := func(pctx context.Context, kind string, p *v1.Probe) {
			if p != nil {
				go runProbe(pctx, w.Send, w.rt, spec, id, w.state.PodIP, kind, p)
			}
		}
		if !c.StartupDone && l.startup == nil {
			pctx, cancel := context.WithCancel(ctx)
			l.startup = cancel
			launch(pctx, Startup, spec.StartupProbe)
		}
		if c.StartupDone && l.lr == nil {
			pctx, cancel := context.WithCancel(ctx)
			l.lr = cancel
			launch(pctx, Liveness, spec.LivenessProbe)
			launch(pctx, Readiness, spec.ReadinessProbe)
		}
	}
}

func (l *probeLoops) stop() {
	for _, c := range []context.CancelFunc{l.startup, l.lr} {
		if c != nil {
			c()
		}
	}
}
