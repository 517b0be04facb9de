//go:build integration && linux

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/k8sm/k8sm/agent/runtime"
	mesosd "github.com/k8sm/k8sm/test/mesos"
)

// launchOn launches tasks on the agent agentID with the next offer of it,
// declining the other agents' offers that come with it.
func (n *node) launchOn(t testing.TB, agentID string, tasks ...mesos.TaskInfo) {
	t.Helper()
	for {
		e := n.sched.Next("an offer of agent "+agentID, func(e *scheduler.Event) bool { return e.Type == scheduler.Event_OFFERS })
		var mine *mesos.Offer
		var others []mesos.OfferID
		for i, o := range e.Offers.Offers {
			if o.AgentID.Value == agentID && mine == nil {
				mine = &e.Offers.Offers[i]
				continue
			}
			others = append(others, o.ID)
		}
		if len(others) > 0 {
			n.sched.Must(calls.Decline(others...).With(calls.RefuseSeconds(0)))
		}
		if mine != nil {
			n.sched.Launch(*mine, tasks...)
			return
		}
	}
}

// containersOfAgent are the k8sm containers of agent agentID, by id, with
// their state and restart count.
func (n *node) containersOfAgent(t testing.TB, agentID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range n.containersOf(t) {
		if c.Labels[runtime.LabelAgentID] == agentID {
			out[c.ID] = c.State + " restarts=" + c.Labels[runtime.LabelRestartCount]
		}
	}
	return out
}

// TestTwoAgentsShareADockerd: two Mesos agents of one framework on one
// dockerd (as the scheduler e2e runs, and as a node with two agents may),
// with the same executor id on both (the scheduler's hash of the executor
// config). Restarting one agent's executor (kill -9, then a new task
// starts a new one, which adopts and reaps at start and every 300 ms) never
// touches the other agent's pod: the same containers, running, no
// restart. Its own dead executor's containers are reaped, which shows the
// reaper ran.
func TestTwoAgentsShareADockerd(t *testing.T) {
	n := newNamedNode(t, 5*time.Second, "e2e-agent1", "--reap-interval", "300ms")
	res, err := mesosd.ParseResources("cpus:64;mem:65536")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := n.m.AddAgent(mesosd.AgentConfig{
		Hostname: "e2e-agent2", Resources: res, WorkDir: t.TempDir(),
		Cgroups: true, CgroupRoot: strings.TrimPrefix(n.root.Path, "/"),
		ExecutorShutdownGracePeriod: 5 * time.Second, StatusUpdateRetryMin: 200 * time.Millisecond, StatusUpdateRetryMax: time.Second,
		ExecutorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	agents := []string{n.a.ID(), a2.ID()}
	executorOf := func(agentID string) mesosd.ExecutorState {
		t.Helper()
		a := n.a
		if agentID == a2.ID() {
			a = a2
		}
		var found mesosd.ExecutorState
		waitFor(t, "the executor of agent "+agentID, func() bool {
			for _, e := range a.Executors() {
				if e.State == "RUNNING" {
					found = e
					return true
				}
			}
			return false
		})
		return found
	}
	run := func(agentID, name string) mesos.TaskInfo {
		t.Helper()
		task := n.podTask(t, stubbornPod(name), nil)
		n.launchOn(t, agentID, task)
		n.expect(task.TaskID.Value, mesos.TASK_STARTING)
		n.expect(task.TaskID.Value, mesos.TASK_RUNNING)
		return task
	}
	run(agents[0], "first-1")
	run(agents[1], "first-2")

	for i, agent := range agents {
		other := agents[1-i]
		before := n.containersOfAgent(t, other)
		if len(before) != 2 {
			t.Fatalf("agent %s: %d containers, want its pod's sandbox and container: %v", other, len(before), before)
		}
		for id, st := range before {
			if !strings.HasPrefix(st, "running") {
				t.Fatalf("agent %s: container %s is %s before the restart", other, id[:12], st)
			}
		}
		dead := executorOf(agent)
		if err := syscall.Kill(dead.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "agent "+agent+"'s executor gone", func() bool {
			for _, e := range n.containersOf(t) {
				if e.Labels[runtime.LabelContainerID] == dead.ContainerID && e.State == "running" {
					return false
				}
			}
			return true
		})
		// The new executor adopts and reaps at its start.
		run(agent, fmt.Sprintf("second-%d", i+1))
		waitFor(t, "agent "+agent+"'s dead executor's containers reaped", func() bool {
			for _, c := range n.containersOf(t) {
				if c.Labels[runtime.LabelContainerID] == dead.ContainerID {
					return false
				}
			}
			return true
		})
		// Several periodic passes (300 ms, grace 600 ms) of the new
		// executor's reaper.
		time.Sleep(2 * time.Second)
		after := n.containersOfAgent(t, other)
		for id, st := range before {
			if after[id] != st {
				t.Errorf("restarting agent %s's executor touched agent %s's container %s: %q before, %q after",
					agent, other, id[:12], st, after[id])
			}
		}
		if len(after) != len(before) {
			t.Errorf("agent %s's containers changed: %v, then %v", other, before, after)
		}
	}
}
