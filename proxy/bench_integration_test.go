//go:build integration && linux

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

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
