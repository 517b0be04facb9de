package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// fakeIptables is a validating model of iptables for the nat and filter
// tables: iptables-restore --noflush semantics (a declared chain is made or
// flushed, undeclared chains are left alone, each table's section applies
// whole at COMMIT or not at all), and it refuses what the kernel refuses:
// a jump to a chain that does not exist, deleting a chain that still has
// rules or is still jumped to, a chain name over 28 characters, an unknown
// line, and (stricter than the kernel, as the proxy must never do it)
// declaring a built-in chain, which would flush it.
type fakeIptables struct {
	tables   map[string]map[string][]string // table -> chain -> rules ("-A C ..." lines)
	restores int
	failNext error // the next Restore fails with this
	lastDoc  []byte
}

var builtinChains = map[string][]string{
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
}

var targets = map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "DNAT": true, "SNAT": true, "MASQUERADE": true, "MARK": true}

func newFake() *fakeIptables {
	f := &fakeIptables{tables: map[string]map[string][]string{}}
	for t, cs := range builtinChains {
		f.tables[t] = map[string][]string{}
		for _, c := range cs {
			f.tables[t][c] = nil
		}
	}
	return f
}

func isBuiltin(table, chain string) bool {
	for _, c := range builtinChains[table] {
		if c == chain {
			return true
		}
	}
	return false
}

func copyTable(t map[string][]string) map[string][]string {
	out := make(map[string][]string, len(t))
	for c, rs := range t {
		out[c] = append([]string(nil), rs...)
	}
	return out
}

// words splits a rule as a shell would: spaces, with double-quoted words.
func words(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			in, any = !in, true
		case r == ' ' && !in:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if in {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if any {
		out = append(out, cur.String())
	}
	return out, nil
}

func target(args []string) string {
	for i, a := range args {
		if (a == "-j" || a == "--jump") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func (f *fakeIptables) Restore(_ context.Context, doc []byte) error {
	f.restores++
	f.lastDoc = doc
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var (
		table  string
		work   map[string][]string
		staged = map[string]map[string][]string{}
	)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, a ...any) error {
			return &RestoreError{Line: n, Stderr: fmt.Sprintf("line %d failed: ", n) + fmt.Sprintf(format, a...)}
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			if table != "" {
				return fail("table %s not committed", table)
			}
			table = line[1:]
			if f.tables[table] == nil {
				return fail("unknown table %q", table)
			}
			work = copyTable(f.tables[table])
		case table == "":
			return fail("outside a table: %q", line)
		case strings.HasPrefix(line, ":"):
			w := strings.Fields(line[1:])
			if len(w) != 3 {
				return fail("bad chain line %q", line)
			}
			name := w[0]
			if isBuiltin(table, name) {
				return fail("declaring built-in chain %s would flush it", name)
			}
			if len(name) > 28 {
				return fail("chain name %q longer than 28", name)
			}
			work[name] = []string{} // made, or flushed
		case strings.HasPrefix(line, "-A "):
			args, err := words(line)
			if err != nil {
				return fail("%v", err)
			}
			if len(args) < 2 {
				return fail("bad rule %q", line)
			}
			if _, ok := work[args[1]]; !ok {
				return fail("no chain %s", args[1])
			}
			if target(args) == "" {
				return fail("rule without a target: %q", line)
			}
			work[args[1]] = append(work[args[1]], line)
		case strings.HasPrefix(line, "-X "):
			name := strings.TrimSpace(line[3:])
			rs, ok := work[name]
			switch {
			case !ok:
				return fail("delete: no chain %s", name)
			case isBuiltin(table, name):
				return fail("delete: built-in chain %s", name)
			case len(rs) > 0:
				return fail("delete: chain %s is not empty", name)
			}
			delete(work, name)
		case line == "COMMIT":
			// Every jump must lead somewhere, and nothing may jump to a
			// deleted chain.
			for c, rs := range work {
				for _, r := range rs {
					args, _ := words(r)
					if tg := target(args); !targets[tg] {
						if _, ok := work[tg]; !ok {
							return fail("chain %s jumps to missing chain %s", c, tg)
						}
					}
				}
			}
			staged[table] = work
			table, work = "", nil
		default:
			return fail("unknown line %q", line)
		}
	}
	if table != "" {
		return &RestoreError{Stderr: "no COMMIT for table " + table}
	}
	for t, w := range staged {
		f.tables[t] = w
	}
	return nil
}

func (f *fakeIptables) Save(_ context.Context, table string) ([]byte, error) {
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("no table %s", table)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%s\n", table)
	var names []string
	for c := range t {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		policy := "-"
		if isBuiltin(table, c) {
			policy = "ACCEPT"
		}
		fmt.Fprintf(&b, ":%s %s [0:0]\n", c, policy)
	}
	for _, c := range names {
		for _, r := range t[c] {
			b.WriteString(r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.Bytes(), nil
}

func jumpLine(chain string, rule []string) string {
	var q []string
	for _, w := range rule {
		if strings.Contains(w, " ") {
			w = strconv.Quote(w)
		}
		q = append(q, w)
	}
	return "-A " + chain + " " + strings.Join(q, " ")
}

func (f *fakeIptables) EnsureJump(table, chain string, rule ...string) error {
	if !isBuiltin(table, chain) {
		return fmt.Errorf("jump from non-built-in chain %s", chain)
	}
	if _, ok := f.tables[table][target(rule)]; !ok {
		return fmt.Errorf("jump to missing chain %s", target(rule))
	}
	l := jumpLine(chain, rule)
	for _, r := range f.tables[table][chain] {
		if r == l {
			return nil
		}
	}
	f.tables[table][chain] = append([]string{l}, f.tables[table][chain]...)
	return nil
}

func (f *fakeIptables) DeleteJump(table, chain string, rule ...string) error {
	l := jumpLine(chain, rule)
	rs := f.tables[table][chain]
	for i, r := range rs {
		if r == l {
			f.tables[table][chain] = append(rs[:i:i], rs[i+1:]...)
			return nil
		}
	}
	return nil
}

func (f *fakeIptables) ChainExists(table, chain string) (bool, error) {
	_, ok := f.tables[table][chain]
	return ok, nil
}

// inNet reports whether ip is in cidr ("a.b.c.d/n").
func inNet(ip, cidr string) bool {
	_, n, err := net.ParseCIDR(cidr)
	return err == nil && n.Contains(net.ParseIP(ip))
}

// packet is what trace follows through the rules.
type packet struct {
	proto     string // tcp, udp, sctp
	src, dst  string
	dport     int
	fromNode  bool      // locally generated: nat OUTPUT; else nat PREROUTING
	random    []float64 // the statistic match's draws, in order
	srcIsNode bool      // addrtype --src-type LOCAL
}

// verdict is where the packet went.
type verdict struct {
	dnat     string // "ip:port" it was DNATed to, "" if none
	masq     bool   // marked for masquerade
	rejected bool   // REJECTed in filter
	path     []string
}

// trace runs a packet through nat (PREROUTING or OUTPUT) and then, unless
// it was DNATed, through filter (OUTPUT or FORWARD), as the kernel would
// for the first packet of a connection. recent matches never hit (no
// history).
func (f *fakeIptables) trace(p packet) (verdict, error) {
	var v verdict
	draw := 0
	matches := func(args []string) (bool, error) {
		for i := 2; i < len(args); i++ {
			neg := false
			if args[i] == "!" {
				neg = true
				i++
			}
			a := args[i]
			val := ""
			if i+1 < len(args) {
				val = args[i+1]
			}
			var ok bool
			switch a {
			case "-j":
				return true, nil
			case "-m":
				i++
				continue
			case "--comment", "--mode", "--name", "--seconds", "--ctstate":
				i++
				continue
			case "--rcheck":
				return false, nil
			case "--reap", "--set":
				continue
			case "-d":
				ok = inNet(p.dst, val)
				i++
			case "-s":
				ok = inNet(p.src, val)
				i++
			case "-p":
				ok = val == p.proto
				i++
			case "--dport":
				ok = val == strconv.Itoa(p.dport)
				i++
			case "--src-type":
				ok = val == "LOCAL" && p.srcIsNode
				i++
			case "--mark":
				ok = v.masq
				i++
			case "--probability":
				prob, err := strconv.ParseFloat(val, 64)
				if err != nil {
					return false, err
				}
				if draw >= len(p.random) {
					return false, fmt.Errorf("packet needs more random draws than %v", p.random)
				}
				ok = p.random[draw] < prob
				draw++
				i++
			default:
				return false, fmt.Errorf("trace: unknown match %q in %v", a, args)
			}
			if ok == neg {
				return false, nil
			}
		}
		return true, nil
	}
	var run func(table, chain string, depth int) (string, error)
	run = func(table, chain string, depth int) (string, error) {
		if depth > 20 {
			return "", fmt.Errorf("jump loop at %s", chain)
		}
		v.path = append(v.path, table+"/"+chain)
		for _, r := range f.tables[table][chain] {
			args, err := words(r)
			if err != nil {
				return "", err
			}
			ok, err := matches(args)
			if err != nil {
				return "", err
			}
			if !ok {
				continue
			}
			switch tg := target(args); tg {
			case "RETURN":
				return "", nil
			case "ACCEPT", "DROP":
				return tg, nil
			case "REJECT":
				v.rejected = true
				return tg, nil
			case "MARK":
				v.masq = true
			case "MASQUERADE":
			case "DNAT":
				for i, a := range args {
					if a == "--to-destination" {
						v.dnat = args[i+1]
					}
				}
				return "DNAT", nil
			default:
				if end, err := run(table, tg, depth+1); err != nil || end != "" {
					return end, err
				}
			}
		}
		return "", nil
	}
	first := "PREROUTING"
	if p.fromNode {
		first = "OUTPUT"
	}
	if _, err := run("nat", first, 0); err != nil {
		return v, err
	}
	if v.dnat == "" {
		fchain := "FORWARD"
		if p.fromNode {
			fchain = "OUTPUT"
		}
		if _, err := run("filter", fchain, 0); err != nil {
			return v, err
		}
	}
	return v, nil
}
