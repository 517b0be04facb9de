package mesos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/backoff"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/executor/events"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// The conformance tests' executor is this test binary run again with
// TEST_EXECUTOR_MODE set: a plain mesos-go v1 executor in the shape of
// mesos-go's example-executor (config.FromEnv, httpexec, a subscriber on
// its own connection, backoff.Notifier between re-subscriptions), not k8sm.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TEST_EXECUTOR_MODE"); mode != "" {
		os.Exit(runTestExecutor(mode))
	}
	os.Exit(m.Run())
}

// Task data the test executor understands.
const (
	taskRun    = ""       // RUNNING, then KILLED on KILL
	taskFinish = "finish" // RUNNING then FINISHED
	taskCrash  = "crash"  // RUNNING then the executor exits 7
	// taskStubborn: RUNNING, and a process tree that ignores SIGTERM.
	taskStubborn = "stubborn"
)

type testExecutor struct {
	mu             sync.Mutex
	cfg            config.Config
	cli            calls.Sender
	info           mesos.ExecutorInfo
	unackedTasks   map[string]mesos.TaskInfo
	unackedUpdates map[string]executor.Call_Update
	running        map[string]bool
	launched       map[string]bool
	quit           bool
	ignoreShutdown bool
}

func runTestExecutor(mode string) int {
	log.SetPrefix("test-executor: ")
	writeReport()
	if mode == "silent" {
		select {} // never subscribes
	}
	cfg, err := config.FromEnv()
	if err != nil {
		log.Printf("config.FromEnv: %v", err)
		return 3
	}
	codec := codecs.ByMediaType[codecs.MediaTypeProtobuf]
	if os.Getenv("TEST_EXECUTOR_CODEC") == "json" {
		codec = codecs.ByMediaType[codecs.MediaTypeJSON]
	}
	opts := []httpcli.Opt{
		httpcli.Endpoint((&url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}).String()),
		httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.Timeout(10 * time.Second))),
	}
	if tok := os.Getenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"); tok != "" && os.Getenv("TEST_EXECUTOR_NO_TOKEN") == "" {
		opts = append(opts, httpcli.DefaultHeader("Authorization", "Bearer "+tok))
	}
	http := httpcli.New(opts...)
	callOpts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	x := &testExecutor{
		cfg:            cfg,
		cli:            calls.SenderWith(httpexec.NewSender(http.Send), callOpts...),
		unackedTasks:   map[string]mesos.TaskInfo{},
		unackedUpdates: map[string]executor.Call_Update{},
		running:        map[string]bool{},
		launched:       map[string]bool{},
		ignoreShutdown: mode == "stubborn",
	}
	subscriber := calls.SenderWith(httpexec.NewSender(http.Send, httpcli.Close(true)), callOpts...)
	var reconnect <-chan struct{}
	if cfg.Checkpoint {
		reconnect = backoff.Notifier(50*time.Millisecond, cfg.SubscriptionBackoffMax*3/4, nil)
	}
	disconnected := time.Now()
	for {
		x.mu.Lock()
		sub := calls.Subscribe(x.tasks(), x.updates())
		x.mu.Unlock()
		resp, err := subscriber.Send(context.Background(), calls.NonStreaming(sub))
		if err == nil {
			err = x.loop(resp)
			disconnected = time.Now()
		}
		if resp != nil {
			_ = resp.Close()
		}
		log.Printf("disconnected: %v", err)
		if x.quit {
			return 0
		}
		if !cfg.Checkpoint {
			return 0 // docs/executor-http-api.md "Disconnections"
		}
		if time.Since(disconnected) > cfg.RecoveryTimeout {
			return 4
		}
		<-reconnect
	}
}

func (x *testExecutor) tasks() []mesos.TaskInfo {
	var out []mesos.TaskInfo
	for _, t := range x.unackedTasks {
		out = append(out, t)
	}
	return out
}

func (x *testExecutor) updates() []executor.Call_Update {
	var out []executor.Call_Update
	for _, u := range x.unackedUpdates {
		out = append(out, u)
	}
	return out
}

func (x *testExecutor) loop(dec encoding.Decoder) error {
	h := events.HandlerFuncs{
		executor.Event_SUBSCRIBED: func(_ context.Context, e *executor.Event) error {
			x.info = e.Subscribed.ExecutorInfo
			return nil
		},
		executor.Event_LAUNCH: func(_ context.Context, e *executor.Event) error {
			x.launch(e.Launch.Task)
			return nil
		},
		executor.Event_LAUNCH_GROUP: func(_ context.Context, e *executor.Event) error {
			for _, t := range e.LaunchGroup.TaskGroup.Tasks {
				x.update(t.TaskID, mesos.TASK_FAILED, "one task per LAUNCH only")
			}
			return nil
		},
		executor.Event_KILL: func(_ context.Context, e *executor.Event) error {
			x.update(e.Kill.TaskID, mesos.TASK_KILLED, "killed")
			return nil
		},
		executor.Event_ACKNOWLEDGED: func(_ context.Context, e *executor.Event) error {
			x.mu.Lock()
			delete(x.unackedTasks, e.Acknowledged.TaskID.Value)
			delete(x.unackedUpdates, string(e.Acknowledged.UUID))
			x.mu.Unlock()
			return nil
		},
		executor.Event_MESSAGE: func(ctx context.Context, e *executor.Event) error {
			resp, err := x.cli.Send(ctx, calls.NonStreaming(calls.Message(append([]byte("echo:"), e.Message.Data...))))
			if resp != nil {
				_ = resp.Close()
			}
			return err
		},
		executor.Event_SHUTDOWN: func(_ context.Context, _ *executor.Event) error {
			if x.ignoreShutdown {
				return nil
			}
			x.mu.Lock()
			ids := make([]string, 0, len(x.running))
			for id := range x.running {
				ids = append(ids, id)
			}
			x.mu.Unlock()
			for _, id := range ids {
				x.update(mesos.TaskID{Value: id}, mesos.TASK_KILLED, "executor shutdown")
			}
			x.quit = true
			return io.EOF
		},
		executor.Event_ERROR: func(_ context.Context, e *executor.Event) error {
			return errors.New("ERROR event: " + e.Error.Message)
		},
		executor.Event_HEARTBEAT: func(context.Context, *executor.Event) error { return nil },
	}
	for {
		var e executor.Event
		if err := dec.Decode(&e); err != nil {
			return err
		}
		if err := h.HandleEvent(context.Background(), &e); err != nil {
			return err
		}
	}
}

func (x *testExecutor) launch(t mesos.TaskInfo) {
	// What the container's limits were when LAUNCH arrived: the agent grows
	// the container before it sends LAUNCH.
	_ = os.WriteFile("launch-"+t.TaskID.Value+".txt", []byte(ownLimits()), 0o644)
	x.mu.Lock()
	if x.launched[t.TaskID.Value] {
		// A duplicated LAUNCH event (fault injection): already running.
		x.mu.Unlock()
		return
	}
	x.launched[t.TaskID.Value] = true
	x.unackedTasks[t.TaskID.Value] = t
	x.mu.Unlock()
	x.update(t.TaskID, mesos.TASK_RUNNING, "")
	switch string(t.Data) {
	case taskFinish:
		x.update(t.TaskID, mesos.TASK_FINISHED, "done")
	case taskCrash:
		os.Exit(7)
	case taskStubborn:
		// One child leaves the process group (setsid): only a cgroup kill
		// finds it.
		cmd := exec.Command("/bin/sh", "-c", `trap "" TERM; sleep 1000 & setsid sleep 1000 & wait`)
		if err := cmd.Start(); err != nil {
			log.Printf("start stubborn tree: %v", err)
		}
	}
}

func (x *testExecutor) update(id mesos.TaskID, state mesos.TaskState, msg string) {
	st := mesos.TaskStatus{
		TaskID: id, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &x.info.ExecutorID, UUID: newUUID(), Message: &msg,
	}
	upd := calls.Update(st)
	x.mu.Lock()
	x.unackedUpdates[string(st.UUID)] = *upd.Update
	if terminal(state) {
		delete(x.running, id.Value)
	} else {
		x.running[id.Value] = true
	}
	x.mu.Unlock()
	resp, err := x.cli.Send(context.Background(), calls.NonStreaming(upd))
	if resp != nil {
		_ = resp.Close()
	}
	if err != nil {
		log.Printf("UPDATE %s %s: %v", id.Value, state, err)
		return
	}
	// The record of what the agent accepted, for tests that check nothing
	// is lost on the way to the scheduler.
	if f, err := os.OpenFile("sent.txt", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		_, _ = fmt.Fprintf(f, "%s %s %x\n", id.Value, state, st.UUID)
		_ = f.Close()
	}
}

// writeReport leaves the executor's view of its start in the sandbox (its
// working directory): the MESOS_* environment and /proc/self/cgroup.
func writeReport() {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MESOS_") || strings.HasPrefix(kv, "LIBPROCESS_") {
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	_ = os.WriteFile("env.txt", []byte(strings.Join(env, "\n")+"\n"), 0o644)
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		_ = os.WriteFile("cgroup.txt", b, 0o644)
	}
	wd, _ := os.Getwd()
	_ = os.WriteFile(filepath.Join(wd, "pid.txt"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// ownLimits reads this process's memory limit and cpu shares (or v2 memory.max
// and cpu.weight) from its own cgroups, as "mem=<v> cpu=<v>".
func ownLimits() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "error: " + err.Error()
	}
	var mem, cpu string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		read := func(dir, file string) string {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", dir, parts[2], file))
			if err != nil {
				return "?"
			}
			return strings.TrimSpace(string(v))
		}
		for _, c := range strings.Split(parts[1], ",") {
			switch c {
			case "memory":
				mem = read("memory", "memory.limit_in_bytes")
			case "cpu":
				cpu = read("cpu", "cpu.shares")
			}
		}
		if parts[0] == "0" && parts[1] == "" && mem == "" {
			// cgroup v2: the process is in the container's leaf.
			mem = read("", "../memory.max")
			cpu = read("", "../cpu.weight")
		}
	}
	return "mem=" + mem + " cpu=" + cpu
}
