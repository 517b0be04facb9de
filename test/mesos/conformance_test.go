package mesos

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/k8sm/k8sm/test/testenv"
)

// These tests drive the double with mesos-go's scheduler client (httpsched)
// and a mesos-go executor (the test binary, see TestMain), plus raw HTTP
// where the status codes themselves are the contract. Executors run under
// the PosixLauncher here; cgroup placement and destruction are in
// cgroup_integration_test.go.

func TestLaunchRunKillAndOffers(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("launch"), protobuf())
	o := s.Offer()
	if o.Hostname != "agent1.test" || o.AgentID.Value != c.a.ID() {
		t.Fatalf("offer hostname/agent = %q/%q", o.Hostname, o.AgentID.Value)
	}
	if cpus, _ := resources.CPUs(o.Resources...); cpus != 4 {
		t.Fatalf("offered cpus = %v, want 4", cpus)
	}
	if o.AllocationInfo != nil {
		t.Fatal("a non-MULTI_ROLE framework got allocation_info")
	}
	if len(o.Attributes) != 2 || o.Attributes[0].Name != "rack" || o.Attributes[0].Text.Value != "r1" {
		t.Fatalf("attributes = %v", o.Attributes)
	}
	ex := testExecutorInfo(t, "ex1", "normal")
	s.Launch(o, testTask("t1", taskRun, ex))
	run := s.Update("t1", mesos.TASK_RUNNING)
	if run.GetSource() != mesos.SOURCE_EXECUTOR || !validUUID(run.UUID) || run.AgentID.Value != c.a.ID() || run.ExecutorID.Value != "ex1" {
		t.Fatalf("RUNNING update = %v", run)
	}
	if run.ContainerStatus == nil || run.ContainerStatus.ContainerID == nil || len(run.ContainerStatus.NetworkInfos) == 0 {
		t.Fatalf("no container_status with network_infos: %v", run.ContainerStatus)
	}
	s.Ack(run)

	// The executor started with the Mesos environment, in the sandbox.
	es := c.executor(t, "ex1")
	if !strings.HasSuffix(es.Directory, "/slaves/"+c.a.ID()+"/frameworks/"+s.ID+"/executors/ex1/runs/"+es.ContainerID) {
		t.Fatalf("sandbox %s is not under slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>", es.Directory)
	}
	env := readSandbox(t, es.Directory, "env.txt")
	for _, want := range []string{
		"MESOS_FRAMEWORK_ID=" + s.ID, "MESOS_EXECUTOR_ID=ex1", "MESOS_DIRECTORY=" + es.Directory,
		"MESOS_SANDBOX=" + es.Directory, "MESOS_AGENT_ENDPOINT=" + c.a.Endpoint(), "MESOS_CHECKPOINT=0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=1secs", "MESOS_HTTP_COMMAND_EXECUTOR=0", "MESOS_SLAVE_ID=" + c.a.ID(),
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("executor environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "MESOS_RECOVERY_TIMEOUT") {
		t.Error("MESOS_RECOVERY_TIMEOUT set for a framework without checkpointing")
	}

	// The next offer has the rest and names the framework's executor.
	o = s.Offer()
	if len(o.ExecutorIDs) != 1 || o.ExecutorIDs[0].Value != "ex1" {
		t.Fatalf("offer executor_ids = %v, want [ex1]", o.ExecutorIDs)
	}
	if cpus, _ := resources.CPUs(o.Resources...); cpus < 3.39 || cpus > 3.41 {
		t.Fatalf("offered cpus with a task running = %v, want 3.4", cpus)
	}
	s.Must(calls.Decline(o.ID))

	s.Must(calls.Kill("t1", c.a.ID()))
	killed := s.Update("t1", mesos.TASK_KILLED)
	s.Ack(killed)
	s.Must(calls.Revive())
	o = s.Offer()
	if cpus, _ := resources.CPUs(o.Resources...); cpus < 3.89 || cpus > 3.91 {
		t.Fatalf("offered cpus after the kill = %v, want 3.9 (executor still up)", cpus)
	}
}

func TestSchedulerJSONAndMultiRole(t *testing.T) {
	c := newCluster(t, nil)
	info := frameworkInfo("multi")
	info.Roles = []string{"k8s"}
	info.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}
	s := subscribe(t, c, info, jsonCodec())
	o := s.Offer()
	if o.AllocationInfo == nil || o.AllocationInfo.GetRole() != "k8s" || o.Resources[0].AllocationInfo == nil {
		t.Fatalf("MULTI_ROLE offer without allocation_info: %v", o)
	}
	ex := testExecutorInfo(t, "ex1", "normal", "TEST_EXECUTOR_CODEC=json")
	task := testTask("t1", taskFinish, ex)
	task.Resources = mesos.Resources(task.Resources).Allocate("k8s")
	ex.Resources = mesos.Resources(ex.Resources).Allocate("k8s")
	task.Executor = &ex
	s.Launch(o, task)
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	fin := s.Update("t1", mesos.TASK_FINISHED)
	s.Ack(fin)
}

// The SUBSCRIBE response is a chunked stream of type application/json
// (the call's) with a Mesos-Stream-Id header, and heartbeats follow
// SUBSCRIBED ("Scheduler HTTP API", SUBSCRIBE response and HEARTBEAT).
func TestHeartbeatsAndStreamHeaders(t *testing.T) {
	c := newCluster(t, nil)
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"headers"}}}`
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.m.SchedulerURL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaJSON)
	req.Header.Set("Accept", mediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SUBSCRIBE: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != mediaJSON {
		t.Errorf("Content-Type %q, want %q", ct, mediaJSON)
	}
	if resp.Header.Get("Mesos-Stream-Id") == "" {
		t.Error("no Mesos-Stream-Id header")
	}
	if resp.ContentLength != -1 {
		t.Errorf("Content-Length %d: the response must be a chunked stream", resp.ContentLength)
	}
	// The first RecordIO record: "<length>\n" then SUBSCRIBED.
	r := bufio.NewReader(resp.Body)
	n, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	size, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil {
		t.Fatalf("RecordIO length %q: %v", n, err)
	}
	rec := make([]byte, size)
	if _, err := io.ReadFull(r, rec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec), `"SUBSCRIBED"`) {
		t.Fatalf("first event %s, want SUBSCRIBED", rec)
	}

	s := subscribe(t, c, frameworkInfo("hb"), protobuf())
	s.Next("HEARTBEAT", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_HEARTBEAT })
	s.Next("HEARTBEAT", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_HEARTBEAT })
}

func TestAcceptValidation(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("validate"), protobuf())
	ex := testExecutorInfo(t, "ex1", "normal")

	o := s.Offer()
	big := testTask("big", "", ex)
	big.Resources = []mesos.Resource{scalar("cpus", 100), scalar("mem", 64)}
	s.Launch(o, big)
	st := s.Update("big", mesos.TASK_ERROR)
	if st.GetReason() != mesos.REASON_TASK_INVALID || st.UUID != nil || st.GetSource() != mesos.SOURCE_MASTER ||
		!strings.Contains(st.GetMessage(), "more than available") {
		t.Fatalf("oversized task: %v", st)
	}

	s.Must(calls.Revive())
	o = s.Offer()
	tiny := ex
	tiny.ExecutorID.Value = "tiny"
	tiny.Resources = []mesos.Resource{scalar("cpus", 0.001), scalar("mem", 32)}
	s.Launch(o, testTask("ok", "", ex), testTask("ok", "", ex), testTask("tinyex", "", tiny))
	s.Ack(s.Update("ok", mesos.TASK_RUNNING))
	dup := s.Update("ok", mesos.TASK_ERROR)
	if !strings.Contains(dup.GetMessage(), "duplicate ID") {
		t.Fatalf("duplicate task id: %v", dup)
	}
	if m := s.Update("tinyex", mesos.TASK_ERROR).GetMessage(); !strings.Contains(m, "minimum") {
		t.Fatalf("tiny executor: %s", m)
	}

	s.Must(calls.Revive())
	o = s.Offer()
	changed := ex
	changed.Name = ptr.To("other")
	s.Launch(o, testTask("incompatible", "", changed))
	if m := s.Update("incompatible", mesos.TASK_ERROR).GetMessage(); !strings.Contains(m, "not compatible") {
		t.Fatalf("incompatible ExecutorInfo: %s", m)
	}

	// A used offer is gone: tasks on it are lost with INVALID_OFFERS.
	s.Launch(o, testTask("stale", "", ex))
	lost := s.Update("stale", mesos.TASK_LOST)
	if lost.GetReason() != mesos.REASON_INVALID_OFFERS || lost.UUID != nil {
		t.Fatalf("task on a used offer: %v", lost)
	}
}

func TestDeclineFiltersReviveSuppress(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("filters"), protobuf())
	isOffer := func(e *scheduler.Event) bool { return e.Type == scheduler.Event_OFFERS }
	o := s.Offer()
	s.Must(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour)))
	s.None("offer while the decline filter holds", 25*c.m.cfg.AllocationInterval, isOffer)
	s.Must(calls.Revive())
	o = s.Offer()
	s.Must(calls.Suppress())
	s.Must(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	s.None("offer while suppressed", 25*c.m.cfg.AllocationInterval, isOffer)
	s.Must(calls.Revive())
	o = s.Offer()
	// refuse_seconds 0: offered again at the next allocation.
	s.Must(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	s.Offer()
}

func TestStatusUpdatesRetriedUntilAcknowledged(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("retry"), protobuf())
	s.Launch(s.Offer(), testTask("t1", taskFinish, testExecutorInfo(t, "ex1", "normal")))
	first := s.Update("t1", mesos.TASK_RUNNING)
	// Not acked: the same update (same uuid) comes again, and FINISHED
	// waits behind it.
	again := s.Update("t1", mesos.TASK_RUNNING)
	if string(again.UUID) != string(first.UUID) {
		t.Fatal("a retried update must keep its uuid")
	}
	for _, e := range s.Events() {
		if e.Type == scheduler.Event_UPDATE && e.Update.Status.GetState() == mesos.TASK_FINISHED {
			t.Fatal("FINISHED was forwarded before RUNNING was acknowledged")
		}
	}
	s.Ack(again)
	s.Ack(s.Update("t1", mesos.TASK_FINISHED))
}

func TestMessagesBothWays(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("msg"), protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "normal")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	s.Must(calls.Message(c.a.ID(), "ex1", []byte("ping")))
	e := s.Next("MESSAGE", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_MESSAGE })
	if string(e.Message.Data) != "echo:ping" || e.Message.ExecutorID.Value != "ex1" {
		t.Fatalf("MESSAGE = %v", e.Message)
	}
}

func TestLaunchGroupReachesTheExecutor(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("group"), protobuf())
	o := s.Offer()
	ex := testExecutorInfo(t, "ex1", "normal")
	a, b := testTask("g1", "", ex), testTask("g2", "", ex)
	a.Executor, b.Executor = nil, nil
	a.AgentID, b.AgentID = o.AgentID, o.AgentID
	s.Must(calls.Accept(calls.OfferOperations{calls.OpLaunchGroup(ex, a, b)}.WithOffers(o.ID)))
	s.Ack(s.Update("g1", mesos.TASK_FAILED))
	s.Ack(s.Update("g2", mesos.TASK_FAILED))
}

func TestExecutorShutdownAndExit(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("exit"), protobuf())
	ex := testExecutorInfo(t, "ex1", "normal")
	s.Launch(s.Offer(), testTask("t1", "", ex))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	s.Must(calls.Shutdown("ex1", c.a.ID()))
	s.Ack(s.Update("t1", mesos.TASK_KILLED))
	f := s.Next("FAILURE", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE })
	if f.Failure.ExecutorID.Value != "ex1" || f.Failure.GetStatus() != 0 {
		t.Fatalf("FAILURE = %v, want ex1 with status 0", f.Failure)
	}

	// A crashing executor: its running task fails with EXECUTOR_TERMINATED,
	// from the agent, with a uuid to acknowledge.
	s.Launch(s.Offer(), testTask("t2", taskCrash, testExecutorInfo(t, "ex2", "normal")))
	s.Ack(s.Update("t2", mesos.TASK_RUNNING))
	failed := s.Update("t2", mesos.TASK_FAILED)
	if failed.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || failed.GetSource() != mesos.SOURCE_AGENT || failed.UUID == nil {
		t.Fatalf("task of a crashed executor: %v", failed)
	}
	s.Ack(failed)
	f = s.Next("FAILURE", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE })
	if ws := syscall.WaitStatus(f.Failure.GetStatus()); ws.ExitStatus() != 7 {
		t.Fatalf("FAILURE status = %v, want exit 7", ws)
	}
}

func TestRegistrationTimeoutAndKillBeforeDelivery(t *testing.T) {
	c := newCluster(t, func(a *AgentConfig) {
		a.ExecutorRegistrationTimeout = 300 * time.Millisecond
	})
	s := subscribe(t, c, frameworkInfo("silent"), protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "silent")))
	pid := c.executor(t, "ex1").PID
	st := s.Update("t1", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT {
		t.Fatalf("reason = %v, want EXECUTOR_REGISTRATION_TIMEOUT", st.GetReason())
	}
	s.Ack(st)
	if processAlive(pid) {
		t.Fatalf("executor %d still alive after its registration timeout", pid)
	}

	c2 := newCluster(t, nil)
	s = subscribe(t, c2, frameworkInfo("killq"), protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "silent")))
	pid = c2.executor(t, "ex1").PID
	s.Must(calls.Kill("t1", c2.a.ID()))
	st = s.Update("t1", mesos.TASK_KILLED)
	if st.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH || st.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("kill of a queued task: %v", st)
	}
	s.Ack(st)
	// Its executor had nothing else: shut down, then destroyed after the
	// grace period (it never subscribed, so it cannot hear SHUTDOWN).
	s.Next("FAILURE", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE })
	if processAlive(pid) {
		t.Fatalf("executor %d alive after its shutdown", pid)
	}
}

func TestGracePeriodKillsAStubbornProcessTree(t *testing.T) {
	c := newCluster(t, func(a *AgentConfig) { a.ExecutorShutdownGracePeriod = 500 * time.Millisecond })
	s := subscribe(t, c, frameworkInfo("stubborn"), protobuf())
	s.Launch(s.Offer(), testTask("t1", taskStubborn, testExecutorInfo(t, "ex1", "stubborn")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	pid := c.executor(t, "ex1").PID
	waitGroupMembers(t, pid, 3) // executor, sh, a sleep; the other sleep left the group
	group := treeMembers(pid)
	if len(group) != 4 {
		t.Fatalf("executor tree = %v, want the executor, sh and two sleeps", group)
	}
	s.Must(calls.Shutdown("ex1", c.a.ID()))
	st := s.Update("t1", mesos.TASK_FAILED)
	if st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED {
		t.Fatalf("reason = %v", st.GetReason())
	}
	for _, p := range group {
		if processAlive(p) {
			t.Errorf("process %d of the executor's tree survived the grace period", p)
		}
	}
}

// waitGroupMembers waits until the process group pgid has n members.
func waitGroupMembers(t *testing.T, pgid, n int) []int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if ps := groupMembers(pgid); len(ps) >= n {
			return ps
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process group %d never had %d members: %v", pgid, n, groupMembers(pgid))
	return nil
}

func TestFrameworkFailoverAndTeardown(t *testing.T) {
	c := newCluster(t, nil)
	info := frameworkInfo("failover")
	info.FailoverTimeout = ptr.To(60.0)
	s := subscribe(t, c, info, protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "normal")))
	running := s.Update("t1", mesos.TASK_RUNNING) // not acked before the failover

	// A second subscription with the id fails the first one over.
	info.ID = &mesos.FrameworkID{Value: s.ID}
	s2 := subscribe(t, c, info, protobuf())
	s.Next("ERROR", func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_ERROR && e.Error.Message == "Framework failed over"
	})
	// The agent resends the pending update at once to the new subscription.
	again := s2.Update("t1", mesos.TASK_RUNNING)
	if string(again.UUID) != string(running.UUID) {
		t.Fatal("the resent update must keep its uuid")
	}
	s2.Ack(again)

	// Disconnect within failover_timeout: tasks stay.
	s2.Close()
	s3 := subscribe(t, c, info, protobuf())
	s3.Must(calls.Reconcile(calls.ReconcileTasks(nil)))
	r := s3.Update("t1", mesos.TASK_RUNNING)
	if r.GetReason() != mesos.REASON_RECONCILIATION || r.UUID != nil {
		t.Fatalf("implicit reconciliation: %v", r)
	}

	// TEARDOWN: executors are shut down and the framework cannot return.
	pid := c.executor(t, "ex1").PID
	s3.Must(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	deadline := time.Now().Add(wait)
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if processAlive(pid) {
		t.Fatal("executor alive after TEARDOWN")
	}
	code, _, _ := post(t, c.m.SchedulerURL(), mediaProtobuf,
		marshal(t, &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}),
		map[string]string{"Accept": mediaProtobuf})
	if code != 200 {
		t.Fatalf("re-SUBSCRIBE of a removed framework: %d, want 200 with an ERROR event", code)
	}
}

func TestFailoverTimeoutKillsTasks(t *testing.T) {
	c := newCluster(t, nil)
	info := frameworkInfo("short-failover")
	info.FailoverTimeout = ptr.To(0.3)
	s := subscribe(t, c, info, protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "normal")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	pid := c.executor(t, "ex1").PID
	s.Close()
	deadline := time.Now().Add(wait)
	for processAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if processAlive(pid) {
		t.Fatal("executor alive after the failover timeout")
	}
	if st := c.m.State(); len(st.Frameworks) != 0 {
		t.Fatalf("framework still known after its failover timeout: %+v", st.Frameworks)
	}
}

func TestReconcileUnknownTasks(t *testing.T) {
	c := newCluster(t, nil)
	pa := frameworkInfo("pa")
	pa.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}
	s := subscribe(t, c, pa, protobuf())
	s.Must(calls.Reconcile(calls.ReconcileTasks(map[string]string{"nowhere": "", "gone": c.a.ID(), "elsewhere": "no-such-agent"})))
	for task, want := range map[string]mesos.TaskState{"nowhere": mesos.TASK_UNKNOWN, "gone": mesos.TASK_GONE, "elsewhere": mesos.TASK_UNKNOWN} {
		st := s.Update(task, want)
		if st.GetReason() != mesos.REASON_RECONCILIATION || st.UUID != nil || st.GetSource() != mesos.SOURCE_MASTER {
			t.Fatalf("%s: %v", task, st)
		}
	}
	// KILL of an unknown task answers with reconciliation.
	s.Must(calls.Kill("ghost", c.a.ID()))
	s.Update("ghost", mesos.TASK_GONE)

	plain := subscribe(t, c, frameworkInfo("plain"), protobuf())
	plain.Must(calls.Reconcile(calls.ReconcileTasks(map[string]string{"x": c.a.ID()})))
	plain.Update("x", mesos.TASK_LOST)
}

// runCheckpointed subscribes a checkpointing framework and runs task t1
// on executor ex1.
func runCheckpointed(t *testing.T, c *cluster, name string) (*Scheduler, ExecutorState) {
	t.Helper()
	info := frameworkInfo(name)
	info.Checkpoint = ptr.To(true)
	s := subscribe(t, c, info, protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "normal")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	return s, c.executor(t, "ex1")
}

func TestAgentRestartWithCheckpointing(t *testing.T) {
	c := newCluster(t, func(a *AgentConfig) { a.ExecutorReregistrationTimeout = 10 * time.Second })
	s, es := runCheckpointed(t, c, "ckpt")
	env := readSandbox(t, es.Directory, "env.txt")
	for _, want := range []string{"MESOS_CHECKPOINT=1", "MESOS_RECOVERY_TIMEOUT=15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX=10secs"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("environment lacks %s", want)
		}
	}
	// An agent going away takes its outstanding offer with it.
	o := s.Offer()
	if err := c.a.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.Next("RESCIND of "+o.ID.Value, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_RESCIND && e.Rescind.OfferID.Value == o.ID.Value
	})
	// The executor re-subscribes; the task is still its own.
	waitFor(t, "re-subscription", func() bool {
		for _, e := range c.a.Executors() {
			if e.ExecutorID == "ex1" && e.State == "RUNNING" && !c.a.recoveringNow() {
				return true
			}
		}
		return false
	})
	if !processAlive(es.PID) {
		t.Fatal("the executor did not survive the agent restart")
	}
	s.Must(calls.Kill("t1", c.a.ID()))
	s.Ack(s.Update("t1", mesos.TASK_KILLED))
}

func TestAgentRestartReregistrationTimeout(t *testing.T) {
	c := newCluster(t, func(a *AgentConfig) { a.ExecutorReregistrationTimeout = 500 * time.Millisecond })
	s, es := runCheckpointed(t, c, "ckpt")
	// A frozen executor cannot re-subscribe.
	if err := syscall.Kill(es.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the executor stopped", func() bool { return processStopped(es.PID) })
	c.a.Stop()
	if err := c.a.Start(); err != nil {
		t.Fatal(err)
	}
	// While recovering, only SUBSCRIBE is served.
	upd := &executor.Call{Type: executor.Call_UPDATE, FrameworkID: mesos.FrameworkID{Value: s.ID}, ExecutorID: mesos.ExecutorID{Value: "ex1"},
		Update: &executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t1"}, State: mesos.TASK_RUNNING.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: newUUID()}}}
	if code, body, _ := post(t, "http://"+c.a.Endpoint()+"/api/v1/executor", mediaProtobuf, marshal(t, upd), nil); code != 503 {
		t.Fatalf("UPDATE while recovering: %d %s, want 503", code, body)
	}
	st := s.Update("t1", mesos.TASK_LOST)
	if st.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT {
		t.Fatalf("reason = %v", st.GetReason())
	}
	s.Ack(st)
	waitFor(t, "the frozen executor's death", func() bool { return !processAlive(es.PID) })
}

func TestAgentRestartWithoutCheckpointing(t *testing.T) {
	c := newCluster(t, nil)
	s := subscribe(t, c, frameworkInfo("no-ckpt"), protobuf())
	s.Launch(s.Offer(), testTask("t1", "", testExecutorInfo(t, "ex1", "normal")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	es := c.executor(t, "ex1")
	if err := c.a.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st := s.Update("t1", mesos.TASK_LOST)
	if st.GetReason() != mesos.REASON_RECONCILIATION || st.GetMessage() != "Reconciliation: task unknown to the agent" {
		t.Fatalf("task of a non-checkpointing framework after an agent restart: %v", st)
	}
	s.Ack(st)
	waitFor(t, "the executor's end", func() bool { return !processAlive(es.PID) })
}

func TestExecutorAuthentication(t *testing.T) {
	c := newCluster(t, func(a *AgentConfig) { a.ExecutorAuth = true })
	s := subscribe(t, c, frameworkInfo("auth"), protobuf())
	o := s.Offer()
	s.Launch(o, testTask("t1", "", testExecutorInfo(t, "ex1", "normal")), testTask("t2", "", testExecutorInfo(t, "ex2", "normal", "TEST_EXECUTOR_NO_TOKEN=1")))
	s.Ack(s.Update("t1", mesos.TASK_RUNNING))
	es := c.executor(t, "ex1")
	env := readSandbox(t, es.Directory, "env.txt")
	tok := ""
	for _, l := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(l, "MESOS_EXECUTOR_AUTHENTICATION_TOKEN="); ok {
			tok = v
		}
	}
	if tok == "" {
		t.Fatal("no MESOS_EXECUTOR_AUTHENTICATION_TOKEN")
	}
	hb := &executor.Call{Type: executor.Call_HEARTBEAT, FrameworkID: mesos.FrameworkID{Value: s.ID}, ExecutorID: mesos.ExecutorID{Value: "ex1"}}
	url := "http://" + c.a.Endpoint() + "/api/v1/executor"
	if code, _, _ := post(t, url, mediaProtobuf, marshal(t, hb), nil); code != 401 {
		t.Fatalf("call without a token: %d, want 401", code)
	}
	if code, _, _ := post(t, url, mediaProtobuf, marshal(t, hb), map[string]string{"Authorization": "Bearer " + tok}); code != 202 {
		t.Fatalf("HEARTBEAT with the token: %d, want 202", code)
	}
	msg := &executor.Call{Type: executor.Call_MESSAGE, FrameworkID: mesos.FrameworkID{Value: s.ID}, ExecutorID: mesos.ExecutorID{Value: "ex2"}, Message: &executor.Call_Message{Data: []byte("x")}}
	if code, _, _ := post(t, url, mediaProtobuf, marshal(t, msg), map[string]string{"Authorization": "Bearer " + tok}); code != 403 {
		t.Fatalf("ex1's token on ex2's call: %d, want 403", code)
	}
	// ex2 sends no token: its SUBSCRIBE gets 401, so it never runs t2 and,
	// not checkpointing, gives up and exits; the agent fails t2.
	failed := s.Update("t2", mesos.TASK_FAILED)
	if failed.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || failed.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("task of an executor without its token: %v", failed)
	}
	for _, e := range s.Events() {
		if e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == "t2" && e.Update.Status.GetState() == mesos.TASK_RUNNING {
			t.Fatal("an executor without its token got t2 running")
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, wait, what, cond)
}

func TestTwoAgents(t *testing.T) {
	work2 := t.TempDir() // before newCluster: removed after the agents are closed
	c := newCluster(t, nil)
	res, err := ParseResources("cpus:1;mem:512")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.m.AddAgent(AgentConfig{Hostname: "agent2.test", Resources: res, WorkDir: work2,
		ExecutorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GORACE=atexit_sleep_ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, c, frameworkInfo("two"), protobuf())
	offers := map[string]mesos.Offer{}
	for len(offers) < 2 {
		o := s.Offer()
		offers[o.Hostname] = o
	}
	if offers["agent2.test"].AgentID.Value != b.ID() || b.ID() == c.a.ID() {
		t.Fatalf("offers = %v", offers)
	}
	// One ACCEPT may not span agents: its tasks are lost.
	task := testTask("across", "", testExecutorInfo(t, "ex1", "normal"))
	task.AgentID = offers["agent1.test"].AgentID
	s.Must(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offers["agent1.test"].ID, offers["agent2.test"].ID)))
	if st := s.Update("across", mesos.TASK_LOST); st.GetReason() != mesos.REASON_INVALID_OFFERS {
		t.Fatalf("ACCEPT across agents: %v", st)
	}
	s.Must(calls.Revive())
	for _, host := range []string{"agent1.test", "agent2.test"} {
		var o mesos.Offer
		for o.Hostname != host {
			o = s.Offer()
		}
		s.Launch(o, testTask("on-"+host, "", testExecutorInfo(t, "ex1", "normal")))
		st := s.Update("on-"+host, mesos.TASK_RUNNING)
		if st.AgentID.Value != o.AgentID.Value {
			t.Fatalf("task on %s reported by agent %s", host, st.AgentID.Value)
		}
		s.Ack(st)
	}
	if len(b.Executors()) != 1 || len(c.a.Executors()) != 1 {
		t.Fatalf("executors: agent1 %v, agent2 %v", c.a.Executors(), b.Executors())
	}
}

func TestAgentRestartRecoverCleanup(t *testing.T) {
	c := newCluster(t, func(a *AgentConfig) { a.Recover = "cleanup" })
	s, es := runCheckpointed(t, c, "cleanup")
	if err := c.a.Restart(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The re-subscribing executor is told to shut down: it kills its task.
	s.Ack(s.Update("t1", mesos.TASK_KILLED))
	waitFor(t, "the executor's exit", func() bool { return !processAlive(es.PID) })
}
