//go:build integration && linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/k8sm/k8sm/agent/diag"
	"github.com/k8sm/k8sm/test/testenv"
)

// runDiag runs "k8sm-agent diag" on n's sources (its own Docker daemon,
// cgroup root and socket directory; iptables are not read: the machine's
// own are no test's business) and returns its output and exit code.
func runDiag(t *testing.T, n *node, docker string, args ...string) (string, int) {
	t.Helper()
	all := append([]string{"diag", "--node-api-dir", n.apiDir, "--docker-endpoint", docker, "--cgroup-root", n.root.Path,
		"--iptables", "", "--timeout", "5s"}, args...)
	out, err := exec.Command(agentBinary, all...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("diag: %v", err)
	return "", -1
}

// TestDiag: on a healthy node diag shows the executor and its pod and
// exits 0; after kill -9 of the executor it reports the orphans and exits
// 1; --reap cleans them and the next diag exits 0; with Docker stopped it
// says Docker is unreachable.
func TestDiag(t *testing.T) {
	d := testenv.NewDockerd(t)
	dc, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dc.Close() }()
	n := newNamedNode(t, 5*time.Second, "diag-node", "--docker-endpoint", d.Host)
	task := n.podTask(t, stubbornPod("watched"), nil)
	n.launch(task)
	n.expect(task.TaskID.Value, mesos.TASK_STARTING)
	n.expect(task.TaskID.Value, mesos.TASK_RUNNING)
	es := n.a.Executors()[0]

	out, code := runDiag(t, n, d.Host)
	if code != 0 || !strings.Contains(out, n.exID) || !strings.Contains(out, "default/watched") || !strings.Contains(out, "Running") ||
		!strings.Contains(out, "nothing wrong found") {
		t.Fatalf("diag on a healthy node: exit %d\n%s", code, out)
	}
	jsOut, code := runDiag(t, n, d.Host, "-o", "json")
	var r diag.Report
	if err := json.Unmarshal([]byte(jsOut), &r); err != nil || code != 0 {
		t.Fatalf("diag -o json: exit %d %v\n%s", code, err, jsOut)
	}
	if len(r.Executors) != 1 || !r.Executors[0].Alive || !r.Executors[0].Subscribed || r.Executors[0].ContainerID != es.ContainerID ||
		r.Executors[0].PID != es.PID || len(r.Pods) != 1 || r.Pods[0].Containers[0].State != "running" || r.Executors[0].MemoryUsage == 0 {
		t.Fatalf("diag -o json on a healthy node: %+v", r)
	}

	// kill -9: the agent fails the task and destroys the executor's
	// cgroup; the pod's containers stay in Docker, and the socket on disk.
	if err := syscall.Kill(es.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n.expect(task.TaskID.Value, mesos.TASK_FAILED)
	// The orphans are seconds old: no creation grace for this test.
	out, code = runDiag(t, n, d.Host, "--orphan-grace", "0")
	if code != 1 || !strings.Contains(out, "k8sm containers whose executor is gone") || !strings.Contains(out, "does not answer") {
		t.Fatalf("diag after kill -9: exit %d\n%s", code, out)
	}
	out, code = runDiag(t, n, d.Host, "--orphan-grace", "0", "--reap", "--dry-run")
	if code != 1 || !strings.Contains(out, "WOULD REAP") || !strings.Contains(out, "would: remove container") {
		t.Fatalf("diag --reap --dry-run: exit %d\n%s", code, out)
	}
	if left := containersOn(t, dc); len(left) == 0 {
		t.Fatal("--dry-run removed the orphans")
	}
	out, code = runDiag(t, n, d.Host, "--orphan-grace", "0", "--reap")
	if code != 0 || !strings.Contains(out, "done: remove container") {
		t.Fatalf("diag --reap: exit %d\n%s", code, out)
	}
	if left := containersOn(t, dc); len(left) != 0 {
		t.Fatalf("%d k8sm containers left after --reap", len(left))
	}
	if out, code = runDiag(t, n, d.Host); code != 0 {
		t.Fatalf("diag after --reap: exit %d\n%s", code, out)
	}

	// Docker down.
	d.Stop(t)
	out, code = runDiag(t, n, d.Host)
	if code != 1 || !strings.Contains(out, "FAIL  docker") || !strings.Contains(out, "Docker is unreachable at "+d.Host) {
		t.Fatalf("diag with Docker stopped: exit %d\n%s", code, out)
	}
}

// containersOn lists the k8sm-labelled containers of a daemon.
func containersOn(t *testing.T, dc *client.Client) []container.Summary {
	t.Helper()
	list, err := dc.ContainerList(context.Background(), container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []container.Summary
	for _, c := range list {
		if c.Labels["io.k8sm.framework-id"] != "" {
			out = append(out, c)
		}
	}
	return out
}
