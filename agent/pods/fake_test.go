package pods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/cgroups"
)

// fakeRuntime is a validating model of the Docker adapter: it refuses what
// Docker would refuse (an image not present, joining a sandbox that does not
// run, starting a running container) and fails the test on what k8sm must
// never do (a container without ownership labels or outside a cgroup
// parent; two running instances of one container of a pod).
type fakeRuntime struct {
	t       *testing.T
	mu      sync.Mutex
	images  map[string]bool
	cs      map[string]*fakeContainer
	next    int
	starts  map[string]int         // by container name label
	exec    func(cmd []string) int // exit code of an exec
	onDeath func(id string)        // Docker's "die" event
}

type fakeContainer struct {
	spec    runtime.ContainerSpec
	running bool
	exit    int
	started time.Time
	created time.Time
}

func newFakeRuntime(t *testing.T, images ...string) *fakeRuntime {
	r := &fakeRuntime{t: t, images: map[string]bool{}, cs: map[string]*fakeContainer{}, starts: map[string]int{},
		exec: func([]string) int { return 0 }}
	for _, i := range images {
		r.images[i] = true
	}
	return r
}

func (r *fakeRuntime) EnsureImage(_ context.Context, ref, policy string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.images[ref] && policy != runtime.PullAlways {
		return nil
	}
	if policy == runtime.PullNever {
		return runtime.ErrImageNeverPull
	}
	return &runtime.PullError{Image: ref, Msg: "no registry in the fake"}
}

func (r *fakeRuntime) Create(_ context.Context, s runtime.ContainerSpec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[s.Image] {
		return "", fmt.Errorf("no such image: %s", s.Image)
	}
	if _, _, _, err := runtime.ParseLabels(s.Labels); err != nil {
		r.t.Errorf("create without ownership labels: %v", err)
	}
	if s.CgroupParent == "" {
		r.t.Errorf("create of %s outside the pod cgroup", s.Labels[runtime.LabelContainerName])
	}
	r.next++
	id := fmt.Sprintf("%064d", r.next)
	r.cs[id] = &fakeContainer{spec: s, created: time.Now()}
	return id, nil
}

func (r *fakeRuntime) Start(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	switch {
	case !ok:
		return fmt.Errorf("start %s: %w", id, runtime.ErrNotFound)
	case c.running:
		return fmt.Errorf("start %s: already running", id)
	}
	if sb, ok := strings.CutPrefix(c.spec.NetworkMode, "container:"); ok {
		if s := r.cs[sb]; s == nil || !s.running {
			return fmt.Errorf("start %s: cannot join container %s: not running", id, sb)
		}
	}
	name, uid := c.spec.Labels[runtime.LabelContainerName], c.spec.Labels[runtime.LabelPodUID]
	for oid, o := range r.cs {
		if o.running && oid != id && o.spec.Labels[runtime.LabelContainerName] == name && o.spec.Labels[runtime.LabelPodUID] == uid {
			r.t.Errorf("container %s of pod %s would run twice", name, uid)
		}
	}
	c.running, c.started = true, time.Now()
	r.starts[name]++
	return nil
}

// die ends a running container with code and sends Docker's die event.
func (r *fakeRuntime) die(id string, code int) {
	r.mu.Lock()
	c := r.cs[id]
	was := c != nil && c.running
	if was {
		c.running, c.exit = false, code
	}
	onDeath := r.onDeath
	r.mu.Unlock()
	if was && onDeath != nil {
		onDeath(id)
	}
}

func (r *fakeRuntime) setOnDeath(f func(string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onDeath = f
}

// current is the id of the running instance of a pod's container.
func (r *fakeRuntime) current(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, c := range r.cs {
		if c.running && c.spec.Labels[runtime.LabelContainerName] == name {
			return id
		}
	}
	return ""
}

func (r *fakeRuntime) startsOf(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[name]
}

func (r *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	r.die(id, 143)
	return nil
}

func (r *fakeRuntime) Remove(_ context.Context, id string) error {
	r.die(id, 137)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cs, id)
	return nil
}

func (r *fakeRuntime) Inspect(_ context.Context, id string) (runtime.State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	if !ok {
		return runtime.State{}, fmt.Errorf("inspect %s: %w", id, runtime.ErrNotFound)
	}
	st := runtime.State{ID: id, Labels: c.spec.Labels, Running: c.running, ExitCode: c.exit, StartedAt: c.started}
	if c.spec.NetworkMode == "" {
		st.IP = "172.30.255.2"
	}
	return st, nil
}

func (r *fakeRuntime) Exec(_ context.Context, id string, cmd []string) (int, []byte, error) {
	r.mu.Lock()
	c, ok := r.cs[id]
	running := ok && c.running
	exec := r.exec
	r.mu.Unlock()
	if !running {
		return -1, nil, fmt.Errorf("exec in %s: not running", id)
	}
	return exec(cmd), nil, nil
}

// Info is a healthy daemon with the cgroupfs driver.
func (r *fakeRuntime) Info(context.Context) (runtime.Info, error) {
	return runtime.Info{CgroupDriver: "cgroupfs", ServerVersion: "fake"}, nil
}

func (r *fakeRuntime) List(_ context.Context, labels map[string]string) ([]runtime.Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Summary
next:
	for id, c := range r.cs {
		for k, v := range labels {
			if got, ok := c.spec.Labels[k]; !ok || (v != "" && got != v) {
				continue next
			}
		}
		state := "exited"
		if c.running {
			state = "running"
		}
		out = append(out, runtime.Summary{ID: id, Labels: c.spec.Labels, State: state, Created: c.created})
	}
	return out, nil
}

func (r *fakeRuntime) Events(ctx context.Context, _ string) (<-chan runtime.Event, <-chan error) {
	return make(chan runtime.Event), make(chan error)
}

func (r *fakeRuntime) Logs(context.Context, string, runtime.LogOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

// The fake runs no processes: streams are for the integration tests.
func (r *fakeRuntime) ExecStream(context.Context, string, []string, runtime.Streams) (int, error) {
	return -1, errors.New("fake runtime: no exec streams")
}

func (r *fakeRuntime) Attach(context.Context, string, runtime.Streams) error {
	return errors.New("fake runtime: no attach")
}

// fakeCgroups hands out pod cgroups that only record what was done.
type fakeCgroups struct {
	mu   sync.Mutex
	ooms uint64
	made map[string]int
}

type fakePodCg struct {
	c    *fakeCgroups
	path string
}

func (f *fakeCgroups) CreatePod(uid string, _ cgroups.Limits) (PodCgroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.made == nil {
		f.made = map[string]int{}
	}
	f.made[uid]++
	return &fakePodCg{f, "/mesos/test/pod-" + uid}, nil
}

func (p *fakePodCg) Path() string { return p.path }
func (p *fakePodCg) OOMKills() (uint64, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	return p.c.ooms, nil
}
func (p *fakePodCg) KillAll(context.Context) error { return nil }
func (p *fakePodCg) Delete(context.Context) error  { return nil }

// fakeBed runs one worker on the fakes with a fake clock.
type fakeBed struct {
	t   *testing.T
	rt  *fakeRuntime
	cg  *fakeCgroups
	clk *clocktesting.FakeClock
	w   *Worker

	mu     sync.Mutex
	last   v1.PodStatus
	done   chan struct{}
	cancel context.CancelFunc
}

// stop ends the worker as an executor restart would: containers stay.
func (b *fakeBed) stop() {
	b.cancel()
	<-b.done
	b.rt.setOnDeath(nil)
}

func newFakeBed(t *testing.T, pod *v1.Pod, found []runtime.Summary, rt *fakeRuntime) *fakeBed {
	if rt == nil {
		rt = newFakeRuntime(t, "pause", "app")
	}
	b := &fakeBed{t: t, rt: rt, cg: &fakeCgroups{}, clk: clocktesting.NewFakeClock(t0), done: make(chan struct{})}
	cfg := WorkerConfig{
		Machine:      Config{BackoffBase: 10 * time.Second, BackoffMax: 40 * time.Second, BackoffReset: 10 * time.Minute},
		Spec:         SpecOptions{Owner: runtime.Owner{FrameworkID: "fw", ExecutorID: "ex", AgentID: "ag", ContainerID: "ct"}, TaskID: "task", HostIP: "127.0.0.1", PauseImage: "pause"},
		DockerDriver: "cgroupfs",
		Clock:        b.clk,
	}
	b.w = NewWorker(cfg, pod, rt, b.cg, nil, func(st v1.PodStatus, _ State) {
		b.mu.Lock()
		b.last = st
		b.mu.Unlock()
	})
	b.w.found = found
	rt.setOnDeath(b.w.ContainerDied)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { defer close(b.done); _ = b.w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-b.done })
	return b
}

func (b *fakeBed) status() v1.PodStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return *b.last.DeepCopy()
}

// until waits (in real time, generously) for cond; it asserts nothing
// about how long that takes.
func (b *fakeBed) until(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("never: %s (status %+v, %d timers)", what, b.status(), b.clk.Waiters())
		}
		time.Sleep(time.Millisecond)
	}
}

// armed waits until exactly one timer is armed.
func (b *fakeBed) armed() {
	b.t.Helper()
	b.until("one timer armed", func() bool { return b.clk.Waiters() == 1 })
}

// firesAfter checks that the one armed timer is due in exactly d: still
// armed a millisecond before, gone at d. The fake clock runs a due timer
// inside Step, so both hold when Step returns (for a timer whose event arms
// no new one, as a restart's does not).
func (b *fakeBed) firesAfter(d time.Duration) {
	b.t.Helper()
	b.armed()
	b.clk.Step(d - time.Millisecond)
	if n := b.clk.Waiters(); n != 1 {
		b.t.Fatalf("the timer due in %v fired by %v (%d timers left)", d, d-time.Millisecond, n)
	}
	b.clk.Step(time.Millisecond)
	if n := b.clk.Waiters(); n != 0 {
		b.t.Fatalf("the timer due in %v did not fire then (%d timers left)", d, n)
	}
}

func fakePod(policy v1.RestartPolicy, apps ...v1.Container) *v1.Pod {
	for i := range apps {
		apps[i].Image, apps[i].ImagePullPolicy = "app", v1.PullIfNotPresent
	}
	return &v1.Pod{ObjectMeta: metaOf("p"), Spec: v1.PodSpec{RestartPolicy: policy, Containers: apps}}
}

func metaOf(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)}
}
