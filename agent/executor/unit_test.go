package executor

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/pods"
)

func upd(task, uuid string) executor.Call_Update {
	return executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, UUID: []byte(uuid)}}
}

func TestBookKeepsWhatIsNotAcknowledged(t *testing.T) {
	b := NewBook()
	b.Launched(mesos.TaskInfo{TaskID: mesos.TaskID{Value: "a"}})
	b.Launched(mesos.TaskInfo{TaskID: mesos.TaskID{Value: "b"}})
	b.Made(upd("a", "1"))
	b.Made(upd("a", "2"))
	b.Made(upd("b", "3"))
	if b.Acked("a", []byte("9")) || b.Acked("b", []byte("1")) {
		t.Fatal("an unknown (task, uuid) was acknowledged")
	}
	if !b.Acked("a", []byte("1")) {
		t.Fatal("a pending update was not acknowledged")
	}
	tasks, updates := b.Unacknowledged()
	if len(tasks) != 1 || tasks[0].TaskID.Value != "b" {
		t.Fatalf("unacknowledged tasks = %v, want only b (a has an acked update)", tasks)
	}
	if len(updates) != 2 || string(updates[0].Status.UUID) != "2" || string(updates[1].Status.UUID) != "3" {
		t.Fatalf("unacknowledged updates = %v, want 2 then 3", updates)
	}
	if b.PendingFor("a") != 1 || b.Pending() != 2 {
		t.Fatalf("pending a=%d all=%d", b.PendingFor("a"), b.Pending())
	}
	// The lists are copies: changing them leaves the book alone.
	updates[0].Status.UUID = []byte("x")
	if _, u := b.Unacknowledged(); string(u[0].Status.UUID) != "2" {
		t.Fatal("Unacknowledged returned the book's own slice")
	}
}

func TestTaskVerdict(t *testing.T) {
	running := func(names ...string) pods.State {
		s := pods.State{Stage: pods.StageRunning, Phase: v1.PodRunning}
		for _, n := range names {
			s.Containers = append(s.Containers, &pods.Container{Name: n, Running: n != "down"})
		}
		return s
	}
	oom := pods.State{Phase: v1.PodFailed, Containers: []*pods.Container{{Name: "c", Last: &pods.Exit{Reason: "OOMKilled", Code: 137}}}}
	killed := running("a")
	killed.KillAsked = true
	killed.Phase = v1.PodFailed
	for _, tc := range []struct {
		name   string
		prev   mesos.TaskState
		s      pods.State
		want   mesos.TaskState
		reason *mesos.TaskStatus_Reason
	}{
		{"pending", mesos.TASK_STARTING, pods.State{Stage: pods.StagePending, Phase: v1.PodPending}, mesos.TASK_STARTING, nil},
		{"one app container down", mesos.TASK_STARTING, running("a", "down"), mesos.TASK_STARTING, nil},
		{"all running", mesos.TASK_STARTING, running("a", "b"), mesos.TASK_RUNNING, nil},
		{"a restart keeps RUNNING", mesos.TASK_RUNNING, running("a", "down"), mesos.TASK_RUNNING, nil},
		{"succeeded", mesos.TASK_RUNNING, pods.State{Phase: v1.PodSucceeded}, mesos.TASK_FINISHED, nil},
		{"failed", mesos.TASK_RUNNING, pods.State{Phase: v1.PodFailed}, mesos.TASK_FAILED, nil},
		{"oom", mesos.TASK_RUNNING, oom, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LIMITATION_MEMORY.Enum()},
		{"killed: judged when gone", mesos.TASK_RUNNING, killed, mesos.TASK_RUNNING, nil},
	} {
		v := TaskVerdict(tc.prev, tc.s)
		if v.State != tc.want || (v.Reason == nil) != (tc.reason == nil) || (v.Reason != nil && *v.Reason != *tc.reason) {
			t.Errorf("%s: verdict %v %v, want %v %v", tc.name, v.State, v.Reason, tc.want, tc.reason)
		}
	}
}

func TestShutdownBudget(t *testing.T) {
	for grace, want := range map[time.Duration]time.Duration{
		3 * time.Second:  2 * time.Second,
		5 * time.Second:  4 * time.Second,
		time.Second:      800 * time.Millisecond,
		30 * time.Second: 24 * time.Second,
	} {
		b, k, c := ShutdownBudget(grace)
		if b != want || k != b*6/10 || b >= c || c >= grace {
			t.Errorf("grace %v: budget %v kill after %v cleanup %v, want budget %v", grace, b, k, c, want)
		}
	}
}

// The book feeds the sender: per task one update at a time, in the order
// made; a SUBSCRIBE carries what is queued; an ack of an update in flight
// unblocks its task.
func TestBookFeedsTheSenderInOrderPerTask(t *testing.T) {
	b := NewBook()
	for _, u := range []executor.Call_Update{upd("a", "1"), upd("b", "2"), upd("a", "3"), upd("c", "4"), upd("b", "5")} {
		b.Made(u)
	}
	uuids := func(us []executor.Call_Update) string {
		s := ""
		for _, u := range us {
			s += string(u.Status.UUID)
		}
		return s
	}
	if got := uuids(b.Next(2)); got != "12" {
		t.Fatalf("Next(2) = %q, want 12 (the first of a and of b)", got)
	}
	if got := uuids(b.Next(10)); got != "4" {
		t.Fatalf("Next = %q, want 4: a and b have an update in flight", got)
	}
	b.Sent("a", []byte("1"))
	if got := uuids(b.Next(10)); got != "3" {
		t.Fatalf("Next after a's first returned = %q, want 3", got)
	}
	if b.Queued() != 1 {
		t.Fatalf("queued %d, want 1 (b's second)", b.Queued())
	}
	_, updates := b.Unacknowledged()
	if len(updates) != 5 || b.Queued() != 0 {
		t.Fatalf("SUBSCRIBE lists %d updates and leaves %d queued, want 5 and 0", len(updates), b.Queued())
	}
	if b.Acked("b", []byte("2")); len(b.Next(10)) != 0 {
		t.Fatal("an update a SUBSCRIBE carried was handed out again")
	}
	b.Made(upd("b", "6"))
	if got := uuids(b.Next(10)); got != "6" {
		t.Fatalf("Next = %q, want 6: b's update in flight was acknowledged", got)
	}
	if b.Next(0) != nil {
		t.Fatal("Next(0) handed out updates")
	}
}
