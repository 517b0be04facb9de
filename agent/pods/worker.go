package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

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
	OOMKills() (uint64, error)
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
	Machine      Config                     // restart backoff; zero: KubeletBackoff
	Spec         SpecOptions                // SandboxID and PodIP are filled in by the worker
	Limits       cgroups.Limits             // of the whole pod cgroup
	DockerDriver string                     // Docker's cgroup driver (systemd is refused)
	StopTimeout  time.Duration              // bound of StopPod beyond the grace period; default 10s
	Clock        clock.WithDelayedExecution // restart, retry and probe delays; default clock.RealClock
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

	state State
	ids   map[string]string // container name -> current Docker id
	names map[string]string // Docker id -> container name
	// prev are the previous instances (container name -> Docker id) kept
	// after a restart for kubectl logs --previous, as the kubelet keeps
	// one; the one before is removed at the next restart.
	prev    map[string]string
	sandbox string
	podCg   PodCgroup
	// cgMu guards liveCg, podCg as other goroutines see it (KillProcesses).
	cgMu   sync.Mutex
	liveCg PodCgroup
	timers map[string]clock.Timer // restart timer by container name ("" for the sandbox)
	start  metav1.Time
	last   *v1.PodStatus
	probes map[string]*probeLoops // by container name
	// made is when each container of the pod was asked for: a relist
	// taken before that cannot know of it.
	made map[string]time.Time
	// oomSeen is the pod cgroup's OOM kill count already attributed.
	oomSeen uint64
	// found are the containers of an earlier worker to adopt (Adopt).
	found []runtime.Summary
	// stale are containers of the pod a removal failed for (Docker was
	// going away): removed before a new sandbox, and with the pod.
	stale []string
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
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Machine == (Config{}) {
		cfg.Machine = KubeletBackoff()
	}
	return &Worker{
		cfg: cfg, pod: pod, rt: rt, cg: cg, report: report,
		log:   log.With("pod", pod.Namespace+"/"+pod.Name, "uid", string(pod.UID)),
		wake:  make(chan struct{}, 1),
		state: NewState(pod),
		ids:   map[string]string{}, names: map[string]string{}, prev: map[string]string{},
		probes: map[string]*probeLoops{}, timers: map[string]clock.Timer{}, made: map[string]time.Time{},
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

// relisted is what a relist saw of the pod's containers: id -> running.
type relisted struct {
	at      time.Time // when the list was asked for
	running map[string]bool
}

// Relisted tells the worker which of its pod's containers exist (and which
// of them run) as of a list asked for at at: a current container missing
// from it vanished, one not running died.
func (w *Worker) Relisted(at time.Time, running map[string]bool) { w.Send(relisted{at, running}) }

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
	w.start = metav1.NewTime(w.cfg.Clock.Now())
	if w.found != nil {
		w.resume(ctx)
	} else {
		w.Send(Start{})
	}
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
		for _, ev := range w.translate(ctx, ev) {
			var acts []Action
			w.state, acts = w.cfg.Machine.Next(w.state, ev)
			for _, a := range acts {
				w.do(ctx, a)
			}
		}
		w.syncProbes(ctx)
		if w.state.Stage == StageDone {
			return nil
		}
	}
}

// translate turns what the runtime told (a death notice, a relist) into
// machine events; machine events pass through.
func (w *Worker) translate(ctx context.Context, ev any) []any {
	switch e := ev.(type) {
	case died:
		if x := w.exitOf(ctx, e.id); x != nil {
			return []any{x}
		}
		return nil
	case relisted:
		return w.checkList(ctx, e)
	}
	return []any{ev}
}

// checkList compares a relist with what the worker runs: the sandbox or a
// running container that is gone vanished (kubelet: ContainerStatusUnknown),
// one that is not running died. Containers made after the list began are
// not judged by it.
func (w *Worker) checkList(ctx context.Context, r relisted) []any {
	known := func(id string) bool { return id != "" && w.made[id].Before(r.at) }
	var evs []any
	if known(w.sandbox) && w.state.Stage != StagePending {
		running, ok := r.running[w.sandbox]
		switch {
		case !ok:
			w.log.Warn("the pod sandbox vanished", "id", short(w.sandbox))
			return []any{SandboxDied{At: w.cfg.Clock.Now(), Message: "the sandbox container vanished from the runtime"}}
		case !running:
			if x := w.exitOf(ctx, w.sandbox); x != nil {
				return []any{x}
			}
		}
	}
	for _, c := range w.state.Containers {
		id := w.ids[c.Name]
		if !c.Running || !known(id) {
			continue
		}
		running, ok := r.running[id]
		switch {
		case !ok:
			w.log.Warn("container vanished", "container", c.Name, "id", short(id))
			now := w.cfg.Clock.Now()
			evs = append(evs, Exited{Name: c.Name, Exit: Exit{Code: 137, Reason: "ContainerStatusUnknown",
				Message: "The container could not be located", StartedAt: c.StartedAt, FinishedAt: now}})
		case !running:
			if x := w.exitOf(ctx, id); x != nil {
				evs = append(evs, x)
			}
		}
	}
	return evs
}

func short(id string) string { return id[:min(12, len(id))] }

// exitOf turns a death notice into an Exited event, or nil for a container
// that is not this pod's current one.
func (w *Worker) exitOf(ctx context.Context, id string) any {
	if id == w.sandbox && id != "" {
		st, err := w.rt.Inspect(ctx, id)
		if err == nil && st.Running {
			return nil
		}
		msg := "the sandbox container is gone"
		if err == nil {
			msg = fmt.Sprintf("the sandbox container exited with %d", st.ExitCode)
		}
		w.log.Warn("the pod sandbox died", "reason", msg)
		return SandboxDied{At: w.cfg.Clock.Now(), Message: msg}
	}
	name, ok := w.names[id]
	if !ok || w.ids[name] != id {
		return nil
	}
	st, err := w.rt.Inspect(ctx, id)
	if err != nil {
		w.log.Warn("inspect of a dead container failed", "container", name, "err", err)
		return Exited{Name: name, Exit: Exit{Code: 137, Reason: "Error", Message: err.Error(), FinishedAt: w.cfg.Clock.Now()}}
	}
	if st.Running {
		return nil
	}
	return exitEvent(name, st, w.oomKilled(st))
}

// exitEvent is the Exited event of a stopped container.
func exitEvent(name string, st runtime.State, oom bool) Exited {
	reason := "Completed"
	switch {
	case oom:
		reason = "OOMKilled"
	case st.ExitCode != 0:
		reason = "Error"
	}
	return Exited{Name: name, Exit: Exit{Code: int32(st.ExitCode), Reason: reason, Message: st.Error,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}}
}

// oomKilled says whether a container that stopped was OOM-killed: Docker
// says so, or it was SIGKILLed and the pod cgroup counted a new OOM kill
// (Docker misses kills of a container's child processes).
func (w *Worker) oomKilled(st runtime.State) bool {
	var n uint64
	if w.podCg != nil {
		var err error
		if n, err = w.podCg.OOMKills(); err != nil {
			w.log.Warn("read the pod cgroup's OOM kill count", "err", err)
		}
	}
	counted := n > w.oomSeen
	w.oomSeen = max(w.oomSeen, n)
	return st.OOMKilled || (counted && st.ExitCode == 137)
}

func (w *Worker) do(ctx context.Context, a Action) {
	switch a := a.(type) {
	case CreateSandbox:
		w.sandboxUp(ctx)
	case RecreateSandbox:
		// The old sandbox is dead: its containers go with it, gracefully,
		// before the pod is made again.
		w.stopContainers(ctx, w.grace(0), time.Second)
		w.removeContainers(ctx)
		w.sandboxUp(ctx)
	case SandboxRetryAfter:
		w.arm("", a.Delay, SandboxRetry{})
	case StartContainer:
		w.startContainer(ctx, a.Name)
	case RestartAfter:
		// One timer per container: a new delay replaces the old one, so a
		// pod that crash-loops for days holds no more timers than it has
		// containers.
		w.arm(a.Name, a.Delay, BackoffDone{Name: a.Name})
	case KillContainer:
		if id := w.ids[a.Name]; id != "" {
			w.stopContainer(ctx, a.Name, id, w.grace(0), 0)
		}
	case StopPod:
		w.stopPod(ctx, a.Grace)
		w.Send(Stopped{})
	case Report:
		st := Status(w.state, StatusInput{Pod: w.pod, HostIP: w.cfg.Spec.HostIP, StartTime: w.start, Now: metav1.NewTime(w.cfg.Clock.Now()), Prev: w.last, ContainerIDs: w.ids, PreviousIDs: w.prev})
		w.last = &st
		if w.report != nil {
			w.report(st, w.state)
		}
	}
}

// makeVolumes makes the pod's emptyDir directories (world-writable, as the
// kubelet makes them, so that any container user can write).
func (w *Worker) makeVolumes() error {
	for _, v := range w.pod.Spec.Volumes {
		if v.EmptyDir == nil {
			continue
		}
		if w.cfg.Spec.VolumeRoot == "" {
			return fmt.Errorf("volume %q: emptyDir needs a volume root", v.Name)
		}
		d := EmptyDirPath(w.cfg.Spec.VolumeRoot, string(w.pod.UID), v.Name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	return nil
}

// arm replaces the timer of key with one that sends ev after d.
func (w *Worker) arm(key string, d time.Duration, ev any) {
	if t := w.timers[key]; t != nil {
		t.Stop()
	}
	w.timers[key] = w.cfg.Clock.AfterFunc(d, func() { w.Send(ev) })
}

// sandboxUp makes the sandbox and says how that went.
func (w *Worker) sandboxUp(ctx context.Context) {
	ip, err := w.createSandbox(ctx)
	if err != nil {
		w.log.Error("sandbox failed", "err", err)
		w.Send(SandboxFailed{Message: err.Error()})
		return
	}
	w.log.Info("sandbox running", "ip", ip)
	w.Send(SandboxReady{IP: ip})
}

func (w *Worker) createSandbox(ctx context.Context) (string, error) {
	if err := w.makeVolumes(); err != nil {
		return "", err
	}
	// Never two sandboxes: what is left of the old one goes first.
	if err := w.removeStale(ctx); err != nil {
		return "", err
	}
	pc, err := w.cg.CreatePod(string(w.pod.UID), w.cfg.Limits)
	if err != nil {
		return "", err
	}
	if w.podCg == nil { // OOM kills before this pod's time are not its own
		w.oomSeen, _ = pc.OOMKills()
	}
	w.setPodCg(pc)
	parent, err := cgroups.DockerParent(pc.Path(), w.cfg.DockerDriver)
	if err != nil {
		return "", err
	}
	w.cfg.Spec.CgroupParent = parent
	if err := w.rt.EnsureImage(ctx, w.cfg.Spec.PauseImage, runtime.PullIfNotPresent); err != nil {
		return "", err
	}
	w.cfg.Spec.SandboxID, w.cfg.Spec.PodIP = "", ""
	made := time.Now()
	id, err := w.rt.Create(ctx, SandboxSpec(w.pod, w.cfg.Spec))
	if err != nil {
		return "", err
	}
	w.sandbox, w.made[id] = id, made
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
	if old := w.ids[name]; old != "" { // the previous run: kept for its logs
		if older := w.prev[name]; older != "" {
			if err := w.rt.Remove(ctx, older); err != nil {
				w.log.Warn("remove an earlier instance", "container", name, "err", err)
				w.stale = append(w.stale, older)
			}
		}
		w.prev[name] = old
		delete(w.names, old)
	}
	spec, err := ContainerSpec(w.pod, c, w.cfg.Spec)
	if err != nil {
		w.Send(StartFailed{Name: name, Reason: "CreateContainerConfigError", Message: err.Error()})
		return
	}
	if sc := w.state.find(name); sc != nil {
		spec.Labels[runtime.LabelRestartCount] = strconv.Itoa(int(sc.Restarts))
	}
	made := time.Now()
	id, err := w.rt.Create(ctx, spec)
	if err != nil {
		w.Send(StartFailed{Name: name, Reason: "CreateContainerError", Message: err.Error()})
		return
	}
	w.ids[name], w.names[id], w.made[id] = id, name, made
	if err := w.rt.Start(ctx, id); err != nil {
		w.Send(StartFailed{Name: name, Reason: "RunContainerError", Message: err.Error()})
		return
	}
	at := w.cfg.Clock.Now()
	if st, err := w.rt.Inspect(ctx, id); err == nil {
		at = st.StartedAt
		if !st.Running { // it already ended: its death notice may have come first
			w.Send(Started{Name: name, At: at})
			w.Send(died{id})
			return
		}
	}
	w.log.Info("container started", "container", name, "id", short(id))
	w.Send(Started{Name: name, At: at})
}

func (w *Worker) setPodCg(pc PodCgroup) {
	w.podCg = pc
	w.cgMu.Lock()
	w.liveCg = pc
	w.cgMu.Unlock()
}

// KillProcesses SIGKILLs every process left in the pod's cgroup, from any
// goroutine, and returns once none is left: the backstop of a shutdown
// whose budget ran out while Docker is still tearing the pod down. A pod
// without a cgroup yet has no process to kill.
func (w *Worker) KillProcesses(ctx context.Context) error {
	w.cgMu.Lock()
	pc := w.liveCg
	w.cgMu.Unlock()
	if pc == nil {
		return nil
	}
	return pc.KillAll(ctx)
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

// stopPod stops every container in parallel (preStop hook, stop signal,
// SIGKILL at the grace period), removes them and the sandbox, kills whatever
// is left in the pod cgroup and deletes it.
func (w *Worker) stopPod(ctx context.Context, asked time.Duration) {
	grace := w.grace(asked)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+w.cfg.StopTimeout)
	defer cancel()
	// At the end of the grace period every process of the pod gets SIGKILL
	// through its cgroup, at once and exactly then, not container by
	// container on dockerd's timers (which also round up to seconds).
	if w.podCg != nil {
		killer := w.cfg.Clock.AfterFunc(grace, func() {
			if err := w.podCg.KillAll(ctx); err != nil {
				w.log.Error("kill at the end of the grace period", "err", err)
			}
		})
		defer killer.Stop()
	}
	// Docker's own SIGKILL comes a second after ours: a backstop.
	w.stopContainers(ctx, grace, time.Second)
	w.removeContainers(ctx)
	if w.podCg != nil {
		if err := w.podCg.KillAll(ctx); err != nil {
			w.log.Error("processes left in the pod cgroup", "err", err)
		}
		if err := w.podCg.Delete(ctx); err != nil {
			w.log.Error("delete pod cgroup", "err", err)
		}
	}
	if w.cfg.Spec.VolumeRoot != "" && w.pod.UID != "" { // emptyDir lives as long as the pod
		if err := os.RemoveAll(filepath.Join(w.cfg.Spec.VolumeRoot, string(w.pod.UID))); err != nil {
			w.log.Error("remove the pod's emptyDir volumes", "err", err)
		}
	}
	w.log.Info("pod stopped", "grace", grace.String())
}

// stopContainers stops every running container of the pod in parallel
// within grace (Docker's SIGKILL at grace+backstop).
func (w *Worker) stopContainers(ctx context.Context, grace, backstop time.Duration) {
	var wg sync.WaitGroup
	for _, c := range w.state.Containers {
		id := w.ids[c.Name]
		if id == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.stopContainer(ctx, c.Name, id, grace, backstop)
		}()
	}
	wg.Wait()
}

// stopContainer runs the container's preStop hook (when it runs), then
// sends its stop signal (the image's, SIGTERM by default) with what is left
// of grace; Docker SIGKILLs it backstop after that. As in the kubelet, the
// hook's time counts against the grace period.
func (w *Worker) stopContainer(ctx context.Context, name, id string, grace, backstop time.Duration) {
	begin := time.Now()
	if c := w.container(name); c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if sc := w.state.find(name); sc != nil && sc.Running {
			h := c.Lifecycle.PreStop
			hctx, cancel := context.WithTimeout(ctx, grace)
			err := runHandler(hctx, w.rt, c, id, w.cfg.Spec.PodIP, handler{h.Exec, h.HTTPGet, h.TCPSocket, h.Sleep})
			cancel()
			if err != nil {
				w.log.Warn("preStop hook failed", "container", name, "err", err)
			} else {
				w.log.Info("preStop hook done", "container", name, "took", time.Since(begin).Round(time.Millisecond).String())
			}
		}
	}
	left := max(grace-time.Since(begin), 0)
	if err := w.rt.Stop(ctx, id, left+backstop); err != nil {
		w.log.Warn("stop container", "container", name, "err", err)
		return
	}
	// Record how it ended now: its death notice may come only after the
	// container is removed and forgotten. (A second notice changes nothing.)
	if st, err := w.rt.Inspect(ctx, id); err == nil && !st.Running {
		w.Send(exitEvent(name, st, st.OOMKilled))
	}
}

// removeContainers removes every container of the pod and its sandbox, in
// parallel (under load each removal takes a while), and forgets them; those
// it could not remove stay in stale.
func (w *Worker) removeContainers(ctx context.Context) {
	ids := map[string]string{} // id -> name
	for name, id := range w.ids {
		ids[id] = name
	}
	if w.sandbox != "" {
		ids[w.sandbox] = runtime.SandboxName
	}
	for _, id := range w.stale {
		ids[id] = "(stale)"
	}
	for name, id := range w.prev {
		ids[id] = name + " (previous)"
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for id, name := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.rt.Remove(ctx, id); err != nil {
				w.log.Warn("remove container", "container", name, "err", err)
				mu.Lock()
				failed = append(failed, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.ids, w.names, w.made, w.prev, w.sandbox = map[string]string{}, map[string]string{}, map[string]time.Time{}, map[string]string{}, ""
	w.stale = failed
}

// removeStale removes containers an earlier removal failed for.
func (w *Worker) removeStale(ctx context.Context) error {
	for len(w.stale) > 0 {
		if err := w.rt.Remove(ctx, w.stale[0]); err != nil {
			return fmt.Errorf("old containers of the pod are not removed yet: %w", err)
		}
		w.stale = w.stale[1:]
	}
	return nil
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
				go runProbe(pctx, w.cfg.Clock, w.Send, w.rt, spec, id, w.state.PodIP, kind, p)
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
