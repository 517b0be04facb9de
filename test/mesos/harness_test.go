package mesos

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"

	"github.com/k8sm/k8sm/test/testenv"
)

// wait is how long a test waits for an event that must come.
const wait = 20 * time.Second

type cluster struct {
	m *Master
	a *Agent
}

// newCluster starts a master and one agent with short intervals; mod
// adjusts the agent's configuration.
func newCluster(t *testing.T, mod func(*AgentConfig)) *cluster {
	t.Helper()
	// The work dir's cleanup must run after m.Close has reaped the
	// executors writing into it: cleanups run last-registered first.
	work := t.TempDir()
	m, err := NewMaster(MasterConfig{HeartbeatInterval: 100 * time.Millisecond, AllocationInterval: 20 * time.Millisecond, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	res, err := ParseResources("cpus:4;mem:4096;ports:[31000-32000]")
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := ParseAttributes("rack:r1;zone:z1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := AgentConfig{
		Hostname: "agent1.test", Resources: res, Attributes: attrs, WorkDir: work,
		ExecutorShutdownGracePeriod: time.Second, StatusUpdateRetryMin: 200 * time.Millisecond,
		StatusUpdateRetryMax: time.Second, // Under -race an exiting test executor would sleep 1 s
		// (GORACE atexit_sleep_ms), longer than some grace periods here.
		ExecutorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GORACE=atexit_sleep_ms=0 halt_on_error=1"},
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := m.AddAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{m: m, a: a}
}

func frameworkInfo(name string) mesos.FrameworkInfo {
	return mesos.FrameworkInfo{User: "root", Name: name}
}

func protobuf() encoding.Codec  { return codecs.ByMediaType[codecs.MediaTypeProtobuf] }
func jsonCodec() encoding.Codec { return codecs.ByMediaType[codecs.MediaTypeJSON] }

// subscribe subscribes info to c's master and waits for SUBSCRIBED.
func subscribe(t *testing.T, c *cluster, info mesos.FrameworkInfo, codec encoding.Codec) *Scheduler {
	t.Helper()
	return Subscribe(t, c.m.SchedulerURL(), info, codec)
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// testExecutorInfo is an ExecutorInfo that runs this test binary as a
// mesos-go executor in mode.
func testExecutorInfo(t *testing.T, id, mode string, env ...string) mesos.ExecutorInfo {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	vars := []mesos.Environment_Variable{{Name: "TEST_EXECUTOR_MODE", Value: &mode}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars = append(vars, mesos.Environment_Variable{Name: k, Value: ptr.To(v)})
	}
	return mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: id},
		Command:    &mesos.CommandInfo{Value: &self, Shell: ptr.To(false), Environment: &mesos.Environment{Variables: vars}},
		Resources:  []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)},
	}
}

func testTask(id, data string, ex mesos.ExecutorInfo) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, Executor: &ex, Data: []byte(data),
		Resources: []mesos.Resource{scalar("cpus", 0.5), scalar("mem", 64)},
	}
}

// executor returns the agent's one executor with id, waiting for it.
func (c *cluster) executor(t *testing.T, id string) ExecutorState {
	t.Helper()
	var found ExecutorState
	testenv.WaitFor(t, wait, "executor "+id+" on the agent", func() bool {
		for _, e := range c.a.Executors() {
			if e.ExecutorID == id {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// readSandbox waits for a file the test executor writes in its sandbox.
func readSandbox(t *testing.T, dir, name string) string {
	t.Helper()
	var b []byte
	testenv.WaitFor(t, wait, fmt.Sprintf("the executor to write %s in %s", name, dir), func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(dir, name))
		return err == nil && len(b) > 0
	})
	return string(b)
}

// post sends one raw call and returns the status code and body.
func post(t *testing.T, url, contentType string, body []byte, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), resp.Header
}

func marshal(t *testing.T, m message) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// processAlive tells whether pid still runs (a zombie counts as gone).
func processAlive(pid int) bool {
	s, ok := statState(fmt.Sprintf("/proc/%d/stat", pid))
	return ok && s != "Z"
}

// statState is the state letter of a /proc/<pid>[/task/<tid>]/stat file.
func statState(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	p, ok := parseStat(b)
	return p.state, ok
}

// processStopped reports whether every thread of pid is in the stopped
// state: kill(SIGSTOP) returns before the threads have stopped, and a
// thread that runs meanwhile (a client reconnecting) acts as if no stop
// was sent.
func processStopped(pid int) bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, p := range stats {
		if s, ok := statState(p); !ok || s != "T" {
			return false
		}
	}
	return true
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLog sends the double's logs to the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
