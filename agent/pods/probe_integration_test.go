//go:build integration && linux

package pods_test

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k8sm/k8sm/test/testenv"
)

// TestProbesOnTheEngine: readiness by exec drives Ready both ways, tcpSocket and
// httpGet probes reach the pod IP, and a failing liveness probe restarts its
// container.
func TestProbesOnTheEngine(t *testing.T) {
	b := newBed(t)
	m, log := newManager(t, b)
	exec := func(cmd string) v1.ProbeHandler {
		return v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", cmd}}}
	}
	pod := newPod("probed", v1.RestartPolicyAlways,
		v1.Container{Name: "web", Image: testenv.BusyboxImage,
			Command:        []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"},
			Ports:          []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			LivenessProbe:  &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
		},
		v1.Container{Name: "gate", Image: testenv.BusyboxImage,
			Command:        []string{"sh", "-c", "sleep 1; touch /tmp/ready; sleep 3; rm /tmp/ready; sleep 3600"},
			ReadinessProbe: &v1.Probe{ProbeHandler: exec("test -f /tmp/ready"), PeriodSeconds: 1},
		},
		v1.Container{Name: "flaky", Image: testenv.BusyboxImage,
			Command:       []string{"sh", "-c", "touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 3600"},
			LivenessProbe: &v1.Probe{ProbeHandler: exec("test -f /tmp/alive"), PeriodSeconds: 1, FailureThreshold: 1},
		},
	)
	grace := int64(1) // a liveness kill waits the pod's grace; sh ignores SIGTERM
	pod.Spec.TerminationGracePeriodSeconds = &grace
	start := time.Now()
	defer func() { t.Logf("probes test body took %v", time.Since(start)) }()
	launch(t, m, pod)
	status := func(name string) (v1.ContainerStatus, bool) {
		s, ok := log.get(string(pod.UID))
		for _, c := range s.ContainerStatuses {
			if ok && c.Name == name {
				return c, true
			}
		}
		return v1.ContainerStatus{}, false
	}
	readyIs := func(name string, want bool) func() bool {
		return func() bool { c, ok := status(name); return ok && c.Ready == want && c.State.Running != nil }
	}
	waitFor(t, "web ready (tcpSocket) and alive (httpGet)", readyIs("web", true))
	t.Logf("web ready after %v", time.Since(start))
	waitFor(t, "gate ready once its file exists", readyIs("gate", true))
	waitFor(t, "gate not ready once its file is gone", readyIs("gate", false))
	waitFor(t, "flaky restarted by its liveness probe", func() bool { c, ok := status("flaky"); return ok && c.RestartCount >= 1 })
	if c, _ := status("web"); c.RestartCount != 0 {
		t.Errorf("web restarted %d times: its httpGet liveness probe failed", c.RestartCount)
	}
}
