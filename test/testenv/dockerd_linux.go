package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PrivateBridgeCIDR is the address of a private dockerd's bridge (one at a
// time: NewDockerd holds a lock); the bed's own daemon uses 172.30.255.0/24.
const PrivateBridgeCIDR = "172.30.254.1/24"

// Dockerd is a Docker daemon of one test alone, for what must not happen to
// the shared one (restarting it). Its socket, exec root, data root, bridge
// and containerd namespace are its own, named k8sm-test-<random>; teardown
// removes leftovers.
type Dockerd struct {
	Name string
	Host string // unix:// URL of its socket

	run, data string
	args      []string
	cmd       *exec.Cmd
	exited    chan struct{}
	log       *os.File
}

// NewDockerd starts a private dockerd with the bed's test images loaded,
// and removes everything of it when the test ends.
func NewDockerd(t testing.TB) *Dockerd {
	t.Helper()
	RequireRoot(t)
	RequireDocker(t)
	if _, err := exec.LookPath("dockerd"); err != nil {
		Skip(t, "dockerd not installed (run \"make env\")")
	}
	unlock := lockFile(t, RunDir+"/private-dockerd.lock")
	t.Cleanup(unlock)
	net := strings.Split(PrivateBridgeCIDR, "/")[0]
	if out, _ := exec.Command("ip", "-4", "route", "show", "to", "match", net).Output(); bytes.Contains(out, []byte("dev")) &&
		!bytes.HasPrefix(bytes.TrimSpace(out), []byte("default")) {
		t.Fatalf("testenv: %s is already routed here (%s): refusing to shadow it", net, bytes.TrimSpace(out))
	}
	d := &Dockerd{Name: RandomName(2)}
	d.Host = "unix://" + filepath.Join(RunDir, d.Name, "docker.sock")
	d.run, d.data = filepath.Join(RunDir, d.Name), filepath.Join("/var/lib/k8sm-test", d.Name)
	for _, dir := range []string{d.run, d.data} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"link", "add", d.Name, "type", "bridge"},
		{"addr", "add", PrivateBridgeCIDR, "dev", d.Name},
		{"link", "set", d.Name, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("testenv: ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(d.remove)
	// The bed daemon's flags (test/env/setup.sh), on this daemon's paths.
	d.args = []string{
		"--host", d.Host, "--data-root", d.data, "--exec-root", filepath.Join(d.run, "exec"),
		"--pidfile", filepath.Join(d.run, "docker.pid"),
		"--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", "/k8sm-test-docker",
		"--bridge", d.Name, "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--userland-proxy=true",
		"--containerd-namespace", d.Name, "--containerd-plugins-namespace", d.Name + "-plugins",
		"--shutdown-timeout", "1",
	}
	var err error
	if d.log, err = os.Create(filepath.Join(d.run, "dockerd.log")); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	// The bed's images, copied over (there is no registry).
	save := exec.Command("/usr/bin/docker", "-H", DockerHost, "save", BusyboxImage, PauseImage)
	load := exec.Command("/usr/bin/docker", "-H", d.Host, "load", "-q")
	pipe, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	load.Stdin = pipe
	if err := save.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("testenv: load images into %s: %v: %s", d.Name, err, out)
	}
	if err := save.Wait(); err != nil {
		t.Fatalf("testenv: docker save: %v", err)
	}
	return d
}

func (d *Dockerd) start(t testing.TB) {
	t.Helper()
	d.cmd = exec.Command("dockerd", d.args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("testenv: start dockerd: %v", err)
	}
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(d.cmd, d.exited)
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command("/usr/bin/docker", "-H", d.Host, "version").Run() != nil {
		select {
		case <-d.exited:
			t.Fatalf("testenv: dockerd %s exited at start; log %s", d.Name, d.log.Name())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: dockerd %s did not answer in 60s; log %s", d.Name, d.log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the daemon as an operator's restart does: SIGTERM, which stops
// its containers (no live-restore) before it exits.
func (d *Dockerd) stop(t testing.TB) {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("testenv: dockerd %s ignored SIGTERM for 60s", d.Name)
	}
	d.cmd = nil
}

// Stop stops the daemon (SIGTERM, as an operator's stop does) until
// Restart; its data stays.
func (d *Dockerd) Stop(t testing.TB) {
	t.Helper()
	d.stop(t)
}

// Restart stops the daemon and starts it again on the same data: its
// containers are stopped, not removed.
func (d *Dockerd) Restart(t testing.TB) {
	t.Helper()
	d.stop(t)
	d.start(t)
}

// remove removes the daemon's containers, the daemon, its mounts, files and
// bridge.
func (d *Dockerd) remove() {
	if d.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, _ := exec.CommandContext(ctx, "/usr/bin/docker", "-H", d.Host, "ps", "-aq").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.CommandContext(ctx, "/usr/bin/docker", append([]string{"-H", d.Host, "rm", "-f"}, ids...)...).Run()
		}
		cancel()
		d.stop(&quietTB{})
	}
	if d.log != nil {
		_ = d.log.Close()
	}
	for _, root := range []string{d.run, d.data} {
		unmountUnder(root)
		_ = os.RemoveAll(root)
	}
	_ = exec.Command("ip", "link", "delete", d.Name).Run()
}

// unmountUnder lazily unmounts every mount point below root, deepest first.
func unmountUnder(root string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// lockFile takes an exclusive flock on path (made if missing) that other
// test processes wait for, and returns its release.
func lockFile(t testing.TB, path string) func() {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testenv: lock %s: %v", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("testenv: lock %s: %v", path, err)
	}
	return func() { _ = f.Close() } // closing releases the lock
}

// quietTB lets cleanup code call helpers that take a testing.TB.
type quietTB struct{ testing.TB }

func (*quietTB) Helper()               {}
func (*quietTB) Errorf(string, ...any) {}
func (*quietTB) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}
