package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
)

// Config of one scheduler instance.
type Config struct {
	// Names are the spec.schedulerName values this scheduler serves
	// (default ["k8sm-scheduler"]).
	Names []string
	// Framework is the FrameworkInfo to subscribe with; its id is set
	// from the stored state. Name default "k8sm", user default "root",
	// failover timeout default one week, checkpoint default on.
	Framework mesos.FrameworkInfo
	Executor  ExecutorConfig
	Defaults  podspec.Defaults
	Policy    podspec.Policy
	// PortStrategy for container ports with hostPort 0 (default Wildcard).
	PortStrategy ports.Strategy
	// OfferTTL is how long an unused offer is held for pods that may come
	// (default 2s); it is then declined with RefuseSeconds (default 5).
	OfferTTL      time.Duration
	RefuseSeconds float64
	// BackoffInitial and BackoffMax bound the per-pod retry delay
	// (default 1s and 60s).
	BackoffInitial, BackoffMax time.Duration
	// ReconcileInterval is the implicit reconciliation period (default 5m).
	ReconcileInterval time.Duration
	// SubscribeBackoffMax caps the wait between SUBSCRIBE attempts
	// (default 15s).
	SubscribeBackoffMax time.Duration
	// State is where the framework id lives in the API server.
	State StateRef
}

func (c *Config) fill() error {
	if len(c.Names) == 0 {
		c.Names = []string{"k8sm-scheduler"}
	}
	if c.Framework.Name == "" {
		c.Framework.Name = "k8sm"
	}
	if c.Framework.User == "" {
		c.Framework.User = "root"
	}
	if c.Framework.FailoverTimeout == nil {
		c.Framework.FailoverTimeout = ptr.To((7 * 24 * time.Hour).Seconds())
	}
	if c.Framework.Checkpoint == nil {
		c.Framework.Checkpoint = ptr.To(true)
	}
	if c.PortStrategy == "" {
		c.PortStrategy = ports.Wildcard
	}
	if c.Defaults.CPULimit.IsZero() {
		c.Defaults = podspec.StandardDefaults()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.OfferTTL, 2*time.Second)
	def(&c.BackoffInitial, time.Second)
	def(&c.BackoffMax, time.Minute)
	def(&c.ReconcileInterval, 5*time.Minute)
	def(&c.SubscribeBackoffMax, 15*time.Second)
	if c.RefuseSeconds <= 0 {
		c.RefuseSeconds = 5
	}
	if c.State.Name == "" {
		c.State.Name = "k8sm-scheduler"
	}
	if c.State.Namespace == "" {
		c.State.Namespace = "kube-system"
	}
	return nil
}

// Scheduler pairs pending pods with offers. One goroutine (loop) owns all
// of its state; Mesos events, informer callbacks and the results of API
// calls reach it as messages.
type Scheduler struct {
	cfg    Config
	log    *slog.Logger
	cs     kubernetes.Interface
	caller calls.Caller
	exInfo mesos.ExecutorInfo
	ex     Executor
	m      *Metrics
	store  *Store

	msgs     chan any
	recorder record.EventRecorder
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister

	// owned by loop
	fid         string
	connected   bool
	heartbeat   time.Duration
	lastEvent   time.Time
	offers      map[string]*heldOffer
	pending     map[types.UID]*pendingPod
	tasks       map[string]*task
	agents      map[string]*agent
	suppressed  bool
	reconciling map[string]bool
	recAttempt  int
	recNext     time.Time
	implicitAt  time.Time
	sub         *subscription
	lastOffer   time.Time
}

// offerSettle is how long a placement round waits after the last offer
// arrived: the master sends one allocation round's offers (one per agent)
// in a burst, and pods spread only over the agents whose offers are held.
const offerSettle = 100 * time.Millisecond

type heldOffer struct {
	offer mesos.Offer
	at    time.Time
}

type pendingPod struct {
	pod        *v1.Pod // defaulted copy
	place      *Pod
	firstSeen  time.Time
	attempts   int
	notBefore  time.Time
	lastReason string
	invalid    string // a validation error: never placed until the pod changes
}

// task is a pod the scheduler launched (or found bound by an earlier
// leader, from its annotations).
type task struct {
	id        string
	namespace string
	name      string
	uid       types.UID
	agentID   string
	owner     string
	state     mesos.TaskState
	known     bool // an update has been seen
	launched  time.Time
	deleting  *time.Time // the pod's deletion deadline
	killSent  time.Time
	gone      bool // the pod object is gone from the API server
	podFailed bool // the pod's status was set to Failed by us
}

type agent struct {
	id, hostname string
	labels       map[string]string
	nodeMade     bool
	gone         bool
}

// New validates cfg; Run does the work.
func New(cfg Config, cs kubernetes.Interface, caller calls.Caller, m *Metrics, log *slog.Logger) (*Scheduler, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if cs == nil || caller == nil {
		return nil, errors.New("scheduler: an API server client and a Mesos caller are required")
	}
	info, ex, err := NewExecutorInfo(cfg.Executor)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Scheduler{cfg: cfg, log: log, cs: cs, caller: caller, exInfo: info, ex: ex, m: m,
		store:   NewStore(cs, cfg.State),
		msgs:    make(chan any, 4096),
		offers:  map[string]*heldOffer{},
		pending: map[types.UID]*pendingPod{}, tasks: map[string]*task{}, agents: map[string]*agent{},
		reconciling: map[string]bool{}, sub: &subscription{},
	}, nil
}

// ExecutorID is the executor id every task of this configuration names.
func (s *Scheduler) ExecutorID() string { return s.ex.ID }

type (
	msgEvent struct{ e *scheduler.Event }
	msgLost  struct{ err error }
	msgPod   struct {
		pod     *v1.Pod
		deleted bool
	}
	msgLaunched struct {
		agentID string
		failed  map[string]string // task id -> why it was not launched
	}
)

func (s *Scheduler) post(m any) { s.msgs <- m }

// Run schedules until ctx ends: it starts the informers, waits for their
// caches, subscribes to Mesos (as the stored framework, if any) and runs
// the loop. It returns ctx's error, or a setup error.
func (s *Scheduler) Run(ctx context.Context) error {
	fid, err := s.store.Load(ctx)
	if err != nil {
		return err
	}
	s.fid = fid
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cs.CoreV1().Events("")})
	defer bc.Shutdown()
	s.recorder = bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: "k8sm-scheduler"})

	f := informers.NewSharedInformerFactory(s.cs, 0)
	pi := f.Core().V1().Pods()
	s.pods = pi.Lister()
	s.nodes = f.Core().V1().Nodes().Lister()
	_, _ = pi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.post(msgPod{pod: o.(*v1.Pod)}) },
		UpdateFunc: func(_, o any) { s.post(msgPod{pod: o.(*v1.Pod)}) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if p, ok := o.(*v1.Pod); ok {
				s.post(msgPod{pod: p, deleted: true})
			}
		},
	})
	ep := newEndpoints(s.cs, f, s.log.With("component", "endpoints"))
	f.Start(ctx.Done())
	defer f.Shutdown()
	for t, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync the %v informer: %w", t, ctx.Err())
		}
	}
	go ep.Run(ctx)
	s.log.Info("scheduler ready", "executor_id", s.ex.ID, "framework_id", s.fid, "names", s.cfg.Names)

	go s.subscribeLoop(ctx)
	return s.loop(ctx)
}

func (s *Scheduler) loop(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-s.msgs:
			if err := s.handle(ctx, m); err != nil {
				return err
			}
			// Drain what is queued before a placement round, so a burst
			// of pods meets the offers in one round.
		drain:
			for range 1024 {
				select {
				case m := <-s.msgs:
					if err := s.handle(ctx, m); err != nil {
						return err
					}
				default:
					break drain
				}
			}
		case <-tick.C:
		}
		now := time.Now()
		s.watchHeartbeat(now)
		s.reconcile(ctx, now)
		s.cycle(ctx, now)
	}
}

func (s *Scheduler) handle(ctx context.Context, m any) error {
	switch m := m.(type) {
	case errFailedOver:
		return ErrFailedOver
	case msgEvent:
		s.lastEvent = time.Now()
		s.onEvent(ctx, m.e)
	case msgLost:
		s.onDisconnected(m.err)
	case msgPod:
		s.onPod(ctx, m.pod, m.deleted)
	case msgLaunched:
		s.onLaunched(ctx, m)
	case msgNodeFailed:
		if a := s.agents[m.agentID]; a != nil {
			a.nodeMade = false
		}
	}
	return nil
}

// serves says whether pod is one this scheduler should place.
func (s *Scheduler) serves(pod *v1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed &&
		slices.Contains(s.cfg.Names, pod.Spec.SchedulerName)
}

func key(ns, name string) string { return ns + "/" + name }
