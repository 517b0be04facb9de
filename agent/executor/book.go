package executor

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// Book keeps what the agent has not acknowledged yet, so that a SUBSCRIBE
// after a broken connection can list it (docs/executor-http-api.md
// "Disconnections"): every launched task with no acknowledged update, and
// every update the agent has not ACKNOWLEDGED, in the order they were made.
// An update is never dropped from the book before its ACKNOWLEDGED.
//
// The book also feeds the sender: each update is queued, in flight (an
// UPDATE call under way) or sent (the call returned, or a SUBSCRIBE
// carried it). Next hands out a task's updates one at a time, in the order
// they were made, so that no update of a task overtakes an earlier one.
//
// Book is not safe for concurrent use: the executor's loop owns it.
type Book struct {
	tasks   map[string]mesos.TaskInfo
	updates []entry
}

type entry struct {
	u     executor.Call_Update
	state sendState
}

type sendState int

const (
	queued sendState = iota
	inFlight
	sent
)

// NewBook returns an empty book.
func NewBook() *Book { return &Book{tasks: map[string]mesos.TaskInfo{}} }

// Launched records a task the agent sent.
func (b *Book) Launched(t mesos.TaskInfo) { b.tasks[t.TaskID.Value] = t }

// Made records an update, queued to be sent.
func (b *Book) Made(u executor.Call_Update) { b.updates = append(b.updates, entry{u: u}) }

// Acked removes the acknowledged update; the task is then no longer
// unacknowledged. It reports whether the update was pending.
func (b *Book) Acked(taskID string, uuid []byte) bool {
	if i := b.find(taskID, uuid); i >= 0 {
		b.updates = append(b.updates[:i:i], b.updates[i+1:]...)
		delete(b.tasks, taskID)
		return true
	}
	return false
}

func (b *Book) find(taskID string, uuid []byte) int {
	for i, e := range b.updates {
		if e.u.Status.TaskID.Value == taskID && string(e.u.Status.UUID) == string(uuid) {
			return i
		}
	}
	return -1
}

// Next returns up to max updates to send now, in the order they were made,
// and marks them in flight: of each task, its oldest queued update when no
// earlier update of that task is queued or in flight.
func (b *Book) Next(max int) []executor.Call_Update {
	var out []executor.Call_Update
	blocked := map[string]bool{}
	for i := range b.updates {
		if len(out) >= max {
			break
		}
		e := &b.updates[i]
		id := e.u.Status.TaskID.Value
		switch {
		case e.state == sent:
		case e.state == inFlight || blocked[id]:
			blocked[id] = true
		default:
			e.state, blocked[id] = inFlight, true
			out = append(out, e.u)
		}
	}
	return out
}

// Sent records that an update's call returned; whether it failed does not
// matter here: a failed send breaks the subscription, and the next
// SUBSCRIBE carries every unacknowledged update.
func (b *Book) Sent(taskID string, uuid []byte) {
	if i := b.find(taskID, uuid); i >= 0 {
		b.updates[i].state = sent
	}
}

// Queued is the number of updates waiting to be sent.
func (b *Book) Queued() int {
	n := 0
	for _, e := range b.updates {
		if e.state == queued {
			n++
		}
	}
	return n
}

// PendingFor is the number of unacknowledged updates of one task.
func (b *Book) PendingFor(taskID string) int {
	n := 0
	for _, e := range b.updates {
		if e.u.Status.TaskID.Value == taskID {
			n++
		}
	}
	return n
}

// Pending is the number of unacknowledged updates.
func (b *Book) Pending() int { return len(b.updates) }

// Unacknowledged returns the SUBSCRIBE lists (tasks, then updates in the
// order they were made) and counts every queued update as sent: the
// SUBSCRIBE carries it.
func (b *Book) Unacknowledged() ([]mesos.TaskInfo, []executor.Call_Update) {
	tasks := make([]mesos.TaskInfo, 0, len(b.tasks))
	for _, t := range b.tasks {
		tasks = append(tasks, t)
	}
	updates := make([]executor.Call_Update, 0, len(b.updates))
	for i := range b.updates {
		if b.updates[i].state == queued {
			b.updates[i].state = sent
		}
		updates = append(updates, b.updates[i].u)
	}
	return tasks, updates
}
