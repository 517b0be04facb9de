package mesos

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// These tests speak raw HTTP where the status codes, headers and framing
// are themselves the contract (src/slave/http.cpp:730-880,
// src/master/http.cpp:468-690, docs/recordio.md).

// rawExecutor plays the executor of a "silent" test executor (which never
// subscribes) over hand-written JSON, to pin the wire format.
type rawExecutor struct {
	t      *testing.T
	url    string
	fw, ex string
	events chan *executor.Event
	cancel context.CancelFunc
	header http.Header
}

func (c *cluster) executorURL() string { return "http://" + c.a.Endpoint() + "/api/v1/executor" }

func (r *rawExecutor) call(c *executor.Call) (int, string) {
	r.t.Helper()
	c.FrameworkID = mesos.FrameworkID{Value: r.fw}
	c.ExecutorID = mesos.ExecutorID{Value: r.ex}
	b, err := json.Marshal(c)
	if err != nil {
		r.t.Fatal(err)
	}
	code, body, _ := post(r.t, r.url, mediaJSON, b, nil)
	return code, body
}

// subscribe opens the JSON event stream with an empty Accept (JSON).
func (r *rawExecutor) subscribe(sub *executor.Call_Subscribe) {
	r.t.Helper()
	c := &executor.Call{Type: executor.Call_SUBSCRIBE, FrameworkID: mesos.FrameworkID{Value: r.fw},
		ExecutorID: mesos.ExecutorID{Value: r.ex}, Subscribe: sub}
	b, _ := json.Marshal(c)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", mediaJSON)
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // the reader goroutine closes it
	if err != nil {
		cancel()
		r.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		_ = resp.Body.Close()
		cancel()
		r.t.Fatalf("SUBSCRIBE: %d", resp.StatusCode)
	}
	r.cancel, r.header = cancel, resp.Header
	if resp.ContentLength != -1 {
		r.t.Errorf("SUBSCRIBE response has a Content-Length (%d): it must be a chunked stream", resp.ContentLength)
	}
	events := make(chan *executor.Event, 64)
	r.events = events
	go func() {
		defer func() { _ = resp.Body.Close() }()
		defer close(events)
		rr := recordio.NewReader(resp.Body)
		for {
			frame, err := rr.ReadFrame()
			if err != nil {
				return
			}
			var e executor.Event
			if err := json.Unmarshal(frame, &e); err != nil {
				r.t.Errorf("event is not JSON: %q", frame)
				return
			}
			events <- &e
		}
	}()
	r.t.Cleanup(cancel)
}

func (r *rawExecutor) next(want executor.Event_Type) *executor.Event {
	r.t.Helper()
	for {
		select {
		case e, ok := <-r.events:
			if !ok {
				r.t.Fatalf("stream ended waiting for %s", want)
			}
			if e.Type == want {
				return e
			}
			if e.Type != executor.Event_HEARTBEAT {
				r.t.Fatalf("got %s, want %s", e.Type, want)
			}
		case <-time.After(wait):
			r.t.Fatalf("no %s within %v", want, wait)
		}
	}
}

func update(task string, state mesos.TaskState) *executor.Call {
	return &executor.Call{Type: executor.Call_UPDATE, Update: &executor.Call_Update{Status: mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: task}, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: newUUID(),
	}}}
}

func TestExecutorAPIStatusCodes(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("raw"), protobuf())
	s.Launch(s.Offer(), testTask("t1", taskRun, testExecutorInfo(t, "ex1", "silent")))
	c.executor(t, "ex1")
	url := c.executorURL()
	x := &rawExecutor{t: t, url: url, fw: s.ID, ex: "ex1"}
	hb, _ := json.Marshal(&executor.Call{Type: executor.Call_HEARTBEAT})

	get, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = get.Body.Close()
	cases := []struct {
		name, ct string
		body     []byte
		hdr      map[string]string
		want     int
	}{
		{"GET", "", nil, nil, 0},
		{"no Content-Type", "", hb, nil, 400},
		{"text/plain", "text/plain", hb, nil, 415},
		{"unparsable protobuf", mediaProtobuf, []byte{0xff, 0xff, 0xff}, nil, 400},
		{"unparsable JSON", mediaJSON, []byte("{"), nil, 400},
		{"HEARTBEAT with dummy ids", mediaJSON, hb, nil, 202},
		{"no executor_id", mediaJSON, []byte(`{"type":"MESSAGE","framework_id":{"value":"` + s.ID + `"},"message":{"data":"eA=="}}`), nil, 400},
		{"SUBSCRIBE wanting text/plain", mediaJSON, []byte(`{"type":"SUBSCRIBE","framework_id":{"value":"` + s.ID + `"},"executor_id":{"value":"ex1"},"subscribe":{}}`),
			map[string]string{"Accept": "text/plain"}, 406},
	}
	if get.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", get.StatusCode)
	}
	for _, tc := range cases[1:] {
		if code, body, _ := post(t, url, tc.ct, tc.body, tc.hdr); code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.want)
		}
	}

	other := &rawExecutor{t: t, url: url, fw: "no-such-framework", ex: "ex1"}
	if code, body := other.call(update("t1", mesos.TASK_RUNNING)); code != 400 || !strings.Contains(body, "Framework cannot be found") {
		t.Errorf("unknown framework: %d %q", code, body)
	}
	other = &rawExecutor{t: t, url: url, fw: s.ID, ex: "nope"}
	if code, body := other.call(update("t1", mesos.TASK_RUNNING)); code != 400 || !strings.Contains(body, "Executor cannot be found") {
		t.Errorf("unknown executor: %d %q", code, body)
	}
	// Before SUBSCRIBE, UPDATE is forbidden.
	if code, body := x.call(update("t1", mesos.TASK_RUNNING)); code != 403 || !strings.Contains(body, "not subscribed") {
		t.Errorf("UPDATE before SUBSCRIBE: %d %q, want 403", code, body)
	}

	x.subscribe(&executor.Call_Subscribe{})
	if ct := x.header.Get("Content-Type"); ct != mediaJSON {
		t.Errorf("stream Content-Type = %q, want %q", ct, mediaJSON)
	}
	if sid := x.header.Get("Mesos-Stream-Id"); sid != "" {
		t.Errorf("the agent sent Mesos-Stream-Id %q; only the master does", sid)
	}
	sub := x.next(executor.Event_SUBSCRIBED).Subscribed
	if sub.FrameworkInfo.ID == nil || sub.FrameworkInfo.ID.Value != s.ID || sub.ContainerID == nil || sub.AgentInfo.ID == nil {
		t.Fatalf("SUBSCRIBED lacks ids: %v", sub)
	}
	launch := x.next(executor.Event_LAUNCH).Launch.Task
	if launch.TaskID.Value != "t1" {
		t.Fatalf("LAUNCH of %s", launch.TaskID.Value)
	}

	bad := map[string]func(*executor.Call){
		"short uuid":          func(c *executor.Call) { c.Update.Status.UUID = []byte("fakeUUID") },
		"source AGENT":        func(c *executor.Call) { c.Update.Status.Source = mesos.SOURCE_AGENT.Enum() },
		"TASK_STAGING":        func(c *executor.Call) { c.Update.Status.State = mesos.TASK_STAGING.Enum() },
		"other executor's id": func(c *executor.Call) { c.Update.Status.ExecutorID = &mesos.ExecutorID{Value: "ex9"} },
	}
	for name, mutate := range bad {
		u := update("t1", mesos.TASK_RUNNING)
		mutate(u)
		if code, body := x.call(u); code != 400 || !strings.HasPrefix(body, "Failed to validate Executor::Call") {
			t.Errorf("UPDATE with %s: %d %q, want 400", name, code, body)
		}
	}

	// A good UPDATE: 202, ACKNOWLEDGED at once (before any scheduler ack),
	// forwarded with its uuid.
	run := update("t1", mesos.TASK_RUNNING)
	if code, body := x.call(run); code != 202 {
		t.Fatalf("UPDATE: %d %q", code, body)
	}
	ack := x.next(executor.Event_ACKNOWLEDGED).Acknowledged
	if string(ack.UUID) != string(run.Update.Status.UUID) {
		t.Fatal("ACKNOWLEDGED names another uuid")
	}
	got := s.Update("t1", mesos.TASK_RUNNING)
	if string(got.UUID) != string(run.Update.Status.UUID) || got.ExecutorID.Value != "ex1" || got.AgentID.Value != c.a.ID() {
		t.Fatalf("forwarded update: %v", got)
	}
	s.Ack(got)

	// A duplicate uuid is acknowledged and not forwarded twice; after a
	// terminal update, further updates are dropped but still acknowledged.
	if code, _ := x.call(run); code != 202 {
		t.Fatal("duplicate UPDATE not accepted")
	}
	x.next(executor.Event_ACKNOWLEDGED)
	fin := update("t1", mesos.TASK_FINISHED)
	x.call(fin)
	x.next(executor.Event_ACKNOWLEDGED)
	late := update("t1", mesos.TASK_FAILED)
	x.call(late)
	if a := x.next(executor.Event_ACKNOWLEDGED).Acknowledged; string(a.UUID) != string(late.Update.Status.UUID) {
		t.Fatal("an update after a terminal one must still be acknowledged")
	}
	s.Ack(s.Update("t1", mesos.TASK_FINISHED))
	s.None("an update after the terminal one", 300*time.Millisecond, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && (e.Update.Status.GetState() == mesos.TASK_FAILED ||
			string(e.Update.Status.UUID) == string(run.Update.Status.UUID))
	})

	// MESSAGE reaches the scheduler.
	if code, _ := x.call(&executor.Call{Type: executor.Call_MESSAGE, Message: &executor.Call_Message{Data: []byte("hi")}}); code != 202 {
		t.Fatal("MESSAGE not accepted")
	}
	if m := s.Next("MESSAGE", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_MESSAGE }); string(m.Message.Data) != "hi" {
		t.Fatalf("MESSAGE data %q", m.Message.Data)
	}
}

// TestResubscribeReplaysAndDrops: a new SUBSCRIBE closes the old stream,
// replays the unacknowledged updates (de-duplicated by uuid), drops
// launched tasks the executor does not list, and a STAGING update in the
// list shuts the executor down (slave.cpp:5300-5440).
func TestResubscribeReplaysAndDrops(t *testing.T) {
	// Mesos' own retry interval (10secs): a second copy seen here is then
	// a replay not de-duplicated, never a retry the agent sent because the
	// scheduler's ack came late on a loaded machine (CI saw that).
	c := newCluster(t, func(cfg *AgentConfig) {
		cfg.StatusUpdateRetryMin, cfg.StatusUpdateRetryMax = 10*time.Second, time.Minute
	})
	info := frameworkInfo("resub")
	info.Checkpoint = ptr.To(true)
	s := subscribe(t, c, info, protobuf())
	ex := testExecutorInfo(t, "ex1", "silent")
	o := s.Offer()
	s.Launch(o, testTask("t1", taskRun, ex), testTask("t2", taskRun, ex))
	x := &rawExecutor{t: t, url: c.executorURL(), fw: s.ID, ex: "ex1"}
	x.subscribe(&executor.Call_Subscribe{})
	x.next(executor.Event_SUBSCRIBED)
	x.next(executor.Event_LAUNCH)
	x.next(executor.Event_LAUNCH)
	first := x.events

	// The executor "lost" the ACKNOWLEDGED of t1's RUNNING and re-subscribes
	// listing it and t1 as unacknowledged; t2 (never updated) is not listed.
	run := update("t1", mesos.TASK_RUNNING)
	x.call(run)
	x.subscribe(&executor.Call_Subscribe{
		UnacknowledgedTasks:   []mesos.TaskInfo{testTask("t1", taskRun, ex)},
		UnacknowledgedUpdates: []executor.Call_Update{*run.Update},
	})
	for range first {
		// The old stream is closed by the new SUBSCRIBE.
	}
	x.next(executor.Event_SUBSCRIBED)
	if a := x.next(executor.Event_ACKNOWLEDGED).Acknowledged; string(a.UUID) != string(run.Update.Status.UUID) {
		t.Fatal("replayed update not acknowledged")
	}
	got := s.Update("t1", mesos.TASK_RUNNING)
	s.Ack(got)
	dropped := s.Update("t2", mesos.TASK_LOST)
	if dropped.GetReason() != mesos.REASON_AGENT_RESTARTED || dropped.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("unlisted STAGING task: %v", dropped)
	}
	s.Ack(dropped)
	s.None("a second copy of the replayed update", 300*time.Millisecond, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && string(e.Update.Status.UUID) == string(run.Update.Status.UUID)
	})

	// A STAGING update from the executor makes the agent shut it down.
	stg := update("t1", mesos.TASK_STAGING)
	x.subscribe(&executor.Call_Subscribe{UnacknowledgedUpdates: []executor.Call_Update{*stg.Update}})
	x.next(executor.Event_SHUTDOWN)
}

func TestSchedulerAPIStatusCodes(t *testing.T) {
	c := newCluster(t, nil)
	info := frameworkInfo("raw-sched")
	info.FailoverTimeout = ptr.To(60.0)
	s := subscribe(t, c, info, protobuf())
	url := c.m.SchedulerURL()
	sub := marshal(t, &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}})
	revive := marshal(t, &scheduler.Call{Type: scheduler.Call_REVIVE, FrameworkID: &mesos.FrameworkID{Value: s.ID}})
	ghost := marshal(t, &scheduler.Call{Type: scheduler.Call_REVIVE, FrameworkID: &mesos.FrameworkID{Value: "ghost"}})

	for _, tc := range []struct {
		name string
		body []byte
		hdr  map[string]string
		want int
		msg  string
	}{
		{"SUBSCRIBE with a stream id", sub, map[string]string{"Mesos-Stream-Id": "x"}, 400, "should not include"},
		{"call without a stream id", revive, nil, 400, "Mesos-Stream-Id"},
		{"call with another stream id", revive, map[string]string{"Mesos-Stream-Id": "not-it"}, 400, "didn't match"},
		{"unknown framework", ghost, map[string]string{"Mesos-Stream-Id": "x"}, 400, "cannot be found"},
		{"SUBSCRIBE wanting text/plain", sub, map[string]string{"Accept": "text/plain"}, 406, ""},
	} {
		code, body, _ := post(t, url, mediaProtobuf, tc.body, tc.hdr)
		if code != tc.want || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, body, tc.want, tc.msg)
		}
	}

	// A raw SUBSCRIBE: 200, the message type, a fresh stream id, chunked,
	// SUBSCRIBED first with heartbeat_interval_seconds.
	info.ID = &mesos.FrameworkID{Value: s.ID}
	sub = marshal(t, &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, FrameworkID: info.ID, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(sub)))
	req.Header.Set("Content-Type", mediaProtobuf)
	req.Header.Set("Accept", mediaProtobuf)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sid := resp.Header.Get("Mesos-Stream-Id")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaProtobuf || resp.ContentLength != -1 || sid == "" {
		t.Fatalf("SUBSCRIBE: %d %v (Content-Length %d)", resp.StatusCode, resp.Header, resp.ContentLength)
	}
	frame, err := recordio.NewReader(bufio.NewReader(resp.Body)).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	var e scheduler.Event
	if err := e.Unmarshal(frame); err != nil || e.Type != scheduler.Event_SUBSCRIBED || e.Subscribed.GetHeartbeatIntervalSeconds() != 0.1 {
		t.Fatalf("first event: %v %v", e.Type, err)
	}
	// The old subscription was failed over.
	s.Next("ERROR", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_ERROR })
	if code, body, _ := post(t, url, mediaProtobuf, revive, map[string]string{"Mesos-Stream-Id": sid}); code != 202 {
		t.Fatalf("REVIVE on the new stream: %d %q", code, body)
	}
	upd := marshal(t, &scheduler.Call{Type: scheduler.Call_UPDATE_FRAMEWORK, FrameworkID: info.ID,
		UpdateFramework: &scheduler.Call_UpdateFramework{FrameworkInfo: info}})
	if code, _, _ := post(t, url, mediaProtobuf, upd, map[string]string{"Mesos-Stream-Id": sid}); code != 200 {
		t.Fatalf("UPDATE_FRAMEWORK: %d, want 200", code)
	}
	// Disconnected within failover_timeout: 403 until it subscribes again.
	cancel()
	_ = resp.Body.Close()
	waitFor(t, "the disconnect", func() bool {
		st := c.m.State()
		return len(st.Frameworks) == 1 && !st.Frameworks[0].Active
	})
	if code, body, _ := post(t, url, mediaProtobuf, revive, map[string]string{"Mesos-Stream-Id": sid}); code != 403 {
		t.Fatalf("call of a disconnected framework: %d %q, want 403", code, body)
	}
}
