package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The chains every ruleset has. Each is prefixed "K8SM-" and at most 28
// characters (iptables' limit is 28 plus the terminator).
const (
	ChainServices    = "K8SM-SERVICES"    // nat and filter: jumped from the built-in chains
	ChainPostrouting = "K8SM-POSTROUTING" // nat: masquerades marked packets
	ChainMarkMasq    = "K8SM-MARK-MASQ"   // nat: marks a packet for masquerade
	ChainCanary      = "K8SM-PROXY-CANARY"
	prefix           = "K8SM-"
	svcPrefix        = "K8SM-SVC-"
	sepPrefix        = "K8SM-SEP-"
	bucketPrefix     = "K8SM-SVCS-"
)

// Tables the proxy writes.
var Tables = []string{"nat", "filter"}

// Ruleset is the rendered state: each table's K8SM- chains with their rules
// ("-A CHAIN ..." lines). Only a builder (Render, a Proxy's) makes one.
type Ruleset struct {
	chains map[string]map[string][]string // table -> chain -> rules
	// ServicePorts and Endpoints count what is programmed.
	ServicePorts, Endpoints int
}

// Chains lists a table's chains, sorted.
func (r *Ruleset) Chains(table string) []string {
	var out []string
	for c := range r.chains[table] {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// RenderOptions are the few knobs of the rules.
type RenderOptions struct {
	// MasqueradeBit is the packet mark bit meaning "masquerade me" (0-31;
	// default 13, 0x2000, next to kube-proxy's 14 so both can run).
	MasqueradeBit int
}

func (o RenderOptions) mark() string {
	bit := o.MasqueradeBit
	if bit <= 0 || bit > 31 {
		bit = 13
	}
	m := uint32(1) << bit
	return fmt.Sprintf("0x%x/0x%x", m, m)
}

// chainName is prefix + 16 base32 characters of a sha256 of the parts, as
// kube-proxy names its chains: stable and short (25 characters).
func chainName(p string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return p + base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// bucket is the /24 of a cluster IP: K8SM-SERVICES dispatches on it to a
// K8SM-SVCS- chain holding that /24's service ports, so that a change to
// one service rewrites its bucket's few rules, not every service's, and a
// packet walks ~256 + a few rules instead of one per service.
func bucket(ip string) string {
	if i := strings.LastIndexByte(ip, '.'); i > 0 {
		return ip[:i] + ".0/24"
	}
	return ip + "/32"
}

// BucketChain names the dispatch chain of a cluster IP's /24.
func BucketChain(ip string) string { return chainName(bucketPrefix, bucket(ip)) }

// SvcChain and SepChain name a service port's chain and its endpoints'.
func SvcChain(s ServicePort) string { return chainName(svcPrefix, s.Key(), string(s.Protocol)) }

// SepChain names the chain of one endpoint of a service port.
func SepChain(s ServicePort, e Endpoint) string {
	return chainName(sepPrefix, s.Key(), string(s.Protocol), e.Addr())
}

// fragment is what one service port renders to: its own nat chains (the
// K8SM-SVC- chain and one K8SM-SEP- per endpoint), its rule in its /24's
// K8SM-SVCS- chain, or, without usable endpoints, its REJECT in filter.
type fragment struct {
	nat        map[string][]string
	bucket     string // its K8SM-SVCS- chain ("" without endpoints)
	bucketRule string
	rejectRule string
	endpoints  int
}

func renderPort(s ServicePort, o RenderOptions) fragment {
	proto := strings.ToLower(string(s.Protocol))
	match := fmt.Sprintf("-d %s/32 -p %s -m %s --dport %d", s.ClusterIP, proto, proto, s.PortNumber)
	eps := s.usable()
	if len(eps) == 0 {
		return fragment{rejectRule: fmt.Sprintf(
			`-A %s -m comment --comment "%s has no endpoints" %s -j REJECT --reject-with icmp-port-unreachable`, ChainServices, s.Key(), match)}
	}
	svc, bc := SvcChain(s), BucketChain(s.ClusterIP)
	f := fragment{nat: map[string][]string{}, bucket: bc, endpoints: len(eps),
		bucketRule: fmt.Sprintf(`-A %s -m comment --comment "%s cluster IP" %s -j %s`, bc, s.Key(), match, svc)}
	rules := []string{fmt.Sprintf(`-A %s -m comment --comment "%s cluster IP" %s -m addrtype ! --src-type LOCAL -j %s`,
		svc, s.Key(), match, ChainMarkMasq)}
	if s.AffinitySeconds > 0 {
		for _, e := range eps {
			sep := SepChain(s, e)
			rules = append(rules, fmt.Sprintf(`-A %s -m comment --comment "%s -> %s" -m recent --name %s --rcheck --seconds %d --reap -j %s`,
				svc, s.Key(), e.Addr(), sep, s.AffinitySeconds, sep))
		}
	}
	for i, e := range eps {
		sep := SepChain(s, e)
		if left := len(eps) - i; left > 1 {
			rules = append(rules, fmt.Sprintf(`-A %s -m comment --comment "%s -> %s" -m statistic --mode random --probability %.10f -j %s`,
				svc, s.Key(), e.Addr(), 1/float64(left), sep))
		} else {
			rules = append(rules, fmt.Sprintf(`-A %s -m comment --comment "%s -> %s" -j %s`, svc, s.Key(), e.Addr(), sep))
		}
		recent := ""
		if s.AffinitySeconds > 0 {
			recent = " -m recent --name " + sep + " --set"
		}
		f.nat[sep] = []string{
			fmt.Sprintf(`-A %s -m comment --comment "%s" -s %s/32 -j %s`, sep, s.Key(), e.IP, ChainMarkMasq),
			fmt.Sprintf(`-A %s -m comment --comment "%s" -p %s%s -m %s -j DNAT --to-destination %s`, sep, s.Key(), proto, recent, proto, e.Addr()),
		}
	}
	f.nat[svc] = rules
	return f
}

// builder keeps a Ruleset up to date one service at a time: a change to a
// service re-renders only that service's ports and the chains they share
// (their /24 bucket, K8SM-SERVICES when a bucket comes or goes, filter's
// K8SM-SERVICES when a REJECT changes), and says which chains it touched.
type builder struct {
	o        RenderOptions
	rs       *Ruleset
	frags    map[string]map[string]fragment // service "ns/name" -> port id -> fragment
	buckets  map[string]map[string]string   // bucket chain -> port id -> rule
	bucketIP map[string]string              // bucket chain -> its /24
	rejects  map[string]string              // port id -> filter rule
}

func newBuilder(o RenderOptions) *builder {
	b := &builder{o: o, rs: &Ruleset{chains: map[string]map[string][]string{"nat": {}, "filter": {}}},
		frags: map[string]map[string]fragment{}, buckets: map[string]map[string]string{}, bucketIP: map[string]string{}, rejects: map[string]string{}}
	nat, filter := b.rs.chains["nat"], b.rs.chains["filter"]
	mark := o.mark()
	bit := strings.Split(mark, "/")[0]
	nat[ChainCanary], filter[ChainCanary] = nil, nil
	nat[ChainMarkMasq] = []string{"-A " + ChainMarkMasq + " -j MARK --or-mark " + bit}
	nat[ChainPostrouting] = []string{
		"-A " + ChainPostrouting + " -m mark ! --mark " + mark + " -j RETURN",
		"-A " + ChainPostrouting + " -j MARK --xor-mark " + bit,
		"-A " + ChainPostrouting + ` -m comment --comment "k8sm service traffic requiring SNAT" -j MASQUERADE`,
	}
	nat[ChainServices], filter[ChainServices] = []string{}, []string{}
	return b
}

func portID(s ServicePort) string { return s.Key() + "/" + string(s.Protocol) }

// touched are chains by table.
type touched map[string]map[string]bool

// empty reports whether no chain was touched.
func (t touched) empty() bool {
	for _, cs := range t {
		if len(cs) > 0 {
			return false
		}
	}
	return true
}

func (t touched) add(table, chain string) {
	if t[table] == nil {
		t[table] = map[string]bool{}
	}
	t[table][chain] = true
}

// update makes service svc ("ns/name") have exactly ports (none: the
// service is gone) and records the chains it touched in t.
func (b *builder) update(svc string, ports []ServicePort, t touched) {
	nat := b.rs.chains["nat"]
	old := b.frags[svc]
	next := make(map[string]fragment, len(ports))
	for _, s := range ports {
		next[portID(s)] = renderPort(s, b.o)
	}
	touchedBuckets := map[string]bool{}
	rejects := false
	before := map[string][]string{} // the service's own chains as they were
	for id, f := range old {
		for c := range f.nat {
			before[c] = nat[c]
			delete(nat, c)
		}
		if f.bucket != "" {
			delete(b.buckets[f.bucket], id)
			touchedBuckets[f.bucket] = true
		}
		if f.rejectRule != "" {
			delete(b.rejects, id)
			rejects = true
		}
		b.rs.ServicePorts--
		b.rs.Endpoints -= f.endpoints
	}
	for id, f := range next {
		for c, rules := range f.nat {
			nat[c] = rules
			if was, ok := before[c]; !ok || !slices.Equal(was, rules) {
				t.add("nat", c)
			}
			delete(before, c)
		}
		if f.bucket != "" {
			if b.buckets[f.bucket] == nil {
				b.buckets[f.bucket] = map[string]string{}
			}
			b.buckets[f.bucket][id] = f.bucketRule
			touchedBuckets[f.bucket] = true
		}
		if f.rejectRule != "" {
			b.rejects[id] = f.rejectRule
			rejects = true
		}
		b.rs.ServicePorts++
		b.rs.Endpoints += f.endpoints
	}
	for c := range before { // chains the service no longer has
		t.add("nat", c)
	}
	for _, s := range ports {
		if f := next[portID(s)]; f.bucket != "" {
			b.bucketIP[f.bucket] = bucket(s.ClusterIP)
		}
	}
	if len(next) == 0 {
		delete(b.frags, svc)
	} else {
		b.frags[svc] = next
	}
	dispatch := false
	for bc := range touchedBuckets {
		if len(b.buckets[bc]) == 0 {
			delete(b.buckets, bc)
			delete(b.bucketIP, bc)
			if _, ok := nat[bc]; ok {
				delete(nat, bc)
				t.add("nat", bc)
				dispatch = true
			}
			continue
		}
		was, ok := nat[bc]
		if !ok {
			dispatch = true
		}
		if rules := sortedValues(b.buckets[bc]); !ok || !slices.Equal(was, rules) {
			nat[bc] = rules
			t.add("nat", bc)
		}
	}
	if dispatch {
		var rules []string
		for bc, ip := range b.bucketIP {
			rules = append(rules, fmt.Sprintf("-A %s -d %s -j %s", ChainServices, ip, bc))
		}
		sort.Strings(rules)
		nat[ChainServices] = append([]string{}, rules...)
		t.add("nat", ChainServices)
	}
	if rejects {
		if rules := sortedValues(b.rejects); !slices.Equal(b.rs.chains["filter"][ChainServices], rules) {
			b.rs.chains["filter"][ChainServices] = rules
			t.add("filter", ChainServices)
		}
	}
}

// sortedValues are m's values in the order of their keys.
func sortedValues(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// Render is the pure function from service ports to rules. nat:
// K8SM-SERVICES dispatches on the cluster IP's /24 to a K8SM-SVCS- chain,
// which matches each cluster IP:port with usable endpoints and jumps to
// its K8SM-SVC- chain, which marks traffic from off the node for
// masquerade and spreads new connections over one K8SM-SEP- chain per
// endpoint (statistic --mode random, 1/n, 1/(n-1), ...; with ClientIP
// affinity a recent match first), which marks hairpin traffic and DNATs to
// HostIP:HostPort; K8SM-POSTROUTING masquerades marked packets. filter:
// K8SM-SERVICES REJECTs new connections to service ports without usable
// endpoints. Rules within a shared chain are in port id order.
func Render(ports []ServicePort, o RenderOptions) *Ruleset {
	b := newBuilder(o)
	bySvc := map[string][]ServicePort{}
	for _, s := range ports {
		k := s.Namespace + "/" + s.Name
		bySvc[k] = append(bySvc[k], s)
	}
	t := touched{}
	for k, ps := range bySvc {
		b.update(k, ps, t)
	}
	return b.rs
}

// Document is the iptables-restore --noflush input of a full sync: it
// declares (and so flushes) and writes every chain of r, and flushes and
// deletes the chains in stale (by table). Each table's section ends in
// COMMIT: it applies whole or not at all.
func (r *Ruleset) Document(stale map[string][]string) []byte {
	var b bytes.Buffer
	for _, t := range Tables {
		writeTable(&b, r, t, r.Chains(t), append([]string(nil), stale[t]...))
	}
	return b.Bytes()
}

// documentOf is the input of a partial sync: it rewrites the chains in t
// that r has, and flushes and deletes those it no longer has.
func (r *Ruleset) documentOf(t touched) []byte {
	var b bytes.Buffer
	for _, tb := range Tables {
		var write, gone []string
		for c := range t[tb] {
			if r.Has(tb, c) {
				write = append(write, c)
			} else {
				gone = append(gone, c)
			}
		}
		writeTable(&b, r, tb, write, gone)
	}
	return b.Bytes()
}

// writeTable writes one table's section: the chains in write declared and
// filled with r's rules, those in gone flushed and deleted.
func writeTable(b *bytes.Buffer, r *Ruleset, table string, write, gone []string) {
	sort.Strings(write)
	sort.Strings(gone)
	fmt.Fprintf(b, "*%s\n", table)
	for _, c := range append(append([]string{}, write...), gone...) {
		fmt.Fprintf(b, ":%s - [0:0]\n", c)
	}
	for _, c := range write {
		for _, rule := range r.chains[table][c] {
			b.WriteString(rule)
			b.WriteByte('\n')
		}
	}
	for _, c := range gone {
		fmt.Fprintf(b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
}

// Has reports whether r has chain in table.
func (r *Ruleset) Has(table, chain string) bool { return has(r.chains[table], chain) }

func has(m map[string][]string, k string) bool { _, ok := m[k]; return ok }

// Owned reports whether a chain name is the proxy's.
func Owned(chain string) bool { return strings.HasPrefix(chain, prefix) }
