package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Where the test bed lives; see test/env/lib.sh, which must agree.
const (
	RunDir     = "/run/k8sm-test"
	DockerHost = "unix://" + RunDir + "/docker.sock"
	Kubeconfig = RunDir + "/kubeconfig"
	// ClusterCA signs the API server's certificates, among them the
	// client certificate it calls kubelets with (--client-ca-file).
	ClusterCA    = RunDir + "/ca.crt"
	BusyboxImage = "k8sm.local/busybox:test"
	PauseImage   = "k8sm.local/pause:test"

	// StrictEnv names the variable that turns every skip into a failure.
	StrictEnv = "K8SM_TEST_STRICT"
	// Prefix of every network namespace and cgroup the helpers create.
	Prefix = "k8sm-test-"
	// SchedulerIdentity is the user name of the scheduler's kubeconfig.
	SchedulerIdentity = "system:kube-scheduler"
)

// Strict reports whether skips are forbidden (K8SM_TEST_STRICT=1).
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Skip skips t with the reason, or fails it when skips are forbidden.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("required component missing: %s (%s=1 forbids skipping; run \"make env\")", reason, StrictEnv)
		return
	}
	t.Skip(reason)
}

// SkipHost skips t because the machine is of a kind the test does not
// apply to (a cgroup v2 test on a v1 host), not because a component is
// missing: strict mode allows it, and its message starts "not applicable
// on this host", so that a strict run's skips are told apart from missing
// components.
func SkipHost(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Skipf("not applicable on this host: %s", fmt.Sprintf(format, args...))
}

// RequireRoot skips unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (cgroups, network namespaces, dockerd)")
	}
}

// RequireDocker returns a client of the test bed's dockerd, or skips when it
// does not answer. The client negotiates the API version with the daemon.
func RequireDocker(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		Skip(t, "docker client for %s: %v", DockerHost, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		Skip(t, "test dockerd at %s does not answer (run \"make env\"): %v", DockerHost, err)
	}
	return c
}

// RequireKube returns an admin clientset of the test API server, or skips.
func RequireKube(t testing.TB) kubernetes.Interface {
	t.Helper()
	return RequireKubeAs(t, "admin")
}

// KubeconfigFor returns the kubeconfig path of a test identity: "admin",
// SchedulerIdentity, or "system:node:<name>" for one of the bed's nodes.
func KubeconfigFor(identity string) string {
	switch {
	case identity == "admin":
		return Kubeconfig
	case identity == SchedulerIdentity:
		return RunDir + "/kubeconfig-scheduler"
	case len(identity) > len("system:node:") && identity[:len("system:node:")] == "system:node:":
		return RunDir + "/kubeconfig-node-" + identity[len("system:node:"):]
	}
	return ""
}

// RequireKubeAs returns a clientset acting as identity (see KubeconfigFor),
// or skips when the API server is not up or the identity has no kubeconfig.
func RequireKubeAs(t testing.TB, identity string) kubernetes.Interface {
	t.Helper()
	path := KubeconfigFor(identity)
	if path == "" {
		t.Fatalf("testenv: unknown identity %q", identity)
	}
	if _, err := os.Stat(path); err != nil {
		Skip(t, "no kubeconfig for %s at %s (run \"make env\"): %v", identity, path, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("testenv: load %s: %v", path, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("testenv: clientset from %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		Skip(t, "test kube-apiserver not ready (run \"make env\"): %v", err)
	}
	return cs
}

// RandomName returns Prefix plus n random hex bytes, for objects a test owns.
func RandomName(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // documented never to fail
	return Prefix + hex.EncodeToString(b)
}

// FreeTCPPort returns a TCP port nobody listens on at 127.0.0.1 (the port
// may be taken by someone else before the test uses it; on loopback, in a
// test bed, that does not happen in practice).
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// KubeVersion is the Kubernetes version of the test bed's binaries
// (test/env/lib.sh KUBE_VERSION, which must agree).
const KubeVersion = "v1.35.8"

// KubeBinary returns the path of a Kubernetes binary the test bed built
// (kubectl, kube-proxy, ...) under the module's _output/bin, or skips when
// it is not there.
func KubeBinary(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod above the test's directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "_output", "bin", "kube-"+KubeVersion, name)
	if _, err := os.Stat(p); err != nil {
		Skip(t, "%s not built (run \"make env\"): %v", name, err)
	}
	return p
}

// Poll calls cond until it returns true, at most until timeout has passed,
// and reports whether it did. It polls every 20 ms, or every 100 ms for
// waits over a minute (launches through Docker on a loaded machine).
func Poll(timeout time.Duration, cond func() bool) bool {
	interval := 20 * time.Millisecond
	if timeout > time.Minute {
		interval = 100 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// WaitFor polls cond (Poll) and fails t, naming what it waited for, when
// it does not hold within timeout. Every test's wait goes through here.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
