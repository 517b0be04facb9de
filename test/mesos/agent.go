package mesos

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// AgentConfig configures one agent. Zero durations take Mesos' defaults
// (src/slave/flags.cpp, src/slave/constants.hpp).
type AgentConfig struct {
	// Addr is where /api/v1/executor listens ("127.0.0.1:0" picks a port;
	// mesos-go dials from 0.0.0.0, so use IPv4).
	Addr       string
	Hostname   string
	Resources  mesos.Resources
	Attributes []mesos.Attribute
	// WorkDir holds the sandboxes: <work>/slaves/<agent>/frameworks/<fw>/
	// executors/<ex>/runs/<container> (src/slave/paths.cpp:291).
	WorkDir string
	// Cgroups places every executor in /<CgroupRoot>/<container-id> of each
	// cgroup v1 hierarchy (or of the v2 tree) and destroys containers with
	// the freezer (the LinuxLauncher). Without it, the PosixLauncher: the
	// executor is a process group killed with SIGKILL.
	Cgroups    bool
	CgroupRoot string // --cgroups_root, default "mesos"
	// CgroupsEnableCFS writes a CFS quota from the cpus (--cgroups_enable_cfs).
	CgroupsEnableCFS bool

	ExecutorShutdownGracePeriod   time.Duration // 5secs
	ExecutorRegistrationTimeout   time.Duration // 1mins
	ExecutorReregistrationTimeout time.Duration // 2secs
	RecoveryTimeout               time.Duration // 15mins
	ExecutorHeartbeatInterval     time.Duration // 30mins
	StatusUpdateRetryMin          time.Duration // 10secs
	StatusUpdateRetryMax          time.Duration // 10mins
	// Recover is "reconnect" (default) or "cleanup" (--recover).
	Recover string
	// ExecutorAuth gives each executor MESOS_EXECUTOR_AUTHENTICATION_TOKEN
	// and requires it as a bearer token on every call
	// (--authenticate_http_executors).
	ExecutorAuth bool
	// ExecutorEnv is the environment every executor starts from (the real
	// agent passes its own, or --executor_environment_variables).
	ExecutorEnv []string
	// Faults make the executor streams and ACKNOWLEDGED events flaky.
	Faults *Faults
	// NetNS is the network namespace the agent stands in (a path such as
	// /var/run/netns/k8sm-node1): its /api/v1/executor listens there and
	// its executors start there, so one machine holds several agents,
	// each with its own network (a real agent is a machine of its own).
	NetNS string
}

// Agent is one Mesos agent: the v1 executor API, executor containers as
// real processes, and the task status update manager.
type Agent struct {
	m     *Master
	cfg   AgentConfig
	log   *slog.Logger
	id    string
	total mesos.Resources
	addr  string

	// registered: the master counts the agent (offers, reconciliation).
	registered bool
	up         bool
	recovering bool
	frameworks map[string]*agentFramework

	srv *http.Server
}

type agentFramework struct {
	id          string
	info        mesos.FrameworkInfo
	terminating bool
	executors   map[string]*executorRun
}

type exState int

const (
	exRegistering exState = iota
	exRunning
	exTerminating
	exTerminated
)

var exStateNames = [...]string{"REGISTERING", "RUNNING", "TERMINATING", "TERMINATED"}

func (s exState) String() string { return exStateNames[s] }

// executorRun is one executor's container.
type executorRun struct {
	fw          *agentFramework
	info        mesos.ExecutorInfo
	containerID string
	dir         string
	state       exState
	stream      *stream
	token       string
	tasks       map[string]*agentTask
	everSent    bool
	pid         int
	ctr         container
	exited      bool
	// orphan: an executor the restarted agent does not recover; it is
	// destroyed without an ExitedExecutorMessage.
	orphan      bool
	reregister  bool // must re-subscribe after an agent restart
	exitedDown  bool // exited while the agent was down
	exitStatus  int32
	termination *termination
	regTimer    *time.Timer
	killTimer   *time.Timer
	hardLimit   uint64
	// reaped is closed once the process is reaped and its container gone.
	reaped chan struct{}
}

type termination struct {
	state  mesos.TaskState
	reason mesos.TaskStatus_Reason
	msg    string
}

// agentTask is a task on the agent and its status update stream
// (src/status_update_manager/task_status_update_manager.cpp).
type agentTask struct {
	info    mesos.TaskInfo
	group   bool
	queued  bool
	state   mesos.TaskState
	pending []mesos.TaskStatus // unacknowledged; the head is in flight
	seen    map[string]bool
	retry   *time.Timer
	backoff time.Duration
}

// AddAgent registers an agent with the master and starts its HTTP side.
func (m *Master) AddAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.WorkDir == "" {
		return nil, fmt.Errorf("agent: WorkDir is required")
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "mesos"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.ExecutorShutdownGracePeriod, 5*time.Second)
	def(&cfg.ExecutorRegistrationTimeout, time.Minute)
	def(&cfg.ExecutorReregistrationTimeout, 2*time.Second)
	def(&cfg.RecoveryTimeout, 15*time.Minute)
	def(&cfg.ExecutorHeartbeatInterval, 30*time.Minute)
	def(&cfg.StatusUpdateRetryMin, 10*time.Second)
	def(&cfg.StatusUpdateRetryMax, 10*time.Minute)
	// --executor_reregistration_timeout is capped at 15secs
	// (src/slave/constants.hpp MAX_EXECUTOR_REREGISTRATION_TIMEOUT).
	cfg.ExecutorReregistrationTimeout = min(cfg.ExecutorReregistrationTimeout, 15*time.Second)
	switch cfg.Recover {
	case "":
		cfg.Recover = "reconnect"
	case "reconnect", "cleanup":
	default:
		return nil, fmt.Errorf("agent: Recover %q: want reconnect or cleanup", cfg.Recover)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: work dir: %w", err)
	}
	m.mu.Lock()
	a := &Agent{m: m, cfg: cfg, total: cfg.Resources.Clone(), frameworks: map[string]*agentFramework{}, addr: cfg.Addr}
	a.id = fmt.Sprintf("%s-S%d", m.info.ID, len(m.agents))
	a.log = m.cfg.Log.With("component", "mesos-agent", "agent", a.id)
	m.agents = append(m.agents, a)
	m.mu.Unlock()
	if err := a.Start(); err != nil {
		return nil, err
	}
	return a, nil
}

// SetFaults makes the agent's executor streams (those subscribed from now
// on) and its ACKNOWLEDGED events flaky; nil turns faults off.
func (a *Agent) SetFaults(f *Faults) {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	a.cfg.Faults = f
}

// Faults returns the agent's fault injection (nil: none).
func (a *Agent) Faults() *Faults {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.cfg.Faults
}

// ID is the agent id the master assigned.
func (a *Agent) ID() string { return a.id }

// Endpoint is host:port of /api/v1/executor (MESOS_AGENT_ENDPOINT).
func (a *Agent) Endpoint() string { return a.addr }

// Info is the AgentInfo sent in SUBSCRIBED and offers.
func (a *Agent) Info() mesos.AgentInfo {
	_, port := splitHostPort(a.addr)
	p := int32(port)
	return mesos.AgentInfo{
		ID: &mesos.AgentID{Value: a.id}, Hostname: a.cfg.Hostname, Port: &p,
		Resources: a.cfg.Resources, Attributes: a.cfg.Attributes,
	}
}

// Start brings the agent's HTTP side up. After a Stop it is an agent
// restart with --recover (docs/agent-recovery.md): checkpointing
// frameworks' executors must re-subscribe within the re-registration
// timeout or are destroyed; other executors are destroyed at once, and
// their tasks reported unknown to the agent (slave.cpp reconcileTasks).
func (a *Agent) Start() error {
	var ln net.Listener
	err := inNetns(a.cfg.NetNS, func() (err error) {
		ln, err = net.Listen("tcp", a.addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("agent: listen on %s: %w", a.addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/executor", a.serveExecutor)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	a.addr, a.srv, a.up = ln.Addr().String(), srv, true
	restart := len(a.frameworks) > 0
	a.log.Info("agent listening", "addr", a.addr, "restart", restart)
	if !restart {
		a.registered = true
		a.m.pokeAllocator()
		return nil
	}
	a.recovering = true
	waiting := 0
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.state == exTerminated {
				continue
			}
			if !fw.info.GetCheckpoint() {
				// Not recovered: the container is an orphan to destroy and
				// its tasks are unknown to the agent.
				st := lostOrAgent(fw, mesos.TASK_DROPPED)
				ex.orphan = true
				ex.termination = &termination{st, mesos.REASON_RECONCILIATION, "Reconciliation: task unknown to the agent"}
				if ex.exitedDown {
					a.executorTerminated(ex, ex.exitStatus)
				} else {
					a.destroy(ex, "not recovered: the framework does not checkpoint")
				}
				continue
			}
			if ex.exitedDown {
				// Recovered as terminated (its pid is gone).
				a.executorTerminated(ex, ex.exitStatus)
				continue
			}
			ex.reregister = true
			waiting++
		}
	}
	if waiting == 0 {
		a.finishRecovery()
		return nil
	}
	a.m.after(a.cfg.ExecutorReregistrationTimeout, func() {
		if a.recovering {
			a.finishRecovery()
		}
	})
	return nil
}

// finishRecovery ends the reconnect phase: executors that did not
// re-subscribe are destroyed, their tasks GONE/LOST with
// REASON_EXECUTOR_REREGISTRATION_TIMEOUT (slave.cpp reregisterExecutorTimeout
// :5906); the agent re-registers and resends pending updates.
func (a *Agent) finishRecovery() {
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.reregister && ex.state != exTerminated {
				ex.reregister = false
				ex.termination = &termination{lostOrAgent(fw, mesos.TASK_GONE), mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
					"Executor did not reregister within " + FormatDuration(a.cfg.ExecutorReregistrationTimeout)}
				a.destroy(ex, "executor re-registration timeout")
			}
		}
	}
	a.recovering = false
	a.registered = true
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			for _, t := range ex.tasks {
				if len(t.pending) > 0 {
					a.forward(ex, t)
				}
			}
		}
	}
	a.log.Info("agent recovered")
	a.m.pokeAllocator()
}

// Stop takes the agent's HTTP side down as an agent process exit would:
// executor streams are cut and the master disconnects the agent (its offers
// are rescinded), but executors keep running. Start brings it back.
func (a *Agent) Stop() {
	a.m.mu.Lock()
	if !a.up {
		a.m.mu.Unlock()
		return
	}
	a.up, a.registered = false, false
	srv := a.srv
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.stream != nil {
				ex.stream.close()
				ex.stream = nil
			}
			for _, t := range ex.tasks {
				if t.retry != nil {
					t.retry.Stop()
				}
			}
		}
	}
	for id, o := range a.m.offers {
		if o.agent == a {
			delete(a.m.offers, id)
			if o.fw.stream != nil {
				o.fw.stream.send(rescind(id))
			}
		}
	}
	a.m.mu.Unlock()
	_ = srv.Close()
	a.log.Info("agent stopped")
}

// Restart is Stop, a pause of down, and Start.
func (a *Agent) Restart(down time.Duration) error {
	a.Stop()
	time.Sleep(down)
	return a.Start()
}

// close destroys every executor and waits for them (test cleanup).
func (a *Agent) close() {
	a.Stop()
	a.m.mu.Lock()
	var runs []*executorRun
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.state != exTerminated {
				ex.orphan = true
				a.destroy(ex, "agent closing")
				runs = append(runs, ex)
			}
		}
	}
	a.m.mu.Unlock()
	timeout := time.After(20 * time.Second)
	for _, ex := range runs {
		select {
		case <-ex.reaped:
		case <-timeout:
			a.log.Error("executor not reaped at close", "executor", ex.info.ExecutorID.Value, "pid", ex.pid)
			return
		}
	}
}

func lostOrAgent(fw *agentFramework, pa mesos.TaskState) mesos.TaskState {
	for _, c := range fw.info.Capabilities {
		if c.Type == mesos.FrameworkInfo_Capability_PARTITION_AWARE {
			return pa
		}
	}
	return mesos.TASK_LOST
}

func (a *Agent) executorIDs(fid string) []mesos.ExecutorID {
	var out []mesos.ExecutorID
	if fw := a.frameworks[fid]; fw != nil {
		for id, ex := range fw.executors {
			if ex.state != exTerminated {
				out = append(out, mesos.ExecutorID{Value: id})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

func (a *Agent) executorInfo(fid, exID string) (mesos.ExecutorInfo, bool) {
	if fw := a.frameworks[fid]; fw != nil {
		if ex := fw.executors[exID]; ex != nil && ex.state != exTerminated {
			return ex.info, true
		}
	}
	return mesos.ExecutorInfo{}, false
}

// executorResources is what live executors themselves use.
func (a *Agent) executorResources() mesos.Resources {
	var out mesos.Resources
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.state != exTerminated {
				out.Add(mesos.Resources(ex.info.Resources).Clone().Unallocate()...)
			}
		}
	}
	return out
}

// runTasks is RunTaskMessage / RunTaskGroupMessage (slave.cpp run): launch
// the executor if needed; tasks queue until it subscribes, and are sent
// after the container has grown to hold them.
func (a *Agent) runTasks(fid string, finfo mesos.FrameworkInfo, exInfo mesos.ExecutorInfo, tasks []mesos.TaskInfo, group bool) {
	fw := a.frameworks[fid]
	if fw == nil {
		fw = &agentFramework{id: fid, info: finfo, executors: map[string]*executorRun{}}
		a.frameworks[fid] = fw
	}
	ex := fw.executors[exInfo.ExecutorID.Value]
	if ex != nil && ex.state == exTerminated {
		ex = nil
	}
	if ex == nil {
		ex = &executorRun{fw: fw, info: exInfo, tasks: map[string]*agentTask{}, reaped: make(chan struct{})}
		fw.executors[exInfo.ExecutorID.Value] = ex
		for _, t := range tasks {
			ex.tasks[t.TaskID.Value] = &agentTask{info: t, group: group, queued: true, state: mesos.TASK_STAGING, seen: map[string]bool{}}
		}
		if err := a.launchExecutor(ex); err != nil {
			a.log.Error("executor launch failed", "executor", exInfo.ExecutorID.Value, "err", err)
			ex.state = exTerminated
			for _, t := range ex.tasks {
				a.agentUpdate(ex, t, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED, "Failed to launch container: "+err.Error())
			}
			a.m.executorExited(a, fid, exInfo.ExecutorID.Value, -1)
		}
		return
	}
	for _, t := range tasks {
		ex.tasks[t.TaskID.Value] = &agentTask{info: t, group: group, queued: true, state: mesos.TASK_STAGING, seen: map[string]bool{}}
	}
	switch ex.state {
	case exRunning:
		a.deliver(ex)
	case exTerminating:
		for _, t := range tasks {
			a.agentUpdate(ex, ex.tasks[t.TaskID.Value], lostOrAgent(fw, mesos.TASK_DROPPED), mesos.REASON_EXECUTOR_TERMINATED, "Executor is terminating")
		}
	}
}

// deliver grows the container to the executor plus its live tasks, then
// sends LAUNCH / LAUNCH_GROUP for the queued tasks (slave.cpp __run:
// containerizer->update before the launch).
func (a *Agent) deliver(ex *executorRun) {
	var single []mesos.TaskInfo
	var group []mesos.TaskInfo
	for _, t := range ex.tasks {
		if t.queued {
			if t.group {
				group = append(group, t.info)
			} else {
				single = append(single, t.info)
			}
		}
	}
	if len(single)+len(group) == 0 {
		return
	}
	a.updateLimits(ex)
	sort.Slice(single, func(i, j int) bool { return single[i].TaskID.Value < single[j].TaskID.Value })
	for _, t := range single {
		ex.tasks[t.TaskID.Value].queued = false
		ex.everSent = true
		ex.stream.send(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t}})
	}
	if len(group) > 0 {
		for _, t := range group {
			ex.tasks[t.TaskID.Value].queued = false
		}
		ex.everSent = true
		ex.stream.send(&executor.Event{Type: executor.Event_LAUNCH_GROUP, LaunchGroup: &executor.Event_LaunchGroup{TaskGroup: mesos.TaskGroupInfo{Tasks: group}}})
	}
}

// updateLimits sets the container's limits to the executor's resources
// plus its live tasks' (slave.cpp computeExecutorLimits :10117).
func (a *Agent) updateLimits(ex *executorRun) {
	if ex.ctr == nil || ex.state == exTerminated {
		return
	}
	total := mesos.Resources(ex.info.Resources).Clone()
	for _, t := range ex.tasks {
		if !terminal(t.state) {
			total.Add(t.info.Resources...)
		}
	}
	cpus, _ := resources.CPUs(total...)
	mem, _ := resources.Memory(total...)
	raised, err := ex.ctr.update(cpus, mem, ex.hardLimit, a.cfg.CgroupsEnableCFS)
	if err != nil {
		a.log.Error("container update failed", "container", ex.containerID, "err", err)
		return
	}
	ex.hardLimit = raised
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// launchExecutor creates the container (sandbox, cgroups sized for the
// executor and its first tasks) and starts ExecutorInfo.command in it,
// with the agent's executor environment (slave.cpp executorEnvironment
// :11410, paths.cpp:291).
func (a *Agent) launchExecutor(ex *executorRun) error {
	ex.containerID = newUUIDString()
	fw := ex.fw
	ex.dir = filepath.Join(a.cfg.WorkDir, "slaves", a.id, "frameworks", fw.id, "executors", ex.info.ExecutorID.Value, "runs", ex.containerID)
	if err := os.MkdirAll(ex.dir, 0o755); err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	cmdInfo := ex.info.Command
	if cmdInfo == nil || cmdInfo.GetValue() == "" {
		return fmt.Errorf("ExecutorInfo.command.value is empty")
	}
	var argv []string
	if cmdInfo.Shell == nil || *cmdInfo.Shell {
		argv = []string{"/bin/sh", "-c", cmdInfo.GetValue()}
	} else {
		argv = []string{cmdInfo.GetValue()}
		if len(cmdInfo.Arguments) > 1 {
			argv = append(argv, cmdInfo.Arguments[1:]...)
		}
	}
	env := append([]string{}, a.cfg.ExecutorEnv...)
	env = append(env, a.executorEnv(ex)...)
	if e := cmdInfo.Environment; e != nil {
		for _, v := range e.Variables {
			env = append(env, v.Name+"="+v.GetValue())
		}
	}
	stdout, err := os.Create(filepath.Join(ex.dir, "stdout"))
	if err != nil {
		return err
	}
	defer func() { _ = stdout.Close() }()
	stderr, err := os.Create(filepath.Join(ex.dir, "stderr"))
	if err != nil {
		return err
	}
	defer func() { _ = stderr.Close() }()

	if a.cfg.Cgroups {
		ex.ctr, err = newCgroupContainer(a.cfg.CgroupRoot, ex.containerID)
		if err != nil {
			return fmt.Errorf("create cgroups: %w", err)
		}
	}
	a.updateLimits(ex)

	// The process waits on a pipe until the launcher has put it in the
	// container, as mesos-containerizer launch does, so the executor's
	// first instruction already runs inside the cgroup.
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	defer func() { _ = w.Close() }()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `read -r _ <&3; exec 3<&-; exec "$@"`, "mesos-launch"}, argv...)...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = ex.dir, env, stdout, stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := inNetns(a.cfg.NetNS, cmd.Start); err != nil {
		if ex.ctr != nil {
			_ = ex.ctr.destroy()
		}
		return fmt.Errorf("start %v: %w", argv, err)
	}
	ex.pid = cmd.Process.Pid
	if ex.ctr == nil {
		ex.ctr = &posixContainer{pgid: ex.pid}
	} else if err := ex.ctr.add(ex.pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = ex.ctr.destroy()
		return fmt.Errorf("place executor in its cgroups: %w", err)
	}
	if _, err := w.Write([]byte("\n")); err != nil {
		a.log.Warn("launch pipe", "err", err)
	}
	ex.state = exRegistering
	a.log.Info("executor launched", "executor", ex.info.ExecutorID.Value, "container", ex.containerID, "pid", ex.pid, "dir", ex.dir)
	go a.wait(ex, cmd)
	timeout := a.cfg.ExecutorRegistrationTimeout
	ex.regTimer = a.m.after(timeout, func() {
		if ex.state == exRegistering {
			// slave.cpp registerExecutorTimeout :7569.
			ex.termination = &termination{mesos.TASK_FAILED, mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
				"Executor did not register within " + FormatDuration(timeout)}
			a.destroy(ex, "executor registration timeout")
		}
	})
	return nil
}

// executorEnv is the MESOS_* environment (slave.cpp executorEnvironment,
// durations in stout's format).
func (a *Agent) executorEnv(ex *executorRun) []string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	grace := a.grace(ex)
	env := []string{
		"MESOS_FRAMEWORK_ID=" + ex.fw.id,
		"MESOS_EXECUTOR_ID=" + ex.info.ExecutorID.Value,
		"MESOS_DIRECTORY=" + ex.dir,
		"MESOS_SANDBOX=" + ex.dir,
		"MESOS_AGENT_ENDPOINT=" + a.addr,
		"MESOS_SLAVE_ID=" + a.id,
		"MESOS_SLAVE_PID=slave(1)@" + a.addr,
		"MESOS_CHECKPOINT=" + b(ex.fw.info.GetCheckpoint()),
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=" + FormatDuration(grace),
		"MESOS_HTTP_COMMAND_EXECUTOR=0",
		"LIBPROCESS_PORT=0",
	}
	if ex.fw.info.GetCheckpoint() {
		env = append(env,
			"MESOS_RECOVERY_TIMEOUT="+FormatDuration(a.cfg.RecoveryTimeout),
			"MESOS_SUBSCRIPTION_BACKOFF_MAX="+FormatDuration(a.cfg.ExecutorReregistrationTimeout))
	}
	if a.cfg.ExecutorAuth {
		ex.token = randomHex(24)
		env = append(env, "MESOS_EXECUTOR_AUTHENTICATION_TOKEN="+ex.token)
	}
	return env
}

// grace is ExecutorInfo.shutdown_grace_period, else the agent's flag.
func (a *Agent) grace(ex *executorRun) time.Duration {
	if g := ex.info.ShutdownGracePeriod; g != nil && g.Nanoseconds > 0 {
		return time.Duration(g.Nanoseconds)
	}
	return a.cfg.ExecutorShutdownGracePeriod
}

// wait reaps the executor. As containerizer->wait() completes only after
// the container is destroyed, whatever the executor left in its container
// (its pods included) is killed and the cgroups removed before the agent
// handles the exit (slave.cpp executorTerminated :7085).
func (a *Agent) wait(ex *executorRun, cmd *exec.Cmd) {
	defer close(ex.reaped)
	_ = cmd.Wait()
	status := int32(-1)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		status = int32(ws)
	}
	if err := ex.ctr.destroy(); err != nil {
		a.log.Error("container destroy", "container", ex.containerID, "err", err)
	}
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	if a.m.closed {
		return
	}
	if !a.up {
		// The agent is down: it learns of the exit when it recovers.
		ex.exitedDown, ex.exitStatus = true, status
		return
	}
	a.executorTerminated(ex, status)
}

func (a *Agent) executorTerminated(ex *executorRun, status int32) {
	ex.state = exTerminated
	ex.exited = true
	if ex.regTimer != nil {
		ex.regTimer.Stop()
	}
	if ex.killTimer != nil {
		ex.killTimer.Stop()
	}
	if ex.stream != nil {
		ex.stream.close()
		ex.stream = nil
	}
	a.log.Info("executor terminated", "executor", ex.info.ExecutorID.Value, "container", ex.containerID, "status", status)
	term := termination{mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated"}
	if ex.termination != nil {
		term = *ex.termination
	}
	ids := make([]string, 0, len(ex.tasks))
	for id := range ex.tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if t := ex.tasks[id]; !terminal(t.state) {
			a.agentUpdate(ex, t, term.state, term.reason, term.msg)
		}
	}
	if !ex.orphan {
		a.m.executorExited(a, ex.fw.id, ex.info.ExecutorID.Value, status)
	}
	a.cleanup(ex)
}

// cleanup forgets a terminated executor once no task has an update left
// to deliver, and a terminating framework once it has no executor.
func (a *Agent) cleanup(ex *executorRun) {
	if ex.state != exTerminated {
		return
	}
	for _, t := range ex.tasks {
		if len(t.pending) > 0 {
			return
		}
	}
	fw := ex.fw
	if fw.executors[ex.info.ExecutorID.Value] == ex {
		delete(fw.executors, ex.info.ExecutorID.Value)
	}
	if len(fw.executors) == 0 && fw.terminating {
		delete(a.frameworks, fw.id)
	}
}

// destroy kills the whole container now: every process in the executor's
// cgroup subtree, pods included (LinuxLauncher::destroy: freeze, SIGKILL,
// thaw). The exit is then handled by wait.
func (a *Agent) destroy(ex *executorRun, why string) {
	if ex.ctr == nil || ex.exited {
		return
	}
	a.log.Info("destroying container", "executor", ex.info.ExecutorID.Value, "container", ex.containerID, "why", why)
	ctr := ex.ctr
	go ctr.kill()
}

// shutdownExecutor is _shutdownExecutor (slave.cpp:7479): TERMINATING, a
// SHUTDOWN event, and destroy when the grace period ends. No SIGTERM.
func (a *Agent) shutdownExecutor(fid, exID, why string) {
	fw := a.frameworks[fid]
	if fw == nil {
		return
	}
	ex := fw.executors[exID]
	if ex == nil || ex.state == exTerminating || ex.state == exTerminated {
		return
	}
	a.log.Info("shutting down executor", "executor", exID, "why", why)
	ex.state = exTerminating
	if ex.regTimer != nil {
		ex.regTimer.Stop()
	}
	if ex.stream != nil {
		ex.stream.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	}
	ex.killTimer = a.m.after(a.grace(ex), func() {
		if ex.state != exTerminated {
			a.destroy(ex, "shutdown grace period elapsed")
		}
	})
}

// shutdownFramework is ShutdownFrameworkMessage: the framework is
// TERMINATING and each of its executors shut down.
func (a *Agent) shutdownFramework(fid string) {
	fw := a.frameworks[fid]
	if fw == nil {
		return
	}
	fw.terminating = true
	for id := range fw.executors {
		a.shutdownExecutor(fid, id, "framework removed")
	}
	if len(fw.executors) == 0 {
		delete(a.frameworks, fid)
	}
}

func (a *Agent) findTask(fid, taskID string) (*executorRun, *agentTask) {
	fw := a.frameworks[fid]
	if fw == nil {
		return nil, nil
	}
	for _, ex := range fw.executors {
		if t := ex.tasks[taskID]; t != nil {
			return ex, t
		}
	}
	return nil, nil
}

// killTask is Slave::killTask (slave.cpp:3976-4260).
func (a *Agent) killTask(fid, taskID string, policy *mesos.KillPolicy) {
	ex, t := a.findTask(fid, taskID)
	if t == nil || terminal(t.state) {
		a.log.Debug("kill of an unknown or ended task ignored", "task", taskID)
		return
	}
	a.log.Debug("kill", "task", taskID, "queued", t.queued, "executor_state", ex.state, "connected", ex.stream != nil)
	switch {
	case t.queued:
		// Killed before delivery: the agent itself answers; an executor that
		// was never sent a task and has none left is shut down.
		t.queued = false
		a.agentUpdate(ex, t, mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Killed before delivery to the executor")
		left := false
		for _, o := range ex.tasks {
			left = left || o.queued
		}
		if !ex.everSent && !left {
			a.shutdownExecutor(fid, ex.info.ExecutorID.Value, "its only task was killed before delivery")
		}
	case ex.state == exRunning:
		if ex.stream != nil {
			ex.stream.send(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: t.info.TaskID, KillPolicy: policy}})
		}
	default:
		// TERMINATING or TERMINATED: the kill is ignored.
	}
}

func (a *Agent) frameworkMessage(fid, exID string, data []byte) {
	if fw := a.frameworks[fid]; fw != nil {
		if ex := fw.executors[exID]; ex != nil && ex.state == exRunning && ex.stream != nil {
			ex.stream.send(&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: data}})
		}
	}
}

// frameworkUpdated is UpdateFrameworkMessage: pending updates are resent at
// once (slave.cpp:4491).
func (a *Agent) frameworkUpdated(fid string, info mesos.FrameworkInfo) {
	fw := a.frameworks[fid]
	if fw == nil {
		return
	}
	fw.info = info
	for _, ex := range fw.executors {
		for _, t := range ex.tasks {
			if len(t.pending) > 0 {
				t.backoff = 0
				a.forward(ex, t)
			}
		}
	}
}

// agentUpdate is an update the agent makes itself (source AGENT, fresh
// uuid), through the same status update stream as the executor's.
func (a *Agent) agentUpdate(ex *executorRun, t *agentTask, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	st := mesos.TaskStatus{
		TaskID: t.info.TaskID, State: state.Enum(), Reason: reason.Enum(), Message: &msg,
		Source: mesos.SOURCE_AGENT.Enum(), UUID: newUUID(), Timestamp: nowSeconds(),
	}
	a.record(ex, t, st)
}

// statusUpdate takes an executor's UPDATE (slave.cpp statusUpdate :5990,
// Executor::updateTaskState :11224). It reports whether to send
// ACKNOWLEDGED: updates of a terminating framework are neither processed
// nor acknowledged; dropped ones (unknown task, after a terminal update, a
// non-terminal update of a queued task, a duplicate uuid) are acknowledged.
func (a *Agent) statusUpdate(ex *executorRun, st mesos.TaskStatus) bool {
	if ex.fw.terminating {
		return false
	}
	t := ex.tasks[st.TaskID.Value]
	state := st.GetState()
	switch {
	case t == nil:
		a.log.Warn("update for an unknown task dropped", "task", st.TaskID.Value)
		return true
	case t.seen[string(st.UUID)]:
		return true
	case terminal(t.state):
		a.log.Warn("update after a terminal one dropped: Task is already terminated", "task", st.TaskID.Value, "state", state)
		return true
	case t.queued && !terminal(state):
		a.log.Warn("non-terminal update for a queued task dropped", "task", st.TaskID.Value, "state", state)
		return true
	}
	t.queued = false
	a.record(ex, t, st)
	return true
}

// record stamps the update, shrinks the container on a terminal state
// before anything is forwarded, and queues it on the task's stream.
func (a *Agent) record(ex *executorRun, t *agentTask, st mesos.TaskStatus) {
	st.AgentID = &mesos.AgentID{Value: a.id}
	st.ExecutorID = &ex.info.ExecutorID
	if st.ContainerStatus == nil && ex.containerID != "" {
		host, _ := splitHostPort(a.addr)
		pid := uint32(ex.pid)
		st.ContainerStatus = &mesos.ContainerStatus{
			ContainerID:  &mesos.ContainerID{Value: ex.containerID},
			NetworkInfos: []mesos.NetworkInfo{{IPAddresses: []mesos.NetworkInfo_IPAddress{{IPAddress: &host}}}},
			ExecutorPID:  &pid,
		}
	}
	t.seen[string(st.UUID)] = true
	t.state = st.GetState()
	if terminal(t.state) {
		a.updateLimits(ex)
	}
	t.pending = append(t.pending, st)
	if len(t.pending) == 1 {
		t.backoff = 0
		a.forward(ex, t)
	}
}

// forward sends a task's oldest unacknowledged update to the master and
// retries it from StatusUpdateRetryMin, doubling up to StatusUpdateRetryMax,
// until the scheduler acknowledges it (constants.hpp:58-59).
func (a *Agent) forward(ex *executorRun, t *agentTask) {
	if t.retry != nil {
		t.retry.Stop()
	}
	if !a.up || a.recovering || len(t.pending) == 0 {
		return
	}
	a.m.statusUpdate(a, ex.fw.id, t.pending[0], t.state)
	if t.backoff == 0 {
		t.backoff = a.cfg.StatusUpdateRetryMin
	} else {
		t.backoff = min(2*t.backoff, a.cfg.StatusUpdateRetryMax)
	}
	head := t.pending[0].UUID
	t.retry = a.m.after(t.backoff, func() {
		if len(t.pending) > 0 && string(t.pending[0].UUID) == string(head) {
			a.forward(ex, t)
		}
	})
}

// acknowledge is the scheduler's ACKNOWLEDGE reaching the agent: the head
// update is done and the next one goes out. It reports whether the acked
// update was terminal and whether it matched.
func (a *Agent) acknowledge(fid, taskID string, id []byte) (wasTerminal, ok bool) {
	ex, t := a.findTask(fid, taskID)
	if t == nil || len(t.pending) == 0 || string(t.pending[0].UUID) != string(id) {
		return false, false
	}
	head := t.pending[0]
	t.pending = t.pending[1:]
	if t.retry != nil {
		t.retry.Stop()
	}
	t.backoff = 0
	if len(t.pending) > 0 {
		a.forward(ex, t)
	} else if terminal(t.state) {
		delete(ex.tasks, taskID)
		a.cleanup(ex)
	}
	return terminal(head.GetState()), true
}

// serveExecutor is /api/v1/executor (src/slave/http.cpp:730-880).
func (a *Agent) serveExecutor(w http.ResponseWriter, r *http.Request) {
	a.m.mu.Lock()
	recovering := a.recovering
	a.m.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		(&httpError{http.StatusMethodNotAllowed, "Expecting a 'POST' request"}).write(w)
		return
	}
	var call executor.Call
	if e := decodeCall(r, &call); e != nil {
		e.write(w)
		return
	}
	if e := a.authenticate(r, &call); e != nil {
		e.write(w)
		return
	}
	if call.Type == executor.Call_HEARTBEAT {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if e := validateExecutorCall(&call); e != nil {
		e.write(w)
		return
	}
	if recovering && call.Type != executor.Call_SUBSCRIBE {
		(&httpError{http.StatusServiceUnavailable, "Agent has not finished recovery"}).write(w)
		return
	}
	if call.Type == executor.Call_SUBSCRIBE {
		a.subscribe(w, r, &call)
		return
	}
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	ex, e := a.lookup(&call)
	if e != nil {
		e.write(w)
		return
	}
	if ex.state == exRegistering {
		(&httpError{http.StatusForbidden, "Executor is not subscribed"}).write(w)
		return
	}
	switch call.Type {
	case executor.Call_UPDATE:
		st := call.Update.Status
		if a.statusUpdate(ex, st) {
			a.ackExecutor(ex, st)
		}
	case executor.Call_MESSAGE:
		a.m.executorMessage(a, ex.fw.id, ex.info.ExecutorID.Value, call.Message.Data)
	default:
		(&httpError{http.StatusNotImplemented, "Received an unexpected call type"}).write(w)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// ackExecutor sends ACKNOWLEDGED: the agent has the update ("persisted"),
// not that the scheduler acked it (task_status_update_manager.cpp:723-790).
func (a *Agent) ackExecutor(ex *executorRun, st mesos.TaskStatus) {
	if a.cfg.Faults.dropAck() {
		a.log.Debug("fault: ACKNOWLEDGED dropped", "task", st.TaskID.Value)
		return
	}
	if ex.stream != nil {
		ex.stream.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}})
	}
}

// authenticate checks the executor's bearer token when executor
// authentication is on: 401 without a valid token, 403 when the token's
// executor is not the call's (docs/authentication.md "Executor").
func (a *Agent) authenticate(r *http.Request, call *executor.Call) *httpError {
	if !a.cfg.ExecutorAuth {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	var owner *executorRun
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ok && tok != "" && ex.token == tok {
				owner = ex
			}
		}
	}
	if owner == nil {
		return &httpError{http.StatusUnauthorized, "Unauthorized: a valid executor authentication token is required"}
	}
	if call.Type != executor.Call_HEARTBEAT && (owner.fw.id != call.FrameworkID.Value || owner.info.ExecutorID.Value != call.ExecutorID.Value) {
		return &httpError{http.StatusForbidden, "Executor claims do not match the call's framework and executor"}
	}
	return nil
}

// validateExecutorCall is validateExecutorCall (src/common/validation.cpp:538).
func validateExecutorCall(c *executor.Call) *httpError {
	bad := func(msg string) *httpError {
		return &httpError{http.StatusBadRequest, "Failed to validate Executor::Call: " + msg}
	}
	switch {
	case c.Type == executor.Call_UNKNOWN:
		return &httpError{http.StatusNotImplemented, "Received an unexpected call type"}
	case c.ExecutorID.Value == "":
		return bad("Expecting 'executor_id' to be present")
	case c.FrameworkID.Value == "":
		return bad("Expecting 'framework_id' to be present")
	}
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return bad("Expecting 'subscribe' to be present")
		}
	case executor.Call_UPDATE:
		if c.Update == nil {
			return bad("Expecting 'update' to be present")
		}
		st := c.Update.Status
		switch {
		case !validUUID(st.UUID):
			return bad("'status.uuid' is not a valid UUID")
		case st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value:
			return bad("ExecutorID in Call: " + c.ExecutorID.Value + " does not match ExecutorID in TaskStatus: " + st.ExecutorID.Value)
		case st.Source == nil || *st.Source != mesos.SOURCE_EXECUTOR:
			return bad("Received Call from executor " + c.ExecutorID.Value + " of framework " + c.FrameworkID.Value + " with invalid source, expecting 'SOURCE_EXECUTOR'")
		case st.State == nil || *st.State == mesos.TASK_STAGING:
			return bad("Received TASK_STAGING from executor " + c.ExecutorID.Value + " of framework " + c.FrameworkID.Value + " which is not allowed")
		}
	case executor.Call_MESSAGE:
		if c.Message == nil {
			return bad("Expecting 'message' to be present")
		}
	}
	return nil
}

func (a *Agent) lookup(c *executor.Call) (*executorRun, *httpError) {
	fw := a.frameworks[c.FrameworkID.Value]
	if fw == nil {
		return nil, &httpError{http.StatusBadRequest, "Framework cannot be found"}
	}
	ex := fw.executors[c.ExecutorID.Value]
	if ex == nil || ex.state == exTerminated {
		return nil, &httpError{http.StatusBadRequest, "Executor cannot be found"}
	}
	return ex, nil
}

// subscribe is the executor's SUBSCRIBE (slave.cpp Slave::subscribe
// :5254-5440).
func (a *Agent) subscribe(w http.ResponseWriter, r *http.Request, call *executor.Call) {
	mt, e := acceptedType(r)
	if e != nil {
		e.write(w)
		return
	}
	s := newStream(mt, a.Faults())
	a.m.mu.Lock()
	ex, e := a.lookup(call)
	if e != nil {
		a.m.mu.Unlock()
		e.write(w)
		return
	}
	// 1. Any previous connection of the executor is closed.
	if ex.stream != nil {
		ex.stream.close()
	}
	ex.stream = s
	subscribed := &executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo: ex.info, FrameworkInfo: ex.fw.info, AgentInfo: a.Info(),
		ContainerID: &mesos.ContainerID{Value: ex.containerID},
	}}
	subscribed.Subscribed.FrameworkInfo.ID = &mesos.FrameworkID{Value: ex.fw.id}
	switch {
	case ex.state == exTerminating || ex.fw.terminating:
		s.send(subscribed)
		s.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	case ex.reregister && a.cfg.Recover == "cleanup":
		// --recover=cleanup: a re-subscribing executor is shut down.
		ex.reregister = false
		ex.state = exRunning
		s.send(subscribed)
		a.shutdownExecutor(ex.fw.id, ex.info.ExecutorID.Value, "--recover=cleanup")
	default:
		a.subscribed(ex, call.Subscribe, subscribed)
	}
	if a.recovering {
		done := true
		for _, fw := range a.frameworks {
			for _, o := range fw.executors {
				done = done && !o.reregister
			}
		}
		if done {
			a.finishRecovery()
		}
	}
	a.m.mu.Unlock()

	stopHB := make(chan struct{})
	go func() {
		t := time.NewTicker(a.cfg.ExecutorHeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.send(&executor.Event{Type: executor.Event_HEARTBEAT})
			case <-stopHB:
				return
			}
		}
	}()
	s.serve(w, r, nil)
	close(stopHB)
	a.m.mu.Lock()
	a.log.Debug("executor stream ended", "executor", ex.info.ExecutorID.Value, "current", ex.stream == s, "client_gone", r.Context().Err() != nil)
	if ex.stream == s {
		// The agent does not watch executor connections: nothing else
		// happens until the executor re-subscribes or exits.
		ex.stream = nil
	}
	a.m.mu.Unlock()
}

func (a *Agent) subscribed(ex *executorRun, sub *executor.Call_Subscribe, subscribed *executor.Event) {
	// 2. RUNNING.
	ex.state = exRunning
	ex.reregister = false
	if ex.regTimer != nil {
		ex.regTimer.Stop()
	}
	// 3. Unacknowledged updates replayed, deduplicated by uuid; a STAGING
	// one from the executor shuts it down.
	var acks []mesos.TaskStatus
	shutdown := false
	for _, u := range sub.UnacknowledgedUpdates {
		if u.Status.GetState() == mesos.TASK_STAGING {
			shutdown = true
			continue
		}
		if a.statusUpdate(ex, u.Status) {
			acks = append(acks, u.Status)
		}
	}
	// 4. Launched tasks still STAGING that the executor does not list are
	// dropped: their LAUNCH was lost.
	listed := map[string]bool{}
	for _, t := range sub.UnacknowledgedTasks {
		listed[t.TaskID.Value] = true
	}
	for _, t := range ex.tasks {
		if !t.queued && t.state == mesos.TASK_STAGING && !listed[t.info.TaskID.Value] {
			a.agentUpdate(ex, t, lostOrAgent(ex.fw, mesos.TASK_DROPPED), mesos.REASON_AGENT_RESTARTED, "Task launched during agent restart")
		}
	}
	// 5. An executor never sent a task, whose queued tasks were all
	// killed, is shut down instead.
	queued := 0
	for _, t := range ex.tasks {
		if t.queued {
			queued++
		}
	}
	if shutdown || (!ex.everSent && queued == 0) {
		a.shutdownExecutor(ex.fw.id, ex.info.ExecutorID.Value, "nothing to run")
		return
	}
	// 6. SUBSCRIBED first, then the acknowledgements, then the launches.
	ex.stream.send(subscribed)
	for _, st := range acks {
		a.ackExecutor(ex, st)
	}
	a.deliver(ex)
	a.log.Info("executor subscribed", "executor", ex.info.ExecutorID.Value, "container", ex.containerID)
}

// ExecutorState describes one executor container for tests and /state.
type ExecutorState struct {
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"id"`
	ContainerID string `json:"container"`
	Directory   string `json:"directory"`
	PID         int    `json:"pid"`
	State       string `json:"state"`
	// Connected: the executor's event stream is up (events sent while it
	// is down are lost, as on a real agent).
	Connected bool     `json:"connected"`
	Cgroups   []string `json:"cgroups,omitempty"`
	Tasks     []string `json:"tasks"`
}

// AgentState is one agent in MasterState.
type AgentState struct {
	ID         string          `json:"id"`
	Hostname   string          `json:"hostname"`
	Endpoint   string          `json:"endpoint"`
	Registered bool            `json:"active"`
	Resources  string          `json:"resources"`
	Executors  []ExecutorState `json:"executors"`
}

func (a *Agent) state() AgentState {
	st := AgentState{ID: a.id, Hostname: a.cfg.Hostname, Endpoint: a.addr, Registered: a.registered, Resources: a.total.String()}
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			es := ExecutorState{FrameworkID: fw.id, ExecutorID: ex.info.ExecutorID.Value, ContainerID: ex.containerID,
				Directory: ex.dir, PID: ex.pid, State: ex.state.String(), Connected: ex.stream != nil}
			if ex.ctr != nil {
				es.Cgroups = ex.ctr.paths()
			}
			for id := range ex.tasks {
				es.Tasks = append(es.Tasks, id)
			}
			sort.Strings(es.Tasks)
			st.Executors = append(st.Executors, es)
		}
	}
	sort.Slice(st.Executors, func(i, j int) bool { return st.Executors[i].ContainerID < st.Executors[j].ContainerID })
	return st
}

// Executors lists the agent's executor containers.
func (a *Agent) Executors() []ExecutorState {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.state().Executors
}

func newUUIDString() string {
	u := newUUID()
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

func (a *Agent) recoveringNow() bool {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.recovering
}

// ExecutorInfo is the ExecutorInfo a live executor of id was launched with
// (any framework).
func (a *Agent) ExecutorInfo(id string) (mesos.ExecutorInfo, bool) {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	for fid := range a.frameworks {
		if info, ok := a.executorInfo(fid, id); ok {
			return info, true
		}
	}
	return mesos.ExecutorInfo{}, false
}
