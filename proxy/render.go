package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
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
)

// Tables the proxy writes.
var Tables = []string{"nat", "filter"}

// Ruleset is the rendered state: each table's K8SM- chains with their rules
// ("-A CHAIN ..." lines). Only Render makes one.
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

// Rules are a chain's rules.
func (r *Ruleset) Rules(table, chain string) []string { return r.chains[table][chain] }

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

// SvcChain and SepChain name a service port's chain and its endpoints'.
func SvcChain(s ServicePort) string { return chainName(svcPrefix, s.Key(), string(s.Protocol)) }

// SepChain names the chain of one endpoint of a service port.
func SepChain(s ServicePort, e Endpoint) string {
	return chainName(sepPrefix, s.Key(), string(s.Protocol), e.Addr())
}

// Render is the pure function from service ports to rules. nat:
// K8SM-SERVICES matches each cluster IP:port with usable endpoints and
// jumps to its K8SM-SVC- chain, which marks traffic from off the node for
// masquerade and spreads new connections over one K8SM-SEP- chain per
// endpoint (statistic --mode random, 1/n, 1/(n-1), ...; with ClientIP
// affinity a recent match first), which marks hairpin traffic and DNATs to
// HostIP:HostPort; K8SM-POSTROUTING masquerades marked packets. filter:
// K8SM-SERVICES REJECTs new connections to service ports without usable
// endpoints.
func Render(ports []ServicePort, o RenderOptions) *Ruleset {
	r := &Ruleset{chains: map[string]map[string][]string{"nat": {}, "filter": {}}}
	nat, filter := r.chains["nat"], r.chains["filter"]
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
	for _, s := range ports {
		proto := strings.ToLower(string(s.Protocol))
		match := fmt.Sprintf("-d %s/32 -p %s -m %s --dport %d", s.ClusterIP, proto, proto, s.PortNumber)
		eps := s.usable()
		r.ServicePorts++
		r.Endpoints += len(eps)
		if len(eps) == 0 {
			filter[ChainServices] = append(filter[ChainServices], fmt.Sprintf(
				`-A %s -m comment --comment "%s has no endpoints" %s -j REJECT --reject-with icmp-port-unreachable`, ChainServices, s.Key(), match))
			continue
		}
		svc := SvcChain(s)
		nat[ChainServices] = append(nat[ChainServices], fmt.Sprintf(
			`-A %s -m comment --comment "%s cluster IP" %s -j %s`, ChainServices, s.Key(), match, svc))
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
			nat[sep] = []string{
				fmt.Sprintf(`-A %s -m comment --comment "%s" -s %s/32 -j %s`, sep, s.Key(), e.IP, ChainMarkMasq),
				fmt.Sprintf(`-A %s -m comment --comment "%s" -p %s%s -m %s -j DNAT --to-destination %s`, sep, s.Key(), proto, recent, proto, e.Addr()),
			}
		}
		nat[svc] = rules
	}
	return r
}

// Document is the iptables-restore --noflush input that takes the tables
// from prev (nil: unknown) to r. A full one declares (and so flushes) every
// chain of r; an incremental one only the chains whose rules changed, plus
// K8SM-SERVICES. Chains in stale (by table) are flushed and deleted. Each
// table's section ends in COMMIT: it applies whole or not at all.
func (r *Ruleset) Document(prev *Ruleset, stale map[string][]string) []byte {
	var b bytes.Buffer
	for _, t := range Tables {
		fmt.Fprintf(&b, "*%s\n", t)
		var write []string
		for _, c := range r.Chains(t) {
			if prev == nil || c == ChainServices || !equal(prev.chains[t][c], r.chains[t][c]) || !has(prev.chains[t], c) {
				write = append(write, c)
			}
		}
		gone := append([]string(nil), stale[t]...)
		sort.Strings(gone)
		for _, c := range write {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
		for _, c := range gone {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
		for _, c := range write {
			for _, rule := range r.chains[t][c] {
				b.WriteString(rule)
				b.WriteByte('\n')
			}
		}
		for _, c := range gone {
			fmt.Fprintf(&b, "-X %s\n", c)
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// Stale are prev's chains r no longer has, by table.
func (r *Ruleset) Stale(prev *Ruleset) map[string][]string {
	out := map[string][]string{}
	if prev == nil {
		return out
	}
	for _, t := range Tables {
		for c := range prev.chains[t] {
			if !has(r.chains[t], c) {
				out[t] = append(out[t], c)
			}
		}
	}
	return out
}

// Has reports whether r has chain in table.
func (r *Ruleset) Has(table, chain string) bool { return has(r.chains[table], chain) }

func has(m map[string][]string, k string) bool { _, ok := m[k]; return ok }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Owned reports whether a chain name is the proxy's.
func Owned(chain string) bool { return strings.HasPrefix(chain, prefix) }
