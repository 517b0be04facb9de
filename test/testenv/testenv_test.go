package testenv

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = f }
func (r *recorder) Skip(a ...any)             { r.skip = "skip" }

func TestSkipIsFatalWhenStrict(t *testing.T) {
	t.Setenv(StrictEnv, "1")
	r := &recorder{TB: t}
	Skip(r, "no %s", "docker")
	if r.fatal == "" || r.skip != "" {
		t.Fatalf("strict: fatal=%q skip=%q, want a failure and no skip", r.fatal, r.skip)
	}

	t.Setenv(StrictEnv, "")
	r = &recorder{TB: t}
	Skip(r, "no %s", "docker")
	if r.skip == "" || r.fatal != "" {
		t.Fatalf("not strict: fatal=%q skip=%q, want a skip", r.fatal, r.skip)
	}
}

func TestKubeconfigFor(t *testing.T) {
	for id, want := range map[string]string{
		"admin":                   Kubeconfig,
		SchedulerIdentity:         RunDir + "/kubeconfig-scheduler",
		"system:node:k8sm-node1":  RunDir + "/kubeconfig-node-k8sm-node1",
		"system:node:":            "",
		"system:serviceaccount:x": "",
	} {
		if got := KubeconfigFor(id); got != want {
			t.Errorf("KubeconfigFor(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestRandomName(t *testing.T) {
	a, b := RandomName(4), RandomName(4)
	if a == b || !strings.HasPrefix(a, Prefix) || len(a) != len(Prefix)+8 {
		t.Fatalf("RandomName: %q, %q", a, b)
	}
}
