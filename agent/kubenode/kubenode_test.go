package kubenode

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Pod status writes are coalesced: within MinPodWrite only the newest
// status is written, once, and what changed meanwhile goes next.
func TestPodStatusWritesCoalesce(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1"}}
	cs := fake.NewClientset(pod)
	r, err := New(Config{NodeName: "n", MinPodWrite: time.Hour}, cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	patches := func() int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	for _, ph := range []v1.PodPhase{v1.PodPending, v1.PodRunning} {
		r.PodStatus(pod, v1.PodStatus{Phase: ph})
	}
	if wait := r.writePods(context.Background()); wait != 0 || patches() != 1 {
		t.Fatalf("first write: wait %v, %d patches; want one patch, nothing left", wait, patches())
	}
	got, err := cs.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
	if err != nil || got.Status.Phase != v1.PodRunning {
		t.Fatalf("written status: %v %v, want the newest (Running)", got.Status.Phase, err)
	}
	r.PodStatus(pod, v1.PodStatus{Phase: v1.PodSucceeded})
	if wait := r.writePods(context.Background()); wait <= 0 || patches() != 1 {
		t.Fatalf("second write inside MinPodWrite: wait %v, %d patches; want it held back", wait, patches())
	}
	// A pod gone from the API server is dropped, not retried for ever.
	gone := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: "default", UID: "u2"}}
	r.PodStatus(gone, v1.PodStatus{Phase: v1.PodRunning})
	r.writePods(context.Background())
	r.mu.Lock()
	_, still := r.pending["u2"]
	r.mu.Unlock()
	if still {
		t.Fatal("the status of a pod the API server does not have is still pending")
	}
}

// A static pod's mirror pod is made as NodeRestriction wants it (mirror
// annotation, bound to and controller-owned by the Node), an outdated
// mirror is replaced, a non-mirror pod of the name is left alone, and the
// static pod's status goes to the mirror pod's UID.
func TestMirrorPods(t *testing.T) {
	ctx := context.Background()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", UID: "node-uid"}}
	old := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old-n", Namespace: "kube-system", UID: "old-mirror",
		Annotations: map[string]string{MirrorAnnotation: "stale-hash"}}, Spec: v1.PodSpec{NodeName: "n"}}
	alien := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "alien-n", Namespace: "kube-system", UID: "alien"}}
	cs := fake.NewClientset(node, old, alien)
	made := 0
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		made++ // the API server gives each new object a UID
		a.(k8stesting.CreateAction).GetObject().(*v1.Pod).UID = types.UID(fmt.Sprintf("mirror-%d", made))
		return false, nil, nil
	})
	r, err := New(Config{NodeName: "n", MinPodWrite: time.Millisecond}, cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	static := func(name, hash string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", UID: types.UID("static-" + name),
			Annotations: map[string]string{"kubernetes.io/config.hash": hash, "kubernetes.io/config.source": "file"}},
			Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}}}
	}
	fresh, outdated, clash := static("fresh-n", "h1"), static("old-n", "h2"), static("alien-n", "h3")
	for _, p := range []*v1.Pod{fresh, outdated, clash} {
		r.Mirror(p)
		r.PodStatus(p, v1.PodStatus{Phase: v1.PodRunning})
	}
	if left := r.syncMirrors(ctx, node); left {
		t.Fatal("mirrors left to make after one pass with a working API server")
	}
	for _, p := range []*v1.Pod{fresh, outdated} {
		m, err := cs.CoreV1().Pods("kube-system").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o := m.OwnerReferences
		if m.Annotations[MirrorAnnotation] != p.Annotations["kubernetes.io/config.hash"] || m.Spec.NodeName != "n" ||
			len(o) != 1 || o[0].Kind != "Node" || o[0].UID != "node-uid" || o[0].Controller == nil || !*o[0].Controller || o[0].BlockOwnerDeletion != nil {
			t.Fatalf("mirror of %s: annotations %v node %q owners %+v", p.Name, m.Annotations, m.Spec.NodeName, o)
		}
		if !strings.HasPrefix(string(m.UID), "mirror-") {
			t.Fatalf("mirror of %s has uid %q: not a new object", p.Name, m.UID)
		}
	}
	if a, err := cs.CoreV1().Pods("kube-system").Get(ctx, "alien-n", metav1.GetOptions{}); err != nil || a.UID != "alien" {
		t.Fatalf("the non-mirror pod of a static pod's name was touched: %v %v", a, err)
	}
	r.writePods(ctx)
	var statusUIDs []string
	for _, a := range cs.Actions() {
		if pa, ok := a.(interface{ GetPatch() []byte }); ok && a.GetSubresource() == "status" {
			statusUIDs = append(statusUIDs, string(pa.GetPatch()))
		}
	}
	if len(statusUIDs) != 2 {
		t.Fatalf("status patches %q, want the two mirrored pods'", statusUIDs)
	}
	for _, p := range statusUIDs {
		if !strings.Contains(p, `"uid":"mirror-`) {
			t.Fatalf("status patch %s does not carry the mirror pod's uid", p)
		}
	}
}

// Taking over an existing Node patches our labels and status only: taints
// others set (the node lifecycle controller's not-ready, kubectl taint)
// stay, and no write carries a stale copy of them (NodeRestriction refuses
// a node's update that changes taints).
func TestEnsureNodeKeepsOthersFields(t *testing.T) {
	taint := v1.Taint{Key: "node.kubernetes.io/not-ready", Effect: v1.TaintEffectNoSchedule}
	old := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", UID: "node-uid", Labels: map[string]string{"team": "a", "zone": "old"}},
		Spec: v1.NodeSpec{Taints: []v1.Taint{taint}},
		// What the node lifecycle controller leaves on a Node no kubelet
		// has reported yet, and an address of an earlier life.
		Status: v1.NodeStatus{
			Conditions: []v1.NodeCondition{{Type: v1.NodeMemoryPressure, Status: v1.ConditionUnknown, Reason: "NodeStatusNeverUpdated"}},
			Addresses:  []v1.NodeAddress{{Type: v1.NodeExternalIP, Address: "203.0.113.9"}, {Type: v1.NodeInternalIP, Address: "10.0.0.9"}},
		}}
	cs := fake.NewClientset(old)
	info := SystemInfo(Host{DockerVersion: "26.1.5"}, "v0.4.1")
	r, err := New(Config{NodeName: "n", Labels: map[string]string{"zone": "z1"}, NodeInfo: info, HostIP: "10.0.0.1"}, cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	node, err := r.ensureNode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if node.UID != "node-uid" {
		t.Errorf("ensureNode returned UID %q, want the Node's (lease and mirror pods are owned by it)", node.UID)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("%s %s/%s: a whole-object write of an existing Node", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
		}
	}
	got, err := cs.CoreV1().Nodes().Get(context.Background(), "n", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Taints) != 1 || got.Spec.Taints[0] != taint {
		t.Errorf("taints %v, want the existing %v kept", got.Spec.Taints, taint)
	}
	if got.Labels["team"] != "a" || got.Labels["zone"] != "z1" {
		t.Errorf("labels %v, want team=a kept and zone=z1 set", got.Labels)
	}
	if got.Status.NodeInfo.KubeletVersion != "v1.35.8-k8sm.0.4.1" || got.Status.NodeInfo.ContainerRuntimeVersion != "docker://26.1.5" {
		t.Errorf("nodeInfo %+v", got.Status.NodeInfo)
	}
	conds := map[v1.NodeConditionType]v1.ConditionStatus{}
	for _, c := range got.Status.Conditions {
		conds[c.Type] = c.Status
	}
	if want := map[v1.NodeConditionType]v1.ConditionStatus{v1.NodeReady: v1.ConditionTrue, v1.NodeMemoryPressure: v1.ConditionFalse,
		v1.NodeDiskPressure: v1.ConditionFalse, v1.NodePIDPressure: v1.ConditionFalse}; !reflect.DeepEqual(conds, want) {
		t.Errorf("conditions %v, want %v", conds, want)
	}
	if want := []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}, {Type: v1.NodeHostName, Address: "n"}}; !reflect.DeepEqual(got.Status.Addresses, want) {
		t.Errorf("addresses %v, want exactly %v (replaced, not merged)", got.Status.Addresses, want)
	}
}
