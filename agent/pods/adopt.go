package pods

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
)

// Wanted is a pod the caller (the executor, from what Mesos says still runs)
// wants kept: its containers are adopted if they are there.
type Wanted struct {
	Pod    *v1.Pod // defaulted and validated, as for Launch
	TaskID string
	Limits cgroups.Limits
}

// Adopt takes over the containers an earlier manager of this executor left
// running, so that the pods go on without a restart. A container is
// adopted when its pod UID and task id are those of a wanted pod; every
// other container of this executor is an orphan and is removed. It returns
// the UIDs of the pods adopted (sorted); a wanted pod with no container
// left is not adopted, and the caller decides whether to launch it again.
func (m *Manager) Adopt(ctx context.Context, wanted []Wanted) ([]string, error) {
	list, err := m.rt.List(ctx, m.ownLabel())
	if err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
	byPod := map[string][]runtime.Summary{}
	want := map[string]Wanted{}
	for _, w := range wanted {
		want[string(w.Pod.UID)] = w
	}
	var orphans []runtime.Summary
	for _, c := range list {
		_, ref, _, err := runtime.ParseLabels(c.Labels)
		if w, ok := want[ref.UID]; err == nil && ok && w.TaskID == ref.TaskID {
			byPod[ref.UID] = append(byPod[ref.UID], c)
			continue
		}
		orphans = append(orphans, c)
	}
	var errs []error
	for _, c := range orphans {
		m.log.Info("removing a container of this executor no wanted pod owns",
			"container", short(c.ID), "task", c.Labels[runtime.LabelTaskID], "pod_uid", c.Labels[runtime.LabelPodUID])
		if err := m.rt.Remove(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	var adopted []string
	for uid, found := range byPod {
		w := want[uid]
		if err := m.start(w.Pod, w.TaskID, w.Limits, found); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("adopted pod", "pod", w.Pod.Namespace+"/"+w.Pod.Name, "uid", uid, "containers", len(found))
		adopted = append(adopted, uid)
	}
	sort.Strings(adopted)
	if len(errs) > 0 {
		return adopted, fmt.Errorf("adopt: %w", errors.Join(errs...))
	}
	return adopted, nil
}

// resume rebuilds the worker's state from the containers an earlier worker
// left (w.found) instead of starting the pod: the machine is replayed from
// Start, and each action it asks for that those containers already did is
// answered with what Docker says of them (the sandbox's IP; a container's
// start, and exit if it ended). Only the actions nothing answers are
// carried out. Without a running sandbox the pod is made again from
// scratch, after its old containers are removed.
func (w *Worker) resume(ctx context.Context) {
	newest := map[string]runtime.Summary{}
	var extra []string
	// The newest instance of each container counts; the one before it of
	// an app container is its previous instance (logs --previous).
	found := slices.SortedFunc(slices.Values(w.found), func(a, b runtime.Summary) int { return b.Created.Compare(a.Created) })
	for _, c := range found {
		name := c.Labels[runtime.LabelContainerName]
		_, seen := newest[name]
		switch {
		case !seen:
			newest[name] = c
		case w.prev[name] == "" && name != runtime.SandboxName:
			w.prev[name] = c.ID
		default:
			extra = append(extra, c.ID)
		}
	}
	for _, id := range extra { // earlier instances
		if err := w.rt.Remove(ctx, id); err != nil {
			w.log.Warn("remove an older instance", "id", short(id), "err", err)
		}
	}
	sb, ok := newest[runtime.SandboxName]
	var ip string
	if ok {
		st, err := w.rt.Inspect(ctx, sb.ID)
		ok = err == nil && st.Running
		ip = st.IP
	}
	pc, err := w.cg.CreatePod(string(w.pod.UID), w.cfg.Limits)
	if err == nil {
		w.setPodCg(pc)
		w.oomSeen, _ = pc.OOMKills()
		w.cfg.Spec.CgroupParent, err = cgroups.DockerParent(pc.Path(), w.cfg.DockerDriver)
	}
	if !ok || err != nil {
		w.log.Warn("cannot adopt the pod: its sandbox is not running; making it again", "err", err)
		for _, c := range newest {
			_ = w.rt.Remove(ctx, c.ID)
		}
		w.Send(Start{})
		return
	}
	w.sandbox, w.made[sb.ID] = sb.ID, time.Now()
	w.cfg.Spec.SandboxID, w.cfg.Spec.PodIP = sb.ID, ip
	for name, c := range newest {
		if name != runtime.SandboxName {
			w.ids[name], w.names[c.ID], w.made[c.ID] = c.ID, name, time.Now()
		}
	}
	queue := []any{Start{}}
	answered := map[string]bool{}
	var todo []Action
	for len(queue) > 0 {
		ev := queue[0]
		queue = queue[1:]
		var acts []Action
		w.state, acts = w.cfg.Machine.Next(w.state, ev)
		for _, a := range acts {
			switch a := a.(type) {
			case CreateSandbox:
				queue = append(queue, SandboxReady{IP: ip})
			case StartContainer:
				id := w.ids[a.Name]
				if id == "" || answered[a.Name] {
					todo = append(todo, a)
					continue
				}
				answered[a.Name] = true
				queue = append(queue, w.replayed(ctx, a.Name, id)...)
			case Report:
			default:
				todo = append(todo, a)
			}
		}
	}
	for _, a := range todo {
		w.do(ctx, a)
	}
	w.do(ctx, Report{})
}

// replayed is what an adopted container did: its restart count, its start,
// and its exit if it ended while no worker watched.
func (w *Worker) replayed(ctx context.Context, name, id string) []any {
	st, err := w.rt.Inspect(ctx, id)
	if err != nil {
		now := w.cfg.Clock.Now()
		return []any{Started{Name: name, At: now}, Exited{Name: name, Exit: Exit{Code: 137,
			Reason: "ContainerStatusUnknown", Message: "The container could not be located", FinishedAt: now}}}
	}
	n, _ := strconv.Atoi(st.Labels[runtime.LabelRestartCount])
	evs := []any{Adopted{Name: name, Restarts: int32(n)}, Started{Name: name, At: st.StartedAt}}
	if !st.Running {
		if x := w.exitOf(ctx, id); x != nil {
			evs = append(evs, x)
		}
	}
	return evs
}
