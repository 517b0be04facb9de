package scheduler

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/k8sm/k8sm/podspec"
)

// bindWorkers bounds the Binding calls of one ACCEPT in flight.
const bindWorkers = 16

// cycle is one placement round: SUPPRESS or REVIVE offers, place the pods
// whose backoff is over on the held offers, launch, and decline offers held
// past their TTL.
func (s *Scheduler) cycle(ctx context.Context, now time.Time) {
	s.deadlines(ctx, now)
	var eligible []*pendingPod
	waiting := 0
	for _, pp := range s.pending {
		if pp.invalid != "" {
			continue
		}
		waiting++
		if !now.Before(pp.notBefore) {
			eligible = append(eligible, pp)
		}
	}
	s.m.PodsPending.Set(float64(waiting))
	if !s.connected {
		return
	}
	switch {
	case waiting == 0 && !s.suppressed:
		s.expire(ctx, now, true)
		if err := s.call(ctx, calls.Suppress()); err == nil {
			s.suppressed = true
			s.log.Debug("no pod pending: offers suppressed")
		}
		return
	case waiting > 0 && s.suppressed:
		if err := s.call(ctx, calls.Revive()); err == nil {
			s.suppressed = false
			s.log.Debug("pods pending: offers revived", "pending", waiting)
		}
	}
	if len(eligible) > 0 && len(s.offers) > 0 && now.Sub(s.lastOffer) >= offerSettle {
		s.place(ctx, eligible, now)
	}
	s.expire(ctx, now, waiting == 0)
}

// refuse is the filter of declined offers.
func (s *Scheduler) refuse() time.Duration {
	return time.Duration(s.cfg.RefuseSeconds * float64(time.Second))
}

// expire declines the offers held for OfferTTL (all of them with all).
func (s *Scheduler) expire(ctx context.Context, now time.Time, all bool) {
	var old []mesos.Offer
	for _, o := range s.offers {
		if all || now.Sub(o.at) >= s.cfg.OfferTTL {
			old = append(old, o.offer)
		}
	}
	if len(old) > 0 {
		s.decline(ctx, old, s.refuse(), DeclineUnused)
	}
}

func (s *Scheduler) place(ctx context.Context, eligible []*pendingPod, now time.Time) {
	sort.Slice(eligible, func(i, j int) bool {
		a, b := eligible[i], eligible[j]
		if !a.firstSeen.Equal(b.firstSeen) {
			return a.firstSeen.Before(b.firstSeen)
		}
		return key(a.pod.Namespace, a.pod.Name) < key(b.pod.Namespace, b.pod.Name)
	})
	slots := s.slots()
	pods := make([]*Pod, len(eligible))
	byPod := make(map[*Pod]*pendingPod, len(eligible))
	for i, pp := range eligible {
		pods[i] = pp.place
		byPod[pp.place] = pp
	}
	plan := Place(pods, slots, s.ex, s.cfg.PortStrategy)
	for _, d := range plan.Declines {
		if d.Reason != DeclineIncompatible {
			continue
		}
		s.log.Info("declining incompatible offer", "agent", d.Slot.AgentID, "hostname", d.Slot.Hostname,
			"agent_executors", d.Slot.Executors, "want", s.ex.ID)
		var os []mesos.Offer
		for _, id := range d.Slot.OfferIDs {
			if o := s.offers[id]; o != nil {
				os = append(os, o.offer)
			}
		}
		s.decline(ctx, os, s.refuse(), DeclineIncompatible)
	}
	for _, u := range plan.Unplaced {
		s.unplaced(byPod[u.Pod], u.Reason, now)
	}
	for _, group := range plan.ByAgent() {
		s.launch(ctx, group, byPod, now)
	}
}

// slots groups the held offers by agent, with the agent's Node labels and
// its tasks by owner.
func (s *Scheduler) slots() []*Slot {
	byAgent := map[string][]mesos.Offer{}
	for _, o := range s.offers {
		byAgent[o.offer.AgentID.Value] = append(byAgent[o.offer.AgentID.Value], o.offer)
	}
	ids := make([]string, 0, len(byAgent))
	for id := range byAgent {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	owners := map[string]map[string]int{}
	for _, t := range s.tasks {
		if t.owner == "" || (t.known && terminal(t.state)) {
			continue
		}
		if owners[t.agentID] == nil {
			owners[t.agentID] = map[string]int{}
		}
		owners[t.agentID][t.owner]++
	}
	out := make([]*Slot, 0, len(ids))
	for _, id := range ids {
		os := byAgent[id]
		sort.Slice(os, func(i, j int) bool { return os[i].ID.Value < os[j].ID.Value })
		var extra map[string]string
		if s.nodes != nil {
			if n, err := s.nodes.Get(os[0].Hostname); err == nil {
				extra = n.Labels
			}
		}
		sl, err := NewSlot(os, extra)
		if err != nil {
			s.log.Error("bad offers", "agent", id, "err", err)
			continue
		}
		for o, n := range owners[id] {
			for range n {
				sl.Count(o)
			}
		}
		out = append(out, sl)
	}
	return out
}

// unplaced backs the pod off (1s doubling to BackoffMax) and, when the
// reason changed, says why in an event and the PodScheduled condition.
func (s *Scheduler) unplaced(pp *pendingPod, reason string, now time.Time) {
	pp.attempts++
	d := s.cfg.BackoffInitial << min(pp.attempts-1, 16)
	pp.notBefore = now.Add(min(d, s.cfg.BackoffMax))
	// Free resources move between rounds: only a reason of another shape
	// (not just other numbers) makes a new event.
	shape := strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return '#'
		}
		return r
	}, reason)
	if shape == pp.lastReason {
		return
	}
	pp.lastReason = shape
	pod := pp.pod
	s.log.Info("pod waits", "pod", key(pod.Namespace, pod.Name), "why", reason, "attempt", pp.attempts)
	s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedScheduling", "%s", reason)
	ns, name, uid := pod.Namespace, pod.Name, pod.UID
	go func() {
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": uid},
			"status": map[string]any{"conditions": []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionFalse,
				Reason: v1.PodReasonUnschedulable, Message: reason, LastTransitionTime: metav1.Now()}}},
		})
		_, err := s.cs.CoreV1().Pods(ns).Patch(context.Background(), name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			s.log.Debug("set PodScheduled=False", "pod", key(ns, name), "err", err)
		}
	}()
}

// launch binds each pod of one agent's group to the agent's node (the
// Binding carries the task annotations) and ACCEPTs the agent's offers
// with one LAUNCH of the bound pods' tasks. The API and Mesos calls run
// in a goroutine; the tasks are recorded now, so updates find them.
func (s *Scheduler) launch(ctx context.Context, group []Launch, byPod map[*Pod]*pendingPod, now time.Time) {
	slot := group[0].Slot
	type item struct {
		info mesos.TaskInfo
		pod  *v1.Pod
	}
	var items []item
	for _, l := range group {
		pp := byPod[l.Pod]
		info, bound, err := NewTask(l, &s.exInfo)
		if err != nil {
			s.unplaced(pp, err.Error(), now)
			continue
		}
		delete(s.pending, bound.UID)
		s.tasks[info.TaskID.Value] = &task{id: info.TaskID.Value, namespace: bound.Namespace, name: bound.Name,
			uid: bound.UID, agentID: slot.AgentID, owner: l.Pod.Owner, state: mesos.TASK_STAGING, launched: now}
		s.m.PlacementLatency.Observe(now.Sub(pp.firstSeen).Seconds())
		items = append(items, item{info, bound})
	}
	for _, id := range slot.OfferIDs {
		delete(s.offers, id)
	}
	offerIDs := make([]mesos.OfferID, len(slot.OfferIDs))
	for i, id := range slot.OfferIDs {
		offerIDs[i] = mesos.OfferID{Value: id}
	}
	// Unused resources of an ACCEPT come back at the next allocation: more
	// pods may be waiting for them.
	leftover := time.Duration(0)
	fid := s.fid
	hostname := slot.Hostname
	go func() {
		failed := map[string]string{}
		var mu sync.Mutex
		ok := make([]bool, len(items))
		sem := make(chan struct{}, bindWorkers)
		var wg sync.WaitGroup
		for i, it := range items {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				p := it.pod
				b := &v1.Binding{
					ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID,
						Annotations: BindAnnotations(it.info.TaskID.Value, slot.AgentID, s.ex.ID, slot.OfferIDs[0], p)},
					Target: v1.ObjectReference{Kind: "Node", Name: hostname},
				}
				if err := s.cs.CoreV1().Pods(p.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					failed[it.info.TaskID.Value] = "bind: " + err.Error()
					mu.Unlock()
					return
				}
				ok[i] = true
				s.recorder.Eventf(p, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s (Mesos agent %s)", p.Namespace, p.Name, hostname, slot.AgentID)
			}()
		}
		wg.Wait()
		var tasks []mesos.TaskInfo
		for i, it := range items {
			if ok[i] {
				tasks = append(tasks, it.info)
			}
		}
		c := calls.Decline(offerIDs...)
		if len(tasks) > 0 {
			c = calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(offerIDs...))
		}
		if err := s.callAs(ctx, fid, c.With(calls.RefuseSeconds(leftover))); err != nil {
			for _, t := range tasks {
				failed[t.TaskID.Value] = "ACCEPT: " + err.Error()
			}
		} else {
			s.m.Launches.Add(float64(len(tasks)))
			s.log.Info("launched", "agent", slot.AgentID, "hostname", hostname, "tasks", len(tasks), "offers", len(offerIDs))
		}
		if len(failed) > 0 {
			s.post(msgLaunched{agentID: slot.AgentID, failed: failed})
		}
	}()
}

// seeAgent records an agent from its offer and makes its Node.
func (s *Scheduler) seeAgent(ctx context.Context, o mesos.Offer) {
	a := s.agents[o.AgentID.Value]
	if a == nil {
		labels, skipped := podspec.NodeLabels(o.Hostname, o.Attributes)
		for _, sk := range skipped {
			s.log.Warn("agent attribute not usable as a Node label; skipped", "agent", o.AgentID.Value, "attribute", sk)
		}
		a = &agent{id: o.AgentID.Value, hostname: o.Hostname, labels: labels}
		s.agents[a.id] = a
	}
	a.gone = false
	if a.nodeMade {
		return
	}
	a.nodeMade = true
	name, labels := a.hostname, a.labels
	go func() {
		_, err := s.cs.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		switch {
		case err == nil:
			s.log.Info("Node created for Mesos agent", "node", name, "agent", o.AgentID.Value)
		case apierrors.IsAlreadyExists(err):
		default:
			s.log.Warn("create Node for Mesos agent", "node", name, "err", err)
			s.post(msgNodeFailed{o.AgentID.Value})
		}
	}()
}

type msgNodeFailed struct{ agentID string }

// agentGone marks the agent's Node NotReady; its executor can no longer.
func (s *Scheduler) agentGone(ctx context.Context, agentID, why string) {
	a := s.agents[agentID]
	for id, o := range s.offers {
		if o.offer.AgentID.Value == agentID {
			delete(s.offers, id)
		}
	}
	if a == nil || a.gone {
		return
	}
	a.gone = true
	name := a.hostname
	s.log.Warn("Mesos agent gone: Node NotReady", "agent", agentID, "node", name, "why", why)
	go func() {
		now := metav1.Now()
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []v1.NodeCondition{{
			Type: v1.NodeReady, Status: v1.ConditionFalse, Reason: "MesosAgentGone", Message: why,
			LastHeartbeatTime: now, LastTransitionTime: now}}}})
		if _, err := s.cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			s.log.Warn("mark Node NotReady", "node", name, "err", err)
		}
	}()
}

func (s *Scheduler) saveFrameworkID(ctx context.Context, fid string) {
	for attempt := 0; ; attempt++ {
		err := s.store.Save(ctx, fid)
		if err == nil {
			return
		}
		s.log.Warn("store the framework id", "framework_id", fid, "err", err, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Second<<attempt, 30*time.Second)):
		}
	}
}
