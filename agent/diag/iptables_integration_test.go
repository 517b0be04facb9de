//go:build integration && linux

package diag

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/k8sm/k8sm/test/testenv"
)

// Stale K8SM- chains (no proxy running) are counted and reported, and
// --reap removes them and nothing else, in a namespace of the test's own.
func TestStaleChainsReapedInANamespace(t *testing.T) {
	ns := testenv.NewNetns(t)
	ctx := context.Background()
	for _, args := range [][]string{
		{"-t", "nat", "-N", "K8SM-SVC-STALESTALESTALE"},
		{"-t", "nat", "-N", "OTHER"},
		{"-t", "filter", "-N", "K8SM-SERVICES"},
	} {
		if out, err := ns.Run(ctx, "iptables", args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{APIDir: dir, DockerEndpoint: "unix://" + dir + "/none.sock", CgroupFS: dir, CgroupRoot: "mesos", Iptables: "iptables"}
	var before, after *Report
	var acts []Action
	if err := ns.Do(func() error {
		if here, _ := os.Readlink("/proc/thread-self/ns/net"); here == host {
			t.Fatal("not in the test's namespace")
		}
		before = Evaluate(Gather(ctx, cfg))
		acts = Reap(ctx, cfg, before, false)
		after = Evaluate(Gather(ctx, cfg))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if before.Proxy.Chains != 2 || before.Worst() != Fail { // Docker is down too
		t.Fatalf("before: %d chains, problems %+v", before.Proxy.Chains, before.Problems)
	}
	done := false
	for _, a := range acts {
		if strings.Contains(a.What, "K8SM- iptables chains") && a.Done {
			done = true
		}
	}
	if !done || after.Proxy.Chains != 0 {
		t.Fatalf("reap %+v; chains after %d", acts, after.Proxy.Chains)
	}
	out, err := ns.Run(ctx, "iptables-save", "-t", "nat")
	if err != nil || !strings.Contains(string(out), ":OTHER") {
		t.Fatalf("the reap touched a chain that is not k8sm's: %v\n%s", err, out)
	}
}
