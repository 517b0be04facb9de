package pods

import (
	"math/rand/v2"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestRandomEventSequences: whatever the order of events, Next never
// panics, the stage never goes back (but to Pending when the sandbox died,
// asking for a new one), restart counts never drop, no container is
// started while there is no sandbox, a pod that
// is Done stays Done and asks for nothing, and StopPod is asked at most once.
func TestRandomEventSequences(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	names := []string{"i", "a", "b", "nope"}
	policies := []v1.RestartPolicy{v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever}
	for run := range 3000 {
		s := NewState(podOf(policies[run%3], []string{"i"}, app("a"), app("b")))
		stops := 0
		for range 60 {
			n := names[r.IntN(len(names))]
			var ev any
			switch r.IntN(14) {
			case 0:
				ev = Start{}
			case 1:
				ev = SandboxReady{IP: "10.0.0.1"}
			case 2:
				ev = SandboxFailed{"x"}
			case 3:
				ev = StartFailed{n, "ErrImagePull", "x"}
			case 4, 5:
				ev = started(n)
			case 6:
				ev = exit(n, int32(r.IntN(2)), time.Duration(r.IntN(20))*time.Minute)
			case 7:
				ev = BackoffDone{n}
			case 8:
				ev = Probe{n, []string{Liveness, Readiness, Startup}[r.IntN(3)], r.IntN(2) == 0}
			case 9:
				ev = Kill{Grace: time.Second}
			case 10:
				ev = Stopped{}
			case 11:
				ev = SandboxDied{Message: "x"}
			case 12:
				ev = SandboxRetry{}
			case 13:
				ev = Adopted{n, int32(r.IntN(5))}
			}
			next, acts := cfg.Next(s, ev)
			_, died := ev.(SandboxDied)
			remade := died && next.Stage == StagePending && hasAction[RecreateSandbox](acts)
			if next.Stage < s.Stage && !remade {
				t.Fatalf("run %d: stage went back %s -> %s on %T", run, s.Stage, next.Stage, ev)
			}
			for i := range s.Containers {
				if next.Containers[i].Restarts < s.Containers[i].Restarts {
					t.Fatalf("run %d: restarts dropped on %T", run, ev)
				}
			}
			if s.Stage == StageDone && len(acts) > 0 {
				t.Fatalf("run %d: a done pod asked for %v on %T", run, acts, ev)
			}
			for _, a := range acts {
				if _, ok := a.(StopPod); ok {
					stops++
				}
				if sc, ok := a.(StartContainer); ok && (next.Stage >= StageTerminating || next.Stage == StagePending) {
					t.Fatalf("run %d: StartContainer %s while %s", run, sc.Name, next.Stage)
				}
			}
			if stops > 1 {
				t.Fatalf("run %d: StopPod asked twice", run)
			}
			s = next
		}
	}
}

func hasAction[T any](acts []Action) bool {
	for _, a := range acts {
		if _, ok := a.(T); ok {
			return true
		}
	}
	return false
}
