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
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/staticpods"
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
	// KubeletPort, when not 0, is the port of the node's kubelet API on
	// HostIP: status.daemonEndpoints.kubeletEndpoint, where the API
	// server sends logs, exec, attach and port-forward.
	KubeletPort int32
	// NodeInfo is status.nodeInfo (SystemInfo).
	NodeInfo v1.NodeSystemInfo
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
	// mirrorWant are the static pods to mirror, by their (static) UID;
	// mirrors the UIDs of their mirror pods once made ("": refused).
	mirrorWant map[types.UID]*v1.Pod
	mirrors    map[types.UID]types.UID
}

// MirrorAnnotation marks a mirror pod (the kubelet's
// kubernetes.io/config.mirror); its value is the static pod's hash.
const MirrorAnnotation = "kubernetes.io/config.mirror"

type podStatus struct {
	namespace, name string
	status          v1.PodStatus
	uid             types.UID // of the API server's pod (a mirror pod's differs from its static pod's)
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
		pending: map[types.UID]podStatus{}, written: map[types.UID]time.Time{}, poke: make(chan struct{}, 1),
		mirrorWant: map[types.UID]*v1.Pod{}, mirrors: map[types.UID]types.UID{}}, nil
}

// PodStatus records pod's newest status for the next write.
func (r *Reporter) PodStatus(pod *v1.Pod, st v1.PodStatus) {
	r.mu.Lock()
	r.pending[pod.UID] = podStatus{namespace: pod.Namespace, name: pod.Name, status: st, uid: pod.UID}
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Mirror asks for a mirror pod of a static pod, as the kubelet makes one:
// the API server's read-only view of a pod this node runs from a file,
// named as the static pod, annotated kubernetes.io/config.mirror, bound to
// and owned by the Node. The static pod's PodStatus then goes to it.
func (r *Reporter) Mirror(pod *v1.Pod) {
	r.mu.Lock()
	r.mirrorWant[pod.UID] = pod.DeepCopy()
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// mirrorOf is the mirror pod object for static pod p on node.
func mirrorOf(p *v1.Pod, node *v1.Node) *v1.Pod {
	hash := p.Annotations[staticpods.HashAnnotation]
	if hash == "" {
		hash = string(p.UID)
	}
	m := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels,
		Annotations:     map[string]string{MirrorAnnotation: hash},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}},
		Spec: *p.Spec.DeepCopy()}
	for k, v := range p.Annotations {
		m.Annotations[k] = v
	}
	m.Spec.NodeName = node.Name
	return m
}

// syncMirrors makes the mirror pods not made yet. An existing pod of the
// name is taken over when it is our mirror of the same content, replaced
// when it is a mirror of other content, and left alone (logged) when it
// is not a mirror. It returns whether some are still to make.
func (r *Reporter) syncMirrors(ctx context.Context, node *v1.Node) bool {
	r.mu.Lock()
	todo := map[types.UID]*v1.Pod{}
	for uid, p := range r.mirrorWant {
		if _, ok := r.mirrors[uid]; !ok {
			todo[uid] = p
		}
	}
	r.mu.Unlock()
	retry := false
	for uid, p := range todo {
		want := mirrorOf(p, node)
		pods := r.cs.CoreV1().Pods(p.Namespace)
		got, err := pods.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			got, err = pods.Get(ctx, p.Name, metav1.GetOptions{})
			switch {
			case err != nil:
			case got.Annotations[MirrorAnnotation] == "":
				r.log.Error("static pod not mirrored: a pod of its name that is not a mirror pod exists", "pod", p.Namespace+"/"+p.Name)
				r.mu.Lock()
				r.mirrors[uid] = "" // refused: its status goes nowhere
				r.mu.Unlock()
				continue
			case got.Annotations[MirrorAnnotation] != want.Annotations[MirrorAnnotation] || got.Spec.NodeName != node.Name:
				r.log.Info("replacing an outdated mirror pod", "pod", p.Namespace+"/"+p.Name)
				err = pods.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &got.UID}})
				if err == nil || apierrors.IsNotFound(err) {
					got, err = pods.Create(ctx, want, metav1.CreateOptions{})
				}
			}
		}
		if err != nil {
			r.log.Warn("mirror pod not made; retrying", "pod", p.Namespace+"/"+p.Name, "err", err)
			retry = true
			continue
		}
		r.log.Info("mirror pod made", "pod", p.Namespace+"/"+p.Name, "uid", got.UID)
		r.mu.Lock()
		r.mirrors[uid] = got.UID
		r.mu.Unlock()
	}
	return retry
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
			err := r.updateNodeStatus(ctx)
			if apierrors.IsNotFound(err) {
				// Deleted (kubectl delete node): register it again, as the
				// kubelet does, or pod GC removes every pod bound here.
				r.log.Warn("the Node was deleted: registering it again")
				if n, nerr := r.ensureNode(ctx); nerr == nil {
					node, err = n, nil
				} else {
					err = nerr
				}
			}
			if err != nil {
				r.log.Warn("node status", "err", err)
			}
		case <-r.poke:
		case <-retry.C:
		}
		mirrorsLeft := r.syncMirrors(ctx, node)
		wait := r.writePods(ctx)
		if mirrorsLeft && (wait == 0 || wait > r.cfg.MinPodWrite) {
			wait = r.cfg.MinPodWrite
		}
		if wait > 0 {
			retry.Reset(wait)
		}
	}
}

func (r *Reporter) nodeStatus(now metav1.Time) v1.NodeStatus {
	cond := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		return v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	// The kubelet's four conditions: the node lifecycle controller marks
	// those a node never reports Unknown. Pressure is Mesos' to manage
	// (the agent's resources are the pods' limits), so it is reported as
	// none, as the kubelet reports it while there is none.
	st := v1.NodeStatus{
		Capacity: r.cfg.Capacity, Allocatable: r.cfg.Capacity, NodeInfo: r.cfg.NodeInfo,
		Conditions: []v1.NodeCondition{
			cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "Mesos accounts and limits the memory of pods on this agent"),
			cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "the k8sm executor reports no disk pressure"),
			cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "the k8sm executor reports no PID pressure"),
			cond(v1.NodeReady, v1.ConditionTrue, "K8smExecutorReady", "the k8sm executor runs pods on this Mesos agent"),
		},
	}
	if r.cfg.KubeletPort != 0 {
		st.DaemonEndpoints.KubeletEndpoint.Port = r.cfg.KubeletPort
	}
	if r.cfg.HostIP != "" {
		st.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: r.cfg.HostIP}, {Type: v1.NodeHostName, Address: r.cfg.NodeName}}
	}
	return st
}

// ensureNode creates the Node, or takes over an existing one, with our
// labels and a Ready status. An existing Node is only patched: its taints
// and the rest belong to others (the node lifecycle controller, kubectl),
// and NodeRestriction refuses a node's write that carries stale taints.
func (r *Reporter) ensureNode(ctx context.Context) (*v1.Node, error) {
	nodes := r.cs.CoreV1().Nodes()
	want := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Labels: r.cfg.Labels}}
	node, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if len(r.cfg.Labels) == 0 {
			node, err = nodes.Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
		} else {
			var patch []byte
			if patch, err = json.Marshal(map[string]any{"metadata": map[string]any{"labels": r.cfg.Labels}}); err == nil {
				node, err = nodes.Patch(ctx, r.cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{})
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("register Node %s: %w", r.cfg.NodeName, err)
	}
	if err := r.updateNodeStatus(ctx); err != nil {
		return nil, fmt.Errorf("set the status of Node %s: %w", r.cfg.NodeName, err)
	}
	r.log.Info("Node registered", "capacity", r.cfg.Capacity, "kubeletVersion", r.cfg.NodeInfo.KubeletVersion)
	return node, nil
}

// updateNodeStatus patches the Node's status (strategic merge: conditions
// by type, other fields kept). Addresses are replaced as a whole, as the
// kubelet's status patch does: merged by type, an old address would stay.
func (r *Reporter) updateNodeStatus(ctx context.Context) error {
	b, err := json.Marshal(r.nodeStatus(metav1.Now()))
	if err != nil {
		return err
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if addrs, ok := st["addresses"].([]any); ok {
		st["addresses"] = append(addrs, map[string]any{"$patch": "replace"})
	}
	patch, err := json.Marshal(map[string]any{"status": st})
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
		if _, static := r.mirrorWant[uid]; static {
			mirror, made := r.mirrors[uid]
			switch {
			case !made:
				continue // written once its mirror pod is made
			case mirror == "":
				delete(r.pending, uid) // not mirrored
				continue
			}
			p.uid = mirror
		}
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
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": p.uid}, "status": p.status})
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
