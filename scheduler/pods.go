package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
)

// onPod follows one pod: a pod we launched (it carries our task id) is
// tracked as a task; an unbound pod of ours waits in pending.
func (s *Scheduler) onPod(ctx context.Context, pod *v1.Pod, deleted bool) {
	if id := pod.Annotations[podspec.TaskIDAnnotation]; id != "" && pod.Spec.NodeName != "" {
		delete(s.pending, pod.UID)
		s.onBoundPod(ctx, id, pod, deleted)
		return
	}
	if deleted || !s.serves(pod) {
		delete(s.pending, pod.UID)
		return
	}
	if _, launching := s.tasks[podspec.TaskID(pod.UID)]; launching {
		return // being bound: the informer has not seen the binding yet
	}
	pp := s.pending[pod.UID]
	if pp != nil && pp.pod.ResourceVersion == pod.ResourceVersion {
		return
	}
	c := pod.DeepCopy()
	podspec.Default(c, s.cfg.Defaults)
	next := &pendingPod{pod: c, place: NewPod(c, s.cfg.PortStrategy), firstSeen: time.Now()}
	if pp != nil {
		next.firstSeen, next.attempts, next.notBefore, next.lastReason = pp.firstSeen, pp.attempts, pp.notBefore, pp.lastReason
	} else if !pod.CreationTimestamp.IsZero() && pod.CreationTimestamp.Time.Before(next.firstSeen) {
		next.firstSeen = pod.CreationTimestamp.Time
	}
	if err := podspec.Validate(c, s.cfg.Policy); err != nil {
		next.invalid = err.Error()
		if next.invalid != next.lastReason {
			next.lastReason = next.invalid
			s.log.Warn("pod refused: k8sm cannot run it", "pod", key(pod.Namespace, pod.Name), "err", err)
			s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedScheduling", "k8sm cannot run this pod: %s", next.invalid)
		}
	}
	if pp == nil {
		s.log.Debug("pod pending", "pod", key(pod.Namespace, pod.Name))
	}
	s.pending[pod.UID] = next
}

func (s *Scheduler) onBoundPod(ctx context.Context, id string, pod *v1.Pod, deleted bool) {
	t := s.tasks[id]
	if t == nil {
		if deleted || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed && pod.DeletionTimestamp == nil {
			return
		}
		// A pod an earlier leader launched: rebuild the task from the
		// annotations and ask Mesos how it is.
		t = &task{id: id, namespace: pod.Namespace, name: pod.Name, uid: pod.UID,
			agentID: pod.Annotations[podspec.AgentIDAnnotation], owner: ownerOf(pod), state: mesos.TASK_STAGING}
		s.tasks[id] = t
		s.reconciling[id] = true
		s.log.Debug("task found from pod annotations", "task", id, "pod", key(pod.Namespace, pod.Name), "agent", t.agentID)
	}
	if deleted {
		t.gone = true
		if t.known && terminal(t.state) {
			delete(s.tasks, id)
		} else {
			s.kill(ctx, t, 0)
		}
		return
	}
	if pod.DeletionTimestamp != nil {
		if t.deleting == nil {
			dl := pod.DeletionTimestamp.Time
			t.deleting = &dl
			s.log.Info("pod deleted: killing its task", "pod", key(t.namespace, t.name), "task", id)
		}
		switch {
		case t.known && terminal(t.state):
			s.deletePod(ctx, t)
		case t.killSent.IsZero():
			grace := time.Duration(0)
			if g := pod.DeletionGracePeriodSeconds; g != nil {
				grace = time.Duration(*g) * time.Second
			}
			s.kill(ctx, t, grace)
		}
	}
}

// kill asks Mesos to kill t, with grace as the kill policy (0: the task's
// own policy).
func (s *Scheduler) kill(ctx context.Context, t *task, grace time.Duration) {
	c := calls.Kill(t.id, t.agentID)
	if grace > 0 {
		c.Kill.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(grace)}}
	}
	t.killSent = time.Now()
	if err := s.call(ctx, c); err == nil {
		s.log.Info("KILL sent", "task", t.id, "pod", key(t.namespace, t.name), "grace", grace)
	}
}

// deletePod removes the pod object once its task is over (what the
// kubelet does at the end of a graceful deletion).
func (s *Scheduler) deletePod(ctx context.Context, t *task) {
	if t.gone {
		return
	}
	t.gone = true
	ns, name, uid := t.namespace, t.name, t.uid
	go func() {
		err := s.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			s.log.Warn("remove deleted pod", "pod", key(ns, name), "err", err)
			return
		}
		s.log.Info("pod removed after its task ended", "pod", key(ns, name))
	}()
}

func (s *Scheduler) onUpdate(ctx context.Context, st mesos.TaskStatus) {
	state := st.GetState()
	s.m.StatusUpdates.WithLabelValues(state.String()).Inc()
	id := st.TaskID.Value
	if st.UUID != nil {
		_ = s.call(ctx, calls.Acknowledge(st.GetAgentID().GetValue(), id, st.UUID))
	}
	delete(s.reconciling, id)
	t := s.tasks[id]
	if t == nil {
		if !terminal(state) && podspec.PodUID(id) != "" && s.connected {
			// A k8sm task without a pod: its pod was deleted while no
			// scheduler led.
			s.log.Warn("killing a task whose pod is gone", "task", id, "state", state.String())
			_ = s.call(ctx, calls.Kill(id, st.GetAgentID().GetValue()))
		}
		return
	}
	if st.AgentID != nil && t.agentID == "" {
		t.agentID = st.AgentID.Value
	}
	prev, wasKnown := t.state, t.known
	t.state, t.known = state, true
	if !wasKnown || prev != state {
		s.log.Info("task "+state.String(), "task", id, "pod", key(t.namespace, t.name),
			"source", st.GetSource().String(), "reason", reasonOf(st), "message", st.GetMessage())
	}
	if !terminal(state) {
		return
	}
	if t.deleting != nil || t.gone {
		if t.gone {
			delete(s.tasks, id)
			return
		}
		s.deletePod(ctx, t)
		return
	}
	if st.Reason != nil {
		switch *st.Reason {
		case mesos.REASON_AGENT_REMOVED, mesos.REASON_AGENT_REMOVED_BY_OPERATOR:
			s.agentGone(ctx, t.agentID, "task "+state.String()+": "+reasonOf(st))
		}
	}
	// The executor writes the status of pods it ran; a task that ended
	// without it (refused by the master, lost with its agent, its executor
	// gone) is marked Failed here, so its controller replaces it.
	if st.GetSource() != mesos.SOURCE_EXECUTOR && !t.podFailed {
		t.podFailed = true
		s.failPod(ctx, t, st)
	}
}

func reasonOf(st mesos.TaskStatus) string {
	if st.Reason == nil {
		return ""
	}
	return st.Reason.String()
}

// failPod sets the pod's phase to Failed with the Mesos state, reason and
// message.
func (s *Scheduler) failPod(ctx context.Context, t *task, st mesos.TaskStatus) {
	reason := "Mesos" + st.GetState().String()
	msg := fmt.Sprintf("Mesos task %s is %s", t.id, st.GetState().String())
	if st.Reason != nil {
		msg += " (" + st.Reason.String() + ")"
	}
	if m := st.GetMessage(); m != "" {
		msg += ": " + m
	}
	ns, name, uid := t.namespace, t.name, t.uid
	go func() {
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": uid},
			"status": map[string]any{"phase": v1.PodFailed, "reason": reason, "message": msg,
				"conditions": []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: reason, LastTransitionTime: metav1.Now()}}},
		})
		_, err := s.cs.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("mark pod Failed", "pod", key(ns, name), "err", err)
			return
		}
		s.log.Info("pod marked Failed", "pod", key(ns, name), "reason", reason, "message", msg)
	}()
}

// onLaunched: tasks whose bind or ACCEPT failed are forgotten; their pods
// wait again (if still unbound) or are marked Failed (bound, never
// launched).
func (s *Scheduler) onLaunched(ctx context.Context, m msgLaunched) {
	for id, why := range m.failed {
		t := s.tasks[id]
		if t == nil {
			continue
		}
		delete(s.tasks, id)
		s.log.Warn("pod not launched", "pod", key(t.namespace, t.name), "task", id, "why", why)
		if p, err := s.pods.Pods(t.namespace).Get(t.name); err == nil && p.UID == t.uid {
			if p.Spec.NodeName == "" {
				s.onPod(ctx, p, false)
			} else {
				s.tasks[id] = t
				t.state, t.known, t.podFailed = mesos.TASK_ERROR, true, true
				s.failPod(ctx, t, mesos.TaskStatus{TaskID: mesos.TaskID{Value: id}, State: mesos.TASK_ERROR.Enum(), Message: &why})
			}
		}
	}
}

// deadlines retries KILLs and removes pods whose deletion deadline passed
// without the task ending (an agent that does not answer).
func (s *Scheduler) deadlines(ctx context.Context, now time.Time) {
	for _, t := range s.tasks {
		if t.deleting == nil || t.gone || (t.known && terminal(t.state)) {
			continue
		}
		switch {
		case now.After(t.deleting.Add(10 * time.Second)):
			s.log.Warn("task did not end by the pod's deletion deadline: removing the pod anyway", "pod", key(t.namespace, t.name), "task", t.id)
			s.deletePod(ctx, t)
		case s.connected && now.Sub(t.killSent) > 15*time.Second:
			s.kill(ctx, t, 0)
		}
	}
}

// decline declines offers (one call per agent: DECLINE is ACCEPT without
// operations, and an ACCEPT names one agent's offers).
func (s *Scheduler) decline(ctx context.Context, offers []mesos.Offer, refuse time.Duration, reason string) {
	byAgent := map[string][]mesos.OfferID{}
	var order []string
	for _, o := range offers {
		a := o.AgentID.Value
		if _, ok := byAgent[a]; !ok {
			order = append(order, a)
		}
		byAgent[a] = append(byAgent[a], o.ID)
		delete(s.offers, o.ID.Value)
	}
	for _, a := range order {
		ids := byAgent[a]
		s.m.OffersDeclined.WithLabelValues(reason).Add(float64(len(ids)))
		_ = s.call(ctx, calls.Decline(ids...).With(calls.RefuseSeconds(refuse)))
	}
}
