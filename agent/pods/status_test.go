package pods

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// A pod mid-life: its init container done, web ready behind its readiness
// probe, side OOM-killed and waiting to restart.
func TestStatusGolden(t *testing.T) {
	web := v1.Container{Name: "web", Image: "k8sm.local/busybox:test", ReadinessProbe: &v1.Probe{}}
	side := v1.Container{Name: "side", Image: "k8sm.local/busybox:test"}
	pod := podOf(v1.RestartPolicyAlways, []string{"seed"}, web, side)
	pod.Spec.InitContainers[0].Image = "k8sm.local/busybox:test"
	oom := Exited{Name: "side", Exit: Exit{Code: 137, Reason: "OOMKilled", StartedAt: t0, FinishedAt: t0.Add(3 * time.Second)}}
	s := drive(t, NewState(pod), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{IP: "172.30.255.7"}, []Action{StartContainer{"seed"}, Report{}}, nil},
		{started("seed"), []Action{Report{}}, nil},
		{exit("seed", 0, time.Second), []Action{StartContainer{"web"}, StartContainer{"side"}, Report{}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{started("side"), []Action{Report{}}, nil},
		{oom, []Action{RestartAfter{"side", 10 * time.Second}, Report{}}, nil},
		{Probe{"web", Readiness, true}, []Action{Report{}}, nil},
	})
	in := StatusInput{Pod: pod, HostIP: "192.0.2.2", StartTime: metav1.NewTime(t0), Now: metav1.NewTime(t0.Add(time.Minute))}
	st := Status(s, in)
	got, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const path = "testdata/status_oom_restart.golden.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("status differs from %s (go test -update to accept):\n%s", path, got)
	}

	// Unchanged conditions keep their transition times; changed ones get Now.
	s2, _ := cfg.Next(s, BackoffDone{"side"})
	s2, _ = cfg.Next(s2, started("side"))
	in.Prev, in.Now = &st, metav1.NewTime(t0.Add(2*time.Minute))
	st2 := Status(s2, in)
	for i, c := range st2.Conditions {
		changed := c.Status != st.Conditions[i].Status
		if changed != (c.LastTransitionTime == in.Now) {
			t.Errorf("%s: status %s -> %s, transition time %v", c.Type, st.Conditions[i].Status, c.Status, c.LastTransitionTime)
		}
	}
	if st2.Conditions[3].Type != v1.PodReady || st2.Conditions[3].Status != v1.ConditionTrue {
		t.Errorf("Ready after side restarted: %+v", st2.Conditions[3])
	}
}
