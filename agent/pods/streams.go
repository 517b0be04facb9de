package pods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"strconv"

	"github.com/vishvananda/netns"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/k8sm/k8sm/agent/nodeapi"
	rt "github.com/k8sm/k8sm/agent/runtime"
)

// instances are a pod's containers named container (runtime.SandboxName
// for the sandbox), newest first: the current instance, then the previous
// one a restart keeps for its logs.
func (m *Manager) instances(ctx context.Context, podUID, container string) ([]rt.Summary, error) {
	l := m.ownLabel()
	l[rt.LabelPodUID], l[rt.LabelContainerName] = podUID, container
	list, err := m.rt.List(ctx, l)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	return list, nil
}

// ErrNoPrevious is Logs' error for the previous instance of a container
// that has not restarted.
var ErrNoPrevious = errors.New("previous terminated container not found")

// Logs streams a container's output from Docker's log driver, as o says:
// the newest instance of the pod's container (sandbox:
// runtime.SandboxName) or, with Previous, the one before it (a restart
// keeps it). With Follow, what comes after until ctx ends or the container
// stops. The pod need not be running.
func (m *Manager) Logs(ctx context.Context, podUID, container string, o nodeapi.LogOptions) (io.ReadCloser, error) {
	list, err := m.instances(ctx, podUID, container)
	if err != nil {
		return nil, fmt.Errorf("logs of %s in pod %s: %w", container, podUID, err)
	}
	i := 0
	if o.Previous {
		i = 1
	}
	if len(list) <= i {
		if o.Previous {
			return nil, fmt.Errorf("container %q in pod %s: %w", container, podUID, ErrNoPrevious)
		}
		return nil, fmt.Errorf("logs of %s in pod %s: %w", container, podUID, rt.ErrNotFound)
	}
	ro := rt.LogOptions{Follow: o.Follow && !o.Previous, Timestamps: o.Timestamps, Since: o.Since}
	if o.TailLines != nil {
		ro.Tail = strconv.FormatInt(*o.TailLines, 10)
	}
	return m.rt.Logs(ctx, list[i].ID, ro)
}

// running is the id of the running instance of a pod's container.
func (m *Manager) running(ctx context.Context, podUID, container string) (string, error) {
	list, err := m.instances(ctx, podUID, container)
	if err != nil {
		return "", err
	}
	if len(list) == 0 || list[0].State != "running" {
		return "", fmt.Errorf("container %q in pod %s is not running", container, podUID)
	}
	return list[0].ID, nil
}

// Exec runs cmd in a pod's running container with the given streams
// (kubectl exec). A non-zero exit is a utilexec.CodeExitError carrying the
// code, which the streaming server reports as the command's exit code.
func (m *Manager) Exec(ctx context.Context, podUID, container string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	id, err := m.running(ctx, podUID, container)
	if err != nil {
		return err
	}
	code, err := m.rt.ExecStream(ctx, id, cmd, rt.Streams{Stdin: stdin, Stdout: stdout, Stderr: stderr, TTY: tty, Resize: resize})
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

// Attach connects to the streams of a pod's running container (kubectl
// attach); stdin reaches it when the container has stdin: true.
func (m *Manager) Attach(ctx context.Context, podUID, container string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	id, err := m.running(ctx, podUID, container)
	if err != nil {
		return err
	}
	return m.rt.Attach(ctx, id, rt.Streams{Stdin: stdin, Stdout: stdout, Stderr: stderr, TTY: tty, Resize: resize})
}

// PortForward connects stream to port on the pod's loopback: the
// connection is dialled inside the pod's network namespace (the sandbox's),
// as the kubelet's runtimes do, so the port need not be published.
func (m *Manager) PortForward(ctx context.Context, podUID string, port int32, stream io.ReadWriteCloser) error {
	defer func() { _ = stream.Close() }()
	list, err := m.instances(ctx, podUID, rt.SandboxName)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return fmt.Errorf("pod %s has no sandbox", podUID)
	}
	st, err := m.rt.Inspect(ctx, list[0].ID)
	if err != nil {
		return err
	}
	if !st.Running || st.Pid == 0 {
		return fmt.Errorf("the sandbox of pod %s is not running", podUID)
	}
	conn, err := dialInNetns(ctx, st.Pid, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("port-forward to port %d of pod %s: %w", port, podUID, err)
	}
	defer func() { _ = conn.Close() }()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(stream, conn)
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// dialInNetns dials addr over TCP from the network namespace of process
// pid: on a locked OS thread switched into that namespace and back (the
// socket stays in the namespace it was made in).
func dialInNetns(ctx context.Context, pid int, addr string) (net.Conn, error) {
	target, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("network namespace of pid %d: %w", pid, err)
	}
	defer func() { _ = target.Close() }()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked when it could not switch back: Go
		// then ends it instead of reusing it in the wrong namespace.
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer func() { _ = orig.Close() }()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
