package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Config of a Proxy.
type Config struct {
	// MinSyncInterval is the least time between two syncs: changes inside
	// it are batched into the next (default 1s).
	MinSyncInterval time.Duration
	// SyncPeriod is how often a sync runs even without changes (default
	// 30s): it checks the canary and writes what changed.
	SyncPeriod time.Duration
	// FullSyncPeriod is how often a sync rewrites every chain even when
	// nothing seems to have changed (default 1h, as kube-proxy's full
	// resync): on iptables-nft a full write of 10,000 services costs tens of
	// seconds of CPU, far too much for every SyncPeriod.
	FullSyncPeriod time.Duration
	Render         RenderOptions
	// Conntrack is the conntrack command used to clear the entries of
	// removed UDP endpoints ("" finds it on PATH; missing: not cleared).
	Conntrack string
	// Metrics, when set, are kept up to date.
	Metrics *Metrics
}

// Status is what the proxy programmed, for diag and the node API.
type Status struct {
	ServicePorts int       `json:"servicePorts"`
	Endpoints    int       `json:"endpoints"`
	Chains       int       `json:"chains"`
	LastSync     time.Time `json:"lastSync"`
	LastFull     time.Time `json:"lastFullSync"`
	LastError    string    `json:"lastError,omitempty"`
	Syncs        int       `json:"syncs"`
	// LastRestoreBytes is the size of the last iptables-restore input.
	LastRestoreBytes int `json:"lastRestoreBytes"`
}

// Proxy keeps the node's K8SM- chains equal to Render of the Services and
// k8sm EndpointSlices it is told of. The event handlers (SetService, ...)
// may be called from any goroutine; every iptables command runs on Run's
// goroutine (or Sync's caller's).
type Proxy struct {
	cfg Config
	ipt Iptables
	log *slog.Logger

	mu        sync.Mutex
	services  map[types.NamespacedName]*v1.Service
	slices    map[types.NamespacedName]*discoveryv1.EndpointSlice
	sliceSvc  map[types.NamespacedName]types.NamespacedName // slice -> its service
	svcSlices map[types.NamespacedName]map[types.NamespacedName]bool
	dirty     map[types.NamespacedName]bool // services to re-render
	poke      chan struct{}
	status    Status

	// Owned by the syncing goroutine.
	b        *builder
	ports    map[types.NamespacedName][]ServicePort // what b has, by service
	pending  touched                                // chains changed since the last applied sync
	needFull bool
}

// New returns a proxy over ipt.
func New(cfg Config, ipt Iptables, log *slog.Logger) *Proxy {
	if cfg.MinSyncInterval <= 0 {
		cfg.MinSyncInterval = time.Second
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	if cfg.FullSyncPeriod <= 0 {
		cfg.FullSyncPeriod = time.Hour
	}
	if cfg.Conntrack == "" {
		if p, err := exec.LookPath("conntrack"); err == nil {
			cfg.Conntrack = p
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg, ipt: ipt, log: log.With("component", "proxy"),
		services: map[types.NamespacedName]*v1.Service{}, slices: map[types.NamespacedName]*discoveryv1.EndpointSlice{},
		sliceSvc: map[types.NamespacedName]types.NamespacedName{}, svcSlices: map[types.NamespacedName]map[types.NamespacedName]bool{},
		dirty: map[types.NamespacedName]bool{}, poke: make(chan struct{}, 1),
		b: newBuilder(cfg.Render), ports: map[types.NamespacedName][]ServicePort{}, pending: touched{}, needFull: true}
}

func (p *Proxy) changed() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// SetService records a Service's newest version.
func (p *Proxy) SetService(s *v1.Service) {
	k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	p.mu.Lock()
	p.services[k], p.dirty[k] = s, true
	p.mu.Unlock()
	p.changed()
}

// DeleteService forgets a Service.
func (p *Proxy) DeleteService(namespace, name string) {
	k := types.NamespacedName{Namespace: namespace, Name: name}
	p.mu.Lock()
	delete(p.services, k)
	p.dirty[k] = true
	p.mu.Unlock()
	p.changed()
}

// SetSlice records an EndpointSlice's newest version.
func (p *Proxy) SetSlice(s *discoveryv1.EndpointSlice) {
	k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	svc := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
	p.mu.Lock()
	p.unlinkSlice(k)
	p.slices[k], p.sliceSvc[k] = s, svc
	if p.svcSlices[svc] == nil {
		p.svcSlices[svc] = map[types.NamespacedName]bool{}
	}
	p.svcSlices[svc][k], p.dirty[svc] = true, true
	p.mu.Unlock()
	p.changed()
}

// DeleteSlice forgets an EndpointSlice.
func (p *Proxy) DeleteSlice(namespace, name string) {
	p.mu.Lock()
	p.unlinkSlice(types.NamespacedName{Namespace: namespace, Name: name})
	p.mu.Unlock()
	p.changed()
}

// unlinkSlice forgets slice k and marks its service dirty; p.mu is held.
func (p *Proxy) unlinkSlice(k types.NamespacedName) {
	if svc, ok := p.sliceSvc[k]; ok {
		delete(p.svcSlices[svc], k)
		if len(p.svcSlices[svc]) == 0 {
			delete(p.svcSlices, svc)
		}
		p.dirty[svc] = true
	}
	delete(p.slices, k)
	delete(p.sliceSvc, k)
}

// Status is what the last sync programmed.
func (p *Proxy) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Run syncs at once, then whenever something changed (at most once per
// MinSyncInterval) and at least every SyncPeriod, until ctx ends. A failed
// sync is retried after MinSyncInterval. It returns nil at ctx's end and
// leaves the rules in place (Cleanup removes them).
func (p *Proxy) Run(ctx context.Context) error {
	resync := time.NewTimer(0)
	defer resync.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.poke:
		case <-resync.C:
		}
		if wait := p.cfg.MinSyncInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		last = time.Now()
		next := p.cfg.SyncPeriod
		if err := p.Sync(ctx); err != nil {
			p.log.Error("sync failed; the next one is a full resync", "err", err)
			next = p.cfg.MinSyncInterval
		}
		if !resync.Stop() {
			select {
			case <-resync.C:
			default:
			}
		}
		resync.Reset(next)
	}
}

// jumps are the rules in built-in chains that lead to the proxy's.
var jumps = []struct {
	table, chain string
	rule         []string
}{
	{"nat", "PREROUTING", []string{"-m", "comment", "--comment", "k8sm service portals", "-j", ChainServices}},
	{"nat", "OUTPUT", []string{"-m", "comment", "--comment", "k8sm service portals", "-j", ChainServices}},
	{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "k8sm postrouting rules", "-j", ChainPostrouting}},
	{"filter", "OUTPUT", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "k8sm service portals", "-j", ChainServices}},
	{"filter", "FORWARD", []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "k8sm service portals", "-j", ChainServices}},
}

// Sync programs the current state once: a full resync when none was done
// yet, the last one failed, FullSyncPeriod passed since the last full one, or
// the canary chain is gone (someone flushed the tables); otherwise only the
// chains that changed. Stale K8SM- chains are found by reading the tables
// back (iptables-save, slow on iptables-nft) only when their content is
// unknown: at the first sync, after a failure, or without the canary.
func (p *Proxy) Sync(ctx context.Context) error {
	start := time.Now()
	// Re-render the services that changed, and only those.
	p.mu.Lock()
	type work struct {
		svc    *v1.Service
		slices []*discoveryv1.EndpointSlice
	}
	todo := make(map[types.NamespacedName]work, len(p.dirty))
	for k := range p.dirty {
		w := work{svc: p.services[k]}
		for sl := range p.svcSlices[k] {
			w.slices = append(w.slices, p.slices[sl])
		}
		todo[k] = w
	}
	p.dirty = map[types.NamespacedName]bool{}
	p.mu.Unlock()
	var gone []ServicePort // UDP ports whose removed endpoints lose their conntrack entries
	for k, w := range todo {
		var ports []ServicePort
		if w.svc != nil {
			ports = BuildState([]*v1.Service{w.svc}, w.slices)
		}
		gone = append(gone, removedUDP(p.ports[k], ports)...)
		p.b.update(k.Namespace+"/"+k.Name, ports, p.pending)
		if len(ports) == 0 {
			delete(p.ports, k)
		} else {
			p.ports[k] = ports
		}
	}
	r := p.b.rs
	rendered := time.Since(start)
	// unknown: what the tables hold is not what the last sync left (none
	// yet, it failed, or someone deleted the canary): read them back.
	unknown := p.needFull
	if !unknown {
		for _, t := range Tables {
			ok, err := p.ipt.ChainExists(t, ChainCanary)
			if err != nil || !ok {
				p.log.Warn("canary chain gone: someone flushed the tables; full resync", "table", t, "err", err)
				unknown = true
				break
			}
		}
	}
	full := unknown || time.Since(p.Status().LastFull) >= p.cfg.FullSyncPeriod
	var doc []byte
	if full {
		stale := map[string][]string{}
		for t, cs := range p.pending {
			for c := range cs {
				if !r.Has(t, c) {
					stale[t] = append(stale[t], c)
				}
			}
		}
		if unknown {
			for _, t := range Tables {
				save, err := p.ipt.Save(ctx, t)
				if err != nil {
					return p.failed(err)
				}
				for _, c := range OwnedChains(save) {
					if !r.Has(t, c) && !p.pending[t][c] {
						stale[t] = append(stale[t], c)
					}
				}
			}
		}
		doc = r.Document(stale)
	} else if !p.pending.empty() {
		doc = r.documentOf(p.pending)
	}
	checked := time.Since(start)
	// Nothing changed (a periodic sync): no restore, whose cache load alone
	// costs iptables-nft ~0.2 s with 10,000 services; the jumps from the
	// built-in chains are checked instead, as on a full sync.
	idle := doc == nil
	if !idle {
		if err := p.ipt.Restore(ctx, doc); err != nil {
			var re *RestoreError
			if errors.As(err, &re) && re.Lines != "" {
				p.log.Error("iptables-restore refused the rules", "line", re.Line, "said", re.Stderr, "lines", re.Lines)
			}
			return p.failed(err)
		}
	}
	restored := time.Since(start)
	if full || idle {
		for _, j := range jumps {
			if err := p.ipt.EnsureJump(j.table, j.chain, j.rule...); err != nil {
				return p.failed(err)
			}
		}
	}
	p.pending, p.needFull = touched{}, false
	p.clearConntrack(ctx, gone)
	chains := 0
	for _, t := range Tables {
		chains += len(r.chains[t])
	}
	p.mu.Lock()
	p.status.ServicePorts, p.status.Endpoints, p.status.Chains = r.ServicePorts, r.Endpoints, chains
	p.status.LastSync, p.status.LastError, p.status.LastRestoreBytes = time.Now(), "", len(doc)
	p.status.Syncs++
	if full {
		p.status.LastFull = p.status.LastSync
	}
	p.mu.Unlock()
	if m := p.cfg.Metrics; m != nil {
		kind := "partial"
		if full {
			kind = "full"
		}
		m.SyncSeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		m.RestoreBytes.Observe(float64(len(doc)))
		m.ServicePorts.Set(float64(r.ServicePorts))
		m.Endpoints.Set(float64(r.Endpoints))
		m.LastSync.SetToCurrentTime()
	}
	p.log.Debug("synced", "full", full, "service_ports", r.ServicePorts, "endpoints", r.Endpoints, "bytes", len(doc),
		"rendered", rendered, "checked", checked, "restored", restored, "took", time.Since(start))
	return nil
}

func (p *Proxy) failed(err error) error {
	p.needFull = true
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.SyncErrors.Inc()
	}
	p.mu.Lock()
	p.status.LastError = err.Error()
	p.mu.Unlock()
	return err
}

// removedUDP are the UDP ports of old, each with only the endpoints that
// new no longer uses.
func removedUDP(old, new []ServicePort) []ServicePort {
	var out []ServicePort
	for _, o := range old {
		if o.Protocol != v1.ProtocolUDP {
			continue
		}
		keep := map[string]bool{}
		for _, n := range new {
			if portID(n) == portID(o) && n.ClusterIP == o.ClusterIP && n.PortNumber == o.PortNumber {
				for _, e := range n.usable() {
					keep[e.Addr()] = true
				}
			}
		}
		g := o
		g.Endpoints = nil
		for _, e := range o.usable() {
			if !keep[e.Addr()] {
				g.Endpoints = append(g.Endpoints, e)
			}
		}
		if len(g.Endpoints) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// clearConntrack deletes the conntrack entries of UDP flows to endpoints a
// service port no longer has: UDP has no connection to break, so without
// this the old flow keeps its DNAT (as kube-proxy does).
func (p *Proxy) clearConntrack(ctx context.Context, gone []ServicePort) {
	if p.cfg.Conntrack == "" {
		return
	}
	for _, s := range gone {
		for _, e := range s.Endpoints {
			out, err := exec.CommandContext(ctx, p.cfg.Conntrack, "-D", "-p", "udp", "--orig-dst", s.ClusterIP,
				"--orig-port-dst", fmt.Sprint(s.PortNumber), "--dst-nat", e.IP).CombinedOutput()
			// Exit 1 with "0 flow entries" is nothing to delete.
			if err != nil && !bytes.Contains(out, []byte("0 flow entries")) {
				p.log.Warn("conntrack entries of a removed UDP endpoint not cleared", "service", s.Key(), "endpoint", e.Addr(), "err", err, "out", string(out))
			}
		}
	}
}

// Cleanup removes every jump to and every K8SM- chain, whoever made them
// (a proxy that died too): what the executor does on a clean exit and
// "k8sm-agent proxy --cleanup" does on a node. It removes nothing else.
func Cleanup(ctx context.Context, ipt Iptables) (removed int, err error) {
	for _, j := range jumps {
		if err := ipt.DeleteJump(j.table, j.chain, j.rule...); err != nil {
			return removed, err
		}
	}
	var doc []byte
	for _, t := range Tables {
		save, err := ipt.Save(ctx, t)
		if err != nil {
			return removed, err
		}
		chains := OwnedChains(save)
		sort.Strings(chains)
		doc = append(doc, "*"+t+"\n"...)
		for _, c := range chains {
			doc = append(doc, ":"+c+" - [0:0]\n"...)
		}
		for _, c := range chains {
			doc = append(doc, "-X "+c+"\n"...)
		}
		doc = append(doc, "COMMIT\n"...)
		removed += len(chains)
	}
	if removed == 0 {
		return 0, nil
	}
	if err := ipt.Restore(ctx, doc); err != nil {
		return 0, fmt.Errorf("remove the K8SM- chains: %w", err)
	}
	return removed, nil
}
