package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/backoff"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/events"
)

// ErrFailedOver: another scheduler subscribed as our framework (the master
// sent ERROR "Framework failed over"); this one must stop leading.
var ErrFailedOver = errors.New("another scheduler took over the framework")

// subscription holds the live SUBSCRIBE response, so that the heartbeat
// watchdog and shutdown can cut it (mesos-go does not watch ctx on a
// stream, and has no heartbeat timeout: MESOS.md gotcha 4).
type subscription struct {
	mu   sync.Mutex
	resp mesos.Response
	fid  string // the framework id to subscribe as (shared with the loop)
}

func (sub *subscription) set(r mesos.Response) {
	sub.mu.Lock()
	sub.resp = r
	sub.mu.Unlock()
}

func (sub *subscription) cut() {
	sub.mu.Lock()
	r := sub.resp
	sub.resp = nil
	sub.mu.Unlock()
	if r != nil {
		_ = r.Close()
	}
}

func (sub *subscription) frameworkID() string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.fid
}

func (sub *subscription) setFrameworkID(id string) {
	sub.mu.Lock()
	sub.fid = id
	sub.mu.Unlock()
}

// recordingCaller keeps the SUBSCRIBE response in sub.
type recordingCaller struct {
	calls.Caller
	sub *subscription
}

func (c recordingCaller) Call(ctx context.Context, call *scheduler.Call) (mesos.Response, error) {
	resp, err := c.Caller.Call(ctx, call)
	if err == nil && call.Type == scheduler.Call_SUBSCRIBE {
		c.sub.set(resp)
	}
	return resp, err
}

// subscribeLoop runs mesos-go's scheduler controller: SUBSCRIBE (as the
// stored framework id once there is one), decode events, post them to the
// loop, and re-subscribe with backoff when the stream ends.
func (s *Scheduler) subscribeLoop(ctx context.Context) {
	s.sub.setFrameworkID(s.fid)
	info := s.cfg.Framework
	handler := events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
		select {
		case s.msgs <- msgEvent{e}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	go func() {
		<-ctx.Done()
		s.sub.cut()
	}()
	err := controller.Run(ctx, &info, recordingCaller{s.caller, s.sub},
		controller.WithEventHandler(handler),
		controller.WithFrameworkID(s.sub.frameworkID),
		controller.WithRegistrationTokens(backoff.Notifier(500*time.Millisecond, s.cfg.SubscribeBackoffMax, ctx.Done())),
		controller.WithSubscriptionTerminated(func(err error) {
			s.sub.cut()
			if ctx.Err() == nil {
				s.post(msgLost{err})
			}
		}),
	)
	if ctx.Err() == nil {
		s.log.Error("Mesos subscription loop ended", "err", err)
	}
}

// call sends c as our framework (from the loop only: it reads s.fid).
func (s *Scheduler) call(ctx context.Context, c *scheduler.Call) error {
	return s.callAs(ctx, s.fid, c)
}

// callAs sends c as framework fid; goroutines other than the loop use it
// with the id they were given.
func (s *Scheduler) callAs(ctx context.Context, fid string, c *scheduler.Call) error {
	c.FrameworkID = &mesos.FrameworkID{Value: fid}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := s.caller.Call(ctx, c)
	if resp != nil {
		_ = resp.Close()
	}
	if err != nil {
		s.log.Warn("Mesos call failed", "call", c.Type.String(), "err", err)
	}
	return err
}

func (s *Scheduler) onEvent(ctx context.Context, e *scheduler.Event) {
	switch e.Type {
	case scheduler.Event_SUBSCRIBED:
		s.onSubscribed(ctx, e.Subscribed)
	case scheduler.Event_OFFERS:
		now := time.Now()
		s.lastOffer = now
		for _, o := range e.Offers.Offers {
			s.m.OffersReceived.Inc()
			s.offers[o.ID.Value] = &heldOffer{offer: o, at: now}
			s.seeAgent(ctx, o)
		}
	case scheduler.Event_RESCIND:
		delete(s.offers, e.Rescind.OfferID.Value)
	case scheduler.Event_UPDATE:
		s.onUpdate(ctx, e.Update.Status)
	case scheduler.Event_FAILURE:
		f := e.Failure
		if f.ExecutorID == nil && f.AgentID != nil {
			s.agentGone(ctx, f.AgentID.Value, "the Mesos master reports the agent removed")
		} else if f.ExecutorID != nil {
			s.log.Warn("executor exited", "agent", f.AgentID.GetValue(), "executor", f.ExecutorID.Value, "status", f.GetStatus())
		}
	case scheduler.Event_ERROR:
		msg := e.Error.Message
		s.log.Error("Mesos master sent ERROR", "message", msg)
		switch {
		case strings.Contains(msg, "failed over"):
			s.post(errFailedOver{})
		case strings.Contains(msg, "removed") || strings.Contains(msg, "not found") || strings.Contains(msg, "cannot be found"):
			// The framework is gone (failover timeout passed, or
			// torn down): start afresh as a new framework.
			s.log.Warn("framework removed by the master: subscribing as a new framework", "old_framework_id", s.fid)
			s.fid = ""
			s.sub.setFrameworkID("")
			go s.saveFrameworkID(ctx, "")
		}
	case scheduler.Event_HEARTBEAT, scheduler.Event_MESSAGE, scheduler.Event_INVERSE_OFFERS,
		scheduler.Event_RESCIND_INVERSE_OFFER, scheduler.Event_UPDATE_OPERATION_STATUS:
	default:
		s.log.Debug("ignored Mesos event", "type", e.Type.String())
	}
}

type errFailedOver struct{}

func (s *Scheduler) onSubscribed(ctx context.Context, sub *scheduler.Event_Subscribed) {
	fid := sub.FrameworkID.Value
	if fid != s.fid {
		s.log.Info("framework registered", "framework_id", fid, "previous", s.fid)
		go s.saveFrameworkID(ctx, fid)
	} else {
		s.log.Info("framework re-subscribed", "framework_id", fid)
	}
	s.fid = fid
	s.sub.setFrameworkID(fid)
	s.connected = true
	s.heartbeat = 15 * time.Second
	if sub.HeartbeatIntervalSeconds != nil && *sub.HeartbeatIntervalSeconds > 0 {
		s.heartbeat = time.Duration(*sub.HeartbeatIntervalSeconds * float64(time.Second))
	}
	s.suppressed = false // a SUBSCRIBE un-suppresses (we subscribe with none suppressed)
	s.offers = map[string]*heldOffer{}
	s.m.Subscribed.Set(1)
	// Explicit reconciliation of every task we know, until each answers
	// (docs/reconciliation.md).
	s.reconciling = map[string]bool{}
	for id, t := range s.tasks {
		if !terminal(t.state) {
			s.reconciling[id] = true
		}
	}
	s.recAttempt = 0
	s.recNext = time.Now()
	s.implicitAt = time.Now().Add(s.cfg.ReconcileInterval)
}

func (s *Scheduler) onDisconnected(err error) {
	if s.connected {
		s.log.Warn("Mesos subscription lost; re-subscribing", "err", err)
	}
	s.connected = false
	s.m.Subscribed.Set(0)
	// The master rescinds our offers on disconnect (master.cpp:1414).
	s.offers = map[string]*heldOffer{}
}

// reconcile sends the explicit reconciliation still due, with truncated
// exponential backoff, and the periodic implicit one.
func (s *Scheduler) reconcile(ctx context.Context, now time.Time) {
	if !s.connected {
		return
	}
	if len(s.reconciling) > 0 && !now.Before(s.recNext) {
		tasks := map[string]string{}
		for id := range s.reconciling {
			if t := s.tasks[id]; t != nil {
				tasks[id] = t.agentID
			} else {
				delete(s.reconciling, id)
			}
		}
		if len(tasks) > 0 {
			s.log.Info("reconciling tasks", "tasks", len(tasks), "attempt", s.recAttempt+1)
			_ = s.call(ctx, calls.Reconcile(calls.ReconcileTasks(tasks)))
		}
		s.recAttempt++
		s.recNext = now.Add(min(time.Second<<min(s.recAttempt, 6), time.Minute))
	}
	if !now.Before(s.implicitAt) {
		s.implicitAt = now.Add(s.cfg.ReconcileInterval)
		s.log.Debug("implicit reconciliation")
		_ = s.call(ctx, calls.Reconcile())
	}
}

// watchHeartbeat cuts a subscription that has been silent for five
// heartbeat intervals (MESOS.md (c) Transport).
func (s *Scheduler) watchHeartbeat(now time.Time) {
	if s.connected && s.heartbeat > 0 && now.Sub(s.lastEvent) > 5*s.heartbeat {
		s.log.Warn("no event from the Mesos master for 5 heartbeat intervals; re-subscribing", "silent", now.Sub(s.lastEvent).Round(time.Second))
		s.connected = false
		s.sub.cut()
	}
}

func terminal(st mesos.TaskState) bool {
	switch st {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR, mesos.TASK_LOST,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}
