package mesos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

func TestFaultsAreReproducible(t *testing.T) {
	draw := func(seed int64) string {
		f := &Faults{Seed: seed, DropEvents: 0.3, DuplicateEvents: 0.3, DelayEvents: 0.3, MaxDelay: time.Second, CutStreams: 0.1, DropAcks: 0.5}
		var b strings.Builder
		for range 200 {
			fmt.Fprintf(&b, "%v %v|", f.event(), f.dropAck())
		}
		return b.String()
	}
	if a, b := draw(7), draw(7); a != b {
		t.Fatal("the same seed gave different fates")
	}
	if draw(7) == draw(8) {
		t.Fatal("different seeds gave the same fates")
	}
	var none *Faults
	if none.event() != (fate{}) || none.dropAck() {
		t.Fatal("a nil *Faults injected a fault")
	}
}

// TestFaultyNetworkLosesNoUpdate: with a fifth of the acknowledgements
// lost both ways, events duplicated and delayed, and executor streams cut
// now and then, every update the agent accepted reaches the scheduler, in
// order per task, and every task ends.
func TestFaultyNetworkLosesNoUpdate(t *testing.T) {
	const seed, tasks = 20261202, 20
	c := newCluster(t, func(a *AgentConfig) {
		a.Faults = &Faults{Seed: seed, DropAcks: 0.2, DuplicateEvents: 0.15, DelayEvents: 0.1, MaxDelay: 20 * time.Millisecond, CutStreams: 0.1}
	})
	c.m.cfg.Faults = &Faults{Seed: seed + 1, DropAcks: 0.2, DuplicateEvents: 0.15}
	info := frameworkInfo("faults")
	info.Checkpoint = ptr.To(true)
	s := subscribe(t, c, info, protobuf())
	ex := testExecutorInfo(t, "ex1", "normal")
	var ts []mesos.TaskInfo
	for i := range tasks {
		task := testTask(fmt.Sprintf("t%02d", i), taskFinish, ex)
		task.Resources = []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)}
		ts = append(ts, task)
	}
	s.Launch(s.Offer(), ts...)

	// Ack every update with a uuid, however often it comes, until every
	// task has a terminal state.
	seen := map[string][]string{} // task -> states in order of first arrival
	uuids := map[string]bool{}
	final := map[string]mesos.TaskState{}
	deadline := time.Now().Add(2 * wait)
	for len(final) < tasks {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d tasks ended: %v", len(final), tasks, final)
		}
		e := s.Next("UPDATE", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_UPDATE })
		st := e.Update.Status
		id := st.TaskID.Value
		if st.UUID == nil {
			continue
		}
		if !uuids[string(st.UUID)] {
			uuids[string(st.UUID)] = true
			seen[id] = append(seen[id], st.GetState().String())
		}
		if terminal(st.GetState()) || st.GetState() == mesos.TASK_LOST {
			final[id] = st.GetState()
		}
		_ = s.Call(calls.Acknowledge(st.AgentID.Value, id, st.UUID))
	}

	sent := readSandbox(t, c.executor(t, "ex1").Directory, "sent.txt")
	for _, line := range strings.Split(strings.TrimSpace(sent), "\n") {
		f := strings.Fields(line)
		var u []byte
		if _, err := fmt.Sscanf(f[2], "%x", &u); err != nil {
			t.Fatal(err)
		}
		if !uuids[string(u)] {
			t.Errorf("update %s %s was accepted by the agent but never reached the scheduler", f[0], f[1])
		}
	}
	for id, states := range seen {
		switch strings.Join(states, ",") {
		case "TASK_RUNNING,TASK_FINISHED":
		case "TASK_LOST": // its LAUNCH went down with a cut stream (REASON_AGENT_RESTARTED)
		default:
			t.Errorf("task %s went through %v", id, states)
		}
	}
	ag, ms := c.a.cfg.Faults.Injected(), c.m.cfg.Faults.Injected()
	t.Logf("%d updates delivered for %d tasks; agent faults %+v, master faults %+v", len(uuids), tasks, ag, ms)
	if ag.AcksDropped == 0 || ms.AcksDropped == 0 || ag.Duplicated == 0 || ms.Duplicated == 0 || ag.Cut == 0 {
		t.Fatal("the run injected too few faults to prove anything: change the seed")
	}
}
