//go:build integration && linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/test/testenv"
)

// kubectl runs kubectl as the bed's admin, with stdin, and returns its
// combined output.
func kubectl(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.KubeBinary(t, "kubectl"), append([]string{"--kubeconfig", testenv.Kubeconfig}, args...)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestKubeletAPIThroughTheAPIServer: the executor's kubelet API serves
// what users reach through the API server, checked with kubectl (the
// bed's, of the same version) and client-go: logs with their options and
// --previous after a restart, exec with stdin, a TTY and an exit code,
// attach, port-forward and cp; and it refuses anonymous callers, users
// without nodes/proxy and another node's identity.
func TestKubeletAPIThroughTheAPIServer(t *testing.T) {
	const nodeName = "k8sm-node1"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, admin := newKubeNode(t, nodeName)

	name := "kubelet-" + testenv.RandomName(4)
	want := newPod(name,
		v1.Container{Name: "talker", Image: testenv.BusyboxImage,
			Command: []string{"sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; while :; do echo tick; sleep 0.2; done"}},
		v1.Container{Name: "crasher", Image: testenv.BusyboxImage,
			Command: []string{"sh", "-c", "echo run-$(cat /proc/sys/kernel/random/uuid); sleep 1; exit 3"}},
		v1.Container{Name: "reader", Image: testenv.BusyboxImage, Stdin: true,
			Command: []string{"sh", "-c", "while read l; do echo got:$l; done"}},
		v1.Container{Name: "echo", Image: testenv.BusyboxImage,
			Command: []string{"nc", "-ll", "-p", "8080", "-e", "cat"}},
	)
	task := n.launchAPIPod(t, ctx, admin, want)

	var node *v1.Node
	var err error
	waitFor(t, "the Node advertising its kubelet port", func() bool {
		node, err = admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && node.Status.DaemonEndpoints.KubeletEndpoint.Port != 0
	})
	waitFor(t, "the pod's status in the API server", func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == v1.PodRunning
	})

	t.Run("logs", func(t *testing.T) {
		out, err := kubectl(t, ctx, nil, "logs", name, "-c", "talker", "--tail=2")
		if err != nil || strings.Count(out, "\n") != 2 {
			t.Fatalf("logs --tail=2: %v\n%s", err, out)
		}
		out, err = kubectl(t, ctx, nil, "logs", name, "-c", "talker", "--timestamps", "--limit-bytes=200")
		if err != nil || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z line1\n`).MatchString(out) || len(out) > 200 {
			t.Fatalf("logs --timestamps --limit-bytes=200: %v\n%s", err, out)
		}
		if out, err = kubectl(t, ctx, nil, "logs", name, "-c", "talker", "--since=1h"); err != nil || !strings.HasPrefix(out, "line1\n") {
			t.Fatalf("logs --since=1h: %v\n%s", err, out)
		}
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		defer fcancel()
		cmd := exec.CommandContext(fctx, testenv.KubeBinary(t, "kubectl"), "--kubeconfig", testenv.Kubeconfig, "logs", "-f", name, "-c", "talker", "--tail=0")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "tick" {
			t.Fatalf("logs -f: %q %v", sc.Text(), sc.Err())
		}
		fcancel()
		_ = cmd.Wait()
		// --previous: none before the first restart, then the run before.
		waitFor(t, "the crasher restarted", func() bool {
			p, err := admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.Name == "crasher" && c.RestartCount >= 1 && c.State.Running != nil && c.LastTerminationState.Terminated != nil {
					if c.LastTerminationState.Terminated.ExitCode != 3 || !strings.HasPrefix(c.LastTerminationState.Terminated.ContainerID, "docker://") {
						t.Fatalf("crasher's last state: %+v", c.LastTerminationState.Terminated)
					}
					return true
				}
			}
			return false
		})
		prev, err := kubectl(t, ctx, nil, "logs", name, "-c", "crasher", "--previous")
		cur, err2 := kubectl(t, ctx, nil, "logs", name, "-c", "crasher")
		if err != nil || err2 != nil || !strings.HasPrefix(prev, "run-") || !strings.HasPrefix(cur, "run-") || prev == cur {
			t.Fatalf("logs --previous %q (%v), current %q (%v): want two different runs", prev, err, cur, err2)
		}
		if out, err := kubectl(t, ctx, nil, "logs", name, "-c", "talker", "--previous"); err == nil || !strings.Contains(out, "previous terminated container") {
			t.Fatalf("logs --previous of a container that never restarted: %v\n%s", err, out)
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, err := kubectl(t, ctx, strings.NewReader("hi\n"), "exec", "-i", name, "-c", "talker", "--", "cat")
		if err != nil || out != "hi\n" {
			t.Fatalf("echo hi | kubectl exec -i -- cat: %v %q", err, out)
		}
		out, err = kubectl(t, ctx, nil, "exec", name, "-c", "talker", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(out, "out") || !strings.Contains(out, "err") {
			t.Fatalf("kubectl exec exiting 3: %v\n%s", err, out)
		}
		// A TTY: kubectl wants a terminal for -t, so through client-go.
		var buf bytes.Buffer
		if err := streamPod(ctx, admin, name, "exec", &v1.PodExecOptions{Container: "talker", Command: []string{"tty"}, Stdout: true, TTY: true},
			remotecommand.StreamOptions{Stdout: &buf, Tty: true}); err != nil || !strings.HasPrefix(buf.String(), "/dev/pts/") {
			t.Fatalf("exec -t tty: %v %q", err, buf.String())
		}
	})

	t.Run("attach", func(t *testing.T) {
		actx, acancel := context.WithCancel(ctx)
		defer acancel()
		pr, pw := io.Pipe()
		seen := make(chan struct{})
		out := &watchWriter{want: "got:hello", seen: seen}
		done := make(chan error, 1)
		go func() {
			done <- streamPod(actx, admin, name, "attach", &v1.PodAttachOptions{Container: "reader", Stdin: true, Stdout: true, Stderr: true},
				remotecommand.StreamOptions{Stdin: pr, Stdout: out, Stderr: out})
		}()
		go func() { _, _ = pw.Write([]byte("hello\n")) }()
		select {
		case <-seen:
		case err := <-done:
			t.Fatalf("attach ended before the container answered: %v (%q)", err, out.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer on attach: %q", out.String())
		}
		acancel()
		_ = pw.Close()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("attach ended with %v after the answer (the stream was cut)", err)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		pctx, pcancel := context.WithCancel(ctx)
		defer pcancel()
		cmd := exec.CommandContext(pctx, testenv.KubeBinary(t, "kubectl"), "--kubeconfig", testenv.Kubeconfig, "port-forward", "pod/"+name, ":8080")
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { pcancel(); _ = cmd.Wait() }()
		sc := bufio.NewScanner(stdout)
		var local string
		for sc.Scan() {
			if m := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`).FindStringSubmatch(sc.Text()); m != nil {
				local = m[1]
				break
			}
		}
		if local == "" {
			t.Fatalf("kubectl port-forward printed no local port: %v", sc.Err())
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		conn, err := net.Dial("tcp", "127.0.0.1:"+local)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		payload := make([]byte, 1<<20)
		_, _ = rand.Read(payload)
		go func() { _, _ = conn.Write(payload) }()
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		back := make([]byte, len(payload))
		if _, err := io.ReadFull(conn, back); err != nil || !bytes.Equal(back, payload) {
			t.Fatalf("1 MiB through port-forward: %v, intact %t", err, bytes.Equal(back, payload))
		}
	})

	t.Run("cp", func(t *testing.T) {
		dir := t.TempDir()
		src, back := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
		content := "k8sm " + testenv.RandomName(8) + "\n"
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := kubectl(t, ctx, nil, "cp", src, "default/"+name+":/tmp/in.txt", "-c", "talker"); err != nil {
			t.Fatalf("kubectl cp to the pod: %v\n%s", err, out)
		}
		if out, err := kubectl(t, ctx, nil, "cp", "default/"+name+":/tmp/in.txt", back, "-c", "talker"); err != nil {
			t.Fatalf("kubectl cp from the pod: %v\n%s", err, out)
		}
		if got, err := os.ReadFile(back); err != nil || string(got) != content {
			t.Fatalf("round trip: %q %v, want %q", got, err, content)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		base := fmt.Sprintf("https://127.0.0.1:%d", node.Status.DaemonEndpoints.KubeletEndpoint.Port)
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the kubelet's self-signed serving certificate
		call := func(token, path string) (int, string) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		execPath := "/exec/default/" + name + "/talker?command=true&output=1"
		if code, body := call("", execPath); code != http.StatusUnauthorized {
			t.Fatalf("anonymous exec: %d %s", code, body)
		}
		if code, body := call(bearer(t, testenv.KubeconfigFor(testenv.SchedulerIdentity)), execPath); code != http.StatusForbidden ||
			!strings.Contains(body, "subresource(s)=[proxy]") {
			t.Fatalf("exec as a user without nodes/proxy: %d %s", code, body)
		}
		if code, body := call(bearer(t, testenv.KubeconfigFor("system:node:k8sm-node2")), "/pods"); code != http.StatusForbidden {
			t.Fatalf("another node's identity on /pods: %d %s", code, body)
		}
	})

	n.sched.Must(calls.Kill(task.TaskID.Value, n.a.ID()))
	n.expect(task.TaskID.Value, mesos.TASK_KILLED)
}

// launchAPIPod makes pod in the API server, bound to this node (as the
// scheduler binds it; no service-account token volume until issue 21),
// launches it as a task with the API server's pod as data, and waits for
// TASK_RUNNING. The pod is deleted at the test's end.
func (n *node) launchAPIPod(t testing.TB, ctx context.Context, admin kubernetes.Interface, pod *v1.Pod) mesos.TaskInfo {
	t.Helper()
	pod.UID = ""
	pod.Spec.NodeName = n.a.Info().Hostname
	pod.Spec.AutomountServiceAccountToken = ptr.To(false)
	created, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().Pods("default").Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	created.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	created.ManagedFields = nil
	data, err := json.Marshal(created)
	if err != nil {
		t.Fatal(err)
	}
	task := n.podTask(t, created, data)
	n.launch(task)
	n.expect(task.TaskID.Value, mesos.TASK_STARTING)
	n.expect(task.TaskID.Value, mesos.TASK_RUNNING)
	return task
}

// streamPod runs a pods/exec or pods/attach stream through the API server
// as the bed's admin.
func streamPod(ctx context.Context, cs kubernetes.Interface, name, sub string, opts k8sruntime.Object, so remotecommand.StreamOptions) error {
	rc, err := clientcmd.BuildConfigFromFlags("", testenv.Kubeconfig)
	if err != nil {
		return err
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(name).SubResource(sub).
		VersionedParams(opts, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(rc, http.MethodPost, req.URL())
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, so)
}

// bearer is the token of a bed kubeconfig.
func bearer(t *testing.T, kubeconfig string) string {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil || rc.BearerToken == "" {
		t.Fatalf("no bearer token in %s: %v", kubeconfig, err)
	}
	return rc.BearerToken
}

// watchWriter collects what it is written and closes seen once that
// contains want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
