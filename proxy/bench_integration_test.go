//go:build integration && linux

package proxy

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k8sm/k8sm/test/testenv"
)

// benchServices is the size of the benchmarks (K8SM_BENCH_SERVICES, default
// 10,000 services of 2 endpoints each).
func benchServices() int {
	if n, err := strconv.Atoi(os.Getenv("K8SM_BENCH_SERVICES")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// clusterIP spreads the services over 10.97.0.0/16 as the API server's
// random allocator would (a permutation: no two alike).
func clusterIP(i int) string {
	h := (i*7919 + 1) % 65521
	return fmt.Sprintf("10.97.%d.%d", h>>8, h&255)
}

// benchIptables is the iptables command of the benchmarks
// (K8SM_BENCH_IPTABLES: iptables, iptables-nft or iptables-legacy).
func benchIptables() string {
	if c := os.Getenv("K8SM_BENCH_IPTABLES"); c != "" {
		return c
	}
	return "iptables"
}

func loaded(p *Proxy, n int) {
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		p.SetService(service("bench", name, clusterIP(i), tcp("http", 80)))
		p.SetSlice(slice("bench", name, name+"-1", "http", v1.ProtocolTCP, int32(30000+i%2000),
			readyEP(fmt.Sprintf("192.0.%d.%d", 2+i%2, i%250+1)), readyEP(fmt.Sprintf("198.51.100.%d", i%250+1))))
	}
}

// syncBench runs body inside a fresh network namespace after one full
// sync of 10,000 services x 2 endpoints (K8SM_BENCH_SERVICES) with real
// iptables (K8SM_BENCH_IPTABLES). Everything, b.Loop included, stays on
// the namespace's goroutine: a goroutine of its own (b.Run's) would run
// iptables in the machine's namespace, which the guard refuses.
func syncBench(b *testing.B, body func(p *Proxy, n int)) {
	n := benchServices()
	ns := testenv.NewNetns(b)
	var log *slog.Logger
	if os.Getenv("K8SM_BENCH_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := New(Config{Conntrack: "/nonexistent", SyncPeriod: time.Hour}, nil, log)
	loaded(p, n)
	err := ns.Do(func() error {
		ipt, err := testExec(benchIptables())
		if err != nil {
			return err
		}
		p.ipt = ipt
		if err := p.Sync(context.Background()); err != nil {
			return err
		}
		body(p, n)
		_, err = Cleanup(context.Background(), ipt)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSyncFull: the periodic full resync (every chain rewritten).
func BenchmarkSyncFull(b *testing.B) {
	syncBench(b, func(p *Proxy, n int) {
		for b.Loop() {
			p.mu.Lock()
			p.status.LastFull = time.Time{}
			p.mu.Unlock()
			if err := p.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(p.Status().LastRestoreBytes)/float64(n), "restore-bytes/service")
	})
}

// BenchmarkSyncRecovery: a full resync after a failure, which reads the
// tables back first.
func BenchmarkSyncRecovery(b *testing.B) {
	syncBench(b, func(p *Proxy, _ int) {
		for b.Loop() {
			p.needFull = true
			if err := p.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSyncOneChanged: one service's endpoints change, then a sync.
func BenchmarkSyncOneChanged(b *testing.B) {
	syncBench(b, func(p *Proxy, n int) {
		i := 0
		for b.Loop() {
			name := fmt.Sprintf("svc-%d", i%n)
			p.SetSlice(slice("bench", name, name+"-1", "http", v1.ProtocolTCP, int32(40000+i%2000), readyEP("192.0.2.200"), readyEP("192.0.2.201")))
			i++
			if err := p.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(p.Status().LastRestoreBytes), "restore-bytes")
	})
}

// BenchmarkRender: the pure part of a full sync.
func BenchmarkRender(b *testing.B) {
	p := New(Config{Conntrack: "/nonexistent"}, nil, nil)
	loaded(p, benchServices())
	st := p.state()
	for b.Loop() {
		_ = Render(st, RenderOptions{}).Document(nil)
	}
}

// BenchmarkAgainstKubeProxy: the same 10,000 services x 2 endpoints in the
// real API server, synced by this proxy (watching as a node) in one network
// namespace and by kube-proxy (iptables mode, built from the test API
// server's Kubernetes version) in another, in the same run. kube-proxy's
// figures come from its own metrics (kubeproxy_sync_full_proxy_rules and
// _partial_ duration histograms).
func BenchmarkAgainstKubeProxy(b *testing.B) {
	n := benchServices()
	admin := testenv.RequireKube(b)
	node := testenv.RequireKubeAs(b, "system:node:k8sm-node1")
	kubeProxy := testenv.KubeBinary(b, "kube-proxy")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	fast := fastClient(b)
	// The bed runs no namespace controller: the objects go in default under
	// names of this run's own, and are deleted one by one.
	nsName, prefix := "default", "bench-"+strings.TrimPrefix(testenv.RandomName(3), testenv.Prefix)
	b.Cleanup(func() {
		parallel(b, n, func(i int) error {
			name := fmt.Sprintf("%s-%d", prefix, i)
			_ = fast.CoreV1().Services(nsName).Delete(context.Background(), name, metav1.DeleteOptions{})
			_ = fast.DiscoveryV1().EndpointSlices(nsName).Delete(context.Background(), name+"-k8sm", metav1.DeleteOptions{})
			return nil
		})
	})
	created := time.Now()
	parallel(b, n, func(i int) error {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := fast.CoreV1().Services(nsName).Create(ctx, &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.ServiceSpec{Ports: []v1.ServicePort{tcp("http", 80)}}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		sl := slice(nsName, name, name+"-k8sm", "http", v1.ProtocolTCP, int32(30000+i%2000),
			readyEP(fmt.Sprintf("192.0.%d.%d", 2+i%2, i%250+1)), readyEP(fmt.Sprintf("198.51.100.%d", i%250+1)))
		sl.Namespace = ""
		_, err := fast.DiscoveryV1().EndpointSlices(nsName).Create(ctx, sl, metav1.CreateOptions{})
		return err
	})
	b.Logf("%d services and slices created in %v", n, time.Since(created).Round(time.Second))

	// kube-proxy in its own namespace. A fresh namespace cannot reach the
	// API server on the machine's loopback, so its address is forwarded in;
	// an address on its loopback gives kube-proxy a node IP (--bind-address)
	// without a Node object.
	kns := testenv.NewNetns(b)
	kns.Forward(b, apiServerAddress(b))
	if _, err := kns.Run(ctx, "ip", "addr", "add", "10.250.0.1/32", "dev", "lo"); err != nil {
		b.Fatal(err)
	}
	metricsAddr := "127.0.0.1:10249"
	kp := kns.Command(ctx, kubeProxy, "--kubeconfig", testenv.Kubeconfig, "--proxy-mode", "iptables",
		"--hostname-override", "k8sm-bench", "--bind-address", "10.250.0.1",
		"--metrics-bind-address", metricsAddr, "--healthz-bind-address", "127.0.0.1:10256",
		"--conntrack-max-per-core", "0", "--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0",
		"--iptables-min-sync-period", "0s", "--iptables-sync-period", "1h", "--v", "1")
	logf, err := os.CreateTemp(b.TempDir(), "kube-proxy-*.log")
	if err != nil {
		b.Fatal(err)
	}
	kp.Stdout, kp.Stderr = logf, logf
	// kube-proxy must not outlive an interrupted benchmark.
	kp.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := kp.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = kp.Process.Kill(); _ = kp.Wait() })
	kube := func(name string) (sum, count float64) {
		var out map[string]float64
		_ = kns.Do(func() error {
			out = scrape(metricsAddr, name+"_sum", name+"_count")
			return nil
		})
		return out[name+"_sum"], out[name+"_count"]
	}
	waitUntil(b, "kube-proxy's first full sync", logf.Name(), func() bool {
		_, c := kube("kubeproxy_sync_full_proxy_rules_duration_seconds")
		return c >= 1
	})
	kFullSum, kFullCount := kube("kubeproxy_sync_full_proxy_rules_duration_seconds")

	// This proxy in another, fed by the same API server.
	p := New(Config{Conntrack: "/nonexistent", SyncPeriod: time.Hour}, nil, nil)
	if err := Watch(ctx, node, p); err != nil {
		b.Fatal(err)
	}
	ours := testenv.NewNetns(b)
	// Both start from empty tables with every object known: kube-proxy's
	// first sync is a full one (its later full ones come hourly); this
	// proxy's first sync is timed the same way, then two periodic full
	// resyncs (every chain rewritten, no read-back).
	var oursFirst time.Duration
	var oursFull, oursOne []time.Duration
	err = ours.Do(func() error {
		ipt, err := testExec("iptables")
		if err != nil {
			return err
		}
		p.ipt = ipt
		for len(p.state()) < n {
			time.Sleep(100 * time.Millisecond)
		}
		t0 := time.Now()
		if err := p.Sync(ctx); err != nil {
			return err
		}
		oursFirst = time.Since(t0)
		for range 2 {
			p.mu.Lock()
			p.status.LastFull = time.Time{}
			p.mu.Unlock()
			t0 := time.Now()
			if err := p.Sync(ctx); err != nil {
				return err
			}
			oursFull = append(oursFull, time.Since(t0))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}

	// One service changes: both sync it.
	_, kPartialBefore := kube("kubeproxy_sync_partial_proxy_rules_duration_seconds")
	kPartialSumBefore, _ := kube("kubeproxy_sync_partial_proxy_rules_duration_seconds")
	for i := range 5 {
		name := fmt.Sprintf("%s-%d", prefix, i)
		sl, err := admin.DiscoveryV1().EndpointSlices(nsName).Get(ctx, name+"-k8sm", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		sl.Endpoints[0].Addresses = []string{fmt.Sprintf("192.0.2.%d", 200+i)}
		if _, err := admin.DiscoveryV1().EndpointSlices(nsName).Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		want := sl.Endpoints[0].Addresses[0]
		waitUntil(b, "the changed slice in this proxy", "", func() bool {
			for _, s := range p.state() {
				if s.Name == name && s.Endpoints[0].IP == want {
					return true
				}
			}
			return false
		})
		err = ours.Do(func() error {
			t0 := time.Now()
			err := p.Sync(ctx)
			oursOne = append(oursOne, time.Since(t0))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		waitUntil(b, "kube-proxy's partial sync", logf.Name(), func() bool {
			_, c := kube("kubeproxy_sync_partial_proxy_rules_duration_seconds")
			return c >= kPartialBefore+float64(i+1)
		})
	}
	kPartialSum, kPartialCount := kube("kubeproxy_sync_partial_proxy_rules_duration_seconds")
	kPartial := (kPartialSum - kPartialSumBefore) / (kPartialCount - kPartialBefore)
	kFull := kFullSum / kFullCount
	_ = ours.Do(func() error { _, err := Cleanup(ctx, p.ipt); return err })

	mean := func(d []time.Duration) float64 {
		var s time.Duration
		for _, x := range d {
			s += x
		}
		return s.Seconds() / float64(len(d))
	}
	for b.Loop() {
	}
	b.ReportMetric(oursFirst.Seconds()*1000, "k8sm-first-sync-ms")
	b.ReportMetric(kFull*1000, "kube-proxy-first-sync-ms")
	b.ReportMetric(oursFirst.Seconds()/kFull, "first-sync-ratio")
	b.ReportMetric(mean(oursFull)*1000, "k8sm-periodic-full-ms")
	b.ReportMetric(mean(oursOne)*1000, "k8sm-one-changed-ms")
	b.ReportMetric(kPartial*1000, "kube-proxy-partial-ms")
	b.ReportMetric(mean(oursOne)/kPartial, "partial-ratio")
}

// apiServerAddress is the test API server's host:port, from the bed's
// admin kubeconfig.
func apiServerAddress(b *testing.B) string {
	cfg, err := clientcmd.BuildConfigFromFlags("", testenv.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		b.Fatalf("API server address %q: %v", cfg.Host, err)
	}
	return u.Host
}

// fastClient is an admin client without client-side rate limits, to make
// the benchmark's objects quickly.
func fastClient(b *testing.B) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", testenv.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 2000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

func parallel(b *testing.B, n int, fn func(i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// scrape reads the named samples from the Prometheus text endpoint
// http://addr/metrics. It dials on the calling goroutine, which may be in a
// network namespace: net/http's Transport dials on goroutines of its own,
// which run in the machine's namespace.
func scrape(addr string, names ...string) map[string]float64 {
	out := map[string]float64{}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return out
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		return out
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return out
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		// kube-proxy labels its sync figures by IP family; this proxy is
		// IPv4 only, so only those count.
		name, labels, _ := strings.Cut(f[0], "{")
		if labels != "" && !strings.Contains(labels, `ip_family="IPv4"`) {
			continue
		}
		for _, n := range names {
			if name == n {
				out[n], _ = strconv.ParseFloat(f[1], 64)
			}
		}
	}
	return out
}

func waitUntil(b *testing.B, what, logFile string, cond func() bool) {
	if !testenv.Poll(10*time.Minute, cond) {
		log, _ := os.ReadFile(logFile)
		b.Fatalf("timed out waiting for %s\n%s", what, log)
	}
}

// state is every service port the proxy knows of, built afresh.
func (p *Proxy) state() []ServicePort {
	p.mu.Lock()
	svcs := make([]*v1.Service, 0, len(p.services))
	for _, s := range p.services {
		svcs = append(svcs, s)
	}
	sls := make([]*discoveryv1.EndpointSlice, 0, len(p.slices))
	for _, s := range p.slices {
		sls = append(sls, s)
	}
	p.mu.Unlock()
	return BuildState(svcs, sls)
}
