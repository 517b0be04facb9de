//go:build integration && linux

package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/k8sm/k8sm/test/testenv"
)

// hosts is two network namespaces joined by a veth pair: A (192.0.2.1,
// where the proxy and the client run) and B (192.0.2.2, the "pods' host":
// servers on HostIP:HostPort). A routes everything to B, as a node routes
// to its gateway, so a cluster IP has a route before it is DNATed.
type hosts struct {
	a, b   *testenv.Netns
	va, vb string // the veth ends in A and B
}

func newHosts(t *testing.T) *hosts {
	t.Helper()
	h := &hosts{a: testenv.NewNetns(t), b: testenv.NewNetns(t)}
	h.va, h.vb = "k8sa"+h.a.Name[len(h.a.Name)-6:], "k8sb"+h.b.Name[len(h.b.Name)-6:]
	va, vb := h.va, h.vb
	for _, args := range [][]string{
		{"link", "add", va, "netns", h.a.Name, "type", "veth", "peer", "name", vb, "netns", h.b.Name},
		{"-n", h.a.Name, "addr", "add", "192.0.2.1/24", "dev", va},
		{"-n", h.b.Name, "addr", "add", "192.0.2.2/24", "dev", vb},
		{"-n", h.a.Name, "link", "set", va, "up"},
		{"-n", h.b.Name, "link", "set", vb, "up"},
		{"-n", h.a.Name, "route", "add", "default", "via", "192.0.2.2"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	return h
}

// serve listens in B on addr and answers each connection with name.
func (h *hosts) serve(t *testing.T, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := h.b.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(name + "\n"))
			_ = c.Close()
		}
	}()
}

// get connects from A to addr and returns the first line the server says.
func (h *hosts) get(addr string) (string, error) {
	var line string
	err := h.a.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		if errors.Is(err, io.EOF) {
			err = nil
		}
		line = strings.TrimSpace(line)
		return err
	})
	return line, err
}

// inA runs fn with iptables commands of mode going to namespace A.
func (h *hosts) inA(t *testing.T, command string, fn func(ipt guarded) error) {
	t.Helper()
	if err := h.a.Do(func() error {
		ipt, err := testExec(command)
		if err != nil {
			return err
		}
		return fn(ipt)
	}); err != nil {
		t.Fatal(err)
	}
}

var (
	generated = regexp.MustCompile(`(?m)^#.*\n`)
	counters  = regexp.MustCompile(`\[\d+:\d+\]`)
)

// others is iptables-save of nat and filter in A without anything of the
// proxy's: its chains, their rules and the jumps to them; comments and
// counters dropped (they change with time and traffic).
func others(t *testing.T, ctx context.Context, ipt guarded) string {
	t.Helper()
	var b strings.Builder
	for _, tb := range Tables {
		out, err := ipt.Save(ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		s := counters.ReplaceAllString(generated.ReplaceAllString(string(out), ""), "[0:0]")
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "K8SM-") {
				continue
			}
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestRealIptables(t *testing.T) {
	for _, mode := range []string{"iptables-nft", "iptables-legacy"} {
		t.Run(mode, func(t *testing.T) { testRealIptables(t, mode) })
	}
}

func testRealIptables(t *testing.T, command string) {
	if _, err := exec.LookPath(command); err != nil {
		testenv.Skip(t, "%s not installed (run \"make env\"): %v", command, err)
	}
	ctx := context.Background()
	h := newHosts(t)
	h.serve(t, "192.0.2.2:31002", "b1")
	h.serve(t, "192.0.2.2:31003", "b2")
	// Rules of others, which the proxy must leave exactly as they are.
	for _, args := range [][]string{
		{"-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.0/8", "-j", "MASQUERADE"},
		{"-t", "nat", "-N", "KUBE-SERVICES"},
		{"-t", "nat", "-A", "OUTPUT", "-j", "KUBE-SERVICES"},
		{"-t", "filter", "-N", "OTHER"},
		{"-t", "filter", "-A", "OTHER", "-p", "tcp", "--dport", "9", "-j", "DROP"},
		{"-t", "filter", "-A", "OUTPUT", "-j", "OTHER"},
	} {
		if out, err := h.a.Run(ctx, command, args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	web := service("default", "web", "10.96.0.10", tcp("http", 80))
	p := New(Config{Conntrack: "/nonexistent", SyncPeriod: time.Hour}, nil, nil)
	var before string
	h.inA(t, command, func(ipt guarded) error {
		p.ipt = ipt
		before = others(t, ctx, ipt)
		p.SetService(web)
		p.SetSlice(slice("default", "web", "web-1", "http", v1.ProtocolTCP, 31002, readyEP("192.0.2.2")))
		return p.Sync(ctx)
	})
	if got, err := h.get("10.96.0.10:80"); err != nil || got != "b1" {
		t.Fatalf("10.96.0.10:80 from A: %q %v, want b1", got, err)
	}

	// The endpoint moves: traffic follows.
	h.inA(t, command, func(guarded) error {
		p.SetSlice(slice("default", "web", "web-1", "http", v1.ProtocolTCP, 31003, readyEP("192.0.2.2")))
		return p.Sync(ctx)
	})
	if got, err := h.get("10.96.0.10:80"); err != nil || got != "b2" {
		t.Fatalf("after the endpoint moved: %q %v, want b2", got, err)
	}

	// No endpoint: refused at once, not a timeout.
	h.inA(t, command, func(guarded) error {
		p.DeleteSlice("default", "web-1")
		return p.Sync(ctx)
	})
	start := time.Now()
	_, err := h.get("10.96.0.10:80")
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Fatalf("without endpoints: %v after %v, want connection refused at once", err, time.Since(start))
	}

	// 1,000 syncs (every 50th full) with services coming and going; the
	// others' rules stay byte for byte.
	h.inA(t, command, func(guarded) error {
		p.SetSlice(slice("default", "web", "web-1", "http", v1.ProtocolTCP, 31002, readyEP("192.0.2.2")))
		for i := range 1000 {
			name := fmt.Sprintf("s%d", i%20)
			if i%3 == 0 {
				p.DeleteService("default", name)
			} else {
				p.SetService(service("default", name, fmt.Sprintf("10.96.1.%d", i%20+1), tcp("", 80)))
				p.SetSlice(slice("default", name, name+"-1", "", v1.ProtocolTCP, int32(30000+i%7), readyEP("192.0.2.2")))
			}
			if i%50 == 0 {
				p.needFull = true
			}
			if err := p.Sync(ctx); err != nil {
				return fmt.Errorf("sync %d: %w", i, err)
			}
		}
		return nil
	})
	var during, after string
	h.inA(t, command, func(ipt guarded) error {
		during = others(t, ctx, ipt)
		n, err := Cleanup(ctx, ipt)
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("cleanup removed no chain")
		}
		after = others(t, ctx, ipt)
		for _, tb := range Tables {
			out, err := ipt.Save(ctx, tb)
			if err != nil {
				return err
			}
			if strings.Contains(string(out), "K8SM-") {
				return fmt.Errorf("K8SM- left in %s after cleanup:\n%s", tb, out)
			}
		}
		return nil
	})
	if during != before || after != before {
		t.Fatalf("other rules changed:\n--- before\n%s\n--- after 1000 syncs\n%s\n--- after cleanup\n%s", before, during, after)
	}
}

// TestNoFailureDuringResyncs: a client connecting 200 times a second sees
// no failure while 100 syncs, full and incremental, rewrite the rules.
func TestNoFailureDuringResyncs(t *testing.T) {
	ctx := context.Background()
	h := newHosts(t)
	h.serve(t, "192.0.2.2:31002", "b1")
	p := New(Config{Conntrack: "/nonexistent", SyncPeriod: time.Hour}, nil, nil)
	h.inA(t, "iptables", func(ipt guarded) error {
		p.ipt = ipt
		p.SetService(service("default", "web", "10.96.0.10", tcp("http", 80)))
		p.SetSlice(slice("default", "web", "web-1", "http", v1.ProtocolTCP, 31002, readyEP("192.0.2.2")))
		return p.Sync(ctx)
	})
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if got, err := h.get("10.96.0.10:80"); err != nil || got != "b1" {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%q %v", got, err))
			} else {
				ok.Add(1)
			}
		}
	}()
	start := time.Now()
	h.inA(t, "iptables", func(guarded) error {
		for i := range 100 {
			name := fmt.Sprintf("other-%d", i%10)
			p.SetService(service("default", name, fmt.Sprintf("10.96.3.%d", i%10+1), tcp("", 80)))
			p.SetSlice(slice("default", name, name+"-1", "", v1.ProtocolTCP, int32(31000+i), readyEP("192.0.2.2")))
			p.needFull = i%2 == 0
			if err := p.Sync(ctx); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() < 100 {
		t.Fatalf("%d connections failed (first: %v), %d worked, during 100 resyncs in %v", failed.Load(), firstErr.Load(), ok.Load(), time.Since(start))
	}
	t.Logf("%d connections, none failed, during 100 resyncs in %v", ok.Load(), time.Since(start))
	h.inA(t, "iptables", func(ipt guarded) error { _, err := Cleanup(ctx, ipt); return err })
}

// NodeIP finds the address of the default route's interface: in A, the
// route goes out of the veth that has 192.0.2.1.
func TestNodeIP(t *testing.T) {
	h := newHosts(t)
	var ip net.IP
	if err := h.a.Do(func() (err error) { ip, err = NodeIP(); return err }); err != nil {
		t.Fatal(err)
	}
	if ip.String() != "192.0.2.1" {
		t.Fatalf("node IP %s, want 192.0.2.1", ip)
	}
	if err := h.b.Do(func() (err error) { _, err = NodeIP(); return err }); err == nil {
		t.Fatal("a node IP in a namespace without a default route")
	}
}

// Cleanup on a node where the proxy never ran: nothing to do, no error.
func TestCleanupOnACleanNamespace(t *testing.T) {
	h := newHosts(t)
	h.inA(t, "iptables", func(ipt guarded) error {
		n, err := Cleanup(context.Background(), ipt)
		if err == nil && n != 0 {
			err = fmt.Errorf("removed %d chains from a clean namespace", n)
		}
		return err
	})
}

// A document the kernel refuses comes back as a RestoreError naming the
// line (legacy names the rule, nft the COMMIT of the table that failed),
// with the lines around it, and changes nothing.
func TestRestoreErrorNamesTheLine(t *testing.T) {
	for _, mode := range []string{"iptables-nft", "iptables-legacy"} {
		t.Run(mode, func(t *testing.T) { testRestoreError(t, mode) })
	}
}

func testRestoreError(t *testing.T, command string) {
	h := newHosts(t)
	doc := "*nat\n:K8SM-GOOD - [0:0]\n-A K8SM-GOOD -j RETURN\n-A K8SM-GOOD -p tcp --dport 80 -j K8SM-MISSING\nCOMMIT\n"
	h.inA(t, command, func(ipt guarded) error {
		err := ipt.Restore(context.Background(), []byte(doc))
		var re *RestoreError
		if !errors.As(err, &re) || re.Line < 4 || !strings.Contains(re.Lines, "> ") || !strings.Contains(re.Lines, "K8SM-MISSING") {
			return fmt.Errorf("restore of a bad document: %w (line %d, lines %q)", err, lineOf(re), linesOf(re))
		}
		if ok, err := ipt.ChainExists("nat", "K8SM-GOOD"); err != nil || ok {
			return fmt.Errorf("a refused document left K8SM-GOOD (%v, %w)", ok, err)
		}
		return nil
	})
}

func lineOf(re *RestoreError) int {
	if re == nil {
		return 0
	}
	return re.Line
}

func linesOf(re *RestoreError) string {
	if re == nil {
		return ""
	}
	return re.Lines
}

// serveUDP listens in B on addr (UDP) and answers each datagram with name.
func (h *hosts) serveUDP(t *testing.T, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := h.b.Do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
}

// udpFlow is one UDP 5-tuple from A to a service: a socket bound to a fixed
// source port, so every datagram belongs to the same conntrack entry.
type udpFlow struct{ c *net.UDPConn }

func (h *hosts) udpFlow(t *testing.T, src, dst string) *udpFlow {
	t.Helper()
	var f udpFlow
	if err := h.a.Do(func() error {
		la, err := net.ResolveUDPAddr("udp", src)
		if err != nil {
			return err
		}
		ra, err := net.ResolveUDPAddr("udp", dst)
		if err != nil {
			return err
		}
		f.c, err = net.DialUDP("udp", la, ra)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.Close() })
	return &f
}

// ask sends a datagram and returns the answering server's name.
func (f *udpFlow) ask() (string, error) {
	if _, err := f.c.Write([]byte("?")); err != nil {
		return "", err
	}
	_ = f.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, err := f.c.Read(buf)
	return string(buf[:n]), err
}

// TestUDPConntrackCleared: a UDP flow keeps its DNAT in conntrack after its
// endpoint is removed from the rules (shown first, with clearing off);
// with conntrack present the proxy deletes the removed endpoint's entries,
// so the same flow's next datagram reaches a current endpoint.
func TestUDPConntrackCleared(t *testing.T) {
	conntrack, err := exec.LookPath("conntrack")
	if err != nil {
		testenv.Skip(t, "conntrack not installed (run \"make env\"): %v", err)
	}
	ctx := context.Background()
	h := newHosts(t)
	if out, err := exec.Command("ip", "-n", h.b.Name, "addr", "add", "192.0.2.3/24", "dev", h.vb).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	h.serveUDP(t, "192.0.2.2:31053", "one")
	h.serveUDP(t, "192.0.2.3:31053", "two")
	dns := service("kube-system", "dns", "10.96.0.53", v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP})
	to := func(ip string) *discoveryv1.EndpointSlice {
		return slice("kube-system", "dns", "dns-1", "dns", v1.ProtocolUDP, 31053, readyEP(ip))
	}
	p := New(Config{Conntrack: "/nonexistent", SyncPeriod: time.Hour}, nil, nil)
	program := func(sl *discoveryv1.EndpointSlice) {
		t.Helper()
		h.inA(t, "iptables", func(ipt guarded) error {
			p.ipt = ipt
			p.SetService(dns)
			p.SetSlice(sl)
			return p.Sync(ctx)
		})
	}
	expect := func(f *udpFlow, want, when string) {
		t.Helper()
		if got, err := f.ask(); err != nil || got != want {
			t.Fatalf("%s: answered by %q (%v), want %q", when, got, err, want)
		}
	}
	defer h.inA(t, "iptables", func(ipt guarded) error { _, err := Cleanup(ctx, ipt); return err })

	program(to("192.0.2.2"))
	f1 := h.udpFlow(t, "192.0.2.1:40001", "10.96.0.53:53")
	expect(f1, "one", "flow 1 to the first endpoint")
	// Clearing off (no conntrack command): the rules move to .3, the
	// established flow does not.
	program(to("192.0.2.3"))
	expect(f1, "one", "flow 1 after its endpoint left, without conntrack clearing")
	f2 := h.udpFlow(t, "192.0.2.1:40002", "10.96.0.53:53")
	expect(f2, "two", "a new flow after the move")

	// Clearing on: .3 leaves, flow 2's entry goes with it.
	p.cfg.Conntrack = conntrack
	program(to("192.0.2.2"))
	expect(f2, "one", "flow 2 after its endpoint left, with conntrack clearing")
}
