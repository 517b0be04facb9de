//go:build integration && linux

package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/test/testenv"
)

func newDocker(t *testing.T) *runtime.Docker {
	t.Helper()
	testenv.RequireDocker(t)
	d, err := runtime.New(runtime.Config{Endpoint: testenv.DockerHost, CallTimeout: 30 * time.Second, PullTimeout: 20 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestPodOfTwoContainers: a pause sandbox publishes a host port on loopback,
// an httpd container joins its network namespace and serves through it; both
// live in the pod cgroup below the Mesos cgroup and carry the ownership
// labels; events, exec and logs work on them.
func TestPodOfTwoContainers(t *testing.T) {
	d := newDocker(t)
	mc := testenv.NewMesosCgroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := d.Info(ctx)
	if err != nil || info.CgroupDriver != "cgroupfs" {
		t.Fatalf("Info = %+v, %v; the bed's dockerd uses cgroupfs", info, err)
	}

	owner := runtime.Owner{FrameworkID: "fw-1", ExecutorID: "k8sm-test", AgentID: "agent-1", ContainerID: mc.ID}
	pod := runtime.PodRef{TaskID: "pod.uid-" + mc.ID, UID: "uid-" + mc.ID, Name: "web", Namespace: "default"}
	parent := mc.Path + "/" + pod.UID
	hostPort := testenv.FreeTCPPort(t)

	evs, evErr := d.Events(ctx, runtime.LabelPodUID+"="+pod.UID)

	ids := map[string]string{}
	create := func(name string, spec runtime.ContainerSpec) {
		spec.Labels = runtime.Labels(owner, pod, name)
		spec.CgroupParent = parent
		id, err := d.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
		t.Cleanup(func() {
			if err := d.Remove(context.Background(), id); err != nil {
				t.Errorf("remove %s: %v", name, err)
			}
		})
		if err := d.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.EnsureImage(ctx, testenv.PauseImage, runtime.PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	create(runtime.SandboxName, runtime.ContainerSpec{Image: testenv.PauseImage, MemoryBytes: 16 << 20,
		Ports: []runtime.PortMapping{{ContainerPort: 8080, HostPort: hostPort, Protocol: "tcp", HostIP: "127.0.0.1"}}})
	create("httpd", runtime.ContainerSpec{Image: testenv.BusyboxImage, NetworkMode: "container:" + ids[runtime.SandboxName],
		Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo started; mkdir -p /www && echo hello-k8sm > /www/index.html && exec httpd -f -p 8080 -h /www"},
		MemoryBytes: 32 << 20, CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, PidsLimit: 64})

	// Served through the sandbox's published port.
	var body string
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("httpd on 127.0.0.1:%d", hostPort), func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = string(b)
		return true
	})
	if strings.TrimSpace(body) != "hello-k8sm" {
		t.Fatalf("body = %q", body)
	}

	// Inside the Mesos cgroup, with the ownership labels.
	for name, id := range ids {
		st, err := d.Inspect(ctx, id)
		if err != nil || !st.Running {
			t.Fatalf("%s: %+v, %v", name, st, err)
		}
		pcg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(pcg), ":"+parent+"/"+id) {
			t.Errorf("%s not under %s:\n%s", name, parent, pcg)
		}
		if ip := net.ParseIP(st.IP); (name == runtime.SandboxName) != (ip != nil) {
			t.Errorf("%s: IP %q; the sandbox has the pod IP, a joined container none", name, st.IP)
		}
		if _, p, c, err := runtime.ParseLabels(st.Labels); err != nil || p != pod || c != name {
			t.Errorf("%s labels: %+v %q %v", name, p, c, err)
		}
	}
	list, err := d.List(ctx, map[string]string{runtime.LabelPodUID: pod.UID})
	if err != nil || len(list) != 2 {
		t.Fatalf("List by pod uid = %d containers, %v; want 2", len(list), err)
	}

	// Exec, with its exit code and output.
	code, out, err := d.Exec(ctx, ids["httpd"], []string{"sh", "-c", "echo probe; exit 3"})
	if err != nil || code != 3 || strings.TrimSpace(string(out)) != "probe" {
		t.Fatalf("Exec = %d %q %v; want 3 \"probe\"", code, out, err)
	}

	// Logs from Docker's log driver.
	rc, err := d.Logs(ctx, ids["httpd"], runtime.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(rc)
	_ = rc.Close()
	if !strings.Contains(string(logs), "started") {
		t.Errorf("logs = %q, want the container's output", logs)
	}

	// A kill shows up as a die event, and Inspect tells the exit.
	if err := d.Kill(ctx, ids["httpd"], "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	for died := false; !died; {
		select {
		case e := <-evs:
			died = e.ID == ids["httpd"] && e.Action == "die"
		case err := <-evErr:
			t.Fatalf("event stream: %v", err)
		case <-ctx.Done():
			t.Fatal("no die event for the killed container")
		}
	}
	st, err := d.Inspect(ctx, ids["httpd"])
	if err != nil || st.Running || st.ExitCode != 137 {
		t.Fatalf("after SIGKILL: %+v, %v", st, err)
	}

	// Stop with a grace period; a stopped sandbox, then gone.
	if err := d.Stop(ctx, ids[runtime.SandboxName], 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, ids[runtime.SandboxName]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx, ids[runtime.SandboxName]); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Inspect of a removed container: %v, want ErrNotFound", err)
	}
}

// TestEnsureImagePolicies: local images are used without pulling; Never
// refuses a missing one; a failed pull (a registry on a closed loopback
// port, so no traffic leaves the machine) reports Docker's message.
func TestEnsureImagePolicies(t *testing.T) {
	d := newDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, p := range []string{runtime.PullIfNotPresent, runtime.PullNever} {
		if err := d.EnsureImage(ctx, testenv.BusyboxImage, p); err != nil {
			t.Errorf("%s with a local image: %v", p, err)
		}
	}
	if d.Pulls.Load() != 0 {
		t.Fatalf("%d pulls for local images", d.Pulls.Load())
	}
	missing := fmt.Sprintf("127.0.0.1:%d/k8sm/missing:1", testenv.FreeTCPPort(t))
	if err := d.EnsureImage(ctx, missing, runtime.PullNever); !errors.Is(err, runtime.ErrImageNeverPull) {
		t.Errorf("Never with a missing image: %v", err)
	}
	err := d.EnsureImage(ctx, missing, runtime.PullIfNotPresent)
	var pe *runtime.PullError
	if !errors.As(err, &pe) || pe.Msg == "" {
		t.Fatalf("pull from a closed port: %v, want a PullError with Docker's message", err)
	}
	if d.Pulls.Load() != 1 {
		t.Fatalf("%d pulls, want 1", d.Pulls.Load())
	}
}
