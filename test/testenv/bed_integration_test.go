//go:build integration && linux

package testenv_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8sm/k8sm/test/testenv"
)

// runInCgroup starts image with a 32 MiB memory limit and half a CPU under
// the Mesos cgroup and returns the container's id and main pid.
func runInCgroup(t *testing.T, dc *client.Client, m *testenv.MesosCgroup, image string, cmd []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := dc.ContainerCreate(ctx, &container.Config{
		Image:  image,
		Cmd:    cmd,
		Labels: map[string]string{"io.k8sm.test": t.Name()},
	}, &container.HostConfig{
		Resources: container.Resources{
			CgroupParent: m.Path,
			Memory:       32 << 20,
			CPUQuota:     50000,
			CPUPeriod:    100000,
		},
	}, nil, nil, "")
	if err != nil {
		t.Fatalf("create %s: %v", image, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dc.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", created.ID, err)
		}
	})
	if err := dc.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", image, err)
	}
	info, err := dc.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("inspect %s: %v", created.ID, err)
	}
	if !info.State.Running || info.State.Pid == 0 {
		t.Fatalf("%s not running after start: %+v", image, info.State)
	}
	return created.ID, info.State.Pid
}

// catches reports whether process pid has a handler for signal sig
// (/proc/<pid>/status SigCgt, a hex mask with bit sig-1 for sig).
func catches(pid, sig int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(sig-1)) != 0
		}
	}
	return false
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return v
}

// TestImagesRunUnderMesosCgroup: both local images run through the Docker
// client with --cgroup-parent under a fake Mesos executor cgroup, and the
// kernel's cgroup files carry the limits Docker was given.
func TestImagesRunUnderMesosCgroup(t *testing.T) {
	dc := testenv.RequireDocker(t)
	m := testenv.NewMesosCgroup(t)
	for _, tc := range []struct {
		image string
		cmd   []string
	}{
		{testenv.PauseImage, nil},
		{testenv.BusyboxImage, []string{"sleep", "600"}},
	} {
		t.Run(tc.image, func(t *testing.T) {
			id, pid := runInCgroup(t, dc, m, tc.image, tc.cmd)
			want := m.Path + "/" + id

			pc, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(pc), ":"+want+"\n") {
				t.Fatalf("/proc/%d/cgroup does not place the container at %s:\n%s", pid, want, pc)
			}
			if d := m.Dir("memory"); d != "" { // cgroup v1
				if got := readInt(t, filepath.Join(d, id, "memory.limit_in_bytes")); got != 32<<20 {
					t.Errorf("memory.limit_in_bytes = %d, want %d", got, 32<<20)
				}
				if got := readInt(t, filepath.Join(m.Dir("cpu"), id, "cpu.cfs_quota_us")); got != 50000 {
					t.Errorf("cpu.cfs_quota_us = %d, want 50000", got)
				}
			} else { // cgroup v2
				b, err := os.ReadFile(filepath.Join(m.Unified, id, "memory.max"))
				if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(32<<20) {
					t.Errorf("memory.max = %q (%v), want %d", b, err, 32<<20)
				}
			}
		})
	}
}

// TestPauseStopsOnSIGTERM: the pause image exits 0 on Docker's stop signal
// instead of waiting to be SIGKILLed (exit 137). The stop comes once pause
// catches SIGTERM: before that, as PID 1 of its namespace, it ignores it
// (a stop right after start raced its start-up under CI load).
func TestPauseStopsOnSIGTERM(t *testing.T) {
	dc := testenv.RequireDocker(t)
	m := testenv.NewMesosCgroup(t)
	id, pid := runInCgroup(t, dc, m, testenv.PauseImage, nil)
	testenv.WaitFor(t, 30*time.Second, "pause to catch SIGTERM", func() bool { return catches(pid, 15) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	timeout := 30
	if err := dc.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	info, err := dc.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.ExitCode != 0 || info.State.OOMKilled {
		t.Fatalf("pause exit code %d (oom %v), want 0: it did not handle SIGTERM", info.State.ExitCode, info.State.OOMKilled)
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// hostRules returns the host namespace's rules as every iptables backend
// present on the machine sees them.
func hostRules(t *testing.T) string {
	t.Helper()
	var all bytes.Buffer
	for _, save := range []string{"iptables-save", "iptables-legacy-save", "iptables-nft-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out, err := exec.Command(save).Output()
		if err != nil {
			t.Fatalf("%s: %v", save, err)
		}
		all.WriteString("### " + save + "\n")
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "#") { // comments carry timestamps
				// Packet counters of built-in chains move with the
				// machine's traffic (iptables-legacy counts for real):
				// they are not rules.
				all.WriteString(counters.ReplaceAllString(l, "[0:0]") + "\n")
			}
		}
	}
	if all.Len() == 0 {
		testenv.Skip(t, "no iptables-save installed (run \"make env\")")
	}
	return all.String()
}

// TestNetnsIsolatesIptables: a nat rule added inside a test namespace is seen
// there and leaves the host namespace's rules byte-identical.
func TestNetnsIsolatesIptables(t *testing.T) {
	testenv.RequireRoot(t)
	before := hostRules(t)
	ns := testenv.NewNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"-t", "nat", "-N", "K8SM-TEST"},
		{"-t", "nat", "-A", "K8SM-TEST", "-p", "tcp", "-d", "10.96.0.10/32", "--dport", "80",
			"-j", "DNAT", "--to-destination", "192.0.2.10:31000"},
		{"-t", "nat", "-A", "OUTPUT", "-j", "K8SM-TEST"},
	} {
		if _, err := ns.Run(ctx, "iptables", args...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := ns.Run(ctx, "iptables-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "-A K8SM-TEST -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.0.2.10:31000") {
		t.Fatalf("rule not visible inside %s:\n%s", ns.Name, out)
	}
	// Do switches this thread into the namespace: only its own loopback is
	// there, and it is up.
	var ifaces []net.Interface
	if err := ns.Do(func() error {
		var err error
		ifaces, err = net.Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].Flags&net.FlagUp == 0 {
		t.Fatalf("interfaces inside %s: %+v, want only lo, up", ns.Name, ifaces)
	}
	if after := hostRules(t); after != before {
		t.Fatalf("host iptables changed by a netns test:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestAPIServerPods: a Pod is created and read back through the real API
// server as admin, and node identities are held to their own Node by the Node
// authorizer and NodeRestriction.
func TestAPIServerPods(t *testing.T) {
	cs := testenv.RequireKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := testenv.RandomName(4)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: testenv.BusyboxImage, Command: []string{"httpd", "-f"},
		}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	got, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if got.UID == "" || got.Spec.Containers[0].Image != testenv.BusyboxImage {
		t.Fatalf("pod read back wrong: uid %q image %q", got.UID, got.Spec.Containers[0].Image)
	}

	node1 := testenv.RequireKubeAs(t, "system:node:k8sm-node1")
	own := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "k8sm-node1"}}
	if _, err := node1.CoreV1().Nodes().Create(ctx, own, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("node k8sm-node1 creating its own Node: %v", err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), "k8sm-node1", metav1.DeleteOptions{}) })
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "k8sm-node2"}}
	_, err = node1.CoreV1().Nodes().Create(ctx, other, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		_ = cs.CoreV1().Nodes().Delete(context.Background(), "k8sm-node2", metav1.DeleteOptions{})
		t.Fatalf("node k8sm-node1 creating Node k8sm-node2: got %v, want Forbidden", err)
	}
	if _, err := node1.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node k8sm-node1 reading a pod not bound to it: got %v, want Forbidden", err)
	}
}
