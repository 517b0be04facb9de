package pods

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

var cfg = Config{BackoffBase: 10 * time.Second, BackoffMax: 40 * time.Second, BackoffReset: 10 * time.Minute}

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func podOf(policy v1.RestartPolicy, inits []string, apps ...v1.Container) *v1.Pod {
	p := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: policy, Containers: apps}}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n})
	}
	return p
}

func app(name string) v1.Container { return v1.Container{Name: name} }

func exit(name string, code int32, ranFor time.Duration) Exited {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	return Exited{Name: name, Exit: Exit{Code: code, Reason: reason, StartedAt: t0, FinishedAt: t0.Add(ranFor)}}
}

func started(name string) Started { return Started{Name: name, At: t0} }

// step is one event and what must follow from it.
type step struct {
	ev    any
	want  []Action     // exactly these actions, in order
	check func(*State) // more about the state, optional
}

func drive(t *testing.T, s State, steps []step) State {
	t.Helper()
	for i, st := range steps {
		before := s.clone()
		next, acts := cfg.Next(s, st.ev)
		if !reflect.DeepEqual(s, before) {
			t.Fatalf("step %d (%T): Next changed its input state", i, st.ev)
		}
		if !reflect.DeepEqual(acts, st.want) {
			t.Fatalf("step %d (%T %+v): actions %#v, want %#v", i, st.ev, st.ev, acts, st.want)
		}
		s = next
		if st.check != nil {
			st.check(&s)
		}
	}
	return s
}

func stage(t *testing.T, want Stage, phase v1.PodPhase) func(*State) {
	return func(s *State) {
		t.Helper()
		if s.Stage != want || s.Phase != phase {
			t.Fatalf("stage %s phase %s, want %s %s", s.Stage, s.Phase, want, phase)
		}
	}
}

func TestRestartAlwaysWithBackoff(t *testing.T) {
	s := drive(t, NewState(podOf(v1.RestartPolicyAlways, nil, app("web"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, stage(t, StagePending, v1.PodPending)},
		{SandboxReady{IP: "172.30.255.9"}, []Action{StartContainer{"web"}, Report{}}, stage(t, StageRunning, v1.PodPending)},
		{started("web"), []Action{Report{}}, func(s *State) {
			if s.Phase != v1.PodRunning || !s.Containers[0].Ready || s.PodIP != "172.30.255.9" {
				t.Fatalf("after start: %+v %+v", s, *s.Containers[0])
			}
		}},
		{exit("web", 1, time.Second), []Action{RestartAfter{"web", 10 * time.Second}, Report{}}, func(s *State) {
			c := s.Containers[0]
			if c.Restarts != 1 || c.Waiting != "CrashLoopBackOff" || c.Ready || c.Last.Code != 1 {
				t.Fatalf("after crash: %+v", *c)
			}
		}},
		{BackoffDone{"web"}, []Action{StartContainer{"web"}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{exit("web", 0, time.Second), []Action{RestartAfter{"web", 20 * time.Second}, Report{}}, nil}, // Always restarts exit 0 too
		{BackoffDone{"web"}, []Action{StartContainer{"web"}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{exit("web", 2, time.Second), []Action{RestartAfter{"web", 40 * time.Second}, Report{}}, nil},
		{BackoffDone{"web"}, []Action{StartContainer{"web"}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{exit("web", 2, time.Second), []Action{RestartAfter{"web", 40 * time.Second}, Report{}}, nil}, // capped
		{BackoffDone{"web"}, []Action{StartContainer{"web"}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{exit("web", 2, 11*time.Minute), []Action{RestartAfter{"web", 10 * time.Second}, Report{}}, nil}, // ran long: reset
	})
	if s.Containers[0].Restarts != 5 {
		t.Fatalf("restarts = %d, want 5", s.Containers[0].Restarts)
	}
}

func TestInitContainersInOrder(t *testing.T) {
	drive(t, NewState(podOf(v1.RestartPolicyAlways, []string{"init1", "init2"}, app("a"), app("b"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"init1"}, Report{}}, stage(t, StageInitializing, v1.PodPending)},
		{StartContainer{"ignored"}, nil, nil}, // not an event: nothing happens
		{started("init1"), []Action{Report{}}, stage(t, StageInitializing, v1.PodPending)},
		{exit("init1", 0, time.Second), []Action{StartContainer{"init2"}, Report{}}, nil},
		{started("init2"), []Action{Report{}}, nil},
		{exit("init2", 1, time.Second), []Action{RestartAfter{"init2", 10 * time.Second}, Report{}}, nil}, // init retried
		{BackoffDone{"init2"}, []Action{StartContainer{"init2"}}, nil},
		{started("init2"), []Action{Report{}}, nil},
		{exit("init2", 0, time.Second), []Action{StartContainer{"a"}, StartContainer{"b"}, Report{}}, stage(t, StageRunning, v1.PodPending)},
		{started("a"), []Action{Report{}}, stage(t, StageRunning, v1.PodRunning)},
	})
}

func TestInitFailureWithNeverFailsThePod(t *testing.T) {
	drive(t, NewState(podOf(v1.RestartPolicyNever, []string{"init"}, app("a"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"init"}, Report{}}, nil},
		{started("init"), []Action{Report{}}, nil},
		{exit("init", 3, time.Second), []Action{StopPod{}, Report{}}, func(s *State) {
			if s.Stage != StageTerminating || s.Phase != v1.PodFailed || s.Reason != "InitContainerFailed" {
				t.Fatalf("%s %s %q", s.Stage, s.Phase, s.Reason)
			}
		}},
		{Stopped{}, []Action{Report{}}, stage(t, StageDone, v1.PodFailed)},
	})
}

func TestOnFailureAndNeverOutcomes(t *testing.T) {
	// OnFailure: a failure restarts, a success ends the container; all done
	// with success -> Succeeded.
	drive(t, NewState(podOf(v1.RestartPolicyOnFailure, nil, app("job"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"job"}, Report{}}, nil},
		{started("job"), []Action{Report{}}, nil},
		{exit("job", 1, time.Second), []Action{RestartAfter{"job", 10 * time.Second}, Report{}}, nil},
		{BackoffDone{"job"}, []Action{StartContainer{"job"}}, nil},
		{started("job"), []Action{Report{}}, nil},
		{exit("job", 0, time.Second), []Action{StopPod{}, Report{}}, stage(t, StageTerminating, v1.PodSucceeded)},
		{Stopped{}, []Action{Report{}}, stage(t, StageDone, v1.PodSucceeded)},
	})
	// Never: the pod ends when every container has; one failure -> Failed.
	drive(t, NewState(podOf(v1.RestartPolicyNever, nil, app("a"), app("b"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"a"}, StartContainer{"b"}, Report{}}, nil},
		{started("a"), []Action{Report{}}, nil},
		{started("b"), []Action{Report{}}, nil},
		{exit("a", 137, time.Second), []Action{Report{}}, stage(t, StageRunning, v1.PodRunning)},
		{exit("a", 137, time.Second), nil, nil}, // duplicate exit: ignored
		{exit("b", 0, time.Second), []Action{StopPod{}, Report{}}, stage(t, StageTerminating, v1.PodFailed)},
	})
}

func TestKillStopsEverythingAndIgnoresLateEvents(t *testing.T) {
	drive(t, NewState(podOf(v1.RestartPolicyAlways, nil, app("a"), app("b"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"a"}, StartContainer{"b"}, Report{}}, nil},
		{started("a"), []Action{Report{}}, nil},
		{exit("b", 1, 0), nil, nil}, // b never started: an exit is stale
		{StartFailed{"b", "ErrImagePull", "manifest unknown"}, []Action{RestartAfter{"b", 10 * time.Second}, Report{}}, func(s *State) {
			if c := s.Containers[1]; c.Waiting != "ErrImagePull" || c.Restarts != 0 {
				t.Fatalf("b: %+v", *c)
			}
		}},
		{BackoffDone{"b"}, []Action{StartContainer{"b"}}, nil},
		{StartFailed{"b", "ErrImagePull", "manifest unknown"}, []Action{RestartAfter{"b", 20 * time.Second}, Report{}}, func(s *State) {
			if c := s.Containers[1]; c.Waiting != "ImagePullBackOff" {
				t.Fatalf("b: %+v", *c)
			}
		}},
		{Kill{Grace: 3 * time.Second}, []Action{StopPod{Grace: 3 * time.Second}, Report{}}, stage(t, StageTerminating, v1.PodRunning)},
		{BackoffDone{"b"}, nil, nil}, // no restart while terminating
		{exit("a", 143, time.Second), []Action{Report{}}, func(s *State) {
			if c := s.Containers[0]; !c.Done || c.Restarts != 0 {
				t.Fatalf("a restarted while terminating: %+v", *c)
			}
		}},
		{Kill{Grace: time.Second}, nil, nil}, // a second kill changes nothing
		{Stopped{}, []Action{Report{}}, func(s *State) {
			if s.Stage != StageDone || s.Phase != v1.PodFailed || s.Reason != "Killed" || !s.KillAsked {
				t.Fatalf("after stop: %s %s %q kill %v", s.Stage, s.Phase, s.Reason, s.KillAsked)
			}
		}},
		{Start{}, nil, nil},
	})
}

func TestProbes(t *testing.T) {
	withProbes := app("web")
	withProbes.ReadinessProbe = &v1.Probe{}
	withProbes.StartupProbe = &v1.Probe{}
	drive(t, NewState(podOf(v1.RestartPolicyAlways, nil, withProbes)), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"web"}, Report{}}, nil},
		{started("web"), []Action{Report{}}, func(s *State) {
			if c := s.Containers[0]; c.Ready || c.StartupDone {
				t.Fatalf("ready before probes: %+v", *c)
			}
		}},
		{Probe{"web", Liveness, false}, nil, nil}, // liveness waits for startup
		{Probe{"web", Readiness, true}, nil, nil}, // so does readiness
		{Probe{"web", Startup, true}, []Action{Report{}}, nil},
		{Probe{"web", Readiness, true}, []Action{Report{}}, func(s *State) {
			if !s.Containers[0].Ready {
				t.Fatal("readiness success did not make it ready")
			}
		}},
		{Probe{"web", Readiness, true}, nil, nil}, // no change, no report
		{Probe{"web", Readiness, false}, []Action{Report{}}, func(s *State) {
			if s.Containers[0].Ready {
				t.Fatal("readiness failure left it ready")
			}
		}},
		{Probe{"web", Liveness, false}, []Action{KillContainer{"web"}}, nil},
		{exit("web", 137, time.Minute), []Action{RestartAfter{"web", 10 * time.Second}, Report{}}, nil},
		{BackoffDone{"web"}, []Action{StartContainer{"web"}}, nil},
		{started("web"), []Action{Report{}}, func(s *State) {
			if c := s.Containers[0]; c.StartupDone || c.Ready {
				t.Fatalf("a restarted container must pass its startup probe again: %+v", *c)
			}
		}},
		{Probe{"web", Startup, false}, []Action{KillContainer{"web"}}, nil},
	})
	// Without probes a running container is ready, and stays probed for
	// liveness after a restart.
	drive(t, NewState(podOf(v1.RestartPolicyAlways, nil, app("plain"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"plain"}, Report{}}, nil},
		{started("plain"), []Action{Report{}}, nil},
		{exit("plain", 1, time.Second), []Action{RestartAfter{"plain", 10 * time.Second}, Report{}}, nil},
		{BackoffDone{"plain"}, []Action{StartContainer{"plain"}}, nil},
		{started("plain"), []Action{Report{}}, func(s *State) {
			if !s.Containers[0].Ready {
				t.Fatal("restarted container without probes not ready")
			}
		}},
		{Probe{"plain", Liveness, false}, []Action{KillContainer{"plain"}}, nil},
	})
}

func TestSandboxFailure(t *testing.T) {
	drive(t, NewState(podOf("", nil, app("a"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxFailed{"no such image"}, []Action{StopPod{}, Report{}}, func(s *State) {
			if s.Phase != v1.PodFailed || s.Reason != "SandboxFailed" || s.Message != "no such image" || s.Policy != v1.RestartPolicyAlways {
				t.Fatalf("%+v", s)
			}
		}},
	})
}

func TestSandboxDiedRemakesThePod(t *testing.T) {
	pod := podOf(v1.RestartPolicyOnFailure, []string{"init"}, app("done"), app("web"))
	s := drive(t, NewState(pod), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{IP: "172.30.255.7"}, []Action{StartContainer{"init"}, Report{}}, nil},
		{started("init"), []Action{Report{}}, nil},
		{exit("init", 0, time.Second), []Action{StartContainer{"done"}, StartContainer{"web"}, Report{}}, nil},
		{started("done"), []Action{Report{}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{exit("done", 0, time.Second), []Action{Report{}}, nil}, // OnFailure: finished for good
		{exit("web", 1, time.Second), []Action{RestartAfter{"web", 10 * time.Second}, Report{}}, nil},
		{BackoffDone{"web"}, []Action{StartContainer{"web"}}, nil},
		{started("web"), []Action{Report{}}, nil},
		{SandboxDied{At: t0.Add(time.Minute), Message: "exited with 255"}, []Action{RecreateSandbox{}, Report{}}, func(s *State) {
			web := s.find("web")
			if s.Stage != StagePending || s.PodIP != "" || web.Running || web.Restarts != 2 || web.Last.Code != 137 {
				t.Fatalf("after sandbox death: stage %s ip %q web %+v", s.Stage, s.PodIP, *web)
			}
			if in := s.find("init"); in.Done || in.Waiting != "PodInitializing" {
				t.Fatalf("init container must run again: %+v", *in)
			}
			if !s.find("done").Done {
				t.Fatal("a container done for good came back")
			}
		}},
		{exit("web", 137, time.Minute), nil, nil}, // the old container's own death notice: already counted
		{BackoffDone{"web"}, nil, nil},            // a stale timer: no start without a sandbox
		{SandboxDied{}, nil, nil},                 // already remaking it
		{SandboxFailed{Message: "docker down"}, []Action{SandboxRetryAfter{10 * time.Second}, Report{}}, nil},
		{SandboxFailed{Message: "docker down"}, []Action{SandboxRetryAfter{20 * time.Second}, Report{}}, stage(t, StagePending, v1.PodRunning)},
		{SandboxRetry{}, []Action{RecreateSandbox{}}, nil},
		{SandboxReady{IP: "172.30.255.8"}, []Action{StartContainer{"init"}, Report{}}, nil},
		{started("init"), []Action{Report{}}, nil},
		{exit("init", 0, time.Second), []Action{StartContainer{"web"}, Report{}}, nil}, // "done" is not started again
	})
	if s.PodIP != "172.30.255.8" || s.Sandboxes != 2 {
		t.Fatalf("ip %q sandboxes %d", s.PodIP, s.Sandboxes)
	}
}

func TestSandboxDiedWithNeverFailsThePod(t *testing.T) {
	drive(t, NewState(podOf(v1.RestartPolicyNever, nil, app("a"))), []step{
		{Start{}, []Action{CreateSandbox{}, Report{}}, nil},
		{SandboxReady{}, []Action{StartContainer{"a"}, Report{}}, nil},
		{started("a"), []Action{Report{}}, nil},
		{SandboxDied{Message: "gone"}, []Action{StopPod{}, Report{}}, func(s *State) {
			if s.Phase != v1.PodFailed || s.Reason != "SandboxDied" || s.Stage != StageTerminating {
				t.Fatalf("%+v", s)
			}
		}},
		{SandboxRetry{}, nil, nil},
	})
}

func TestAdoptedKeepsTheLargerRestartCount(t *testing.T) {
	drive(t, NewState(podOf(v1.RestartPolicyAlways, nil, app("a"))), []step{
		{Adopted{Name: "a", Restarts: 4}, nil, func(s *State) {
			if s.Containers[0].Restarts != 4 {
				t.Fatal("restart count not adopted")
			}
		}},
		{Adopted{Name: "a", Restarts: 1}, nil, func(s *State) {
			if s.Containers[0].Restarts != 4 {
				t.Fatal("restart count went down")
			}
		}},
		{Adopted{Name: "nope", Restarts: 1}, nil, nil},
	})
}
