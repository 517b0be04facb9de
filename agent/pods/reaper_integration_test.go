//go:build integration && linux

package pods_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/test/testenv"
)

func TestReaperRemovesOnlyOrphans(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fw := testenv.RandomName(4) // a framework of this test alone
	mk := func(labels map[string]string) string {
		id, err := b.rt.Create(ctx, runtime.ContainerSpec{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "600"},
			Labels: labels, CgroupParent: b.mc.Path + "/reaper"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.rt.Remove(context.Background(), id) })
		if err := b.rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	pod := runtime.PodRef{TaskID: "pod.a", UID: "a", Name: "a", Namespace: "default"}
	live := mk(runtime.Labels(runtime.Owner{FrameworkID: fw, ExecutorID: "e", AgentID: "g", ContainerID: "live"}, pod, "c"))
	dead := mk(runtime.Labels(runtime.Owner{FrameworkID: fw, ExecutorID: "e", AgentID: "g", ContainerID: "killed-executor"}, pod, "c"))
	foreign := mk(map[string]string{runtime.LabelFrameworkID: fw, "com.example": "not ours"})

	r := &pods.Reaper{RT: b.rt, FrameworkID: fw, Live: "live", Tasks: func() map[string]bool { return map[string]bool{"pod.a": true} },
		DryRun: true}
	got, err := r.Pass(ctx, time.Now().Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].ID != dead {
		t.Fatalf("dry run: %+v, %v; want only the dead executor's container", got, err)
	}
	if _, err := b.rt.Inspect(ctx, dead); err != nil {
		t.Fatalf("dry run removed it: %v", err)
	}
	r.DryRun = false
	r.Grace = time.Hour
	if got, _ := r.Pass(ctx, time.Now()); len(got) != 0 {
		t.Fatalf("reaped a container inside the creation grace: %+v", got)
	}
	if got, err := r.Pass(ctx, time.Now().Add(2*time.Hour)); err != nil || len(got) != 1 {
		t.Fatalf("pass: %+v, %v", got, err)
	}
	if _, err := b.rt.Inspect(ctx, dead); err == nil {
		t.Fatal("orphan still there")
	}
	for _, id := range []string{live, foreign} {
		if st, err := b.rt.Inspect(ctx, id); err != nil || !st.Running {
			t.Fatalf("reaper touched %s: %+v %v", id, st, err)
		}
	}

	// Docker unreachable: the pass is skipped, nothing decided.
	down, err := runtime.New(runtime.Config{Endpoint: "unix:///run/k8sm-test/nonexistent.sock"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RT = down
	if _, err := r.Pass(ctx, time.Now()); err == nil || !strings.Contains(err.Error(), "pass skipped") {
		t.Fatalf("pass with docker down: %v", err)
	}
}
