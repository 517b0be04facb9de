//go:build integration && linux

package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k8sm/k8sm/test/testenv"
)

// TestNodeAndPodStatusInTheAPIServer: with --kubeconfig the executor, as
// system:node:k8sm-node3, registers its Node (attribute labels, capacity,
// Ready), keeps a Lease, and writes its pod's status, which any API client
// (kubectl get pod -o yaml) then sees.
func TestNodeAndPodStatusInTheAPIServer(t *testing.T) {
	const nodeName = "k8sm-node3"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, admin := newKubeNode(t, nodeName)
	n.exInfo.Data = packStatic(t, "node-agent")
	mirrorName := "node-agent-" + nodeName
	t.Cleanup(func() {
		zero := int64(0)
		_ = admin.CoreV1().Pods("default").Delete(context.Background(), mirrorName, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})

	// The pod as the scheduler binds it: in the API server, on this node.
	created := sleeper(testenv.RandomName(4))
	task := n.launchAPIPod(t, ctx, admin, created)

	waitFor(t, "the Node Ready with the agent's attributes", func() bool {
		node, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil || node.Labels["k8sm.io/attribute-rack"] != "r1" || node.Labels["kubernetes.io/hostname"] != nodeName {
			return false
		}
		cpu := node.Status.Capacity[v1.ResourceCPU]
		for _, c := range node.Status.Conditions {
			if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue && cpu.MilliValue() == 63750 {
				return true
			}
		}
		return false
	})
	waitFor(t, "the node Lease", func() bool {
		l, err := admin.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == nodeName && len(l.OwnerReferences) == 1
	})
	waitFor(t, "the pod Running in the API server", func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, created.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == v1.PodRunning && len(p.Status.ContainerStatuses) == 1 &&
			p.Status.ContainerStatuses[0].State.Running != nil && p.Status.HostIP == "127.0.0.1"
	})

	// What an operator sees: kubectl get pod -o yaml shows the status the
	// executor wrote.
	out, err := exec.CommandContext(ctx, testenv.KubeBinary(t, "kubectl"), "--kubeconfig", testenv.Kubeconfig,
		"get", "pod", "-n", "default", created.Name, "-o", "yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get pod -o yaml: %v\n%s", err, out)
	}
	for _, want := range []string{"phase: Running", "hostIP: 127.0.0.1", "nodeName: " + nodeName, "running:"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("kubectl get pod -o yaml lacks %q:\n%s", want, out)
		}
	}

	// The static pod's mirror pod, made by the node identity (which
	// NodeRestriction lets make only mirror pods), with the static pod's
	// status.
	waitFor(t, "the static pod's mirror pod Running", func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, mirrorName, metav1.GetOptions{})
		return err == nil && p.Annotations["kubernetes.io/config.mirror"] != "" && p.Spec.NodeName == nodeName &&
			p.Status.Phase == v1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	})

	n.sched.Must(calls.Kill(task.TaskID.Value, n.a.ID()))
	n.expect(task.TaskID.Value, mesos.TASK_KILLED)
	waitFor(t, "the killed pod's final status in the API server", func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, created.Name, metav1.GetOptions{})
		return err == nil && (p.Status.Phase == v1.PodFailed || p.Status.Phase == v1.PodSucceeded)
	})
}

// newKubeNode is a node whose executor is nodeName in the bed's API
// server: --kubeconfig of system:node:<nodeName>, its kubelet API on a free
// port taking the API server's client certificate, and --proxy=false (the
// executor runs in the machine's own network namespace here, whose
// iptables tests never touch; the proxy has its own tests, in namespaces).
// The Node and its Lease are deleted at the end. It returns the bed's
// admin client too.
func newKubeNode(t testing.TB, nodeName string) (*node, kubernetes.Interface) {
	t.Helper()
	admin := testenv.RequireKube(t)
	testenv.RequireKubeAs(t, "system:node:"+nodeName)
	t.Cleanup(func() {
		_ = admin.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{})
		_ = admin.CoordinationV1().Leases(v1.NamespaceNodeLease).Delete(context.Background(), nodeName, metav1.DeleteOptions{})
	})
	n := newNamedNode(t, 5*time.Second, nodeName, "--kubeconfig", testenv.KubeconfigFor("system:node:"+nodeName), "--proxy=false",
		"--kubelet-port=0", "--client-ca-file="+testenv.ClusterCA)
	return n, admin
}
