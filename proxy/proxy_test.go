package proxy

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func service(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func tcp(name string, port int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, Protocol: v1.ProtocolTCP}
}

type ep struct {
	ip                          string
	ready, serving, terminating bool
}

func slice(ns, svc, name, portName string, proto v1.Protocol, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			discoveryv1.LabelManagedBy: ManagedBy, discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(proto), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)}})
	}
	return s
}

func readyEP(ip string) ep { return ep{ip: ip, ready: true, serving: true} }

// fixture: a web service over two hosts' ports, a DNS service with UDP and
// ClientIP affinity, a service without endpoints, one whose only endpoint
// is terminating but serving, a headless one, and a slice of someone else.
func fixture() ([]*v1.Service, []*discoveryv1.EndpointSlice) {
	web := service("default", "web", "10.96.0.10", tcp("http", 80))
	dns := service("kube-system", "dns", "10.96.0.53", v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP})
	dns.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	dns.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(600))}}
	empty := service("default", "empty", "10.96.0.20", tcp("http", 80))
	draining := service("default", "draining", "10.96.0.30", tcp("", 8080))
	headless := service("default", "headless", v1.ClusterIPNone, tcp("http", 80))
	foreign := slice("default", "web", "web-by-kube", "http", v1.ProtocolTCP, 8080, readyEP("172.17.0.9"))
	foreign.Labels[discoveryv1.LabelManagedBy] = "endpointslice-controller.k8s.io"
	return []*v1.Service{web, dns, empty, draining, headless}, []*discoveryv1.EndpointSlice{
		slice("default", "web", "web-1", "http", v1.ProtocolTCP, 31002, readyEP("192.0.2.11"), readyEP("192.0.2.12"), ep{ip: "192.0.2.13"}),
		slice("kube-system", "dns", "dns-1", "dns", v1.ProtocolUDP, 31053, readyEP("192.0.2.11")),
		slice("default", "draining", "draining-1", "", v1.ProtocolTCP, 31080, ep{ip: "192.0.2.14", serving: true, terminating: true}),
		foreign,
	}
}

func TestBuildState(t *testing.T) {
	svcs, slices := fixture()
	st := BuildState(svcs, slices)
	var got []string
	for _, s := range st {
		got = append(got, fmt.Sprintf("%s %d usable %d", s.Key(), len(s.Endpoints), len(s.usable())))
	}
	want := []string{"default/draining 1 usable 1", "default/empty:http 0 usable 0", "default/web:http 3 usable 2", "kube-system/dns:dns 1 usable 1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("state:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st[3].AffinitySeconds != 600 || st[3].Protocol != v1.ProtocolUDP {
		t.Fatalf("dns: %+v", st[3])
	}
}

func TestRenderGolden(t *testing.T) {
	svcs, slices := fixture()
	doc := Render(BuildState(svcs, slices), RenderOptions{}).Document(map[string][]string{"nat": {"K8SM-SVC-OLDOLDOLDOLDOLDO"}})
	path := filepath.Join("testdata", "rules.golden")
	if *update {
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatalf("rendered rules differ from %s (go test -run TestRenderGolden -update to accept):\n%s", path, doc)
	}
	for _, t2 := range Tables {
		r := Render(BuildState(svcs, slices), RenderOptions{})
		for _, c := range r.Chains(t2) {
			if len(c) > 28 || !Owned(c) {
				t.Errorf("chain %q: longer than 28 or not K8SM-", c)
			}
		}
	}
}

// programmed applies the fixture on a fresh fake through a Proxy.
func programmed(t *testing.T) (*fakeIptables, *Proxy) {
	t.Helper()
	f := newFake()
	return f, syncedFixture(t, f)
}

// syncedFixture is a Proxy over ipt told of the fixture and synced once.
func syncedFixture(t *testing.T, ipt Iptables) *Proxy {
	t.Helper()
	p := New(Config{Conntrack: "/nonexistent"}, ipt, nil)
	svcs, slices := fixture()
	for _, s := range svcs {
		p.SetService(s)
	}
	for _, s := range slices {
		p.SetSlice(s)
	}
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPacketTraces(t *testing.T) {
	f, _ := programmed(t)
	for _, tc := range []struct {
		name string
		p    packet
		want verdict
	}{
		{"TCP to 10.96.0.10:80 from the node DNATs to 192.0.2.11:31002",
			packet{proto: "tcp", src: "192.0.2.1", dst: "10.96.0.10", dport: 80, fromNode: true, srcIsNode: true, random: []float64{0.2}},
			verdict{dnat: "192.0.2.11:31002"}},
		{"the other half of the draws goes to 192.0.2.12",
			packet{proto: "tcp", src: "192.0.2.1", dst: "10.96.0.10", dport: 80, fromNode: true, srcIsNode: true, random: []float64{0.7}},
			verdict{dnat: "192.0.2.12:31002"}},
		{"from a container (not the node): DNAT and masquerade",
			packet{proto: "tcp", src: "172.17.0.5", dst: "10.96.0.10", dport: 80, random: []float64{0.2}},
			verdict{dnat: "192.0.2.11:31002", masq: true}},
		{"hairpin: the endpoint itself reaches the service: masquerade",
			packet{proto: "tcp", src: "192.0.2.11", dst: "10.96.0.10", dport: 80, fromNode: true, srcIsNode: true, random: []float64{0.2}},
			verdict{dnat: "192.0.2.11:31002", masq: true}},
		{"wrong port: untouched",
			packet{proto: "tcp", src: "192.0.2.1", dst: "10.96.0.10", dport: 81, fromNode: true, srcIsNode: true},
			verdict{}},
		{"UDP DNS with affinity, one endpoint",
			packet{proto: "udp", src: "192.0.2.1", dst: "10.96.0.53", dport: 53, fromNode: true, srcIsNode: true},
			verdict{dnat: "192.0.2.11:31053"}},
		{"TCP to the DNS IP is not the service",
			packet{proto: "tcp", src: "192.0.2.1", dst: "10.96.0.53", dport: 53, fromNode: true, srcIsNode: true},
			verdict{}},
		{"no endpoints: rejected",
			packet{proto: "tcp", src: "192.0.2.1", dst: "10.96.0.20", dport: 80, fromNode: true, srcIsNode: true},
			verdict{rejected: true}},
		{"no endpoints, forwarded: rejected",
			packet{proto: "tcp", src: "172.17.0.5", dst: "10.96.0.20", dport: 80},
			verdict{rejected: true}},
		{"only a terminating serving endpoint: still used",
			packet{proto: "tcp", src: "192.0.2.1", dst: "10.96.0.30", dport: 8080, fromNode: true, srcIsNode: true},
			verdict{dnat: "192.0.2.14:31080"}},
	} {
		got, err := f.trace(tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.dnat != tc.want.dnat || got.masq != tc.want.masq || got.rejected != tc.want.rejected {
			t.Errorf("%s: got dnat %q masq %v rejected %v (path %v)", tc.name, got.dnat, got.masq, got.rejected, got.path)
		}
	}
}

// Spreading: over 3 endpoints each gets a third of the draws.
func TestSpreadIsEven(t *testing.T) {
	f := newFake()
	p := New(Config{Conntrack: "/nonexistent"}, f, nil)
	p.SetService(service("default", "three", "10.96.1.1", tcp("", 80)))
	p.SetSlice(slice("default", "three", "three-1", "", v1.ProtocolTCP, 30000, readyEP("192.0.2.1"), readyEP("192.0.2.2"), readyEP("192.0.2.3")))
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	count := map[string]int{}
	const n = 30000
	for range n {
		v, err := f.trace(packet{proto: "tcp", src: "192.0.2.9", dst: "10.96.1.1", dport: 80, fromNode: true, srcIsNode: true,
			random: []float64{rng.Float64(), rng.Float64()}})
		if err != nil {
			t.Fatal(err)
		}
		count[v.dnat]++
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if c := count[ip+":30000"]; c < n/3-600 || c > n/3+600 {
			t.Errorf("%s got %d of %d connections, want about a third", ip, c, n)
		}
	}
}

// tablesOf is the fake's K8SM- state plus the jumps, for comparisons.
func tablesOf(f *fakeIptables) string {
	var b strings.Builder
	for _, tb := range Tables {
		out, _ := f.Save(context.Background(), tb)
		b.Write(out)
	}
	return b.String()
}

// Incremental syncs after random changes leave exactly what one full sync
// of the final state leaves, and every document is one the kernel takes.
func TestIncrementalSyncsEqualAFullOne(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	f := newFake()
	p := New(Config{Conntrack: "/nonexistent", SyncPeriod: 1 << 62, FullSyncPeriod: 1 << 62}, f, nil)
	ctx := context.Background()
	svcs := map[int]bool{}
	idle := 0 // syncs that changed no rule
	for step := range 300 {
		i := rng.Intn(30)
		name := fmt.Sprintf("s%d", i)
		switch rng.Intn(4) {
		case 0:
			p.DeleteService("default", name)
			delete(svcs, i)
		case 1:
			p.DeleteSlice("default", name+"-1")
		default:
			p.SetService(service("default", name, fmt.Sprintf("10.96.2.%d", i+1), tcp("", 80)))
			svcs[i] = true
			var eps []ep
			for range rng.Intn(4) {
				eps = append(eps, ep{ip: fmt.Sprintf("192.0.2.%d", rng.Intn(5)+1), ready: rng.Intn(4) > 0, serving: true})
			}
			p.SetSlice(slice("default", name, name+"-1", "", v1.ProtocolTCP, int32(30000+rng.Intn(3)), eps...))
		}
		before := f.restores
		if err := p.Sync(ctx); err != nil {
			t.Fatalf("step %d: %v\n%s", step, err, f.lastDoc)
		}
		if f.restores-before > 1 {
			t.Fatalf("step %d: %d restores in one sync", step, f.restores-before)
		}
		if f.restores == before {
			idle++
		}
	}
	// Each sync is one restore, except those whose changes left every rule
	// as it was (deleting a slice already gone, say): those run none.
	if f.restores+idle != 300 || f.restores < 200 {
		t.Fatalf("%d restores and %d idle syncs for 300 syncs", f.restores, idle)
	}
	incremental := tablesOf(f)
	fresh := newFake()
	q := New(Config{Conntrack: "/nonexistent"}, fresh, nil)
	p.mu.Lock()
	for _, s := range p.services {
		q.SetService(s)
	}
	for _, s := range p.slices {
		q.SetSlice(s)
	}
	p.mu.Unlock()
	if err := q.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if full := tablesOf(fresh); full != incremental {
		t.Fatalf("incremental syncs and a full one disagree:\n--- incremental\n%s\n--- full\n%s", incremental, full)
	}
}

// A flushed table (the canary gone) forces a full resync that restores
// everything; a restore error forces one next time; an incremental sync
// writes only the chains that changed (not even K8SM-SERVICES when its
// /24 dispatch is the same).
func TestResyncs(t *testing.T) {
	ctx := context.Background()
	f, p := programmed(t)
	full := len(f.lastDoc)
	p.SetSlice(slice("default", "web", "web-1", "http", v1.ProtocolTCP, 31002, readyEP("192.0.2.11")))
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	dns := SvcChain(ServicePort{Namespace: "kube-system", Name: "dns", Port: "dns", Protocol: v1.ProtocolUDP})
	web := SvcChain(ServicePort{Namespace: "default", Name: "web", Port: "http", Protocol: v1.ProtocolTCP})
	if inc := len(f.lastDoc); inc >= full || !bytes.Contains(f.lastDoc, []byte(":"+web)) ||
		bytes.Contains(f.lastDoc, []byte(":"+ChainServices)) || bytes.Contains(f.lastDoc, []byte(":"+dns)) {
		t.Fatalf("incremental document (%d bytes, full %d) rewrote unchanged chains or not the changed one:\n%s", inc, full, f.lastDoc)
	}
	want := tablesOf(f)

	// Nothing changed: no restore at all, but a jump someone deleted from a
	// built-in chain comes back.
	f.lastDoc = nil
	if err := f.DeleteJump(jumps[0].table, jumps[0].chain, jumps[0].rule...); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if f.lastDoc != nil {
		t.Fatalf("a sync without changes ran iptables-restore:\n%s", f.lastDoc)
	}
	if got := tablesOf(f); got != want {
		t.Fatalf("a sync without changes did not put the deleted jump back:\n%s\nwant:\n%s", got, want)
	}

	// Someone flushes nat: canary, chains and jumps gone.
	f.tables["nat"] = map[string][]string{"PREROUTING": nil, "INPUT": nil, "OUTPUT": nil, "POSTROUTING": nil}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tablesOf(f); got != want {
		t.Fatalf("after a flush the resync did not restore the rules:\n%s\nwant:\n%s", got, want)
	}

	f.failNext = &RestoreError{Line: 3, Stderr: "line 3 failed"}
	p.SetService(service("default", "new", "10.96.0.77", tcp("", 80)))
	if err := p.Sync(ctx); err == nil || p.Status().LastError == "" {
		t.Fatal("a failed restore was not reported")
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(f.lastDoc, []byte(":"+ChainPostrouting)) {
		t.Fatalf("the sync after a failure was not a full one:\n%s", f.lastDoc)
	}
	if st := p.Status(); st.ServicePorts != 5 || st.LastError != "" || st.Chains == 0 {
		t.Fatalf("status %+v", st)
	}
}

// Stale K8SM- chains, left by a proxy that died, go in the first full sync;
// Cleanup removes every K8SM- chain and jump and nothing else.
func TestStaleChainsAndCleanup(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	other := "-A OUTPUT -d 198.51.100.1/32 -j ACCEPT"
	f.tables["nat"]["OUTPUT"] = []string{other}
	f.tables["nat"]["KUBE-SERVICES"] = []string{}
	f.tables["nat"]["K8SM-SVC-LEFTOVERLEFTOVE"] = []string{"-A K8SM-SVC-LEFTOVERLEFTOVE -j ACCEPT"}
	before := tablesOf(f)
	syncedFixture(t, f)
	if _, ok := f.tables["nat"]["K8SM-SVC-LEFTOVERLEFTOVE"]; ok {
		t.Fatal("a stale K8SM- chain survived the full sync")
	}
	n, err := Cleanup(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("Cleanup removed nothing")
	}
	after := tablesOf(f)
	if strings.Contains(after, "K8SM-") {
		t.Fatalf("K8SM- left after Cleanup:\n%s", after)
	}
	// Everything else is as it was (less the leftover chain).
	if want := strings.ReplaceAll(before, ":K8SM-SVC-LEFTOVERLEFTOVE - [0:0]\n", ""); after != strings.ReplaceAll(want, "-A K8SM-SVC-LEFTOVERLEFTOVE -j ACCEPT\n", "") {
		t.Fatalf("Cleanup touched other rules:\n%s\nwant:\n%s", after, want)
	}
}

// The fake refuses what the kernel refuses (so it can catch a bad
// document).
func TestFakeRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"jump to a missing chain":  "*nat\n:K8SM-A - [0:0]\n-A K8SM-A -j K8SM-B\nCOMMIT\n",
		"delete a jumped-to chain": "*nat\n:K8SM-A - [0:0]\n:K8SM-B - [0:0]\n-A K8SM-A -j K8SM-B\n-X K8SM-B\nCOMMIT\n",
		"flush a built-in chain":   "*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
		"a long chain name":        "*nat\n:K8SM-SVC-12345678901234567890 - [0:0]\nCOMMIT\n",
		"no COMMIT":                "*nat\n:K8SM-A - [0:0]\n",
	} {
		f := newFake()
		err := f.Restore(context.Background(), []byte(doc))
		var re *RestoreError
		if !errors.As(err, &re) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
		if _, ok := f.tables["nat"]["K8SM-A"]; ok {
			t.Errorf("%s: a failed restore changed the table", name)
		}
	}
}
