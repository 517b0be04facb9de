package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/staticpods"
)

// Pods is what the executor needs of the node's pod manager
// (*pods.Manager satisfies it).
type Pods interface {
	// Launch starts a defaulted, validated pod; it does not block.
	Launch(pod *v1.Pod, taskID string, limits cgroups.Limits) error
	// Kill asks a pod to stop within grace (0: the pod's own); idempotent.
	Kill(uid string, grace time.Duration) error
	// Done is closed once the pod is gone from the node.
	Done(uid string) <-chan struct{}
	// StopAll stops every pod, SIGKILL at killAt; it blocks until they are
	// gone, or their processes are (pods.ErrNotRemoved), or ctx ends.
	StopAll(ctx context.Context, killAt time.Time) error
	// Drain waits until every stopped pod's containers are removed or ctx
	// ends.
	Drain(ctx context.Context) error
}

// Identity is who the executor is, as SUBSCRIBED tells it.
type Identity struct {
	FrameworkID, ExecutorID, AgentID, ContainerID string
	Agent                                         mesos.AgentInfo
	Executor                                      mesos.ExecutorInfo
}

// Report is how the pod manager tells the executor of a pod's new status;
// it never blocks.
type Report func(uid string, st v1.PodStatus, s pods.State)

// Node is what StartNode brings up.
type Node struct {
	Pods Pods
	// PodStatus, when set, gets every pod's newest status (the API server
	// reporter), static pods' included; it must not block.
	PodStatus func(pod *v1.Pod, st v1.PodStatus)
	// MirrorPod, when set, is told of each static pod the executor runs
	// (the API server reporter makes its mirror pod); it must not block.
	MirrorPod func(pod *v1.Pod)
}

// StartNode brings the node side up once the executor knows its identity
// (at the first SUBSCRIBED): the Docker runtime, the pod cgroups below the
// executor's, the pod manager running with report, the reaping of
// containers no longer ours and, with an API server, the Node and pod
// status reporter. It is called once; ctx ends with Run.
type StartNode func(ctx context.Context, id Identity, report Report) (Node, error)

// Config configures the executor. Only cmd/ fills it, from the MESOS_*
// environment (mesos-go config.FromEnv) and flags.
type Config struct {
	Mesos config.Config
	// AuthToken is MESOS_EXECUTOR_AUTHENTICATION_TOKEN: sent as a bearer
	// token on every call when set.
	AuthToken string
	Policy    podspec.Policy
	Defaults  podspec.Defaults
	// LaunchGracePeriod: a pod not running this long after LAUNCH fails.
	LaunchGracePeriod time.Duration
	// SuicideTimeout: with no live task for this long the executor exits.
	SuicideTimeout time.Duration
	// CallTimeout bounds each call to the agent (default 5s).
	CallTimeout time.Duration
	// Metrics, when set, are kept up to date (see NewMetrics).
	Metrics *Metrics
}

// Executor is the k8sm Mesos executor: the v1 executor API event loop
// that turns LAUNCH, KILL and SHUTDOWN into pod operations and pod
// statuses into task updates.
type Executor struct {
	cfg        Config
	start      StartNode
	log        *slog.Logger
	cli        calls.Sender
	subscriber calls.Sender

	// Owned by the loop goroutine.
	book      *Book
	tasks     map[string]*task // by task id
	byUID     map[string]*task
	pods      Pods
	id        Identity
	gen       int
	cancelSub context.CancelFunc
	connected bool
	lostAt    time.Time // when the connection broke
	backoff   time.Duration
	idleSince time.Time

	subCtx context.Context // the subscription's: its UPDATE calls end with it
	resub  <-chan time.Time
	// sending counts UPDATE calls under way (at most maxInFlight).
	sending int

	podStatus func(*v1.Pod, v1.PodStatus)
	// static are the static pods by uid.
	static    map[string]*v1.Pod
	mirrorPod func(*v1.Pod)

	// The loop's inboxes.
	events chan streamMsg
	msgs   chan any
	sent   chan sendResult
	quit   chan struct{} // closed when Run returns

	reportMu sync.Mutex // the one inbox written outside the loop
	reports  map[string]report
	poke     chan struct{}

	// The loop's outbox: what the node API reads (Pods, Info).
	viewMu sync.RWMutex
	view   map[string]nodeapi.PodView // by task id
	info   nodeapi.Info

	// testStep, when set (tests), is called by the loop after each step
	// while no update waits to be sent or is in flight.
	testStep func(steps)
	steps    steps
}

// steps counts what the loop has handled: agent events, pod reports and
// its own messages (pod endings, timers).
type steps struct{ events, reports, msgs int }

type task struct {
	info    mesos.TaskInfo
	uid     string
	pod     *v1.Pod
	state   mesos.TaskState
	status  v1.PodStatus
	killing bool
	// failMsg, when set, makes the end of a kill a TASK_FAILED (the launch
	// grace period passed) instead of TASK_KILLED.
	failMsg string
	timer   *time.Timer
	// launchedAt is when LAUNCH arrived (the start latency metric).
	launchedAt time.Time
}

type report struct {
	st v1.PodStatus
	s  pods.State
}

type streamMsg struct {
	gen int
	ev  *executor.Event
	err error // the stream ended
}

// sendResult is the end of one UPDATE call.
type sendResult struct {
	gen    int
	taskID string
	uuid   []byte
	err    error
}

// maxInFlight bounds the UPDATE calls under way at once: a SHUTDOWN's
// TASK_KILLED of 50 tasks took 1.6 s one after another on a loaded 2-core
// machine, and the agent's kill at the end of the grace period does not
// wait.
const maxInFlight = 16

type (
	podGone       struct{ taskID string }
	launchTimeout struct{ taskID string }
)

// errShutdown ends Run cleanly after SHUTDOWN.
var errShutdown = errors.New("shutdown")

// New validates cfg and fills defaults; Run starts the executor.
func New(cfg Config, start StartNode, log *slog.Logger) (*Executor, error) {
	m := cfg.Mesos
	switch {
	case m.AgentEndpoint == "" || m.FrameworkID == "" || m.ExecutorID == "":
		return nil, errors.New("executor: MESOS_AGENT_ENDPOINT, MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID are required")
	case m.ExecutorShutdownGracePeriod <= 0:
		return nil, errors.New("executor: MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD must be > 0")
	case start == nil:
		return nil, errors.New("executor: StartNode is required")
	}
	if cfg.LaunchGracePeriod <= 0 {
		cfg.LaunchGracePeriod = 5 * time.Minute
	}
	if cfg.SuicideTimeout <= 0 {
		cfg.SuicideTimeout = 20 * time.Minute
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []httpcli.Opt{
		httpcli.Endpoint((&url.URL{Scheme: "http", Host: m.AgentEndpoint, Path: "/api/v1/executor"}).String()),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(cfg.CallTimeout))),
	}
	if cfg.AuthToken != "" {
		opts = append(opts, httpcli.DefaultHeader("Authorization", "Bearer "+cfg.AuthToken))
	}
	h := httpcli.New(opts...)
	// The subscription gets a connection of its own (mesos-go's
	// example-executor; MESOS.md gotcha 12).
	return newExecutor(cfg, start, log, httpexec.NewSender(h.Send), httpexec.NewSender(h.Send, httpcli.Close(true))), nil
}

// newExecutor makes an executor that calls the agent through cli and
// subscribes through subscriber (tests: a fake agent).
func newExecutor(cfg Config, start StartNode, log *slog.Logger, cli, subscriber calls.Sender) *Executor {
	m := cfg.Mesos
	callOpts := executor.CallOptions{calls.Framework(m.FrameworkID), calls.Executor(m.ExecutorID)}
	return &Executor{
		cfg:        cfg,
		start:      start,
		log:        log.With("framework", m.FrameworkID, "executor", m.ExecutorID),
		cli:        calls.SenderWith(cli, callOpts...),
		subscriber: calls.SenderWith(subscriber, callOpts...),
		book:       NewBook(),
		tasks:      map[string]*task{},
		byUID:      map[string]*task{},
		static:     map[string]*v1.Pod{},
		events:     make(chan streamMsg, 64),
		msgs:       make(chan any, 64),
		sent:       make(chan sendResult, maxInFlight),
		quit:       make(chan struct{}),
		reports:    map[string]report{},
		poke:       make(chan struct{}, 1),
		view:       map[string]nodeapi.PodView{},
		info: nodeapi.Info{FrameworkID: m.FrameworkID, ExecutorID: m.ExecutorID,
			AgentEndpoint: m.AgentEndpoint, Checkpoint: m.Checkpoint},
	}
}

// Report is the pod manager's status callback: it records the newest
// status of the pod and wakes the loop; it never blocks.
func (e *Executor) Report(uid string, st v1.PodStatus, s pods.State) {
	e.reportMu.Lock()
	e.reports[uid] = report{st, s}
	e.reportMu.Unlock()
	select {
	case e.poke <- struct{}{}:
	default:
	}
}

// Run subscribes and serves until SHUTDOWN (nil), the suicide timeout
// (nil), the agent being gone past the recovery timeout or, without
// checkpointing, a broken connection (an error), or ctx's end.
func (e *Executor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer close(e.quit)
	defer func() {
		if e.cancelSub != nil {
			e.cancelSub()
		}
	}()
	e.idleSince = time.Now()
	e.connect(ctx)
	suicide := time.NewTimer(e.cfg.SuicideTimeout)
	defer suicide.Stop()
	for {
		var err error
		select {
		case m := <-e.events:
			if m.gen != e.gen {
				continue
			}
			e.steps.events++
			if m.ev == nil {
				err = e.lost(m.err)
			} else {
				err = e.handle(ctx, m.ev)
			}
		case <-e.resub:
			e.resub = nil
			if gone := time.Since(e.lostAt); gone > e.cfg.Mesos.RecoveryTimeout {
				e.log.Error("agent gone past the recovery timeout: stopping all pods", "gone", gone, "recovery_timeout", e.cfg.Mesos.RecoveryTimeout)
				e.stopAll(false)
				return fmt.Errorf("agent unreachable for %s (MESOS_RECOVERY_TIMEOUT %s)", gone.Round(time.Second), e.cfg.Mesos.RecoveryTimeout)
			}
			e.connect(ctx)
		case r := <-e.sent:
			err = e.sendDone(r)
		case <-e.poke:
			e.drainReports()
		case m := <-e.msgs:
			e.steps.msgs++
			e.message(m)
		case <-suicide.C:
			if e.live() == 0 && time.Since(e.idleSince) >= e.cfg.SuicideTimeout {
				e.log.Info("no task for the suicide timeout: exiting", "suicide_timeout", e.cfg.SuicideTimeout)
				return nil
			}
			suicide.Reset(max(e.cfg.SuicideTimeout-time.Since(e.idleSince), time.Second))
		case <-ctx.Done():
			return ctx.Err()
		}
		if errors.Is(err, errShutdown) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.testStep != nil && e.sending == 0 && (!e.connected || e.book.Queued() == 0) {
			e.testStep(e.steps)
		}
	}
}

// lost handles a broken subscription: its stream ended, the agent sent
// ERROR, or an UPDATE call failed. With checkpointing the executor
// re-subscribes after a backoff, its pods running meanwhile; without, it
// stops every pod and ends (docs/executor-http-api.md "Disconnections").
func (e *Executor) lost(why error) error {
	e.cancelSub()
	e.gen++ // what the old subscription still delivers is stale
	e.setConnected(false)
	e.lostAt = time.Now()
	if !e.cfg.Mesos.Checkpoint {
		e.log.Warn("connection to the agent lost and the framework does not checkpoint: stopping all pods", "err", why)
		e.stopAll(false)
		return fmt.Errorf("agent connection lost: %w", why)
	}
	e.backoff = min(max(2*e.backoff, 100*time.Millisecond), e.backoffMax())
	e.log.Warn("connection to the agent lost; re-subscribing", "err", why, "in", e.backoff)
	e.resub = time.After(e.backoff)
	return nil
}

// send queues a message for the loop; dropped once Run has returned.
func (e *Executor) send(m any) {
	select {
	case e.msgs <- m:
	case <-e.quit:
	}
}

func (e *Executor) backoffMax() time.Duration {
	if b := e.cfg.Mesos.SubscriptionBackoffMax; b > 0 {
		return b
	}
	return 2 * time.Second
}

// connect starts a subscription carrying everything unacknowledged; its
// events and its end arrive on e.events.
func (e *Executor) connect(ctx context.Context) {
	if e.cancelSub != nil {
		e.cancelSub()
	}
	e.gen++
	gen := e.gen
	sctx, cancel := context.WithCancel(ctx)
	e.cancelSub, e.subCtx = cancel, sctx
	tasks, updates := e.book.Unacknowledged()
	call := calls.Subscribe(tasks, updates)
	go func() {
		deliver := func(m streamMsg) {
			select {
			case e.events <- m:
			case <-sctx.Done():
			}
		}
		resp, err := e.subscriber.Send(sctx, calls.NonStreaming(call))
		if err != nil {
			deliver(streamMsg{gen: gen, err: fmt.Errorf("subscribe: %w", err)})
			return
		}
		// mesos-go does not watch ctx on a stream: closing the body
		// unblocks Decode.
		stop := context.AfterFunc(sctx, func() { _ = resp.Close() })
		defer stop()
		defer func() { _ = resp.Close() }()
		for {
			var ev executor.Event
			if err := resp.Decode(&ev); err != nil {
				deliver(streamMsg{gen: gen, err: err})
				return
			}
			deliver(streamMsg{gen: gen, ev: &ev})
		}
	}()
}

func (e *Executor) handle(ctx context.Context, ev *executor.Event) error {
	switch ev.Type {
	case executor.Event_SUBSCRIBED:
		return e.subscribed(ctx, ev.Subscribed)
	case executor.Event_LAUNCH:
		e.launch(ev.Launch.Task)
	case executor.Event_LAUNCH_GROUP:
		for _, t := range ev.LaunchGroup.TaskGroup.Tasks {
			e.book.Launched(t)
			tk := &task{info: t, state: mesos.TASK_STAGING}
			e.tasks[t.TaskID.Value] = tk
			e.update(tk, mesos.TASK_FAILED, mesos.REASON_TASK_GROUP_INVALID.Enum(),
				"k8sm launches one pod per task: use LAUNCH, not LAUNCH_GROUP")
		}
	case executor.Event_KILL:
		e.kill(ev.Kill.TaskID.Value, ev.Kill.KillPolicy)
	case executor.Event_ACKNOWLEDGED:
		a := ev.Acknowledged
		if e.book.Acked(a.TaskID.Value, a.UUID) && e.cfg.Metrics != nil {
			e.cfg.Metrics.UpdatesAcked.Inc()
			e.cfg.Metrics.UpdatesPending.Set(float64(e.book.Pending()))
		}
		if t := e.tasks[a.TaskID.Value]; t != nil && terminal(t.state) && e.book.PendingFor(a.TaskID.Value) == 0 && t.uid != "" && e.byUID[t.uid] != t {
			// Terminal, acknowledged, its pod gone: nothing left to track.
			delete(e.tasks, a.TaskID.Value)
		}
	case executor.Event_MESSAGE:
		e.log.Debug("framework message ignored", "bytes", len(ev.Message.Data))
	case executor.Event_SHUTDOWN:
		e.log.Info("SHUTDOWN from the agent: stopping every pod")
		e.stopAll(true)
		return errShutdown
	case executor.Event_ERROR:
		// Legacy; the recommended reaction is to re-subscribe.
		return e.lost(fmt.Errorf("ERROR event from the agent: %s", ev.Error.Message))
	case executor.Event_HEARTBEAT:
	default:
		e.log.Warn("unknown event ignored", "type", ev.Type)
	}
	return nil
}

func (e *Executor) subscribed(ctx context.Context, s *executor.Event_Subscribed) error {
	e.backoff = 0
	e.setConnected(true)
	if e.pods != nil {
		e.log.Info("re-subscribed to the agent", "pending_updates", e.book.Pending())
		e.pump() // what was made since the SUBSCRIBE call
		return nil
	}
	e.id = Identity{
		FrameworkID: e.cfg.Mesos.FrameworkID, ExecutorID: e.cfg.Mesos.ExecutorID,
		AgentID: s.AgentInfo.GetID().GetValue(), ContainerID: s.GetContainerID().GetValue(),
		Agent: s.AgentInfo, Executor: s.ExecutorInfo,
	}
	e.log = e.log.With("container", e.id.ContainerID)
	e.publishIdentity()
	e.publishResources()
	node, err := e.start(ctx, e.id, e.Report)
	if err != nil {
		return fmt.Errorf("start the node side: %w", err)
	}
	e.pods, e.podStatus, e.mirrorPod = node.Pods, node.PodStatus, node.MirrorPod
	e.pump()
	e.log.Info("subscribed to the agent", "agent", e.id.AgentID, "hostname", s.AgentInfo.Hostname)
	e.startStaticPods(s.ExecutorInfo.Data)
	return nil
}

// startStaticPods runs the static pods the scheduler packed into
// ExecutorInfo.data (shared/DESIGN.md "Static pods"). They are not Mesos
// tasks: they send no updates and run until the executor stops. A pod that
// cannot run is logged and skipped; the others run.
func (e *Executor) startStaticPods(data []byte) {
	if len(data) == 0 {
		return
	}
	static, err := staticpods.Unpack(data)
	if err != nil {
		e.log.Error("static pods in ExecutorInfo.data cannot be read; none started", "err", err)
		return
	}
	node := e.id.Agent.Hostname
	for _, pod := range static {
		// As the kubelet names static pods: <name>-<node name>, bound to
		// this node.
		pod.Name = pod.Name + "-" + strings.ToLower(node)
		pod.Spec.NodeName = node
		podspec.Default(pod, e.cfg.Defaults)
		log := e.log.With("static_pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID)
		if err := podspec.Validate(pod, e.cfg.Policy); err != nil {
			log.Error("static pod refused", "err", err)
			continue
		}
		if pod.UID == "" {
			// staticpods.Load gives every pod a content-derived UID.
			log.Error("static pod refused: metadata.uid is empty (pack what staticpods.Load returns)")
			continue
		}
		if err := e.pods.Launch(pod, StaticTaskID(pod), e.limits(pod)); err != nil {
			log.Error("static pod not started", "err", err)
			continue
		}
		e.static[string(pod.UID)] = pod
		if e.mirrorPod != nil {
			e.mirrorPod(pod)
		}
		log.Info("static pod started")
	}
}

// StaticTaskID is the task id label of a static pod's containers: static
// pods are not Mesos tasks.
func StaticTaskID(pod *v1.Pod) string { return "static." + string(pod.UID) }

// limits are a pod cgroup's: the task's resources (podspec.TaskResources,
// what the scheduler asked Mesos for: the pod's sums and the sandbox).
func (e *Executor) limits(pod *v1.Pod) cgroups.Limits {
	milli, mem := podspec.TaskResources(pod)
	return cgroups.Limits{CPURequestMilli: milli, CPULimitMilli: milli, MemoryBytes: mem}
}

// launch accepts a task whose data is a pod (shared/DESIGN.md "Task data").
func (e *Executor) launch(info mesos.TaskInfo) {
	id := info.TaskID.Value
	if _, dup := e.tasks[id]; dup {
		e.log.Warn("duplicate LAUNCH ignored", "task", id)
		return
	}
	e.book.Launched(info)
	t := &task{info: info, state: mesos.TASK_STAGING, launchedAt: time.Now()}
	e.tasks[id] = t
	log := e.log.With("task", id)
	if e.pods == nil {
		e.update(t, mesos.TASK_FAILED, mesos.REASON_EXECUTOR_UNREGISTERED.Enum(), "LAUNCH before SUBSCRIBED")
		return
	}
	pod, err := podspec.Decode(info.Data)
	if err == nil {
		podspec.Default(pod, e.cfg.Defaults)
		err = podspec.Validate(pod, e.cfg.Policy)
	}
	if err != nil {
		log.Warn("task refused: bad pod", "err", err)
		e.update(t, mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(), "invalid pod in task data: "+err.Error())
		return
	}
	t.uid, t.pod = string(pod.UID), pod
	if other := e.byUID[t.uid]; other != nil {
		e.update(t, mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(),
			fmt.Sprintf("pod uid %s already runs here as task %s", t.uid, other.info.TaskID.Value))
		return
	}
	e.byUID[t.uid] = t
	log = log.With("pod", pod.Namespace+"/"+pod.Name, "uid", t.uid)
	t.status = v1.PodStatus{Phase: v1.PodPending}
	e.update(t, mesos.TASK_STARTING, nil, "")
	if err := e.pods.Launch(pod, id, e.limits(pod)); err != nil {
		log.Error("pod launch failed", "err", err)
		delete(e.byUID, t.uid)
		e.update(t, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED.Enum(), "launch pod: "+err.Error())
		return
	}
	e.idleSince = time.Time{}
	t.timer = time.AfterFunc(e.cfg.LaunchGracePeriod, func() { e.send(launchTimeout{id}) })
	done := e.pods.Done(t.uid)
	go func() {
		select {
		case <-done:
			e.send(podGone{id})
		case <-e.quit:
		}
	}()
	log.Info("pod accepted")
}

func (e *Executor) kill(id string, policy *mesos.KillPolicy) {
	t := e.tasks[id]
	if t == nil || terminal(t.state) {
		return
	}
	grace := time.Duration(0) // the pod's own terminationGracePeriodSeconds
	if policy != nil && policy.GracePeriod != nil {
		grace = max(time.Duration(policy.GracePeriod.Nanoseconds), time.Millisecond)
	}
	e.log.Info("killing task", "task", id, "grace", grace)
	e.stopPod(t, grace)
}

func (e *Executor) stopPod(t *task, grace time.Duration) {
	t.killing = true
	if t.timer != nil {
		t.timer.Stop()
	}
	if err := e.pods.Kill(t.uid, grace); err != nil {
		// The pod is already gone: its Done has fired or will.
		e.log.Debug("kill", "task", t.info.TaskID.Value, "err", err)
	}
}

func (e *Executor) message(m any) {
	switch m := m.(type) {
	case launchTimeout:
		t := e.tasks[m.taskID]
		if t == nil || t.state != mesos.TASK_STARTING || t.killing {
			return
		}
		t.failMsg = fmt.Sprintf("pod not running %s after LAUNCH: %s", e.cfg.LaunchGracePeriod, waitingFor(t.status))
		e.log.Warn("launch grace period passed: failing the task", "task", m.taskID, "why", t.failMsg)
		e.stopPod(t, 0)
	case podGone:
		t := e.tasks[m.taskID]
		if t == nil {
			return
		}
		delete(e.byUID, t.uid)
		e.drainReports() // the last status first
		switch {
		case terminal(t.state):
		case t.failMsg != "":
			e.update(t, mesos.TASK_FAILED, nil, t.failMsg)
		case t.killing:
			e.update(t, mesos.TASK_KILLED, nil, "pod killed")
		default:
			e.update(t, mesos.TASK_FAILED, nil, "the pod's worker ended without the pod finishing (see the executor's log)")
		}
		if e.live() == 0 {
			e.idleSince = time.Now()
		}
	}
}

// waitingFor says what the pod's containers wait for.
func waitingFor(st v1.PodStatus) string {
	var out []string
	for _, c := range append(append([]v1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
		if w := c.State.Waiting; w != nil {
			out = append(out, fmt.Sprintf("container %s is waiting (%s: %s)", c.Name, w.Reason, w.Message))
		}
	}
	if len(out) == 0 {
		return "the pod sandbox to start"
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

func (e *Executor) drainReports() {
	e.reportMu.Lock()
	rs := e.reports
	e.reports = map[string]report{}
	e.reportMu.Unlock()
	e.steps.reports += len(rs)
	for uid, r := range rs {
		if pod := e.static[uid]; pod != nil {
			e.publishStatic(pod, r)
			continue
		}
		t := e.byUID[uid]
		if t == nil || terminal(t.state) {
			continue
		}
		t.status = r.st
		v := TaskVerdict(t.state, r.s)
		if v.State == t.state {
			e.publish(t) // a new pod status in the same task state
			continue
		}
		if v.State == mesos.TASK_RUNNING {
			if t.timer != nil {
				t.timer.Stop()
			}
			e.observeStart(t)
		}
		e.update(t, v.State, v.Reason, v.Message)
	}
}

// update makes a status update with a fresh UUID and the pod status as
// data, books it until ACKNOWLEDGED, and moves t to state; the sender
// sends it (pump) when connected.
func (e *Executor) update(t *task, state mesos.TaskState, reason *mesos.TaskStatus_Reason, msg string) {
	e.makeUpdate(t, state, reason, msg)
	e.pump()
}

// pump starts the UPDATE calls the book has ready, each on its own
// goroutine: the loop never waits for the agent. The ends come back as
// sendResults (sendDone).
func (e *Executor) pump() {
	if !e.connected {
		return // the next SUBSCRIBE carries them
	}
	for _, u := range e.book.Next(maxInFlight - e.sending) {
		e.sending++
		call := calls.Update(u.Status)
		gen, ctx := e.gen, e.subCtx
		go func() {
			cctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
			defer cancel()
			r := sendResult{gen: gen, taskID: u.Status.TaskID.Value, uuid: u.Status.UUID, err: e.sendUpdate(cctx, call)}
			select {
			case e.sent <- r:
			case <-e.quit:
			}
		}()
	}
}

// sendDone takes the end of an UPDATE call. A failed one breaks the
// subscription: the next SUBSCRIBE carries it and every later update.
func (e *Executor) sendDone(r sendResult) error {
	e.sending--
	e.book.Sent(r.taskID, r.uuid)
	if r.err != nil && r.gen == e.gen && e.connected {
		return e.lost(fmt.Errorf("UPDATE of task %s: %w", r.taskID, r.err))
	}
	e.pump()
	return nil
}

// makeUpdate books a new status update of t (fresh UUID, the pod status as
// data) and moves t to state.
func (e *Executor) makeUpdate(t *task, state mesos.TaskState, reason *mesos.TaskStatus_Reason, msg string) {
	data, _ := json.Marshal(t.status) // a PodStatus always marshals
	u := uuid.New()
	now := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID: t.info.TaskID, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		UUID: u[:], Data: data, Reason: reason, Timestamp: &now,
		ExecutorID: &mesos.ExecutorID{Value: e.cfg.Mesos.ExecutorID},
	}
	if msg != "" {
		st.Message = &msg
	}
	e.book.Made(executor.Call_Update{Status: st})
	t.state = state
	e.countStates()
	e.publish(t)
	e.log.Info("task update", "task", t.info.TaskID.Value, "state", state, "message", msg)
}

// sendUpdate sends one UPDATE call. It is safe to call concurrently: it
// touches no executor state.
func (e *Executor) sendUpdate(ctx context.Context, call *executor.Call) error {
	resp, err := e.cli.Send(ctx, calls.NonStreaming(call))
	if resp != nil {
		_ = resp.Close()
	}
	return err
}

// live counts tasks not yet terminal.
func (e *Executor) live() int {
	n := 0
	for _, t := range e.tasks {
		if !terminal(t.state) {
			n++
		}
	}
	return n
}

// ShutdownBudget is how long the executor gives its pods on SHUTDOWN: 80%
// of the agent's grace period, or the grace period less one second when
// that is shorter but still at least half of it (3s -> 2s, 5s -> 4s,
// 1s -> 800ms). SIGKILL goes out at 60% of the budget, so that Docker's
// teardown fits in the rest; the tasks are reported TASK_KILLED as soon as
// no pod process is left, at the latest at the budget's end. Removing containers Docker has not finished with goes on
// until cleanup (90% of the grace period), before the agent's own kill.
func ShutdownBudget(grace time.Duration) (budget, killAfter, cleanup time.Duration) {
	budget = grace * 8 / 10
	if g := grace - time.Second; g < budget && g >= grace/2 {
		budget = g
	}
	return budget, budget * 6 / 10, grace * 9 / 10
}

// stopAll stops every pod within the shutdown budget; with report, each
// live task then gets TASK_KILLED.
func (e *Executor) stopAll(report bool) {
	if e.pods == nil {
		return
	}
	start := time.Now()
	budget, killAfter, cleanup := ShutdownBudget(e.cfg.Mesos.ExecutorShutdownGracePeriod)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(budget))
	defer cancel()
	err := e.pods.StopAll(ctx, start.Add(killAfter))
	switch {
	case err == nil:
		e.log.Info("every pod stopped", "took", time.Since(start), "budget", budget)
	case errors.Is(err, pods.ErrNotRemoved):
		e.log.Warn("every pod's processes are dead; Docker is still removing containers", "took", time.Since(start), "budget", budget, "err", err)
	default:
		e.log.Error("stop all pods", "err", err, "budget", budget)
	}
	// The TASK_KILLED updates go out while Docker's removals go on: under
	// load the agent may take its time with 50 UPDATE calls, and neither
	// may hold up the other past the cleanup point.
	if report {
		e.reportKilled()
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if !errors.Is(err, pods.ErrNotRemoved) {
			return
		}
		// The processes are gone; what is left is Docker's bookkeeping.
		// Keep at it until just before the agent's kill.
		cctx, ccancel := context.WithDeadline(context.Background(), start.Add(cleanup))
		defer ccancel()
		if err := e.pods.Drain(cctx); err != nil {
			e.log.Warn("containers left for the reaper of the next executor (or k8sm-agent diag --reap)", "err", err)
		} else {
			e.log.Info("every container removed", "took", time.Since(start))
		}
	}()
	e.flush(start.Add(cleanup))
	<-drained
}

// reportKilled makes TASK_KILLED for every live task (SHUTDOWN); they go
// out through the sender like every update.
func (e *Executor) reportKilled() {
	ids := make([]string, 0, len(e.tasks))
	for id, t := range e.tasks {
		if !terminal(t.state) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		e.update(e.tasks[id], mesos.TASK_KILLED, nil, "executor shutdown")
	}
}

// flush runs the sender until every update is sent or the deadline: the
// last thing the executor does before it ends. A failed call is logged;
// there is no next subscription to carry it.
func (e *Executor) flush(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for e.sending > 0 || (e.connected && e.book.Queued() > 0) {
		select {
		case r := <-e.sent:
			e.sending--
			e.book.Sent(r.taskID, r.uuid)
			if r.err != nil {
				e.log.Warn("UPDATE failed", "task", r.taskID, "err", r.err)
			}
			e.pump()
		case <-timer.C:
			e.log.Warn("shutdown: updates not sent by the cleanup point", "in_flight", e.sending, "queued", e.book.Queued())
			return
		}
	}
}
