//go:build integration && linux

package proxy

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8sm/k8sm/test/testenv"
)

// TestServiceFromTheAPIServer: a Service and a k8sm EndpointSlice created
// with kubectl become rules in namespace A within a sync, as the node
// identity (system:node-proxier) sees them, and the cluster IP the API
// server gave reaches the endpoint in B.
func TestServiceFromTheAPIServer(t *testing.T) {
	admin := testenv.RequireKube(t)
	cs := testenv.RequireKubeAs(t, "system:node:k8sm-node1")
	kubectl := testenv.KubeBinary(t, "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The bed runs no namespace controller: objects go in default, under
	// a name of the test's own, and are deleted one by one.
	ns, name := "default", "web-"+strings.TrimPrefix(testenv.RandomName(4), testenv.Prefix)
	manifest := `apiVersion: v1
kind: Service
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ` + name + `-k8sm
  namespace: ` + ns + `
  labels: {kubernetes.io/service-name: ` + name + `, endpointslice.kubernetes.io/managed-by: ` + ManagedBy + `}
addressType: IPv4
ports: [{name: http, port: 31002, protocol: TCP}]
endpoints: [{addresses: ["192.0.2.2"], conditions: {ready: true}}]
`
	t.Cleanup(func() {
		_ = admin.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = admin.DiscoveryV1().EndpointSlices(ns).Delete(context.Background(), name+"-k8sm", metav1.DeleteOptions{})
	})

	h := newHosts(t)
	h.serve(t, "192.0.2.2:31002", "b1")
	p := New(Config{Conntrack: "/nonexistent", MinSyncInterval: 200 * time.Millisecond}, nil, nil)
	if err := Watch(ctx, cs, p); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- h.a.Do(func() error {
			ipt, err := testExec("iptables")
			if err != nil {
				return err
			}
			p.ipt = ipt
			if err := p.Run(runCtx); err != nil {
				return err
			}
			_, err = Cleanup(context.Background(), ipt)
			return err
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})

	start := time.Now()
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", testenv.Kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
	svc, err := admin.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := svc.Spec.ClusterIP + ":80"
	for {
		got, err := h.get(addr)
		if err == nil && got == "b1" {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s from A: %q %v 20s after kubectl apply (proxy status %+v)", addr, got, err, p.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("kubectl apply -> %s answers from its endpoint after %v (min sync interval 200ms)", addr, time.Since(start).Round(time.Millisecond))
	if st := p.Status(); st.ServicePorts < 1 || st.Endpoints < 1 {
		t.Fatalf("status %+v", st)
	}
}
