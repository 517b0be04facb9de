package kubenode

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
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
