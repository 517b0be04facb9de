package cgroups

import (
	"errors"
	"testing"
)

func TestExecutorPath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       Paths
		unified bool
		want    string
		err     error
	}{
		{"v1 memory", Paths{V1: map[string]string{"memory": "/mesos/a", "cpu": "/mesos/b"}}, false, "/mesos/a", nil},
		{"v1 cpu when memory at root", Paths{V1: map[string]string{"memory": "/", "cpu": "/mesos/b/"}}, false, "/mesos/b", nil},
		{"v1 nothing", Paths{V1: map[string]string{"memory": "/"}, Unified: "/x"}, false, "", ErrNoExecutorCgroup},
		{"v2", Paths{Unified: "/mesos/c"}, true, "/mesos/c", nil},
		{"v2 root", Paths{Unified: "/"}, true, "", ErrNoExecutorCgroup},
	} {
		got, err := tc.p.Executor(tc.unified)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: Executor = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// The kubelet's numbers (pkg/kubelet/cm/helpers_linux_test.go).
func TestLimitFormulas(t *testing.T) {
	for _, tc := range []struct {
		req, lim int64
		shares   uint64
		quota    int64
		weight   uint64
	}{
		{0, 0, 2, 0, 1},
		{1, 1, 2, 1000, 1},
		{250, 500, 256, 50000, 10},
		{1000, 1000, 1024, 100000, 39},
		{2000, 0, 2048, 0, 79},
		{1000000, 0, 262144, 0, 10000},
	} {
		l := Limits{CPURequestMilli: tc.req, CPULimitMilli: tc.lim}
		if l.Shares() != tc.shares || l.QuotaMicros() != tc.quota || l.Weight() != tc.weight {
			t.Errorf("%+v: shares %d quota %d weight %d; want %d %d %d", l, l.Shares(), l.QuotaMicros(), l.Weight(), tc.shares, tc.quota, tc.weight)
		}
	}
}

func TestDockerParent(t *testing.T) {
	if p, err := DockerParent("/mesos/x/pod", "cgroupfs"); p != "/mesos/x/pod" || err != nil {
		t.Errorf("cgroupfs: %q %v", p, err)
	}
	_, err := DockerParent("/mesos/x/pod", "systemd")
	if !errors.Is(err, ErrSystemdDriver) {
		t.Errorf("systemd: err = %v, want ErrSystemdDriver", err)
	}
	if _, err := DockerParent("/mesos/x/pod", "other"); err == nil {
		t.Error("unknown driver accepted")
	}
}
