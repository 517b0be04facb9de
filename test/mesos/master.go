package mesos

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/ptr"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// MasterConfig configures the master. Zero durations take Mesos' defaults.
type MasterConfig struct {
	// Addr is where /api/v1/scheduler and /state listen ("127.0.0.1:0"
	// picks a free port).
	Addr string
	// Hostname goes into MasterInfo.
	Hostname string
	// HeartbeatInterval is the period of HEARTBEAT events to schedulers and
	// SUBSCRIBED.heartbeat_interval_seconds (DEFAULT_HEARTBEAT_INTERVAL,
	// 15secs, src/master/constants.hpp).
	HeartbeatInterval time.Duration
	// AllocationInterval is the allocator's batch period (--allocation_interval,
	// 1secs).
	AllocationInterval time.Duration
	// Faults make the scheduler streams and acknowledgements flaky.
	Faults *Faults
	Log    *slog.Logger
}

// Master is the double's Mesos master: the v1 scheduler API and the
// allocator, for any number of in-process agents (AddAgent). One mutex
// guards the master and all its agents, as libprocess runs one actor at a
// time; streams and timers never block while holding it.
type Master struct {
	cfg  MasterConfig
	log  *slog.Logger
	info mesos.MasterInfo

	mu         sync.Mutex
	frameworks map[string]*framework
	removed    map[string]bool // torn-down framework ids
	agents     []*Agent
	offers     map[string]*offer
	nextID     int
	closed     bool

	ln       net.Listener
	srv      *http.Server
	stop     chan struct{}
	allocNow chan struct{}
	wg       sync.WaitGroup
}

type framework struct {
	id         string
	info       mesos.FrameworkInfo
	stream     *stream
	streamID   string
	active     bool
	failover   *time.Timer
	suppressed map[string]bool
	filters    map[string]refusal // agent id -> declined resources
	tasks      map[string]*task
}

func (f *framework) has(c mesos.FrameworkInfo_Capability_Type) bool {
	for _, x := range f.info.Capabilities {
		if x.Type == c {
			return true
		}
	}
	return false
}

// roles are the framework's roles: roles[] with MULTI_ROLE, else the
// deprecated single role (default "*").
func (f *framework) roles() []string {
	if f.has(mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		return f.info.Roles
	}
	if r := f.info.GetRole(); r != "" {
		return []string{r}
	}
	return []string{"*"}
}

// refusal is a decline filter: the agent's resources the framework refused
// until a time. It holds back an offer only while what would be offered is
// within the refused resources, so resources freed later are offered at
// once (src/master/allocator/mesos/hierarchical.cpp, RefusedOfferFilter:
// "filter if resources ⊆ refused").
type refusal struct {
	until time.Time
	res   mesos.Resources
}

func (r refusal) holds(now time.Time, free mesos.Resources) bool {
	if !now.Before(r.until) {
		return false
	}
	return resources.ContainsAll(resources.Flatten(r.res), resources.Flatten(free))
}

type task struct {
	info  mesos.TaskInfo
	agent *Agent
	// state is the latest state the master knows; updateState is the state
	// of the update the framework has in flight (Task.status_update_state),
	// which reconciliation reports (master.cpp:8966).
	state       mesos.TaskState
	updateState mesos.TaskState
	latest      mesos.TaskStatus
}

type offer struct {
	id        string
	fw        *framework
	agent     *Agent
	resources mesos.Resources
	role      string
}

// NewMaster validates the configuration and fills defaults; Start listens.
func NewMaster(cfg MasterConfig) (*Master, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 15 * time.Second
	}
	if cfg.AllocationInterval <= 0 {
		cfg.AllocationInterval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Master{
		cfg:        cfg,
		log:        cfg.Log.With("component", "mesos-master"),
		frameworks: map[string]*framework{},
		removed:    map[string]bool{},
		offers:     map[string]*offer{},
		stop:       make(chan struct{}),
		allocNow:   make(chan struct{}, 1),
	}, nil
}

// Start listens on the configured address and starts the allocator.
func (m *Master) Start() error {
	ln, err := net.Listen("tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("master: listen on %s: %w", m.cfg.Addr, err)
	}
	m.ln = ln
	host, port := splitHostPort(ln.Addr().String())
	p := uint32(port)
	m.info = mesos.MasterInfo{
		ID:       uuid.NewString(),
		Port:     &p,
		Hostname: &m.cfg.Hostname,
		PID:      ptr.To("master@" + ln.Addr().String()),
		Version:  ptr.To("1.11.0"),
		Address:  &mesos.Address{Hostname: &m.cfg.Hostname, IP: &host, Port: int32(port)},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/scheduler", m.serveScheduler)
	mux.HandleFunc("/state", m.serveState)
	mux.HandleFunc("/master/state", m.serveState)
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.wg.Add(2)
	go func() { defer m.wg.Done(); _ = m.srv.Serve(ln) }()
	go func() { defer m.wg.Done(); m.allocator() }()
	m.log.Info("master listening", "addr", ln.Addr().String())
	return nil
}

// SetFaults makes scheduler streams subscribed from now on and the
// scheduler's ACKNOWLEDGE calls flaky; nil turns faults off.
func (m *Master) SetFaults(f *Faults) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Faults = f
}

func (m *Master) faults() *Faults {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Faults
}

// Addr is the master's listen address (host:port).
func (m *Master) Addr() string { return m.ln.Addr().String() }

// SchedulerURL is the v1 scheduler API endpoint.
func (m *Master) SchedulerURL() string { return "http://" + m.Addr() + "/api/v1/scheduler" }

// Close stops the master and every agent, destroying every executor
// container (as a test cleanup must leave nothing behind).
func (m *Master) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	agents := slices.Clone(m.agents)
	for _, f := range m.frameworks {
		if f.stream != nil {
			f.stream.close()
		}
		if f.failover != nil {
			f.failover.Stop()
		}
	}
	m.mu.Unlock()
	for _, a := range agents {
		a.close()
	}
	close(m.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	m.wg.Wait()
}

// after runs fn with the lock held when d has passed, unless the master
// has been closed by then: timers of a closed double do nothing.
func (m *Master) after(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.closed {
			fn()
		}
	})
}

func (m *Master) newID(prefix string) string {
	m.nextID++
	return fmt.Sprintf("%s-%s-%04d", m.info.ID[:8], prefix, m.nextID)
}

func (m *Master) agentByID(id string) *Agent {
	for _, a := range m.agents {
		if a.id == id {
			return a
		}
	}
	return nil
}

// serveScheduler is /api/v1/scheduler (src/master/http.cpp:468-690).
func (m *Master) serveScheduler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		(&httpError{http.StatusMethodNotAllowed, "Expecting a 'POST' request"}).write(w)
		return
	}
	var call scheduler.Call
	if e := decodeCall(r, &call); e != nil {
		e.write(w)
		return
	}
	if e := validateSchedulerCall(&call); e != nil {
		e.write(w)
		return
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		m.subscribe(w, r, &call)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fid := call.FrameworkID.GetValue()
	f := m.frameworks[fid]
	switch {
	case f == nil:
		(&httpError{http.StatusBadRequest, "Framework cannot be found"}).write(w)
		return
	case !f.active:
		(&httpError{http.StatusForbidden, "Framework is not subscribed"}).write(w)
		return
	}
	sid := r.Header.Get("Mesos-Stream-Id")
	switch {
	case sid == "":
		(&httpError{http.StatusBadRequest, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"}).write(w)
		return
	case sid != f.streamID:
		(&httpError{http.StatusBadRequest, fmt.Sprintf("The stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s", sid, fid)}).write(w)
		return
	}
	status := http.StatusAccepted
	switch call.Type {
	case scheduler.Call_TEARDOWN:
		m.teardown(f, "framework called TEARDOWN")
	case scheduler.Call_ACCEPT:
		a := call.Accept
		m.accept(f, a.OfferIDs, a.Operations, a.Filters)
	case scheduler.Call_DECLINE:
		m.accept(f, call.Decline.OfferIDs, nil, call.Decline.Filters)
	case scheduler.Call_REVIVE:
		m.revive(f, call.Revive.GetRoles())
	case scheduler.Call_SUPPRESS:
		m.suppress(f, call.Suppress.GetRoles())
	case scheduler.Call_KILL:
		m.kill(f, call.Kill)
	case scheduler.Call_SHUTDOWN:
		if a := m.agentByID(call.Shutdown.AgentID.Value); a != nil {
			a.shutdownExecutor(fid, call.Shutdown.ExecutorID.Value, "scheduler called SHUTDOWN")
		}
	case scheduler.Call_ACKNOWLEDGE:
		m.acknowledge(f, call.Acknowledge)
	case scheduler.Call_RECONCILE:
		m.reconcile(f, call.Reconcile.Tasks)
	case scheduler.Call_MESSAGE:
		if a := m.agentByID(call.Message.AgentID.Value); a != nil {
			a.frameworkMessage(fid, call.Message.ExecutorID.Value, call.Message.Data)
		}
	case scheduler.Call_UPDATE_FRAMEWORK:
		status = http.StatusOK
		f.info.Name = call.UpdateFramework.FrameworkInfo.Name
		f.info.Roles = call.UpdateFramework.FrameworkInfo.Roles
		f.info.FailoverTimeout = call.UpdateFramework.FrameworkInfo.FailoverTimeout
	case scheduler.Call_REQUEST, scheduler.Call_ACCEPT_INVERSE_OFFERS, scheduler.Call_DECLINE_INVERSE_OFFERS,
		scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS, scheduler.Call_RECONCILE_OPERATIONS:
		// Accepted and without effect here, as REQUEST is in the default
		// allocator; the double has no operations or maintenance.
	default:
		(&httpError{http.StatusNotImplemented, "Received an unexpected call type"}).write(w)
		return
	}
	w.WriteHeader(status)
}

// validateSchedulerCall is the request-level validation
// (src/master/validation.cpp, scheduler::call::validate): 400 on failure.
func validateSchedulerCall(c *scheduler.Call) *httpError {
	bad := func(msg string) *httpError {
		return &httpError{http.StatusBadRequest, "Failed to validate scheduler::Call: " + msg}
	}
	if c.Type == scheduler.Call_UNKNOWN {
		return &httpError{http.StatusNotImplemented, "Received an unexpected call type"}
	}
	if c.Type == scheduler.Call_SUBSCRIBE {
		if c.Subscribe == nil || c.Subscribe.FrameworkInfo == nil {
			return bad("Expecting 'subscribe' to be present")
		}
		fi := c.Subscribe.FrameworkInfo
		if fi.ID != nil && c.FrameworkID != nil && fi.ID.Value != c.FrameworkID.Value {
			return bad("'framework_id' differs from 'subscribe.framework_info.id'")
		}
		return nil
	}
	if c.FrameworkID == nil || c.FrameworkID.Value == "" {
		return bad("Expecting 'framework_id' to be present")
	}
	need := map[scheduler.Call_Type]bool{
		scheduler.Call_ACCEPT: c.Accept != nil, scheduler.Call_DECLINE: c.Decline != nil,
		scheduler.Call_KILL: c.Kill != nil, scheduler.Call_SHUTDOWN: c.Shutdown != nil,
		scheduler.Call_ACKNOWLEDGE: c.Acknowledge != nil, scheduler.Call_RECONCILE: c.Reconcile != nil,
		scheduler.Call_MESSAGE: c.Message != nil, scheduler.Call_UPDATE_FRAMEWORK: c.UpdateFramework != nil,
	}
	if ok, known := need[c.Type]; known && !ok {
		return bad(fmt.Sprintf("Expecting '%s' to be present", c.Type))
	}
	if c.Type == scheduler.Call_ACKNOWLEDGE && !validUUID(c.Acknowledge.UUID) {
		return bad("'acknowledge.uuid' is not a valid UUID")
	}
	return nil
}

// subscribe is SUBSCRIBE (http.cpp:565-600, master.cpp _subscribe :2746,
// failoverFramework :10263).
func (m *Master) subscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call) {
	if r.Header.Get("Mesos-Stream-Id") != "" {
		(&httpError{http.StatusBadRequest, "Subscribe calls should not include the 'Mesos-Stream-Id' header"}).write(w)
		return
	}
	mt, e := acceptedType(r)
	if e != nil {
		e.write(w)
		return
	}
	info := *call.Subscribe.FrameworkInfo
	s := newStream(mt, m.faults())
	sid := uuid.NewString()

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		(&httpError{http.StatusServiceUnavailable, "Master is shutting down"}).write(w)
		return
	}
	var f *framework
	if id := info.GetID().GetValue(); id != "" {
		if m.removed[id] {
			// A removed framework cannot come back (master.cpp _subscribe:
			// "Framework has been removed").
			s.send(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "Framework has been removed"}})
			s.close()
			m.mu.Unlock()
			s.serve(w, r, http.Header{"Mesos-Stream-Id": {sid}})
			return
		}
		f = m.frameworks[id]
		if f == nil {
			// A framework the master does not know (e.g. after a master
			// failover) may subscribe with its own id.
			f = m.addFramework(id, info)
		} else {
			// user, checkpoint and principal are immutable and silently
			// preserved (master.cpp updateFramework).
			info.User, info.Checkpoint, info.Principal = f.info.User, f.info.Checkpoint, f.info.Principal
			f.info = info
			if f.stream != nil {
				f.stream.send(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "Framework failed over"}})
				f.stream.close()
			}
			if f.failover != nil {
				f.failover.Stop()
				f.failover = nil
			}
			m.rescindOffers(f, false)
		}
	} else {
		f = m.addFramework(m.newID("fw"), info)
	}
	f.info.ID = &mesos.FrameworkID{Value: f.id}
	f.stream, f.streamID, f.active = s, sid, true
	f.suppressed = map[string]bool{}
	for _, role := range call.Subscribe.SuppressedRoles {
		f.suppressed[role] = true
	}
	hb := m.cfg.HeartbeatInterval.Seconds()
	s.send(&scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID: &mesos.FrameworkID{Value: f.id}, HeartbeatIntervalSeconds: &hb, MasterInfo: &m.info,
	}})
	// Agents resend pending status updates at once to a re-subscribed
	// framework (UpdateFrameworkMessage, slave.cpp:4491).
	for _, a := range m.agents {
		a.frameworkUpdated(f.id, f.info)
	}
	m.log.Info("framework subscribed", "framework", f.id, "name", f.info.Name, "stream", sid)
	m.mu.Unlock()
	m.pokeAllocator()

	stopHB := make(chan struct{})
	go m.heartbeat(s, stopHB)
	s.serve(w, r, http.Header{"Mesos-Stream-Id": {sid}})
	close(stopHB)

	m.mu.Lock()
	defer m.mu.Unlock()
	if f.stream == s && f.active && !m.closed {
		m.disconnected(f)
	}
}

func (m *Master) addFramework(id string, info mesos.FrameworkInfo) *framework {
	f := &framework{id: id, info: info, filters: map[string]refusal{}, tasks: map[string]*task{}}
	m.frameworks[id] = f
	return f
}

func (m *Master) heartbeat(s *stream, stop <-chan struct{}) {
	t := time.NewTicker(m.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.send(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
		case <-stop:
			return
		}
	}
}

// disconnected deactivates a framework whose stream ended and starts its
// failover timer; failover_timeout defaults to 0, which removes it at once
// (master.cpp _exited :1414, docs/high-availability-framework-guide.md).
func (m *Master) disconnected(f *framework) {
	f.active = false
	f.stream = nil
	m.rescindOffers(f, false)
	timeout := time.Duration(f.info.GetFailoverTimeout() * float64(time.Second))
	m.log.Info("framework disconnected", "framework", f.id, "failover_timeout", timeout)
	if timeout <= 0 {
		m.teardown(f, "framework disconnected with failover_timeout 0")
		return
	}
	f.failover = m.after(timeout, func() {
		if !f.active && m.frameworks[f.id] == f {
			m.teardown(f, "framework failover timeout")
		}
	})
}

// teardown removes a framework: its executors are shut down on every agent,
// its tasks are removed, its stream closed (master.cpp removeFramework).
func (m *Master) teardown(f *framework, why string) {
	m.log.Info("removing framework", "framework", f.id, "why", why)
	m.rescindOffers(f, false)
	if f.stream != nil {
		f.stream.close()
		f.stream = nil
	}
	f.active = false
	if f.failover != nil {
		f.failover.Stop()
	}
	delete(m.frameworks, f.id)
	m.removed[f.id] = true
	for _, a := range m.agents {
		a.shutdownFramework(f.id)
	}
}

// rescindOffers withdraws a framework's outstanding offers; RESCIND events
// go out only when the framework is still connected.
func (m *Master) rescindOffers(f *framework, notify bool) {
	for id, o := range m.offers {
		if o.fw != f {
			continue
		}
		delete(m.offers, id)
		if notify && f.stream != nil {
			f.stream.send(rescind(id))
		}
	}
}

func (m *Master) pokeAllocator() {
	select {
	case m.allocNow <- struct{}{}:
	default:
	}
}

func (m *Master) allocator() {
	t := time.NewTicker(m.cfg.AllocationInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.allocNow:
		}
		m.mu.Lock()
		m.allocate(time.Now())
		m.mu.Unlock()
	}
}

// allocate offers each agent's unused resources to active, unsuppressed
// frameworks whose decline filter for that agent has expired, one offer
// per agent and role; an agent's resources are in at most one offer at a
// time (the hierarchical allocator, src/master/allocator/mesos).
func (m *Master) allocate(now time.Time) {
	ids := make([]string, 0, len(m.frameworks))
	for id := range m.frameworks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, a := range m.agents {
		if !a.registered {
			continue
		}
		for _, id := range ids {
			f := m.frameworks[id]
			if !f.active {
				continue
			}
			role := ""
			for _, r := range f.roles() {
				if !f.suppressed[r] {
					role = r
					break
				}
			}
			if role == "" {
				continue
			}
			free := m.available(a)
			if len(free) == 0 || f.filters[a.id].holds(now, free) {
				continue
			}
			o := &offer{id: m.newID("offer"), fw: f, agent: a, resources: free, role: role}
			m.offers[o.id] = o
			f.stream.send(&scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: []mesos.Offer{m.offerProto(o)}}})
		}
	}
}

// available is an agent's total minus executors, live tasks and
// outstanding offers.
func (m *Master) available(a *Agent) mesos.Resources {
	free := a.total.Clone()
	free.Subtract(a.executorResources()...)
	free.Subtract(m.taskResources(a)...)
	for _, o := range m.offers {
		if o.agent == a {
			free.Subtract(o.resources...)
		}
	}
	var out mesos.Resources
	for _, r := range free {
		if !r.IsEmpty() {
			out = append(out, r)
		}
	}
	return out
}

// offerProto builds an Offer: allocation_info only for MULTI_ROLE
// frameworks (master.cpp:9566-9580), executor_ids of the framework's
// executors on the agent.
func (m *Master) offerProto(o *offer) mesos.Offer {
	res := o.resources.Clone()
	p := mesos.Offer{
		ID:          mesos.OfferID{Value: o.id},
		FrameworkID: mesos.FrameworkID{Value: o.fw.id},
		AgentID:     mesos.AgentID{Value: o.agent.id},
		Hostname:    o.agent.cfg.Hostname,
		Attributes:  o.agent.cfg.Attributes,
		ExecutorIDs: o.agent.executorIDs(o.fw.id),
	}
	if o.fw.has(mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		res = res.Allocate(o.role)
		p.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &o.role}
	}
	p.Resources = res
	return p
}

// refuse records a decline filter (Filters.refuse_seconds, default 5,
// capped at 365 days; mesos.proto "Filters").
func refuseFor(f *mesos.Filters) time.Duration {
	secs := 5.0
	if f != nil && f.RefuseSeconds != nil {
		secs = *f.RefuseSeconds
	}
	if secs < 0 {
		secs = 5
	}
	return min(time.Duration(secs*float64(time.Second)), 365*24*time.Hour)
}

// accept is ACCEPT and DECLINE (master.cpp:3940-4300).
func (m *Master) accept(f *framework, offerIDs []mesos.OfferID, ops []mesos.Offer_Operation, filters *mesos.Filters) {
	var (
		agent   *Agent
		offered mesos.Resources
		invalid string
	)
	for _, id := range offerIDs {
		o := m.offers[id.Value]
		switch {
		case o == nil:
			invalid = fmt.Sprintf("Offer %s is no longer valid", id.Value)
		case o.fw != f:
			invalid = fmt.Sprintf("Offer %s has invalid framework", id.Value)
		case agent != nil && o.agent != agent:
			invalid = "Aggregated offers must belong to one single agent"
		default:
			agent = o.agent
			offered.Add(o.resources...)
		}
	}
	if len(offerIDs) == 0 && len(ops) > 0 {
		invalid = "No offers specified"
	}
	for _, id := range offerIDs {
		if o := m.offers[id.Value]; o != nil && o.fw == f {
			delete(m.offers, id.Value)
		}
	}
	if invalid != "" {
		// Every task of an ACCEPT with an invalid offer is lost
		// (master.cpp:3960-4015).
		for _, op := range ops {
			for _, t := range opTasks(op) {
				m.masterUpdate(f, t.TaskID, "", lostOr(f, mesos.TASK_DROPPED), mesos.REASON_INVALID_OFFERS, invalid)
			}
		}
		return
	}
	remaining := offered.Clone()
	newExecutors := map[string]mesos.ExecutorInfo{}
	for _, op := range ops {
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH:
			for _, t := range op.GetLaunch().TaskInfos {
				m.launch(f, agent, t, nil, &remaining, newExecutors)
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			lg := op.GetLaunchGroup()
			ex := lg.Executor
			if lg.Executor.Type == mesos.ExecutorInfo_UNKNOWN {
				for _, t := range lg.TaskGroup.Tasks {
					m.masterUpdate(f, t.TaskID, agent.id, mesos.TASK_ERROR, mesos.REASON_TASK_GROUP_INVALID, "'ExecutorInfo.type' must be set")
				}
				continue
			}
			m.launchGroup(f, agent, ex, lg.TaskGroup, &remaining, newExecutors)
		default:
			m.log.Warn("operation not supported by the double; ignored", "type", op.Type)
		}
	}
	if agent != nil {
		// Unused resources are declined with the call's filter
		// (master.cpp, "Filters").
		if d := refuseFor(filters); d > 0 {
			f.filters[agent.id] = refusal{until: time.Now().Add(d), res: remaining.Clone().Unallocate()}
		}
	}
}

func opTasks(op mesos.Offer_Operation) []mesos.TaskInfo {
	switch op.Type {
	case mesos.Offer_Operation_LAUNCH:
		return op.GetLaunch().TaskInfos
	case mesos.Offer_Operation_LAUNCH_GROUP:
		return op.GetLaunchGroup().TaskGroup.Tasks
	}
	return nil
}

// lostOr is the partition-aware state, or TASK_LOST for frameworks without
// PARTITION_AWARE (mesos.proto TaskState).
func lostOr(f *framework, pa mesos.TaskState) mesos.TaskState {
	if f.has(mesos.FrameworkInfo_Capability_PARTITION_AWARE) {
		return pa
	}
	return mesos.TASK_LOST
}

// validateTask is the master's task validation (master/validation.cpp:1676):
// unique id, agent id matching the offer, a custom executor whose
// ExecutorInfo is the same as a running one of the same id, executor
// minimums, and task + new executor resources within what is left.
func (m *Master) validateTask(f *framework, a *Agent, t *mesos.TaskInfo, ex *mesos.ExecutorInfo, remaining mesos.Resources, newExecutors map[string]mesos.ExecutorInfo) (need mesos.Resources, newEx bool, msg string) {
	if t.TaskID.Value == "" {
		return nil, false, "Task ID must not be empty"
	}
	if _, dup := f.tasks[t.TaskID.Value]; dup {
		return nil, false, fmt.Sprintf("Task has duplicate ID: %s", t.TaskID.Value)
	}
	if t.AgentID.Value != a.id {
		return nil, false, fmt.Sprintf("Task uses invalid agent: %s", t.AgentID.Value)
	}
	if ex == nil {
		return nil, false, "the Mesos double runs custom executors only: 'TaskInfo.executor' must be set"
	}
	if ex.FrameworkID != nil && ex.FrameworkID.Value != f.id {
		return nil, false, "ExecutorInfo has an invalid FrameworkID"
	}
	if err := resources.Validate(t.Resources...); err != nil {
		return nil, false, fmt.Sprintf("Task uses invalid resources: %v", err)
	}
	need = mesos.Resources(t.Resources).Clone()
	exID := ex.ExecutorID.Value
	existing, running := a.executorInfo(f.id, exID)
	if !running {
		existing, running = newExecutors[exID]
	}
	if running {
		cmp := *ex
		cmp.FrameworkID = existing.FrameworkID
		if !existing.Equal(&cmp) {
			return nil, false, "ExecutorInfo is not compatible with existing ExecutorInfo"
		}
	} else {
		cpus, _ := resources.CPUs(ex.Resources...)
		mem, _ := resources.Memory(ex.Resources...)
		if cpus < 0.01 || mem < 32 {
			return nil, false, fmt.Sprintf("Executor %s uses less than the minimum 0.01 cpus and 32 MB mem (cpus %.3f, mem %d MB)", exID, cpus, mem)
		}
		need.Add(ex.Resources...)
		newEx = true
	}
	have := remaining.Clone().Unallocate()
	want := need.Clone().Unallocate()
	if !resources.ContainsAll(resources.Flatten(have), resources.Flatten(want)) {
		return nil, false, fmt.Sprintf("Total resources %s required by task and its executor is more than available %s", want, have)
	}
	return need, newEx, ""
}

func (m *Master) launch(f *framework, a *Agent, t mesos.TaskInfo, group *mesos.ExecutorInfo, remaining *mesos.Resources, newExecutors map[string]mesos.ExecutorInfo) bool {
	ex := t.Executor
	if group != nil {
		ex = group
	}
	need, newEx, msg := m.validateTask(f, a, &t, ex, *remaining, newExecutors)
	if msg != "" {
		reason := mesos.REASON_TASK_INVALID
		if group != nil {
			reason = mesos.REASON_TASK_GROUP_INVALID
		}
		m.masterUpdate(f, t.TaskID, a.id, mesos.TASK_ERROR, reason, msg)
		return false
	}
	remaining.Subtract(need.Clone().Unallocate()...)
	exInfo := *ex
	exInfo.FrameworkID = &mesos.FrameworkID{Value: f.id}
	if newEx {
		newExecutors[exInfo.ExecutorID.Value] = exInfo
	}
	t.Executor = &exInfo
	f.tasks[t.TaskID.Value] = &task{info: t, agent: a, state: mesos.TASK_STAGING, updateState: mesos.TASK_STAGING}
	if group == nil {
		a.runTasks(f.id, f.info, exInfo, []mesos.TaskInfo{t}, false)
	}
	return true
}

func (m *Master) launchGroup(f *framework, a *Agent, ex mesos.ExecutorInfo, g mesos.TaskGroupInfo, remaining *mesos.Resources, newExecutors map[string]mesos.ExecutorInfo) {
	var ok []mesos.TaskInfo
	for _, t := range g.Tasks {
		if m.launch(f, a, t, &ex, remaining, newExecutors) {
			ok = append(ok, f.tasks[t.TaskID.Value].info)
		}
	}
	if len(ok) == 0 {
		return
	}
	exInfo := *f.tasks[ok[0].TaskID.Value].info.Executor
	a.runTasks(f.id, f.info, exInfo, ok, true)
}

// masterUpdate sends a master-generated update: source MASTER and no uuid,
// so it must not be acknowledged (docs/scheduler-http-api.md "UPDATE").
func (m *Master) masterUpdate(f *framework, id mesos.TaskID, agentID string, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	st := mesos.TaskStatus{
		TaskID: id, State: state.Enum(), Reason: reason.Enum(), Message: &msg,
		Source: mesos.SOURCE_MASTER.Enum(), Timestamp: nowSeconds(),
	}
	if agentID != "" {
		st.AgentID = &mesos.AgentID{Value: agentID}
	}
	if f.stream != nil {
		f.stream.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
}

func nowSeconds() *float64 {
	s := float64(time.Now().UnixNano()) / 1e9
	return &s
}

func (m *Master) revive(f *framework, roles []string) {
	// REVIVE clears every decline filter and unsuppresses the roles (all
	// when none are named) (scheduler.proto Call.Revive).
	f.filters = map[string]refusal{}
	if len(roles) == 0 {
		f.suppressed = map[string]bool{}
	}
	for _, r := range roles {
		delete(f.suppressed, r)
	}
	m.pokeAllocator()
}

func (m *Master) suppress(f *framework, roles []string) {
	if len(roles) == 0 {
		roles = f.roles()
	}
	for _, r := range roles {
		f.suppressed[r] = true
	}
}

// kill is KILL: forwarded to the task's agent; an unknown task gets
// explicit reconciliation (master.cpp kill).
func (m *Master) kill(f *framework, k *scheduler.Call_Kill) {
	t := f.tasks[k.TaskID.Value]
	if t == nil {
		m.reconcile(f, []scheduler.Call_Reconcile_Task{{TaskID: k.TaskID, AgentID: k.AgentID}})
		return
	}
	t.agent.killTask(f.id, k.TaskID.Value, k.KillPolicy)
}

// acknowledge relays ACKNOWLEDGE to the agent; an acknowledged terminal
// update removes the task from the master (master.cpp _acknowledge).
func (m *Master) acknowledge(f *framework, ack *scheduler.Call_Acknowledge) {
	if m.cfg.Faults.dropAck() {
		m.log.Debug("fault: ACKNOWLEDGE dropped", "task", ack.TaskID.Value)
		return
	}
	a := m.agentByID(ack.AgentID.Value)
	if a == nil {
		return
	}
	terminal, ok := a.acknowledge(f.id, ack.TaskID.Value, ack.UUID)
	if ok && terminal {
		delete(f.tasks, ack.TaskID.Value)
	}
}

// reconcile is RECONCILE (master.cpp:8966, docs/reconciliation.md): no
// uuid, source MASTER, REASON_RECONCILIATION.
func (m *Master) reconcile(f *framework, tasks []scheduler.Call_Reconcile_Task) {
	send := func(id mesos.TaskID, agentID string, state mesos.TaskState, t *task) {
		st := mesos.TaskStatus{
			TaskID: id, State: state.Enum(), Source: mesos.SOURCE_MASTER.Enum(),
			Reason: mesos.REASON_RECONCILIATION.Enum(), Message: ptr.To("Reconciliation: Latest task state"),
			Timestamp: nowSeconds(),
		}
		if agentID != "" {
			st.AgentID = &mesos.AgentID{Value: agentID}
		}
		if t != nil {
			st.ExecutorID = &t.info.Executor.ExecutorID
			st.Data, st.Labels, st.ContainerStatus = t.latest.Data, t.latest.Labels, t.latest.ContainerStatus
		} else {
			st.Message = ptr.To("Reconciliation: Task is unknown")
		}
		f.stream.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
	if len(tasks) == 0 {
		ids := make([]string, 0, len(f.tasks))
		for id := range f.tasks {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			t := f.tasks[id]
			send(t.info.TaskID, t.agent.id, t.updateState, t)
		}
		return
	}
	for _, rt := range tasks {
		if t := f.tasks[rt.TaskID.Value]; t != nil {
			send(rt.TaskID, t.agent.id, t.updateState, t)
			continue
		}
		agentID := rt.AgentID.GetValue()
		switch a := m.agentByID(agentID); {
		case agentID == "":
			send(rt.TaskID, "", lostOr(f, mesos.TASK_UNKNOWN), nil)
		case a == nil:
			send(rt.TaskID, agentID, lostOr(f, mesos.TASK_UNKNOWN), nil)
		case !a.registered:
			// An agent the master is still recovering: no answer yet.
		default:
			send(rt.TaskID, agentID, lostOr(f, mesos.TASK_GONE), nil)
		}
	}
}

// statusUpdate is an agent forwarding the oldest unacknowledged update of a
// task (StatusUpdateMessage): the master records the state and sends UPDATE
// with the uuid if the framework is connected; a terminal latest state
// frees the task's resources (master.cpp statusUpdate, updateTask).
func (m *Master) statusUpdate(a *Agent, fid string, st mesos.TaskStatus, latest mesos.TaskState) {
	f := m.frameworks[fid]
	if f == nil {
		return
	}
	t := f.tasks[st.TaskID.Value]
	if t == nil {
		t = &task{info: mesos.TaskInfo{TaskID: st.TaskID, AgentID: mesos.AgentID{Value: a.id}}, agent: a}
		if st.ExecutorID != nil {
			t.info.Executor = &mesos.ExecutorInfo{ExecutorID: *st.ExecutorID}
		}
		f.tasks[st.TaskID.Value] = t
	}
	t.state = latest
	t.updateState = st.GetState()
	t.latest = st
	if f.stream != nil && f.active {
		f.stream.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
	m.pokeAllocator()
}

// executorExited is ExitedExecutorMessage: a FAILURE event with the wait
// status (master.cpp exitedExecutor).
func (m *Master) executorExited(a *Agent, fid, exID string, status int32) {
	f := m.frameworks[fid]
	if f == nil || f.stream == nil {
		return
	}
	f.stream.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{
		AgentID: &mesos.AgentID{Value: a.id}, ExecutorID: &mesos.ExecutorID{Value: exID}, Status: &status,
	}})
	m.pokeAllocator()
}

// executorMessage forwards an executor's MESSAGE to its scheduler (no
// delivery guarantee).
func (m *Master) executorMessage(a *Agent, fid, exID string, data []byte) {
	if f := m.frameworks[fid]; f != nil && f.stream != nil {
		f.stream.send(&scheduler.Event{Type: scheduler.Event_MESSAGE, Message: &scheduler.Event_Message{
			AgentID: mesos.AgentID{Value: a.id}, ExecutorID: mesos.ExecutorID{Value: exID}, Data: data,
		}})
	}
}

// taskResources is what the master counts as used on an agent for tasks of
// a framework: non-terminal tasks (a terminal latest state frees them).
func (m *Master) taskResources(a *Agent) mesos.Resources {
	var out mesos.Resources
	for _, f := range m.frameworks {
		for _, t := range f.tasks {
			if t.agent == a && !terminal(t.state) {
				out.Add(mesos.Resources(t.info.Resources).Clone().Unallocate()...)
			}
		}
	}
	return out
}

// terminal states (mesos.proto TaskState).
func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// MasterState is GET /state: a small subset of the real master's /state.
type MasterState struct {
	ID         string           `json:"id"`
	Hostname   string           `json:"hostname"`
	Frameworks []FrameworkState `json:"frameworks"`
	Agents     []AgentState     `json:"slaves"`
	Offers     int              `json:"outstanding_offers"`
}

// FrameworkState is one framework in MasterState.
type FrameworkState struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Active bool        `json:"active"`
	Tasks  []TaskState `json:"tasks"`
}

// TaskState is one task in FrameworkState.
type TaskState struct {
	ID         string `json:"id"`
	AgentID    string `json:"slave_id"`
	ExecutorID string `json:"executor_id"`
	State      string `json:"state"`
}

// State returns what GET /state shows.
func (m *Master) State() MasterState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := MasterState{ID: m.info.ID, Hostname: m.cfg.Hostname, Offers: len(m.offers)}
	for _, f := range m.frameworks {
		fs := FrameworkState{ID: f.id, Name: f.info.Name, Active: f.active}
		for _, t := range f.tasks {
			ts := TaskState{ID: t.info.TaskID.Value, AgentID: t.agent.id, State: t.state.String()}
			if t.info.Executor != nil {
				ts.ExecutorID = t.info.Executor.ExecutorID.Value
			}
			fs.Tasks = append(fs.Tasks, ts)
		}
		sort.Slice(fs.Tasks, func(i, j int) bool { return fs.Tasks[i].ID < fs.Tasks[j].ID })
		st.Frameworks = append(st.Frameworks, fs)
	}
	sort.Slice(st.Frameworks, func(i, j int) bool { return st.Frameworks[i].ID < st.Frameworks[j].ID })
	for _, a := range m.agents {
		st.Agents = append(st.Agents, a.state())
	}
	return st
}

func (m *Master) serveState(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m.State())
}

func splitHostPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func rescind(offerID string) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: offerID}}}
}
