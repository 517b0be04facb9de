package cgroups

import (
	"errors"
	"strings"
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

// The pods' parent is the executor's Mesos container (v2: without Mesos'
// leaf), and only below the agent's cgroup root.
func TestMesosContainer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       Paths
		unified bool
		root    string
		want    string
		err     string
	}{
		{"v1", Paths{V1: map[string]string{"memory": "/mesos/c1"}}, false, "mesos", "/mesos/c1", ""},
		{"v2 leaf", Paths{Unified: "/mesos/c1/leaf"}, true, "/mesos/", "/mesos/c1", ""},
		{"nested root", Paths{Unified: "/k8sm-up/node1/c1/leaf"}, true, "k8sm-up", "/k8sm-up/node1/c1", ""},
		{"outside the root", Paths{V1: map[string]string{"memory": "/docker/x"}}, false, "mesos", "", "not below the cgroup root /mesos"},
		{"prefix is not below", Paths{V1: map[string]string{"memory": "/mesos2/x"}}, false, "mesos", "", "not below"},
		{"the root itself", Paths{V1: map[string]string{"memory": "/mesos"}}, false, "mesos", "", "not below"},
		{"the root's leaf", Paths{Unified: "/mesos/leaf"}, true, "mesos", "", "not below"},
		{"empty root", Paths{V1: map[string]string{"memory": "/mesos/x"}}, false, "", "", "no cgroup root given"},
		{"no cgroup", Paths{V1: map[string]string{"memory": "/"}}, false, "mesos", "", ErrNoExecutorCgroup.Error()},
	} {
		got, err := tc.p.MesosContainer(tc.unified, tc.root)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: MesosContainer = %q, %v; want %q, error with %q", tc.name, got, err, tc.want, tc.err)
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
