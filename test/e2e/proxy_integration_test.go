//go:build integration && linux

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/k8sm/k8sm/test/testenv"
)

// "k8sm-agent proxy --cleanup" on a node whose executor died: every K8SM-
// chain and the jumps to them go, nothing else does (in a namespace of the
// test's own).
func TestProxyCleanupCommand(t *testing.T) {
	ns := testenv.NewNetns(t)
	ctx := context.Background()
	for _, args := range [][]string{
		{"-t", "nat", "-N", "K8SM-SERVICES"},
		{"-t", "nat", "-N", "K8SM-SVC-LEFTLEFTLEFTLEFT"},
		{"-t", "nat", "-A", "K8SM-SERVICES", "-j", "K8SM-SVC-LEFTLEFTLEFTLEFT"},
		{"-t", "nat", "-A", "OUTPUT", "-m", "comment", "--comment", "k8sm service portals", "-j", "K8SM-SERVICES"},
		{"-t", "nat", "-N", "SOMEONE-ELSE"},
		{"-t", "nat", "-A", "OUTPUT", "-j", "SOMEONE-ELSE"},
	} {
		if out, err := ns.Run(ctx, "iptables", args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	out, err := ns.Run(ctx, agentBinary, "proxy", "--cleanup")
	if err != nil || !strings.Contains(string(out), "removed 2 K8SM- chains") {
		t.Fatalf("proxy --cleanup: %v\n%s", err, out)
	}
	save, err := ns.Run(ctx, "iptables-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(save); strings.Contains(s, "K8SM-") || !strings.Contains(s, "-A OUTPUT -j SOMEONE-ELSE") {
		t.Fatalf("after cleanup:\n%s", s)
	}
}
