package kubenode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/utils/clock"
)

// Config of the node's presence in the API server.
type Config struct {
	// NodeName is the Node object's name: the Mesos agent's hostname, and
	// the name in the node identity system:node:<NodeName>.
	NodeName string
	Labels   map[string]string
	// Capacity is what pods may use here (the agent's resources less the
	// executor's); it is also the allocatable.
	Capacity v1.ResourceList
	HostIP   string
	// LeaseDuration and RenewInterval of the node lease in kube-node-lease
	// (kubelet: 40s and 10s). StatusInterval is the NodeReady heartbeat.
	LeaseDuration, RenewInterval, StatusInterval time.Duration
	// MinPodWrite is the least time between two status writes of one pod:
	// changes within it are coalesced into the next write (default 1s).
	MinPodWrite time.Duration
}

// Reporter keeps the Node, its lease and the pods' status in the API
// server. Its PodStatus never blocks; writes happen in Run.
type Reporter struct {
	cfg Config
	cs  kubernetes.Interface
	log *slog.Logger

	mu      sync.Mutex
	pending map[types.UID]podStatus
	written map[types.UID]time.Time
	poke    chan struct{}
}

type podStatus struct {
	namespace, name string
	status          v1.PodStatus
}

// New validates cfg and fills defaults.
func New(cfg Config, cs kubernetes.Interface, log *slog.Logger) (*Reporter, error) {
	if cfg.NodeName == "" || cs == nil {
		return nil, errors.New("kubenode: NodeName and a clientset are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.LeaseDuration, 40*time.Second)
	def(&cfg.RenewInterval, 10*time.Second)
	def(&cfg.StatusInterval, 10*time.Second)
	def(&cfg.MinPodWrite, time.Second)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{cfg: cfg, cs: cs, log: log.With("node", cfg.NodeName),
		pending: map[types.UID]podStatus{}, written: map[types.UID]time.Time{}, poke: make(chan struct{}, 1)}, nil
}

// PodStatus records pod's newest status for the next write.
func (r *Reporter) PodStatus(pod *v1.Pod, st v1.PodStatus) {
	r.mu.Lock()
	r.pending[pod.UID] = podStatus{pod.Namespace, pod.Name, st}
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Run registers the Node, then keeps its lease and NodeReady condition
// fresh and writes pod statuses until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	node, err := r.ensureNode(ctx)
	if err != nil {
		return err
	}
	ownedByNode := func(l *coordinationv1.Lease) error {
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		return nil
	}
	lc := lease.NewController(clock.RealClock{}, r.cs, r.cfg.NodeName, int32(r.cfg.LeaseDuration.Seconds()),
		func() { r.log.Warn("node lease renewals keep failing") }, r.cfg.RenewInterval, r.cfg.NodeName, v1.NamespaceNodeLease, ownedByNode)
	go lc.Run(ctx)
	heartbeat := time.NewTicker(r.cfg.StatusInterval)
	defer heartbeat.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			if err := r.updateNodeStatus(ctx); err != nil {
				r.log.Warn("node status", "err", err)
			}
		case <-r.poke:
		case <-retry.C:
		}
		if wait := r.writePods(ctx); wait > 0 {
			retry.Reset(wait)
		}
	}
}

func (r *Reporter) nodeStatus(now metav1.Time) v1.NodeStatus {
	st := v1.NodeStatus{
		Capacity: r.cfg.Capacity, Allocatable: r.cfg.Capacity,
		Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "K8smExecutorReady",
			Message: "the k8sm executor runs pods on this Mesos agent", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	if r.cfg.HostIP != "" {
		st.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: r.cfg.HostIP}, {Type: v1.NodeHostName, Address: r.cfg.NodeName}}
	}
	return st
}

// ensureNode creates the Node, or takes over an existing one, with our
// labels and a Ready status.
func (r *Reporter) ensureNode(ctx context.Context) (*v1.Node, error) {
	now := metav1.Now()
	want := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Labels: r.cfg.Labels}}
	node, err := r.cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		node, err = r.cs.CoreV1().Nodes().Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
		if err == nil {
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			for k, v := range r.cfg.Labels {
				node.Labels[k] = v
			}
			node, err = r.cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("register Node %s: %w", r.cfg.NodeName, err)
	}
	node.Status = r.nodeStatus(now)
	if node, err = r.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("set the status of Node %s: %w", r.cfg.NodeName, err)
	}
	r.log.Info("Node registered", "capacity", r.cfg.Capacity)
	return node, nil
}

func (r *Reporter) updateNodeStatus(ctx context.Context) error {
	patch, err := json.Marshal(map[string]any{"status": r.nodeStatus(metav1.Now())})
	if err != nil {
		return err
	}
	_, err = r.cs.CoreV1().Nodes().Patch(ctx, r.cfg.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// writePods writes each pending pod status whose last write is at least
// MinPodWrite old; it returns how long until the next one is due (0: none
// pending). A pod gone from the API server is dropped; other failures are
// retried.
func (r *Reporter) writePods(ctx context.Context) time.Duration {
	r.mu.Lock()
	now := time.Now()
	due := map[types.UID]podStatus{}
	var next time.Duration
	for uid, p := range r.pending {
		if wait := r.cfg.MinPodWrite - now.Sub(r.written[uid]); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		due[uid] = p
		delete(r.pending, uid)
	}
	r.mu.Unlock()
	for uid, p := range due {
		// The uid in the patch is a precondition: never another pod of the
		// same name.
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid}, "status": p.status})
		if err == nil {
			_, err = r.cs.CoreV1().Pods(p.namespace).Patch(ctx, p.name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		}
		r.mu.Lock()
		switch {
		case err == nil:
			r.written[uid] = time.Now()
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			r.log.Info("pod status not written: the pod is gone from the API server", "pod", p.namespace+"/"+p.name)
		default:
			r.log.Warn("pod status write failed; retrying", "pod", p.namespace+"/"+p.name, "err", err)
			if _, newer := r.pending[uid]; !newer {
				r.pending[uid] = p
			}
			next = r.cfg.MinPodWrite
		}
		r.mu.Unlock()
	}
	return next
}
