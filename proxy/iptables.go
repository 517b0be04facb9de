package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// Iptables is what the proxy needs of the node's iptables. Exec runs each
// command on the calling goroutine's thread, so a caller whose thread is in
// a network namespace programs that namespace.
type Iptables interface {
	// Restore applies an iptables-restore --noflush document.
	Restore(ctx context.Context, doc []byte) error
	// Save returns the iptables-save output of one table.
	Save(ctx context.Context, table string) ([]byte, error)
	// EnsureJump puts rule first in a built-in chain unless it is there.
	EnsureJump(table, chain string, rule ...string) error
	// DeleteJump removes rule from a built-in chain if it is there.
	DeleteJump(table, chain string, rule ...string) error
	// ChainExists reports whether a chain exists.
	ChainExists(table, chain string) (bool, error)
}

// Exec is the real Iptables: go-iptables for single rules, chains and the
// xtables lock (--wait), and the matching iptables-restore and
// iptables-save (iptables-nft or iptables-legacy alike).
type Exec struct {
	ipt           *iptables.IPTables
	restore, save string
}

// NewExec finds iptables (command: "iptables", "iptables-nft" or
// "iptables-legacy"; "" is "iptables") and its restore and save commands
// beside it.
func NewExec(command string) (*Exec, error) {
	if command == "" {
		command = "iptables"
	}
	ipt, err := iptables.New(iptables.Path(command), iptables.Timeout(5))
	if err != nil {
		return nil, fmt.Errorf("iptables %q: %w", command, err)
	}
	path, err := exec.LookPath(command)
	if err != nil {
		return nil, fmt.Errorf("iptables %q: %w", command, err)
	}
	// iptables -> iptables-restore, iptables-legacy -> iptables-legacy-restore.
	dir, base := filepath.Split(path)
	e := &Exec{ipt: ipt, restore: filepath.Join(dir, base+"-restore"), save: filepath.Join(dir, base+"-save")}
	if base == "iptables-nft" || base == "iptables-legacy" {
		mode := strings.TrimPrefix(base, "iptables-")
		e.restore, e.save = filepath.Join(dir, "iptables-"+mode+"-restore"), filepath.Join(dir, "iptables-"+mode+"-save")
	}
	for _, p := range []string{e.restore, e.save} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("iptables %q: %w", command, err)
		}
	}
	return e, nil
}

// Mode is the backend: "nf_tables" or "legacy".
func (e *Exec) Mode() string {
	out, err := exec.Command(e.save, "--version").CombinedOutput()
	if err == nil && bytes.Contains(out, []byte("nf_tables")) {
		return "nf_tables"
	}
	return "legacy"
}

// RestoreError is a failed iptables-restore with the lines it names.
type RestoreError struct {
	Line   int    // 1-based line of the document that failed, 0 if unknown
	Stderr string // what iptables-restore said
	Lines  string // the failing line and its neighbours, numbered
}

func (e *RestoreError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("iptables-restore failed at line %d: %s\n%s", e.Line, strings.TrimSpace(e.Stderr), e.Lines)
	}
	return "iptables-restore failed: " + strings.TrimSpace(e.Stderr)
}

// failedLine finds the line iptables-restore names: "line N failed"
// (legacy) or "Error occurred at line: N" (nft, often the COMMIT where the
// table failed).
var failedLine = regexp.MustCompile(`line (\d+) failed|Error occurred at line: (\d+)`)

// Restore runs iptables-restore --noflush --wait with doc on stdin.
func (e *Exec) Restore(ctx context.Context, doc []byte) error {
	cmd := exec.CommandContext(ctx, e.restore, "--noflush", "--wait=5")
	cmd.Stdin = bytes.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		re := &RestoreError{Stderr: stderr.String()}
		if m := failedLine.FindStringSubmatch(re.Stderr); m != nil {
			re.Line, _ = strconv.Atoi(m[1] + m[2])
			re.Lines = around(doc, re.Line, 2)
		}
		if re.Stderr == "" {
			re.Stderr = err.Error()
		}
		return re
	}
	return nil
}

// around numbers the lines of doc within n of line.
func around(doc []byte, line, n int) string {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for i := 1; sc.Scan(); i++ {
		if i >= line-n && i <= line+n {
			mark := "  "
			if i == line {
				mark = "> "
			}
			fmt.Fprintf(&b, "%s%6d  %s\n", mark, i, sc.Text())
		}
	}
	return b.String()
}

// Save runs iptables-save -t table.
func (e *Exec) Save(ctx context.Context, table string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, e.save, "-t", table)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save -t %s: %w: %s", table, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// EnsureJump inserts rule at the top of chain unless it is there.
func (e *Exec) EnsureJump(table, chain string, rule ...string) error {
	ok, err := e.ipt.Exists(table, chain, rule...)
	if err != nil {
		return fmt.Errorf("check the jump in %s %s: %w", table, chain, err)
	}
	if ok {
		return nil
	}
	if err := e.ipt.Insert(table, chain, 1, rule...); err != nil {
		return fmt.Errorf("insert the jump in %s %s: %w", table, chain, err)
	}
	return nil
}

// DeleteJump removes rule from chain if there. A jump to a chain that does
// not exist cannot be there (and iptables -C refuses to look for it).
func (e *Exec) DeleteJump(table, chain string, rule ...string) error {
	for i, w := range rule {
		if w == "-j" && i+1 < len(rule) {
			if ok, err := e.ChainExists(table, rule[i+1]); err == nil && !ok {
				return nil
			}
		}
	}
	if err := e.ipt.DeleteIfExists(table, chain, rule...); err != nil {
		return fmt.Errorf("delete the jump in %s %s: %w", table, chain, err)
	}
	return nil
}

// ChainExists reports whether chain exists in table.
func (e *Exec) ChainExists(table, chain string) (bool, error) {
	ok, err := e.ipt.ChainExists(table, chain)
	var ie *iptables.Error
	if errors.As(err, &ie) && ie.IsNotExist() {
		return false, nil
	}
	return ok, err
}

// OwnedChains lists the K8SM- chains an iptables-save output of one table
// declares.
func OwnedChains(save []byte) []string {
	var out []string
	for _, l := range strings.Split(string(save), "\n") {
		if name, ok := strings.CutPrefix(l, ":"); ok {
			name, _, _ = strings.Cut(name, " ")
			if Owned(name) {
				out = append(out, name)
			}
		}
	}
	return out
}
