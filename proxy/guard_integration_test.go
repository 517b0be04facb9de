//go:build integration && linux

package proxy

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// guarded is the real Iptables for tests, refusing, before it runs
// anything, every call made from a thread in the machine's own network
// namespace: tests change iptables only in namespaces they made. (A
// goroutine that left its namespace's thread, such as one b.Run starts, is
// stopped here instead of programming the host.)
type guarded struct {
	*Exec
}

// machineNetns is the namespace the test binary started in: the machine's
// own (read at init, before any test enters a namespace).
var machineNetns = func() string {
	l, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		panic(fmt.Sprintf("read the machine's network namespace: %v", err))
	}
	return l
}()

func (g guarded) check() {
	here, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil || here == machineNetns {
		panic(fmt.Sprintf("iptables call in the machine's own network namespace (%s, %v): refused", here, err))
	}
}

func (g guarded) Restore(ctx context.Context, doc []byte) error {
	g.check()
	return g.Exec.Restore(ctx, doc)
}
func (g guarded) Save(ctx context.Context, table string) ([]byte, error) {
	g.check()
	return g.Exec.Save(ctx, table)
}
func (g guarded) EnsureJump(table, chain string, rule ...string) error {
	g.check()
	return g.Exec.EnsureJump(table, chain, rule...)
}
func (g guarded) DeleteJump(table, chain string, rule ...string) error {
	g.check()
	return g.Exec.DeleteJump(table, chain, rule...)
}
func (g guarded) ChainExists(table, chain string) (bool, error) {
	g.check()
	return g.Exec.ChainExists(table, chain)
}

// testExec is NewExec behind the guard; call it inside a namespace.
func testExec(command string) (guarded, error) {
	g := guarded{}
	g.check()
	e, err := NewExec(command)
	g.Exec = e
	return g, err
}

// The guard itself: from the test's own goroutine (the machine's
// namespace) every call is refused.
func TestGuardRefusesTheHostNamespace(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an iptables call in the machine's namespace was let through")
		}
	}()
	guarded{}.check()
}
