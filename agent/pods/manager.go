package pods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
)

// ManagerRuntime is what the manager needs of the runtime
// (*runtime.Docker satisfies it).
type ManagerRuntime interface {
	Runtime
	List(ctx context.Context, labels map[string]string) ([]runtime.Summary, error)
	Events(ctx context.Context, label string) (<-chan runtime.Event, <-chan error)
	Logs(ctx context.Context, id string, o runtime.LogOptions) (io.ReadCloser, error)
	ExecStream(ctx context.Context, id string, cmd []string, s runtime.Streams) (int, error)
	Attach(ctx context.Context, id string, s runtime.Streams) error
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Worker is the template of every pod's worker (Spec.TaskID is set per
	// pod).
	Worker WorkerConfig
	// RelistPeriod is how often every pod's containers are listed as a
	// safety net for lost Docker events (default 10s).
	RelistPeriod time.Duration
}

// Manager owns the pod workers of one executor and feeds them Docker's
// events.
type Manager struct {
	cfg    ManagerConfig
	rt     ManagerRuntime
	cg     Cgroups
	log    *slog.Logger
	report func(podUID string, st v1.PodStatus, s State)

	// ctx is every worker's: Close ends them and leaves their pods running.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	pods map[string]*podEntry
}

type podEntry struct {
	w    *Worker
	done chan struct{}
}

// NewManager builds a manager; report gets every pod status change.
func NewManager(cfg ManagerConfig, rt ManagerRuntime, cg Cgroups, log *slog.Logger, report func(string, v1.PodStatus, State)) *Manager {
	if cfg.RelistPeriod <= 0 {
		cfg.RelistPeriod = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, rt: rt, cg: cg, log: log, report: report, pods: map[string]*podEntry{}, ctx: ctx, cancel: cancel}
}

// Launch starts a worker for a defaulted, validated pod. limits are the pod
// cgroup's. Pods are keyed by UID; launching one twice is an error.
func (m *Manager) Launch(pod *v1.Pod, taskID string, limits cgroups.Limits) error {
	return m.start(pod, taskID, limits, nil)
}

// start runs a pod's worker; found are containers to adopt (nil: start).
func (m *Manager) start(pod *v1.Pod, taskID string, limits cgroups.Limits, found []runtime.Summary) error {
	uid := string(pod.UID)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return fmt.Errorf("pod %s/%s: the manager is closed", pod.Namespace, pod.Name)
	}
	if _, dup := m.pods[uid]; dup {
		return fmt.Errorf("pod %s/%s (uid %s) already runs here", pod.Namespace, pod.Name, uid)
	}
	wc := m.cfg.Worker
	wc.Spec.TaskID, wc.Limits = taskID, limits
	e := &podEntry{done: make(chan struct{})}
	e.w = NewWorker(wc, pod, m.rt, m.cg, m.log, func(st v1.PodStatus, s State) {
		if m.report != nil {
			m.report(uid, st, s)
		}
	})
	e.w.found = found
	m.pods[uid] = e
	go func() {
		defer close(e.done)
		// The worker ends when its pod is gone from the node (see
		// StopAll), or on Close, which leaves the pod running.
		switch err := e.w.Run(m.ctx); {
		case err != nil && m.ctx.Err() != nil:
			m.log.Info("pod worker closed; its containers keep running", "uid", uid)
		case err != nil:
			m.log.Error("pod worker ended", "uid", uid, "err", err)
		}
		m.mu.Lock()
		delete(m.pods, uid)
		m.mu.Unlock()
	}()
	return nil
}

// Close ends every worker without stopping its pod: the containers keep
// running for a later manager to Adopt (an executor that restarts, or a
// test). The manager is not usable afterwards.
func (m *Manager) Close() {
	m.cancel()
	m.mu.Lock()
	entries := make([]*podEntry, 0, len(m.pods))
	for _, e := range m.pods {
		entries = append(entries, e)
	}
	m.mu.Unlock()
	for _, e := range entries {
		<-e.done
	}
}

// Kill asks a pod to stop within grace; Done(uid) closes when it is gone.
func (m *Manager) Kill(uid string, grace time.Duration) error {
	m.mu.Lock()
	e, ok := m.pods[uid]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("no pod with uid %s", uid)
	}
	e.w.Send(Kill{Grace: grace})
	return nil
}

// Done returns a channel closed when the pod's worker has finished (closed
// at once for an unknown pod).
func (m *Manager) Done(uid string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.pods[uid]; ok {
		return e.done
	}
	c := make(chan struct{})
	close(c)
	return c
}

// Pods lists the UIDs of the pods whose workers run, sorted.
func (m *Manager) Pods() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	uids := make([]string, 0, len(m.pods))
	for u := range m.pods {
		uids = append(uids, u)
	}
	sort.Strings(uids)
	return uids
}

// Tasks is the set of task ids whose pods have a worker now (the
// reaper's Tasks).
func (m *Manager) Tasks() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(m.pods))
	for _, e := range m.pods {
		out[e.w.cfg.Spec.TaskID] = true
	}
	return out
}

// ownLabel selects the containers of this executor.
// ownLabel selects this executor's containers: its executor id on its own
// agent in its own framework. Executor ids are the same hash on every
// agent, and several agents may share one dockerd.
func (m *Manager) ownLabel() map[string]string {
	o := m.cfg.Worker.Spec.Owner
	l := map[string]string{runtime.LabelExecutorID: o.ExecutorID}
	if o.AgentID != "" {
		l[runtime.LabelAgentID] = o.AgentID
	}
	if o.FrameworkID != "" {
		l[runtime.LabelFrameworkID] = o.FrameworkID
	}
	return l
}

func (m *Manager) route(uid, id string) {
	m.mu.Lock()
	e, ok := m.pods[uid]
	m.mu.Unlock()
	if ok {
		e.w.ContainerDied(id)
	}
}

// Run feeds Docker's container events of this executor to the pod workers
// until ctx ends: a "die" goes to its pod's worker. When the stream breaks
// it reconnects with backoff (1s doubling to 30s) and relists; every
// RelistPeriod it relists anyway, so a lost event delays an exit, never
// hides it.
func (m *Manager) Run(ctx context.Context) error {
	label := runtime.LabelExecutorID + "=" + m.cfg.Worker.Spec.Owner.ExecutorID
	backoff := time.Second
	relist := time.NewTicker(m.cfg.RelistPeriod)
	defer relist.Stop()
	for {
		sctx, cancel := context.WithCancel(ctx)
		evs, errs := m.rt.Events(sctx, label)
		if m.relist(ctx) { // Docker answers again: the next break starts over
			backoff = time.Second
		}
		err := m.consume(ctx, evs, errs, relist.C)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.log.Warn("docker event stream broke; reconnecting", "err", err, "in", backoff.String())
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (m *Manager) consume(ctx context.Context, evs <-chan runtime.Event, errs <-chan error, tick <-chan time.Time) error {
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				return errors.New("event stream closed")
			}
			if e.Action == "die" {
				m.route(e.Labels[runtime.LabelPodUID], e.ID)
			}
		case err := <-errs:
			return err
		case <-tick:
			m.relist(ctx)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// relist tells every worker which of its containers exist and run: the
// safety net for lost events, and how containers that vanished (removed
// behind our back, a wiped Docker) are found.
func (m *Manager) relist(ctx context.Context) bool {
	at := time.Now()
	list, err := m.rt.List(ctx, m.ownLabel())
	if err != nil {
		m.log.Warn("relist failed", "err", err)
		return false
	}
	byPod := map[string]map[string]bool{}
	for _, c := range list {
		uid := c.Labels[runtime.LabelPodUID]
		if byPod[uid] == nil {
			byPod[uid] = map[string]bool{}
		}
		byPod[uid][c.ID] = c.State == "running" || c.State == "created"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, e := range m.pods {
		e.w.Relisted(at, byPod[uid])
	}
	return true
}

// ErrNotRemoved is StopAll's error when every process of every pod is dead
// but Docker has not finished removing their containers: the pods are
// stopped; their containers are left to a later StopAll, Adopt or the
// reaper.
var ErrNotRemoved = errors.New("processes dead, containers not yet removed")

// StopAll stops every pod in parallel: the stop signal now, SIGKILL to
// every process of every pod at killAt. It returns nil when every worker
// has finished and no container of this executor is left. From killAt on
// it also SIGKILLs, through their cgroups, whatever processes the pods
// still have, every 100ms, and returns an error wrapping ErrNotRemoved as
// soon as none is left while Docker is still removing containers (the
// pods are stopped; Drain waits for the rest). When ctx ends first with
// processes surviving SIGKILL, the error names their pods.
func (m *Manager) StopAll(ctx context.Context, killAt time.Time) error {
	grace := max(time.Until(killAt), time.Millisecond)
	m.mu.Lock()
	entries := make(map[string]*podEntry, len(m.pods))
	for uid, e := range m.pods {
		entries[uid] = e
	}
	m.mu.Unlock()
	for _, e := range entries {
		e.w.Send(Kill{Grace: grace})
	}
	kill := time.NewTimer(grace)
	defer kill.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	killing := false
	for !allDone(entries) {
		select {
		case <-ctx.Done():
			if left := m.killLeft(ctx, entries); len(left) > 0 {
				return fmt.Errorf("stop all pods: processes of %d pods survive SIGKILL (%v): %w", len(left), left, ctx.Err())
			}
			return fmt.Errorf("stop all pods: %d pods: %w (%w)", stopping(entries), ErrNotRemoved, ctx.Err())
		case <-kill.C:
			killing = true
		case <-tick.C:
		}
		if killing && !allDone(entries) && len(m.killLeft(ctx, entries)) == 0 {
			return fmt.Errorf("stop all pods: %d pods: %w", stopping(entries), ErrNotRemoved)
		}
	}
	return m.removeLeft(ctx)
}

// Drain waits until every pod's worker has finished (its containers are
// removed), then removes containers of this executor no worker knew; ctx's
// error if it ends first.
func (m *Manager) Drain(ctx context.Context) error {
	m.mu.Lock()
	entries := make(map[string]*podEntry, len(m.pods))
	for uid, e := range m.pods {
		entries[uid] = e
	}
	m.mu.Unlock()
	for _, e := range entries {
		select {
		case <-e.done:
		case <-ctx.Done():
			return fmt.Errorf("drain: %d pods still removing their containers: %w", stopping(entries), ctx.Err())
		}
	}
	return m.removeLeft(ctx)
}

// removeLeft removes the containers of this executor that are left.
func (m *Manager) removeLeft(ctx context.Context) error {
	left, err := m.rt.List(ctx, m.ownLabel())
	if err != nil {
		return fmt.Errorf("stop all pods: list what is left: %w", err)
	}
	for _, c := range left { // containers no worker knew (for example adopted later)
		if err := m.rt.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("stop all pods: remove %s: %w", c.ID, err)
		}
	}
	return nil
}

func allDone(entries map[string]*podEntry) bool { return stopping(entries) == 0 }

// stopping counts the entries whose worker has not finished.
func stopping(entries map[string]*podEntry) int {
	n := 0
	for _, e := range entries {
		select {
		case <-e.done:
		default:
			n++
		}
	}
	return n
}

// killLeft SIGKILLs, in parallel and within a short time of its own,
// every process of the pods still stopping, and returns the pods whose
// processes survive.
func (m *Manager) killLeft(ctx context.Context, entries map[string]*podEntry) []string {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		surviving []string
	)
	for uid, e := range entries {
		select {
		case <-e.done:
			continue
		default:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.w.KillProcesses(kctx); err != nil {
				m.log.Error("processes survive SIGKILL", "uid", uid, "err", err)
				mu.Lock()
				surviving = append(surviving, uid)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(surviving)
	return surviving
}
