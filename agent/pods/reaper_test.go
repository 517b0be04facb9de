package pods

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/k8sm/k8sm/agent/runtime"
)

func TestOrphans(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	old := now.Add(-time.Hour)
	lbl := func(fw, cid, task string) map[string]string {
		return runtime.Labels(runtime.Owner{FrameworkID: fw, ExecutorID: "k8sm-1", AgentID: "a", ContainerID: cid},
			runtime.PodRef{TaskID: task, UID: "u", Name: "p", Namespace: "default"}, "c")
	}
	partial := lbl("fw", "dead", "pod.x")
	delete(partial, runtime.LabelTaskID)
	otherAgent := lbl("fw", "other-agents-executor", "pod.b")
	otherAgent[runtime.LabelAgentID] = "b"
	in := OrphanInput{
		Containers: []runtime.Summary{
			{ID: "live-known", Labels: lbl("fw", "live", "pod.a"), Created: old},
			{ID: "live-unknown-task", Labels: lbl("fw", "live", "pod.gone"), Created: old},
			{ID: "dead-executor", Labels: lbl("fw", "dead", "pod.a"), Created: old},
			{ID: "dead-but-young", Labels: lbl("fw", "dead", "pod.a"), Created: now.Add(-10 * time.Second)},
			{ID: "other-framework", Labels: lbl("fw2", "dead", "pod.a"), Created: old},
			{ID: "other-agent", Labels: otherAgent, Created: old},
			{ID: "unlabelled", Labels: map[string]string{"app": "x"}, Created: old},
			{ID: "partial-labels", Labels: partial, Created: old},
		},
		AgentID: "a", FrameworkID: "fw", Live: map[string]map[string]bool{"live": {"pod.a": true}}, Now: now, Grace: time.Minute,
	}
	ids := func(os []Orphan) []string {
		var out []string
		for _, o := range os {
			out = append(out, o.ID)
		}
		return out
	}
	if got, want := ids(Orphans(in)), []string{"dead-executor", "live-unknown-task"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("an executor's reaper: orphans %v, want %v", got, want)
	}
	// diag's view: any agent and framework, live executors whose tasks it
	// does not know; only dead executor containers' old containers go.
	in.AgentID, in.FrameworkID, in.Live = "", "", map[string]map[string]bool{"live": nil}
	if got, want := ids(Orphans(in)), []string{"dead-executor", "other-agent", "other-framework"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("diag: orphans %v, want %v", got, want)
	}
}

// Start's first pass is done when it returns, with no grace (a new
// executor's start: every container of a dead executor container goes,
// however young); the live executor's containers stay; the periodic
// passes end with ctx (goleak checks that the goroutine does).
func TestReaperStart(t *testing.T) {
	rt := newFakeRuntime(t, "img")
	mk := func(container string) string {
		l := runtime.Labels(runtime.Owner{FrameworkID: "fw", ExecutorID: "k8sm-1", AgentID: "a", ContainerID: container},
			runtime.PodRef{TaskID: "pod.a", UID: "u", Name: "p", Namespace: "default"}, "c")
		id, err := rt.Create(context.Background(), runtime.ContainerSpec{Image: "img", Labels: l, CgroupParent: "/x"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	dead, live := mk("dead"), mk("live")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Reaper{RT: rt, FrameworkID: "fw", Live: "live", Tasks: func() map[string]bool { return map[string]bool{"pod.a": true} }}
	r.Start(ctx, time.Hour)
	var left []string
	list, _ := rt.List(context.Background(), nil)
	for _, c := range list {
		left = append(left, c.ID)
	}
	if !reflect.DeepEqual(left, []string{live}) {
		t.Fatalf("after Start: containers %v, want only the live executor's %s (the dead one's %s removed)", left, live, dead)
	}
	if r.Grace != 2*time.Hour {
		t.Fatalf("grace of the periodic passes %v, want twice the interval", r.Grace)
	}
}
