package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sync/singleflight"
)

// Config of the Docker adapter.
type Config struct {
	Endpoint    string        // e.g. unix:///var/run/docker.sock
	CallTimeout time.Duration // bound of every non-waiting call; default 30s
	PullTimeout time.Duration // bound of one image pull; default 5m
	// MaxParallelCreates bounds the container creates and starts in flight
	// at once (default 4). A burst of pods otherwise sends dockerd hundreds
	// of concurrent calls, which on a small node run past CallTimeout and
	// fail pods that a queue would have started.
	MaxParallelCreates int
}

// Docker is the adapter. It is safe for concurrent use.
type Docker struct {
	c   *client.Client
	cfg Config
	log *slog.Logger

	negotiate sync.Once // the API version, before any concurrent call

	pulls singleflight.Group // by image: the pull under way
	// pull does one pull; a field so tests can count and block pulls.
	pull func(ctx context.Context, ref string) error
	// joined, when set (by tests), is called once a caller of pullOnce has
	// started the pull of ref or joined the one under way.
	joined func(ref string)
	// Pulls counts pulls actually started (after de-duplication).
	Pulls atomic.Int64

	slots chan struct{} // MaxParallelCreates tokens
}

// Errors.
var (
	// ErrNotFound: no such container (wrapped).
	ErrNotFound = errors.New("container not found")
	// ErrImageNeverPull: the image is missing and the pull policy is Never.
	ErrImageNeverPull = errors.New("image not present and pull policy is Never")
)

// PullError is a failed pull, with Docker's message.
type PullError struct {
	Image string
	Msg   string
}

func (e *PullError) Error() string { return fmt.Sprintf("pull image %q: %s", e.Image, e.Msg) }

// New builds the adapter; it does not connect (the first call does).
func New(cfg Config, log *slog.Logger) (*Docker, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("docker endpoint is empty")
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = 5 * time.Minute
	}
	if cfg.MaxParallelCreates <= 0 {
		cfg.MaxParallelCreates = 4
	}
	c, err := client.NewClientWithOpts(client.WithHost(cfg.Endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", cfg.Endpoint, err)
	}
	d := &Docker{c: c, cfg: cfg, log: log, slots: make(chan struct{}, cfg.MaxParallelCreates)}
	d.pull = d.pullImage
	return d, nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.c.Close() }

// slot waits for one of the MaxParallelCreates tokens; the call's own
// timeout starts once it has one. It blocks until then or ctx ends.
func (d *Docker) slot(ctx context.Context) (release func(), err error) {
	select {
	case d.slots <- struct{}{}:
		return func() { <-d.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *Docker) call(ctx context.Context) (context.Context, context.CancelFunc) {
	d.ready(ctx)
	return context.WithTimeout(ctx, d.cfg.CallTimeout)
}

// ready negotiates the API version once, before the first call. The client
// would otherwise negotiate lazily inside whichever calls come first, and its
// Events reads the version unguarded while another call writes it (a data
// race the race detector shows). If the daemon does not answer then, the
// client falls back to negotiating lazily.
func (d *Docker) ready(ctx context.Context) {
	d.negotiate.Do(func() {
		nctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		defer cancel()
		d.c.NegotiateAPIVersion(nctx)
	})
}

// Info is what the executor needs to know about the daemon.
type Info struct {
	CgroupDriver  string
	ServerVersion string
	// KernelVersion and OperatingSystem (the host's OS image, e.g.
	// "Debian GNU/Linux 13 (trixie)") as the daemon reports them: the
	// Node's status.nodeInfo shows them, as the kubelet's does.
	KernelVersion, OperatingSystem string
}

// Info asks the daemon for its version and cgroup driver.
func (d *Docker) Info(ctx context.Context) (Info, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	i, err := d.c.Info(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("docker info: %w", err)
	}
	return Info{CgroupDriver: i.CgroupDriver, ServerVersion: i.ServerVersion,
		KernelVersion: i.KernelVersion, OperatingSystem: i.OperatingSystem}, nil
}

// Pull policies, as Kubernetes names them.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// EnsureImage makes ref available locally according to policy: Never and
// IfNotPresent use a local image and never pull when it is there; Always, or
// a missing image under IfNotPresent, pulls once under the pull timeout.
// Concurrent pulls of one image are de-duplicated. A failed pull is a
// *PullError carrying Docker's message.
func (d *Docker) EnsureImage(ctx context.Context, ref, policy string) error {
	if policy != PullAlways {
		present, err := d.imagePresent(ctx, ref)
		if err != nil {
			return err
		}
		if present {
			return nil
		}
		if policy == PullNever {
			return fmt.Errorf("%w: %s", ErrImageNeverPull, ref)
		}
	}
	return d.pullOnce(ctx, ref)
}

// pullOnce joins the pull of ref under way or starts one. The pull runs
// under the pull timeout whatever the starting caller's ctx (its values are
// kept, its cancellation is not); every caller, the starting one too, stops
// waiting when its own ctx ends, and the pull goes on for the others.
func (d *Docker) pullOnce(ctx context.Context, ref string) error {
	ch := d.pulls.DoChan(ref, func() (any, error) {
		d.Pulls.Add(1)
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.PullTimeout)
		defer cancel()
		return nil, d.pull(pctx, ref)
	})
	if d.joined != nil {
		d.joined(ref)
	}
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("pull image %q: %w", ref, ctx.Err())
	}
}

func (d *Docker) imagePresent(ctx context.Context, ref string) (bool, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	_, err := d.c.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %q: %w", ref, err)
}

func (d *Docker) pullImage(ctx context.Context, ref string) error {
	d.ready(ctx)
	rc, err := d.c.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return &PullError{Image: ref, Msg: err.Error()}
	}
	defer func() { _ = rc.Close() }()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return &PullError{Image: ref, Msg: err.Error()}
	}
	return nil
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	ContainerPort int
	HostPort      int
	Protocol      string // "tcp" or "udp"
	HostIP        string
}

// Mount is a bind mount.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// ContainerSpec is one container to create.
type ContainerSpec struct {
	Name         string // Docker's container name; "" lets Docker choose
	Image        string
	Entrypoint   []string // Kubernetes "command"
	Cmd          []string // Kubernetes "args"
	Env          []string // "NAME=value"
	WorkingDir   string
	User         string
	Labels       map[string]string
	CgroupParent string
	MemoryBytes  int64
	CPUShares    int64
	CPUQuota     int64 // microseconds per CPUPeriod; 0: none
	CPUPeriod    int64
	PidsLimit    int64  // 0: none
	NetworkMode  string // "" (the daemon's bridge) for a sandbox, "container:<id>" to join one
	IpcMode      string
	PidMode      string
	Ports        []PortMapping // only on a container that owns its network
	Mounts       []Mount
	StopSignal   string
	Privileged   bool
	CapAdd       []string
	// Stdin keeps the container's stdin open for attach; StdinOnce closes
	// it when the first attach ends; TTY gives it a terminal.
	Stdin, StdinOnce, TTY bool
}

// Create creates a container; it does not start it.
func (d *Docker) Create(ctx context.Context, s ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Env:        s.Env,
		WorkingDir: s.WorkingDir,
		User:       s.User,
		Labels:     s.Labels,
		StopSignal: s.StopSignal,
		OpenStdin:  s.Stdin,
		StdinOnce:  s.StdinOnce,
		Tty:        s.TTY,
	}
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(s.NetworkMode),
		IpcMode:     container.IpcMode(s.IpcMode),
		PidMode:     container.PidMode(s.PidMode),
		Privileged:  s.Privileged,
		CapAdd:      s.CapAdd,
		Resources: container.Resources{
			CgroupParent: s.CgroupParent,
			Memory:       s.MemoryBytes,
			MemorySwap:   s.MemoryBytes, // no swap beyond the limit
			CPUShares:    s.CPUShares,
			CPUQuota:     s.CPUQuota,
			CPUPeriod:    s.CPUPeriod,
		},
	}
	if s.PidsLimit > 0 {
		hc.PidsLimit = &s.PidsLimit
	}
	if s.MemoryBytes == 0 {
		hc.MemorySwap = 0
	}
	if len(s.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, p := range s.Ports {
			proto := strings.ToLower(p.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			port := nat.Port(strconv.Itoa(p.ContainerPort) + "/" + proto)
			cfg.ExposedPorts[port] = struct{}{}
			hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(p.HostPort)})
		}
	}
	for _, m := range s.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	release, err := d.slot(ctx)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", s.Name, err)
	}
	defer release()
	ctx, cancel := d.call(ctx)
	defer cancel()
	r, err := d.c.ContainerCreate(ctx, cfg, hc, nil, nil, s.Name)
	if err != nil {
		return "", fmt.Errorf("create container %q (%s): %w", s.Name, s.Image, err)
	}
	return r.ID, nil
}

// Start starts a created container.
func (d *Docker) Start(ctx context.Context, id string) error {
	release, err := d.slot(ctx)
	if err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	defer release()
	ctx, cancel := d.call(ctx)
	defer cancel()
	if err := d.c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	return nil
}

// Stop sends the container's stop signal, waits up to grace, then SIGKILLs
// it. It blocks until the container stopped or ctx ends (no call timeout).
func (d *Docker) Stop(ctx context.Context, id string, grace time.Duration) error {
	d.ready(ctx)
	secs := int((grace + time.Second - 1) / time.Second)
	if err := d.c.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", short(id), err)
	}
	return nil
}

// Kill sends signal (e.g. "SIGKILL") to the container's main process.
func (d *Docker) Kill(ctx context.Context, id, signal string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	if err := d.c.ContainerKill(ctx, id, signal); err != nil {
		return fmt.Errorf("kill container %s with %s: %w", short(id), signal, err)
	}
	return nil
}

// Remove force-removes a container; one already gone is not an error.
func (d *Docker) Remove(ctx context.Context, id string) error {
	ctx, cancel := d.call(ctx)
	defer cancel()
	err := d.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", short(id), err)
	}
	return nil
}

// State is a container as Docker reports it.
type State struct {
	ID         string
	Name       string
	Image      string
	Labels     map[string]string
	Running    bool
	Status     string // created, running, exited, ...
	ExitCode   int
	OOMKilled  bool
	Error      string
	Pid        int
	IP         string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Inspect returns a container's state; a missing one is ErrNotFound.
func (d *Docker) Inspect(ctx context.Context, id string) (State, error) {
	ctx, cancel := d.call(ctx)
	defer cancel()
	i, err := d.c.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return State{}, fmt.Errorf("inspect %s: %w", short(id), ErrNotFound)
	}
	if err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", short(id), err)
	}
	s := State{ID: i.ID, Name: strings.TrimPrefix(i.Name, "/"), Image: i.Config.Image, Labels: i.Config.Labels}
	if st := i.State; st != nil {
		s.Running, s.Status, s.ExitCode, s.OOMKilled, s.Error, s.Pid = st.Running, st.Status, st.ExitCode, st.OOMKilled, st.Error, st.Pid
		s.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		s.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
	}
	if ns := i.NetworkSettings; ns != nil {
		// The daemon's bridge first, else the first network by name. A
		// container joined to a sandbox's namespace has none.
		names := make([]string, 0, len(ns.Networks))
		for n := range ns.Networks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range append([]string{"bridge"}, names...) {
			if e := ns.Networks[n]; e != nil && e.IPAddress != "" {
				s.IP = e.IPAddress
				break
			}
		}
	}
	return s, nil
}

// Summary is one container of a List.
type Summary struct {
	ID      string
	Labels  map[string]string
	State   string
	Created time.Time
}

// List returns every container (running or not) carrying all the given
// labels; an empty value matches any value of that label.
func (d *Docker) List(ctx context.Context, labels map[string]string) ([]Summary, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	ctx, cancel := d.call(ctx)
	defer cancel()
	cs, err := d.c.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Summary, len(cs))
	for i, c := range cs {
		out[i] = Summary{ID: c.ID, Labels: c.Labels, State: c.State, Created: time.Unix(c.Created, 0)}
	}
	return out, nil
}

// Event is one container event of Docker's stream.
type Event struct {
	ID     string
	Action string // start, die, oom, destroy, ...
	Labels map[string]string
	Time   time.Time
}

// Events streams container events of containers carrying label (any value)
// until ctx ends. The error channel gets one error when the stream breaks;
// the caller reconnects and re-lists (events in between are lost).
func (d *Docker) Events(ctx context.Context, label string) (<-chan Event, <-chan error) {
	d.ready(ctx)
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", label))
	msgs, errs := d.c.Events(ctx, events.ListOptions{Filters: f})
	out := make(chan Event)
	outErr := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				e := Event{ID: m.Actor.ID, Action: string(m.Action), Labels: m.Actor.Attributes, Time: time.Unix(0, m.TimeNano)}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			case err := <-errs:
				if ctx.Err() == nil {
					outErr <- fmt.Errorf("docker events: %w", err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, outErr
}

// Exec runs cmd in a running container and returns its exit code and
// combined output (bounded by ctx, which exec probes give their timeout).
func (d *Docker) Exec(ctx context.Context, id string, cmd []string) (int, []byte, error) {
	d.ready(ctx)
	ex, err := d.c.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, nil, fmt.Errorf("exec in %s: %w", short(id), err)
	}
	att, err := d.c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, nil, fmt.Errorf("exec in %s: %w", short(id), err)
	}
	defer att.Close()
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&buf, &buf, att.Reader)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return -1, buf.Bytes(), fmt.Errorf("exec in %s: read output: %w", short(id), err)
		}
	case <-ctx.Done():
		return -1, buf.Bytes(), fmt.Errorf("exec in %s: %w", short(id), ctx.Err())
	}
	ins, err := d.c.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return -1, buf.Bytes(), fmt.Errorf("exec in %s: %w", short(id), err)
	}
	return ins.ExitCode, buf.Bytes(), nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
