package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// EndpointSlices k8sm writes (DESIGN.md "Services"); the agents' proxy
// reads only these. kube-controller-manager's own slices (managed-by
// endpointslice-controller.k8s.io) are left alone.
const ManagedBy = "k8sm-scheduler.k8sm.io"

// endpoints is the endpoints controller: for every Service with a
// selector, EndpointSlices whose addresses are the host IPs of the
// selected k8sm pods and whose ports are the host ports their target
// ports are mapped to (pods use host-private networking).
type endpoints struct {
	cs     kubernetes.Interface
	log    *slog.Logger
	svcs   corelisters.ServiceLister
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	slices discoverylisters.EndpointSliceLister

	mu    sync.Mutex
	dirty map[string]bool // ns/name of services to sync
	poke  chan struct{}
}

func newEndpoints(cs kubernetes.Interface, f informers.SharedInformerFactory, log *slog.Logger) *endpoints {
	e := &endpoints{cs: cs, log: log, dirty: map[string]bool{}, poke: make(chan struct{}, 1),
		svcs: f.Core().V1().Services().Lister(), pods: f.Core().V1().Pods().Lister(),
		nodes: f.Core().V1().Nodes().Lister(), slices: f.Discovery().V1().EndpointSlices().Lister()}
	obj := func(o any) metav1.Object {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		m, _ := o.(metav1.Object)
		return m
	}
	svc := func(o any) {
		if m := obj(o); m != nil {
			e.mark(m.GetNamespace() + "/" + m.GetName())
		}
	}
	pod := func(o any) {
		if m := obj(o); m != nil && m.GetAnnotations()[podspec.TaskIDAnnotation] != "" {
			e.markNamespace(m.GetNamespace(), m.GetLabels())
		}
	}
	slice := func(o any) {
		if m := obj(o); m != nil && m.GetLabels()[discoveryv1.LabelManagedBy] == ManagedBy {
			e.mark(m.GetNamespace() + "/" + m.GetLabels()[discoveryv1.LabelServiceName])
		}
	}
	handlers := func(fn func(any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{AddFunc: fn, UpdateFunc: func(_, o any) { fn(o) }, DeleteFunc: fn}
	}
	_, _ = f.Core().V1().Services().Informer().AddEventHandler(handlers(svc))
	_, _ = f.Core().V1().Pods().Informer().AddEventHandler(handlers(pod))
	_, _ = f.Discovery().V1().EndpointSlices().Informer().AddEventHandler(handlers(slice))
	_ = f.Core().V1().Nodes().Informer()
	return e
}

func (e *endpoints) mark(k string) {
	e.mu.Lock()
	e.dirty[k] = true
	e.mu.Unlock()
	select {
	case e.poke <- struct{}{}:
	default:
	}
}

// markNamespace marks the services of ns whose selector matches a pod
// with labels podLabels.
func (e *endpoints) markNamespace(ns string, podLabels map[string]string) {
	svcs, err := e.svcs.Services(ns).List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(podLabels)) {
			e.mark(ns + "/" + s.Name)
		}
	}
}

// Run syncs dirty services, at most every 100ms, retrying failures after
// a second.
func (e *endpoints) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.poke:
		}
		e.mu.Lock()
		todo := e.dirty
		e.dirty = map[string]bool{}
		e.mu.Unlock()
		failed := false
		for k := range todo {
			ns, name, _ := strings.Cut(k, "/")
			if err := e.sync(ctx, ns, name); err != nil {
				e.log.Warn("sync EndpointSlices", "service", k, "err", err)
				e.mu.Lock()
				e.dirty[k] = true
				e.mu.Unlock()
				failed = true
			}
		}
		wait := 100 * time.Millisecond
		if failed {
			wait = time.Second
			select {
			case e.poke <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (e *endpoints) sync(ctx context.Context, ns, name string) error {
	have, err := e.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ManagedBy}))
	if err != nil {
		return err
	}
	var want []*discoveryv1.EndpointSlice
	svc, err := e.svcs.Services(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	case len(svc.Spec.Selector) > 0 && svc.Spec.Type != v1.ServiceTypeExternalName:
		pods, err := e.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
		if err != nil {
			return err
		}
		want = DesiredSlices(svc, pods, e.hostIP)
	}
	byName := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range have {
		byName[s.Name] = s
	}
	api := e.cs.DiscoveryV1().EndpointSlices(ns)
	for _, w := range want {
		cur := byName[w.Name]
		delete(byName, w.Name)
		switch {
		case cur == nil:
			if _, err := api.Create(ctx, w, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create EndpointSlice %s/%s: %w", ns, w.Name, err)
			}
			e.log.Info("EndpointSlice created", "slice", ns+"/"+w.Name, "endpoints", len(w.Endpoints))
		case !apiequality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) || !apiequality.Semantic.DeepEqual(cur.Ports, w.Ports) ||
			!apiequality.Semantic.DeepEqual(cur.Labels, w.Labels):
			up := cur.DeepCopy()
			up.Endpoints, up.Ports, up.Labels, up.OwnerReferences = w.Endpoints, w.Ports, w.Labels, w.OwnerReferences
			if _, err := api.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update EndpointSlice %s/%s: %w", ns, w.Name, err)
			}
			e.log.Debug("EndpointSlice updated", "slice", ns+"/"+w.Name, "endpoints", len(w.Endpoints))
		}
	}
	for n := range byName {
		if err := api.Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete EndpointSlice %s/%s: %w", ns, n, err)
		}
		e.log.Info("EndpointSlice deleted", "slice", ns+"/"+n)
	}
	return nil
}

// hostIP is the pod's host IP: its status, else its Node's InternalIP.
func (e *endpoints) hostIP(p *v1.Pod) string {
	if p.Status.HostIP != "" {
		return p.Status.HostIP
	}
	if n, err := e.nodes.Get(p.Spec.NodeName); err == nil {
		for _, a := range n.Status.Addresses {
			if a.Type == v1.NodeInternalIP {
				return a.Address
			}
		}
	}
	return ""
}

// DesiredSlices is the pure part of the endpoints controller: the slices
// of svc for pods (those the selector matched). A pod counts when k8sm
// launched it, it is bound and not finished, and its host IP is known;
// each service port is its target port's host port (a target port
// without one is unreachable from other hosts and left out). Pods whose
// ports map to the same host ports share one slice.
func DesiredSlices(svc *v1.Service, pods []*v1.Pod, hostIP func(*v1.Pod) string) []*discoveryv1.EndpointSlice {
	type group struct {
		ports []discoveryv1.EndpointPort
		eps   []discoveryv1.Endpoint
	}
	groups := map[string]*group{}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for _, p := range pods {
		if p.Annotations[podspec.TaskIDAnnotation] == "" || p.Spec.NodeName == "" ||
			p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		ip := hostIP(p)
		if ip == "" {
			continue
		}
		var eps []discoveryv1.EndpointPort
		var sig []string
		for _, sp := range svc.Spec.Ports {
			hp := hostPortFor(p, sp)
			if hp == 0 {
				continue
			}
			proto := sp.Protocol
			if proto == "" {
				proto = v1.ProtocolTCP
			}
			eps = append(eps, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(hp), Protocol: ptr.To(proto)})
			sig = append(sig, fmt.Sprintf("%s/%d/%s", sp.Name, hp, proto))
		}
		if len(eps) == 0 {
			continue
		}
		k := strings.Join(sig, ",")
		g := groups[k]
		if g == nil {
			g = &group{ports: eps}
			groups[k] = g
		}
		ready := p.DeletionTimestamp == nil && podReady(p)
		g.eps = append(g.eps, discoveryv1.Endpoint{
			Addresses: []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(podReady(p)),
				Terminating: ptr.To(p.DeletionTimestamp != nil)},
			NodeName:  ptr.To(p.Spec.NodeName),
			TargetRef: &v1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		})
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*discoveryv1.EndpointSlice, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		h := sha256.Sum256([]byte(k))
		out = append(out, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: sliceName(svc.Name, hex.EncodeToString(h[:])[:10]), Namespace: svc.Namespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: ManagedBy},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
					Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   g.eps,
			Ports:       g.ports,
		})
	}
	return out
}

func sliceName(svc, hash string) string {
	const suffix = "-k8sm-"
	if max := 63 - len(suffix) - len(hash); len(svc) > max {
		svc = strings.TrimRight(svc[:max], "-.")
	}
	return svc + suffix + hash
}

// hostPortFor is the host port the pod maps sp's target port to (0: none).
func hostPortFor(p *v1.Pod, sp v1.ServicePort) int32 {
	proto := sp.Protocol
	if proto == "" {
		proto = v1.ProtocolTCP
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			cproto := cp.Protocol
			if cproto == "" {
				cproto = v1.ProtocolTCP
			}
			if cproto != proto {
				continue
			}
			tp := sp.TargetPort
			match := false
			switch {
			case tp.StrVal != "":
				match = cp.Name == tp.StrVal
			case tp.IntVal != 0:
				match = cp.ContainerPort == tp.IntVal
			default: // targetPort unset: the service port
				match = cp.ContainerPort == sp.Port
			}
			if match {
				if cp.HostPort != 0 {
					return cp.HostPort
				}
				return podspec.BoundHostPort(p.Annotations[podspec.HostPortsAnnotation], c.Name, cp.ContainerPort, cproto)
			}
		}
	}
	return 0
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
