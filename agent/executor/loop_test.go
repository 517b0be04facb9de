package executor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
)

// The executor loop's golden transcripts, in the style of etcd raft's
// interaction tests: each test drives the loop step by step through a fake
// agent connection and a fake pod manager, both validating models, and the
// calls and events of each step are compared with testdata/<test>.golden.
// go test ./agent/executor -run TestLoop -update rewrites them; review the
// diff.

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/")

// fakeAgent is the agent's executor API (docs/executor-http-api.md) as
// the executor sees it: SUBSCRIBE opens an event stream, UPDATE is
// accepted only from a subscribed executor, for a task the agent launched,
// with a fresh 16-byte UUID, never after the task's terminal update.
type fakeAgent struct {
	h          *harness
	mu         sync.Mutex
	stream     *fakeStream // the current subscription
	subscribed chan struct{}
	launched   map[string]bool
	terminal   map[string]bool
	labels     map[string]string // uuid -> "<task>#<n>"
	byLabel    map[string][]byte
	count      map[string]int
	failNext   int // fail this many UPDATE calls with a 503
}

type fakeStream struct {
	events chan *executor.Event
	done   chan struct{}
	once   sync.Once
}

func (s *fakeStream) end() { s.once.Do(func() { close(s.done) }) }

func (s *fakeStream) Decode(u encoding.Unmarshaler) error {
	select {
	case ev := <-s.events:
		*u.(*executor.Event) = *ev
		return nil
	case <-s.done:
		return io.EOF
	}
}

func (s *fakeStream) Close() error { s.end(); return nil }

func (a *fakeAgent) label(u executor.Call_Update) string {
	key := string(u.Status.UUID)
	if l, ok := a.labels[key]; ok {
		return l
	}
	id := u.Status.TaskID.Value
	a.count[id]++
	l := fmt.Sprintf("%s#%d", id, a.count[id])
	a.labels[key], a.byLabel[l] = l, u.Status.UUID
	return l
}

func (a *fakeAgent) Send(_ context.Context, r calls.Request) (mesos.Response, error) {
	c := r.Call()
	if c.FrameworkID.Value != "fw" || c.ExecutorID.Value != "ex" {
		a.h.t.Errorf("%s call with framework %q executor %q, want fw and ex", c.Type, c.FrameworkID.Value, c.ExecutorID.Value)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		var tasks, updates []string
		for _, t := range c.Subscribe.UnacknowledgedTasks {
			tasks = append(tasks, t.TaskID.Value)
		}
		sort.Strings(tasks)
		for _, u := range c.Subscribe.UnacknowledgedUpdates {
			updates = append(updates, a.label(u)+" "+u.Status.State.String())
		}
		if a.stream != nil {
			a.stream.end()
		}
		a.stream = &fakeStream{events: make(chan *executor.Event, 16), done: make(chan struct{})}
		a.h.record(2, "", fmt.Sprintf("agent <- SUBSCRIBE tasks=%v updates=%v", tasks, updates))
		a.subscribed <- struct{}{}
		return a.stream, nil
	case executor.Call_UPDATE:
		st := c.Update.Status
		id := st.TaskID.Value
		switch {
		case a.stream == nil:
			a.h.t.Errorf("UPDATE of %s from an executor that is not subscribed", id)
		case !a.launched[id]:
			a.h.t.Errorf("UPDATE of %s, a task the agent never launched", id)
		case len(st.UUID) != 16:
			a.h.t.Errorf("UPDATE of %s with a %d-byte UUID", id, len(st.UUID))
		case st.GetSource() != mesos.SOURCE_EXECUTOR:
			a.h.t.Errorf("UPDATE of %s from source %s", id, st.GetSource())
		case a.terminal[id] && a.labels[string(st.UUID)] == "":
			a.h.t.Errorf("UPDATE %s of %s after its terminal update", st.State, id)
		}
		l := a.label(*c.Update)
		if a.failNext > 0 {
			a.failNext--
			a.h.record(1, id, fmt.Sprintf("agent <- UPDATE %s %s: 503, refused", l, st.State))
			return nil, errors.New("503 Service Unavailable")
		}
		if terminal(st.GetState()) {
			a.terminal[id] = true
		}
		line := fmt.Sprintf("agent <- UPDATE %s %s", l, st.State)
		if st.Reason != nil {
			line += " " + st.Reason.String()
		}
		if st.Message != nil {
			line += fmt.Sprintf(" %q", *st.Message)
		}
		var ps v1.PodStatus
		if err := json.Unmarshal(st.Data, &ps); err != nil {
			a.h.t.Errorf("UPDATE of %s: data is not a PodStatus: %v", id, err)
		}
		a.h.record(1, id, line+" phase="+string(ps.Phase))
		return nil, nil
	}
	a.h.t.Errorf("unexpected %s call", c.Type)
	return nil, fmt.Errorf("unexpected %s", c.Type)
}

// push sends an event on the current subscription's stream.
func (a *fakeAgent) push(ev *executor.Event) {
	a.mu.Lock()
	s := a.stream
	if ev.Type == executor.Event_LAUNCH {
		a.launched[ev.Launch.Task.TaskID.Value] = true
	}
	a.mu.Unlock()
	s.events <- ev
}

// fakePods is pods.Manager as the executor uses it: one pod per uid,
// Kill only of a pod that is there, Done closed once the test says the pod
// is gone, StopAll ends every pod.
type fakePods struct {
	h    *harness
	mu   sync.Mutex
	done map[string]chan struct{} // by uid, while the pod is on the node
}

func (p *fakePods) Launch(pod *v1.Pod, taskID string, l cgroups.Limits) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	uid := string(pod.UID)
	if _, ok := p.done[uid]; ok {
		p.h.t.Errorf("Launch of pod %s, already on the node", uid)
	}
	if pod.Spec.RestartPolicy == "" || pod.Spec.Containers[0].Resources.Limits == nil {
		p.h.t.Errorf("Launch of pod %s before podspec.Default", uid)
	}
	p.done[uid] = make(chan struct{})
	p.h.record(0, taskID, fmt.Sprintf("pods.Launch %s uid=%s cpu=%dm mem=%dMi", taskID, uid, l.CPULimitMilli, l.MemoryBytes>>20))
	return nil
}

func (p *fakePods) Kill(uid string, grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.h.record(0, "", fmt.Sprintf("pods.Kill %s grace=%s", uid, grace))
	if _, ok := p.done[uid]; !ok {
		return fmt.Errorf("pod %s is not on the node", uid)
	}
	return nil
}

func (p *fakePods) Done(uid string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.done[uid]; ok {
		return ch
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// gone ends a pod: its worker is done.
func (p *fakePods) gone(uid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.done[uid])
	delete(p.done, uid)
}

func (p *fakePods) StopAll(ctx context.Context, killAt time.Time) error {
	if _, ok := ctx.Deadline(); !ok || killAt.IsZero() {
		p.h.t.Error("StopAll without a deadline or a kill point")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var uids []string
	for uid, ch := range p.done {
		uids = append(uids, uid)
		close(ch)
	}
	sort.Strings(uids)
	clear(p.done)
	p.h.record(0, "", fmt.Sprintf("pods.StopAll %v", uids))
	return nil
}

func (p *fakePods) Drain(context.Context) error { return nil }

// harness runs one executor against the fakes and keeps the transcript.
type harness struct {
	t     *testing.T
	ex    *Executor
	agent *fakeAgent
	pods  *fakePods
	runs  chan error

	mu     sync.Mutex
	lines  []line // of the current step
	out    strings.Builder
	latest steps // the loop's counts at its last quiet point
	want   steps // what the test has handed the loop
	quiet  chan struct{}
}

// line is one transcript line: group 0 is the loop's own calls, in the
// order made; group 1 the UPDATE calls, which go out concurrently and are
// ordered by task (each task's in the order sent); group 2 a SUBSCRIBE,
// which within one step can only follow a broken subscription.
type line struct {
	group int
	task  string
	text  string
}

func (h *harness) record(group int, task, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, line{group, task, text})
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, runs: make(chan error, 1), quiet: make(chan struct{}, 1)}
	h.agent = &fakeAgent{h: h, subscribed: make(chan struct{}, 4), launched: map[string]bool{}, terminal: map[string]bool{},
		labels: map[string]string{}, byLabel: map[string][]byte{}, count: map[string]int{}}
	h.pods = &fakePods{h: h, done: map[string]chan struct{}{}}
	cfg := Config{
		Mesos: config.Config{AgentEndpoint: "agent:5051", FrameworkID: "fw", ExecutorID: "ex", Checkpoint: true,
			ExecutorShutdownGracePeriod: 5 * time.Second, RecoveryTimeout: time.Minute, SubscriptionBackoffMax: 100 * time.Millisecond},
		Defaults: podspec.StandardDefaults(), LaunchGracePeriod: time.Hour, SuicideTimeout: time.Hour, CallTimeout: time.Second,
	}
	start := func(_ context.Context, id Identity, _ Report) (Node, error) {
		h.record(0, "", fmt.Sprintf("StartNode agent=%s container=%s", id.AgentID, id.ContainerID))
		return Node{Pods: h.pods}, nil
	}
	h.ex = newExecutor(cfg, start, slog.New(slog.DiscardHandler), h.agent, h.agent)
	h.ex.testStep = func(s steps) {
		h.mu.Lock()
		h.latest = s
		h.mu.Unlock()
		select {
		case h.quiet <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.runs <- h.ex.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.runs; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	h.step("start", func() { h.waitSubscribe() })
	return h
}

// step runs do, waits until the loop has handled all of it and no update
// is in flight, and writes the step to the transcript.
func (h *harness) step(title string, do func()) {
	h.t.Helper()
	do()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		l, w := h.latest, h.want
		h.mu.Unlock()
		if l.events >= w.events && l.reports >= w.reports && l.msgs >= w.msgs {
			break
		}
		select {
		case <-h.quiet:
		case <-deadline:
			h.t.Fatalf("step %q: the loop handled %+v of %+v", title, l, w)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sort.SliceStable(h.lines, func(i, j int) bool {
		a, b := h.lines[i], h.lines[j]
		if a.group != b.group {
			return a.group < b.group
		}
		return a.group == 1 && a.task < b.task
	})
	fmt.Fprintf(&h.out, "> %s\n", title)
	for _, l := range h.lines {
		fmt.Fprintf(&h.out, "  %s\n", l.text)
	}
	h.lines = nil
}

func (h *harness) waitSubscribe() {
	h.t.Helper()
	select {
	case <-h.agent.subscribed:
	case <-time.After(10 * time.Second):
		h.t.Fatal("no SUBSCRIBE")
	}
}

// event pushes an agent event and counts it.
func (h *harness) event(ev *executor.Event) {
	h.mu.Lock()
	h.want.events++
	h.mu.Unlock()
	h.agent.push(ev)
}

func (h *harness) subscribed() {
	h.event(&executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo: mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "ex"}},
		AgentInfo:    mesos.AgentInfo{ID: &mesos.AgentID{Value: "agent-1"}, Hostname: "node1"},
		ContainerID:  &mesos.ContainerID{Value: "c-1"},
	}})
}

func (h *harness) launch(name string, data []byte) {
	if data == nil {
		pod := &v1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
			Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "busybox"}}}}
		data, _ = json.Marshal(pod)
	}
	h.event(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{
		Task: mesos.TaskInfo{Name: name, TaskID: mesos.TaskID{Value: "pod." + name}, AgentID: mesos.AgentID{Value: "agent-1"}, Data: data}}})
}

// report tells the loop the pod's new state, as the pod manager does.
func (h *harness) report(name string, phase v1.PodPhase, running bool) {
	h.mu.Lock()
	h.want.reports++
	h.mu.Unlock()
	st := pods.State{Phase: phase, Stage: pods.StageRunning, Containers: []*pods.Container{{Name: "app", Running: running}}}
	h.ex.Report("uid-"+name, v1.PodStatus{Phase: phase}, st)
}

// ack acknowledges an update by its transcript label ("pod.a#1").
func (h *harness) ack(label string) {
	h.agent.mu.Lock()
	uuid, ok := h.agent.byLabel[label]
	h.agent.mu.Unlock()
	if !ok {
		h.t.Fatalf("ack of %s, an update the agent never got", label)
	}
	task, _, _ := strings.Cut(label, "#")
	h.event(&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{
		TaskID: mesos.TaskID{Value: task}, UUID: uuid}})
}

// gone ends a pod's worker; the loop gets it as a message.
func (h *harness) gone(name string) {
	h.mu.Lock()
	h.want.msgs++
	h.mu.Unlock()
	h.pods.gone("uid-" + name)
}

// disconnect ends the subscription's stream, as a restarting agent does.
func (h *harness) disconnect() {
	h.agent.mu.Lock()
	s := h.agent.stream
	h.agent.mu.Unlock()
	h.mu.Lock()
	h.want.events++ // the stream's end
	h.mu.Unlock()
	s.end()
}

// check compares the transcript with testdata/<test>.golden.
func (h *harness) check() {
	h.t.Helper()
	path := filepath.Join("testdata", h.t.Name()+".golden")
	got := h.out.String()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		h.t.Errorf("transcript differs from %s (-update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// LAUNCH: STARTING, the pod, RUNNING; KILL: the pod stops and the task is
// KILLED once it is gone; a bad pod is FAILED and the executor serves on.
func TestLoopLaunchAndKill(t *testing.T) {
	h := newHarness(t)
	h.step("SUBSCRIBED", h.subscribed)
	h.step("LAUNCH pod.a", func() { h.launch("a", nil) })
	h.step("pod a runs", func() { h.report("a", v1.PodRunning, true) })
	h.step("ACKNOWLEDGED pod.a#1", func() { h.ack("pod.a#1") })
	h.step("ACKNOWLEDGED pod.a#2", func() { h.ack("pod.a#2") })
	h.step("LAUNCH pod.bad", func() {
		h.launch("bad", []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"bad"},"spec":{"containers":[]}}`))
	})
	h.step("KILL pod.a", func() {
		h.event(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "pod.a"},
			KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}}}})
	})
	h.step("pod a gone", func() { h.gone("a") })
	h.step("KILL pod.a again", func() {
		h.event(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "pod.a"}}})
	})
	h.check()
}

// A broken connection: the next SUBSCRIBE lists every task and update not
// acknowledged, in the order made, and what is made while disconnected
// goes out with it; a refused UPDATE breaks the subscription the same way.
func TestLoopReplaysUnacknowledgedOnResubscribe(t *testing.T) {
	h := newHarness(t)
	h.step("SUBSCRIBED", h.subscribed)
	h.step("LAUNCH pod.a", func() { h.launch("a", nil) })
	h.step("LAUNCH pod.b", func() { h.launch("b", nil) })
	h.step("ACKNOWLEDGED pod.b#1", func() { h.ack("pod.b#1") })
	h.step("the agent restarts", func() {
		h.disconnect()
		h.waitSubscribe()
	})
	h.step("pod a runs before SUBSCRIBED", func() { h.report("a", v1.PodRunning, true) })
	h.step("SUBSCRIBED again", h.subscribed)
	h.step("the agent refuses the next UPDATE; pod b runs", func() {
		h.agent.mu.Lock()
		h.agent.failNext = 1
		h.agent.mu.Unlock()
		h.report("b", v1.PodRunning, true)
		h.waitSubscribe()
	})
	h.step("SUBSCRIBED a third time", h.subscribed)
	h.step("ACKNOWLEDGED pod.a#1", func() { h.ack("pod.a#1") })
	h.check()
}

// SHUTDOWN: every pod stops, each live task gets TASK_KILLED through the
// sender, and Run returns nil.
func TestLoopShutdown(t *testing.T) {
	h := newHarness(t)
	h.step("SUBSCRIBED", h.subscribed)
	for _, n := range []string{"a", "b", "c"} {
		h.step("LAUNCH pod."+n, func() { h.launch(n, nil) })
	}
	h.step("pods a and b run", func() {
		h.report("a", v1.PodRunning, true)
		h.report("b", v1.PodRunning, true)
	})
	h.step("pod c succeeds", func() { h.report("c", v1.PodSucceeded, false) })
	h.agent.push(&executor.Event{Type: executor.Event_SHUTDOWN})
	select {
	case err := <-h.runs:
		if err != nil {
			t.Fatalf("Run after SHUTDOWN: %v", err)
		}
		h.runs <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after SHUTDOWN")
	}
	h.step("SHUTDOWN", func() {})
	h.check()
	if got := slices.Collect(maps.Keys(h.pods.done)); len(got) != 0 {
		t.Fatalf("pods left on the node: %v", got)
	}
}
