package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Netns is a network namespace a test created, bound at Path.
type Netns struct {
	Name string
	Path string
}

// NewNetns creates a fresh network namespace named k8sm-test-<random> with
// its loopback up, and deletes it when the test ends.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		Skip(t, "iproute2 \"ip\" not installed (run \"make env\")")
	}
	n := &Netns{Name: RandomName(6)}
	n.Path = "/var/run/netns/" + n.Name
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		t.Fatalf("testenv: ip netns add %s: %v: %s", n.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", n.Name).CombinedOutput(); err != nil {
			t.Errorf("testenv: ip netns delete %s: %v: %s", n.Name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", n.Name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("testenv: bring lo up in %s: %v: %s", n.Name, err, out)
	}
	return n
}

// Command returns a command that runs name with args inside the namespace.
// It uses nsenter --net, not "ip netns exec", which would remount /sys and
// hide the cgroup mounts (shared/DESIGN.md).
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.Path, "--", name}, args...)...)
}

// Run runs name with args inside the namespace and returns its combined
// output; the error includes that output.
func (n *Netns) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in netns %s: %s %v: %w: %s", n.Name, name, args, err, out)
	}
	return out, nil
}

// Do runs fn on an OS thread switched into the namespace. fn must not start
// goroutines that expect to stay in the namespace: only its own thread is.
func (n *Netns) Do(fn func() error) error { return InNetns(n.Path, fn) }

// InNetns runs fn on an OS thread switched into the network namespace at
// path (such as /var/run/netns/<name>). Sockets fn opens and processes it
// starts (a forked child inherits its thread's namespace) live there. The
// thread goes back afterwards, or is retired if it cannot.
func InNetns(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer func() { _ = target.Close() }()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer func() { _ = orig.Close() }()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime then ends it with the
		// goroutine instead of reusing a thread in the wrong namespace.
		return errors.Join(fmt.Errorf("return from netns %s: %w", path, err), fnErr)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Forward makes the machine's TCP address addr (such as the test API
// server's 172.30.255.1:port) reachable at the same address inside the
// namespace, for a process there (kube-proxy) that must talk to it: the
// listener is opened inside the namespace, each connection is dialled from
// the machine's. An address other than loopback is first added to the
// namespace's lo (as a /32), so that it is local there too. It stops when
// the test ends.
func (n *Netns) Forward(t testing.TB, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("testenv: forward %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
		if out, err := exec.Command("ip", "-n", n.Name, "addr", "replace", host+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("testenv: add %s to lo in %s: %v: %s", host, n.Name, err, out)
		}
	}
	var l net.Listener
	if err := n.Do(func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("testenv: listen on %s in %s: %v", addr, n.Name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					_ = in.Close()
					return
				}
				// Either side ending ends both: a watch the API server holds
				// open must not outlive kube-proxy.
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
				_ = in.Close()
				_ = out.Close()
				<-done
			}()
		}
	}()
}
