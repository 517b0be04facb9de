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
// Book is not safe for concurrent use: the executor's loop owns it.
type Book struct {
	tasks   map[string]mesos.TaskInfo
	updates []executor.Call_Update
}

// NewBook returns an empty book.
func NewBook() *Book { return &Book{tasks: map[string]mesos.TaskInfo{}} }

// Launched records a task the agent sent.
func (b *Book) Launched(t mesos.TaskInfo) { b.tasks[t.TaskID.Value] = t }

// Made records an update before it is sent.
func (b *Book) Made(u executor.Call_Update) { b.updates = append(b.updates, u) }

// Acked removes the acknowledged update; the task is then no longer
// unacknowledged. It reports whether the update was pending.
func (b *Book) Acked(taskID string, uuid []byte) bool {
	for i, u := range b.updates {
		if u.Status.TaskID.Value == taskID && string(u.Status.UUID) == string(uuid) {
			b.updates = append(b.updates[:i:i], b.updates[i+1:]...)
			delete(b.tasks, taskID)
			return true
		}
	}
	return false
}

// PendingFor is the number of unacknowledged updates of one task.
func (b *Book) PendingFor(taskID string) int {
	n := 0
	for _, u := range b.updates {
		if u.Status.TaskID.Value == taskID {
			n++
		}
	}
	return n
}

// Pending is the number of unacknowledged updates.
func (b *Book) Pending() int { return len(b.updates) }

// Unacknowledged returns the SUBSCRIBE lists: tasks, then updates in the
// order they were made.
func (b *Book) Unacknowledged() ([]mesos.TaskInfo, []executor.Call_Update) {
	tasks := make([]mesos.TaskInfo, 0, len(b.tasks))
	for _, t := range b.tasks {
		tasks = append(tasks, t)
	}
	return tasks, append([]executor.Call_Update(nil), b.updates...)
}
