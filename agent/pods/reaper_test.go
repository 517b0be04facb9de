package pods

import (
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
	in := OrphanInput{
		Containers: []runtime.Summary{
			{ID: "live-known", Labels: lbl("fw", "live", "pod.a"), Created: old},
			{ID: "live-unknown-task", Labels: lbl("fw", "live", "pod.gone"), Created: old},
			{ID: "dead-executor", Labels: lbl("fw", "dead", "pod.a"), Created: old},
			{ID: "dead-but-young", Labels: lbl("fw", "dead", "pod.a"), Created: now.Add(-10 * time.Second)},
			{ID: "other-framework", Labels: lbl("fw2", "dead", "pod.a"), Created: old},
			{ID: "unlabelled", Labels: map[string]string{"app": "x"}, Created: old},
			{ID: "partial-labels", Labels: partial, Created: old},
		},
		Live: "live", FrameworkID: "fw", Tasks: map[string]bool{"pod.a": true}, Now: now, Grace: time.Minute,
	}
	var got []string
	for _, o := range Orphans(in) {
		got = append(got, o.ID)
	}
	if want := []string{"dead-executor", "live-unknown-task"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("orphans %v, want %v", got, want)
	}
}
