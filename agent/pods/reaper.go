package pods

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/k8sm/k8sm/agent/runtime"
)

// Orphan is a container the reaper would remove, and why.
type Orphan struct {
	ID     string
	Reason string
}

// OrphanInput is what Orphans decides from: the one definition of an
// orphan, used by each executor's reaper and by diag.
type OrphanInput struct {
	Containers []runtime.Summary
	// AgentID scopes the decision to the Mesos agent's own containers:
	// several agents may share one dockerd, and another agent's containers
	// are never orphans here. "" (diag, which may not know the agent):
	// every agent's.
	AgentID string
	// FrameworkID scopes it to one framework; "": every framework's.
	FrameworkID string
	// Live are the executor containers (Mesos container ids) known to be
	// alive, each with the task ids it runs; nil tasks: not known, only a
	// dead executor container then makes an orphan. A container of an
	// executor container not in Live is an orphan (an executor's
	// containers cannot outlive it legitimately); so is a container of a
	// live one whose task it does not run.
	Live map[string]map[string]bool
	Now  time.Time
	// Grace spares containers younger than this (a pod being started may
	// not be registered yet).
	Grace time.Duration
}

// Orphans decides, purely, which containers to remove: only containers with
// complete k8sm ownership labels, of the agent and framework in scope,
// older than the grace, whose executor container is not live or whose task
// it does not run. A container without the labels is never an orphan.
func Orphans(in OrphanInput) []Orphan {
	var out []Orphan
	for _, c := range in.Containers {
		owner, pod, _, err := runtime.ParseLabels(c.Labels)
		if err != nil || (in.FrameworkID != "" && owner.FrameworkID != in.FrameworkID) ||
			(in.AgentID != "" && owner.AgentID != in.AgentID) {
			continue
		}
		if in.Now.Sub(c.Created) < in.Grace {
			continue
		}
		tasks, live := in.Live[owner.ContainerID]
		switch {
		case !live:
			out = append(out, Orphan{c.ID, fmt.Sprintf("executor container %s is gone", owner.ContainerID)})
		case tasks != nil && !tasks[pod.TaskID]:
			out = append(out, Orphan{c.ID, fmt.Sprintf("task %s is not running here", pod.TaskID)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ReaperRuntime is what the reaper needs of the runtime.
type ReaperRuntime interface {
	Info(ctx context.Context) (runtime.Info, error)
	List(ctx context.Context, labels map[string]string) ([]runtime.Summary, error)
	Remove(ctx context.Context, id string) error
}

// Reaper removes orphan containers, level-triggered: each pass looks at what
// is there now. It skips a pass when Docker does not answer, bounds every
// call by CallTimeout, only logs in DryRun, and logs a failing pass only on
// the edge from success to failure.
type Reaper struct {
	RT          ReaperRuntime
	Log         *slog.Logger
	AgentID     string // the executor's agent: other agents' containers are never touched
	FrameworkID string
	Live        string
	Tasks       func() map[string]bool // the live executor's tasks, now
	Grace       time.Duration
	CallTimeout time.Duration
	DryRun      bool

	failing bool
}

// Start makes a pass now, before it returns, as a new executor must before
// it runs pods (every container of an earlier executor container is an
// orphan, whatever its age, and no pod of its own exists yet to race
// with). Then, until ctx ends, a goroutine makes one pass every interval
// with Grace set to twice the interval (a container being created is not
// an orphan). Failing passes log themselves, on edges.
func (r *Reaper) Start(ctx context.Context, interval time.Duration) {
	if _, err := r.Pass(ctx, time.Now()); err != nil {
		r.log().Warn("reap at start", "err", err)
	}
	r.Grace = 2 * interval
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				_, _ = r.Pass(ctx, now)
			}
		}
	}()
}

// Pass runs one reaping pass and returns what it removed (or, in dry-run,
// would remove).
func (r *Reaper) Pass(ctx context.Context, now time.Time) ([]Orphan, error) {
	timeout := r.CallTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := r.RT.Info(cctx); err != nil {
		r.edge(err)
		return nil, fmt.Errorf("reaper: docker unhealthy, pass skipped: %w", err)
	}
	list, err := r.RT.List(cctx, map[string]string{runtime.LabelFrameworkID: r.FrameworkID})
	if err != nil {
		r.edge(err)
		return nil, fmt.Errorf("reaper: %w", err)
	}
	tasks := r.Tasks()
	if tasks == nil {
		tasks = map[string]bool{} // known: none
	}
	orphans := Orphans(OrphanInput{Containers: list, AgentID: r.AgentID, FrameworkID: r.FrameworkID,
		Live: map[string]map[string]bool{r.Live: tasks}, Now: now, Grace: r.Grace})
	var firstErr error
	for _, o := range orphans {
		if r.DryRun {
			r.log().Info("would reap orphan container (dry run)", "container", o.ID, "reason", o.Reason)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		err := r.RT.Remove(rctx, o.ID)
		cancel()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("reaper: remove %s: %w", o.ID, err)
			continue
		}
		r.log().Info("reaped orphan container", "container", o.ID, "reason", o.Reason)
	}
	r.edge(firstErr)
	return orphans, firstErr
}

func (r *Reaper) edge(err error) {
	switch {
	case err != nil && !r.failing:
		r.log().Warn("reaper pass failed", "err", err)
	case err == nil && r.failing:
		r.log().Info("reaper passes succeed again")
	}
	r.failing = err != nil
}

func (r *Reaper) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
