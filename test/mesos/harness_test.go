package mesos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// wait is how long a test waits for an event that must come.
const wait = 20 * time.Second

type cluster struct {
	m *Master
	a *Agent
}

// newCluster starts a master and one agent with short intervals; mod
// adjusts the agent's configuration.
func newCluster(t *testing.T, mod func(*AgentConfig)) *cluster {
	t.Helper()
	// The work dir's cleanup must run after m.Close has reaped the
	// executors writing into it: cleanups run last-registered first.
	work := t.TempDir()
	m, err := NewMaster(MasterConfig{HeartbeatInterval: 100 * time.Millisecond, AllocationInterval: 20 * time.Millisecond, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	res, err := ParseResources("cpus:4;mem:4096;ports:[31000-32000]")
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := ParseAttributes("rack:r1;zone:z1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := AgentConfig{
		Hostname: "agent1.test", Resources: res, Attributes: attrs, WorkDir: work,
		ExecutorShutdownGracePeriod: time.Second, StatusUpdateRetryMin: 200 * time.Millisecond,
		StatusUpdateRetryMax: time.Second, // Under -race an exiting test executor would sleep 1 s
		// (GORACE atexit_sleep_ms), longer than some grace periods here.
		ExecutorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GORACE=atexit_sleep_ms=0 halt_on_error=1"},
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := m.AddAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{m: m, a: a}
}

// sched is a framework driven through mesos-go's own httpsched client.
type sched struct {
	t      *testing.T
	caller calls.Caller
	id     string
	cancel context.CancelFunc
	resp   io.Closer
	done   chan struct{}

	mu     sync.Mutex
	events []*scheduler.Event
	wake   chan struct{}
}

func frameworkInfo(name string) mesos.FrameworkInfo {
	return mesos.FrameworkInfo{User: "root", Name: name}
}

// subscribe subscribes info and waits for SUBSCRIBED.
func subscribe(t *testing.T, c *cluster, info mesos.FrameworkInfo, codec encoding.Codec) *sched {
	t.Helper()
	cli := httpcli.New(httpcli.Endpoint(c.m.SchedulerURL()), httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.Timeout(5*time.Second))))
	s := &sched{t: t, caller: httpsched.NewCaller(cli), wake: make(chan struct{}, 1), done: make(chan struct{})}
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
	t.Cleanup(s.close)
	e := s.next("SUBSCRIBED", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_SUBSCRIBED || e.Type == scheduler.Event_ERROR
	})
	if e.Type == scheduler.Event_ERROR {
		t.Fatalf("SUBSCRIBE answered ERROR %q", e.Error.Message)
	}
	s.id = e.Subscribed.FrameworkID.Value
	return s
}

func protobuf() encoding.Codec  { return codecs.ByMediaType[codecs.MediaTypeProtobuf] }
func jsonCodec() encoding.Codec { return codecs.ByMediaType[codecs.MediaTypeJSON] }

// close cuts the subscription as a scheduler process exit would.
func (s *sched) close() {
	s.cancel()
	_ = s.resp.Close() // unblocks Decode: mesos-go does not watch ctx on a stream
	<-s.done
}

// next returns (and consumes) the first event that matches, waiting for it.
func (s *sched) next(what string, match func(*scheduler.Event) bool) *scheduler.Event {
	s.t.Helper()
	deadline := time.After(wait)
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
			s.t.Fatalf("no %s within %v", what, wait)
		}
	}
}

// none asserts that no matching event arrives during d (used only where
// the double's own cycle, not machine speed, bounds the wait).
func (s *sched) none(what string, d time.Duration, match func(*scheduler.Event) bool) {
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

func (s *sched) call(c *scheduler.Call) error {
	c.FrameworkID = &mesos.FrameworkID{Value: s.id}
	resp, err := s.caller.Call(context.Background(), c)
	if resp != nil {
		_ = resp.Close()
	}
	return err
}

func (s *sched) must(c *scheduler.Call) {
	s.t.Helper()
	if err := s.call(c); err != nil {
		s.t.Fatalf("%s: %v", c.Type, err)
	}
}

func (s *sched) offer() mesos.Offer {
	s.t.Helper()
	e := s.next("OFFERS", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_OFFERS })
	return e.Offers.Offers[0]
}

// update waits for an UPDATE of task in state.
func (s *sched) update(task string, state mesos.TaskState) *mesos.TaskStatus {
	s.t.Helper()
	e := s.next(fmt.Sprintf("UPDATE %s %s", task, state), func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == task && e.Update.Status.GetState() == state
	})
	st := e.Update.Status
	return &st
}

func (s *sched) ack(st *mesos.TaskStatus) {
	s.t.Helper()
	if st.UUID == nil {
		s.t.Fatalf("ack of an update without uuid: %v", st)
	}
	s.must(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
}

// launch accepts offer with one task for executor ex.
func (s *sched) launch(o mesos.Offer, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	for i := range tasks {
		tasks[i].AgentID = o.AgentID
	}
	s.must(calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(o.ID)).With(calls.RefuseSeconds(0)))
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// testExecutorInfo is an ExecutorInfo that runs this test binary as a
// mesos-go executor in mode.
func testExecutorInfo(t *testing.T, id, mode string, env ...string) mesos.ExecutorInfo {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	vars := []mesos.Environment_Variable{{Name: "TEST_EXECUTOR_MODE", Value: &mode}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars = append(vars, mesos.Environment_Variable{Name: k, Value: ptr(v)})
	}
	return mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: id},
		Command:    &mesos.CommandInfo{Value: &self, Shell: ptr(false), Environment: &mesos.Environment{Variables: vars}},
		Resources:  []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)},
	}
}

func testTask(id, data string, ex mesos.ExecutorInfo) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, Executor: &ex, Data: []byte(data),
		Resources: []mesos.Resource{scalar("cpus", 0.5), scalar("mem", 64)},
	}
}

// executor returns the agent's one executor with id, waiting for it.
func (c *cluster) executor(t *testing.T, id string) ExecutorState {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, e := range c.a.Executors() {
			if e.ExecutorID == id {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no executor %s on the agent", id)
	return ExecutorState{}
}

// readSandbox waits for a file the test executor writes in its sandbox.
func readSandbox(t *testing.T, dir, name string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("executor wrote no %s in %s", name, dir)
	return ""
}

// post sends one raw call and returns the status code and body.
func post(t *testing.T, url, contentType string, body []byte, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), resp.Header
}

func marshal(t *testing.T, m message) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// processAlive tells whether pid still runs (a zombie counts as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLog sends the double's logs to the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
