package mesos

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Wait is how long a Scheduler waits for an event that must come.
const Wait = 20 * time.Second

// Scheduler is a test framework driven through mesos-go's own httpsched
// client: it records every event, and waits for the ones a test expects.
type Scheduler struct {
	// ID is the framework id from SUBSCRIBED.
	ID string
	// Timeout bounds each wait for an event (default Wait).
	Timeout time.Duration

	t      testing.TB
	caller calls.Caller
	cancel context.CancelFunc
	resp   io.Closer
	done   chan struct{}

	mu     sync.Mutex
	events []*scheduler.Event
	wake   chan struct{}
}

// Subscribe subscribes info to the scheduler API at url and waits for
// SUBSCRIBED; the subscription ends with the test.
func Subscribe(t testing.TB, url string, info mesos.FrameworkInfo, codec encoding.Codec) *Scheduler {
	t.Helper()
	cli := httpcli.New(httpcli.Endpoint(url), httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.Timeout(5*time.Second))))
	s := &Scheduler{t: t, caller: httpsched.NewCaller(cli), wake: make(chan struct{}, 1), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	resp, err := s.caller.Call(ctx, calls.Subscribe(&info))
	if err != nil {
		cancel()
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	s.resp = resp
	go func() {
		defer close(s.done)
		for {
			var e scheduler.Event
			if err := resp.Decode(&e); err != nil {
				return
			}
			s.mu.Lock()
			s.events = append(s.events, &e)
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(s.Close)
	e := s.Next("SUBSCRIBED", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_SUBSCRIBED || e.Type == scheduler.Event_ERROR
	})
	if e.Type == scheduler.Event_ERROR {
		t.Fatalf("SUBSCRIBE answered ERROR %q", e.Error.Message)
	}
	s.ID = e.Subscribed.FrameworkID.Value
	return s
}

// Close cuts the subscription as a scheduler process exit would.
func (s *Scheduler) Close() {
	s.cancel()
	_ = s.resp.Close() // unblocks Decode: mesos-go does not watch ctx on a stream
	<-s.done
}

// Next returns (and consumes) the first event that matches, waiting for it.
func (s *Scheduler) Next(what string, match func(*scheduler.Event) bool) *scheduler.Event {
	s.t.Helper()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = Wait
	}
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		for i, e := range s.events {
			if match(e) {
				s.events = append(s.events[:i:i], s.events[i+1:]...)
				s.mu.Unlock()
				return e
			}
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
			s.mu.Lock()
			n := len(s.events)
			s.mu.Unlock()
			if n == 0 {
				s.t.Fatalf("waiting for %s: the event stream ended", what)
			}
			select {
			case <-deadline:
				s.t.Fatalf("waiting for %s: the stream ended without it", what)
			case <-time.After(10 * time.Millisecond):
			}
		case <-deadline:
			s.t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

// None asserts that no matching event arrives during d (used only where
// the double's own cycle, not machine speed, bounds the wait).
func (s *Scheduler) None(what string, d time.Duration, match func(*scheduler.Event) bool) {
	s.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		s.mu.Lock()
		for _, e := range s.events {
			if match(e) {
				s.mu.Unlock()
				s.t.Fatalf("unexpected %s: %v", what, e)
			}
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Scheduler) Call(c *scheduler.Call) error {
	c.FrameworkID = &mesos.FrameworkID{Value: s.ID}
	resp, err := s.caller.Call(context.Background(), c)
	if resp != nil {
		_ = resp.Close()
	}
	return err
}

func (s *Scheduler) Must(c *scheduler.Call) {
	s.t.Helper()
	if err := s.Call(c); err != nil {
		s.t.Fatalf("%s: %v", c.Type, err)
	}
}

func (s *Scheduler) Offer() mesos.Offer {
	s.t.Helper()
	e := s.Next("OFFERS", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_OFFERS })
	return e.Offers.Offers[0]
}

// Update waits for an UPDATE of task in state.
func (s *Scheduler) Update(task string, state mesos.TaskState) *mesos.TaskStatus {
	s.t.Helper()
	e := s.Next(fmt.Sprintf("UPDATE %s %s", task, state), func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == task && e.Update.Status.GetState() == state
	})
	st := e.Update.Status
	return &st
}

func (s *Scheduler) Ack(st *mesos.TaskStatus) {
	s.t.Helper()
	if st.UUID == nil {
		s.t.Fatalf("ack of an update without uuid: %v", st)
	}
	s.Must(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
}

// Launch accepts offer with tasks, declining the rest with refuse_seconds 0.
func (s *Scheduler) Launch(o mesos.Offer, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	for i := range tasks {
		tasks[i].AgentID = o.AgentID
	}
	s.Must(calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(o.ID)).With(calls.RefuseSeconds(0)))
}

// Events returns a copy of the events received and not yet consumed.
func (s *Scheduler) Events() []*scheduler.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*scheduler.Event(nil), s.events...)
}
