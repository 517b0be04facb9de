package nodeapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubelet/pkg/cri/streaming/portforward"
	remotecommandserver "k8s.io/kubelet/pkg/cri/streaming/remotecommand"

	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
)

// Streams is what exec, attach, run and port-forward need of the node:
// the pod manager over Docker. Each call blocks until the stream ends.
type Streams interface {
	// Exec runs cmd in a pod's container. A command that ran and exited
	// non-zero is a k8s.io/utils/exec.CodeExitError carrying its code.
	Exec(ctx context.Context, podUID, container string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	// Attach connects to the streams of a pod's running container.
	Attach(ctx context.Context, podUID, container string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	// PortForward connects stream to port on the pod's loopback, dialled
	// inside the pod's network namespace.
	PortForward(ctx context.Context, podUID string, port int32, stream io.ReadWriteCloser) error
}

// The kubelet's stream timeouts (streaming.DefaultConfig, the kubelet's
// streamingConnectionIdleTimeout).
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommandconsts.DefaultStreamCreationTimeout
)

// Kubelet is the kubelet API as the API server calls it (the node's
// port 10250): every request authenticated by authn (client certificate,
// or bearer token through TokenReview) and authorized by authz
// (SubjectAccessReview on the node's subresource, KubeletAttributes).
// It serves the node API's endpoints plus /exec, /attach, /run and
// /portForward.
func (s *Server) Kubelet(authn authenticator.Request, authz authorizer.Authorizer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.mux)
	for _, p := range []string{"/exec/{namespace}/{pod}/{container}", "/exec/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.serveExec)
	}
	for _, p := range []string{"/attach/{namespace}/{pod}/{container}", "/attach/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.serveAttach)
	}
	for _, p := range []string{"POST /run/{namespace}/{pod}/{container}", "POST /run/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.serveRun)
	}
	for _, p := range []string{"/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"} {
		mux.HandleFunc(p, s.servePortForward)
	}
	return withAuth(s.getNodeName, authn, authz, mux)
}

func (s *Server) getNodeName() string { return s.getNode().Name }

// streamPod resolves the pod of a stream request: 404 when it is not here
// (or its uid, when given, differs) or lacks the container; 503 before the
// node side is up.
func (s *Server) streamPod(w http.ResponseWriter, r *http.Request, container bool) (*v1.Pod, Streams, bool) {
	st := s.getNode().Streams
	if st == nil {
		http.Error(w, "no pods run here yet", http.StatusServiceUnavailable)
		return nil, nil, false
	}
	ns, name, uid := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid")
	pod := s.findPod(ns, name)
	if pod == nil || (uid != "" && types.UID(uid) != pod.UID) {
		http.Error(w, fmt.Sprintf("pod %s/%s does not exist on this node", ns, name), http.StatusNotFound)
		return nil, nil, false
	}
	if c := r.PathValue("container"); container && !hasContainer(pod, c) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %s/%s", c, ns, name), http.StatusNotFound)
		return nil, nil, false
	}
	return pod, st, true
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request)   { s.serveStream(w, r, false) }
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) { s.serveStream(w, r, true) }

// serveStream is /exec (the query's command) or /attach on a container of
// the pod, with the query's stdin, stdout, stderr and tty.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, attach bool) {
	opts, err := remotecommandserver.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, st, ok := s.streamPod(w, r, true)
	if !ok {
		return
	}
	e, c := execer{st, string(pod.UID)}, r.PathValue("container")
	if attach {
		remotecommandserver.ServeAttach(w, r, e, pod.Name, pod.UID, c, opts,
			streamIdleTimeout, streamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
		return
	}
	remotecommandserver.ServeExec(w, r, e, pod.Name, pod.UID, c, r.URL.Query()["command"], opts,
		streamIdleTimeout, streamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
}

// serveRun is the kubelet's /run: the command (?cmd=, split on spaces)
// runs to its end and its output (stdout then stderr) is the response.
func (s *Server) serveRun(w http.ResponseWriter, r *http.Request) {
	pod, st, ok := s.streamPod(w, r, true)
	if !ok {
		return
	}
	cmd := strings.Fields(r.URL.Query().Get("cmd"))
	if len(cmd) == 0 {
		http.Error(w, "cmd: a command is required", http.StatusBadRequest)
		return
	}
	var out buffer
	if err := st.Exec(r.Context(), string(pod.UID), r.PathValue("container"), cmd, nil, &out, &out, false, nil); err != nil {
		http.Error(w, fmt.Sprintf("run %v: %v: %s", cmd, err, out.String()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out.Bytes())
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, st, ok := s.streamPod(w, r, false)
	if !ok {
		return
	}
	portforward.ServePortForward(w, r, forwarder{st, string(pod.UID)}, pod.Name, pod.UID, opts,
		streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// execer adapts Streams to the streaming server's Executor and Attacher.
type execer struct {
	st  Streams
	uid string
}

func (e execer) ExecInContainer(ctx context.Context, _ string, _ types.UID, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return e.st.Exec(ctx, e.uid, container, cmd, in, out, errw, tty, resize)
}

func (e execer) AttachContainer(ctx context.Context, _ string, _ types.UID, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return e.st.Attach(ctx, e.uid, container, in, out, errw, tty, resize)
}

// forwarder adapts Streams to the streaming server's PortForwarder.
type forwarder struct {
	st  Streams
	uid string
}

func (f forwarder) PortForward(ctx context.Context, _ string, _ types.UID, port int32, stream io.ReadWriteCloser) error {
	return f.st.PortForward(ctx, f.uid, port, stream)
}

// buffer collects the output of /run: stdout and stderr write to it from
// their own goroutines.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) Close() error { return nil }

func (b *buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Bytes()
}

func (b *buffer) String() string { return string(b.Bytes()) }
