//go:build integration && linux

package diag

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k8sm/k8sm/cgroups"
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

// A pod cgroup (with a process in it) left below a dead k8sm executor's
// Mesos container is reported as leaked, and --reap kills its process and
// removes it from every hierarchy; a live process outside it is untouched.
func TestLeakedPodCgroupReaped(t *testing.T) {
	root := testenv.NewMesosCgroup(t)
	const cid, uid = "c-dead", "99999999-8888-7777-6666-555555555555"
	m, err := cgroups.New(cgroups.Config{Root: "/sys/fs/cgroup", Unified: cgroups.HostUnified(), Parent: root.Path + "/" + cid})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := m.Create(uid, cgroups.Limits{CPURequestMilli: 100, MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()
	defer func() {
		_ = sleeper.Process.Kill()
		if err := <-exited; err == nil {
			t.Log("sleep exited by itself")
		}
	}()
	if err := pc.AddProc(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The dead executor's socket: a file nothing listens on.
	if err := os.WriteFile(filepath.Join(dir, cid+".sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{APIDir: dir, DockerEndpoint: "unix://" + dir + "/none.sock", CgroupFS: "/sys/fs/cgroup", CgroupRoot: root.Path, Timeout: time.Second}
	r := Evaluate(Gather(context.Background(), cfg))
	want := root.Path + "/" + cid + "/" + uid
	if len(r.LeakedCgroups) != 1 || r.LeakedCgroups[0] != want {
		t.Fatalf("leaked cgroups %v, want [%s]", r.LeakedCgroups, want)
	}
	for _, a := range Reap(context.Background(), cfg, r, false) {
		if strings.Contains(a.What, "pod cgroup") && !a.Done {
			t.Fatalf("reap: %+v", a)
		}
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err == nil {
			t.Fatal("the process in the leaked cgroup exited by itself, not killed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the process in the leaked cgroup was not killed")
	}
	for _, d := range append(mapValues(root.V1), root.Unified) {
		if _, err := os.Stat(filepath.Join(d, cid, uid)); d != "" && err == nil {
			t.Errorf("pod cgroup left in %s", d)
		}
	}
	if r := Evaluate(Gather(context.Background(), cfg)); len(r.LeakedCgroups) != 0 {
		t.Fatalf("still leaked after --reap: %v", r.LeakedCgroups)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
