package specs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Spec is one conformance spec: its full ginkgo text and the source file
// (relative to the kubernetes repository root) that defines it.
type Spec struct {
	// Name is the spec's full ginkgo text, the "codename" of
	// conformance.yaml, for example
	// "[sig-node] Lease lease API should be available [Conformance]".
	Name string
	// File is the defining file, for example "test/e2e/common/node/lease.go".
	File string
}

// DefaultDirs are the upstream directories whose conformance specs exercise
// the node (kubelet) side, the ones k8sm runs.
var DefaultDirs = []string{"test/e2e/common/node", "test/e2e/common/storage", "test/e2e/node"}

// ErrEmpty is returned by FocusRegexp for an empty list: an empty focus
// would select every spec of the binary.
var ErrEmpty = errors.New("no spec names")

// ParseConformance reads upstream's test/conformance/testdata/conformance.yaml
// and returns its specs in file order. An entry without a codename or file
// is an error.
func ParseConformance(r io.Reader) ([]Spec, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read conformance.yaml: %w", err)
	}
	var entries []struct {
		Testname string `json:"testname"`
		Codename string `json:"codename"`
		File     string `json:"file"`
	}
	if err := yaml.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("parse conformance.yaml: %w", err)
	}
	out := make([]Spec, 0, len(entries))
	for i, e := range entries {
		if e.Codename == "" || e.File == "" {
			return nil, fmt.Errorf("conformance.yaml entry %d (%q): codename and file are required", i+1, e.Testname)
		}
		out = append(out, Spec{Name: e.Codename, File: e.File})
	}
	return out, nil
}

// InDirs returns the specs whose file lies under one of dirs (at any depth),
// in their original order.
func InDirs(all []Spec, dirs []string) []Spec {
	var out []Spec
	for _, s := range all {
		for _, d := range dirs {
			if strings.HasPrefix(s.File, strings.TrimSuffix(d, "/")+"/") {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Names returns the specs' names.
func Names(list []Spec) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return out
}

// ParseSelection reads "file<TAB>name" lines, the output of select -files;
// blank lines and lines starting with # are ignored.
func ParseSelection(r io.Reader) ([]Spec, error) {
	var out []Spec
	err := eachLine(r, "selection", func(n int, line string) error {
		file, name, ok := strings.Cut(line, "\t")
		if !ok || file == "" || name == "" {
			return fmt.Errorf("selection line %d: want \"<file>\\t<name>\", got %q", n, line)
		}
		out = append(out, Spec{Name: name, File: file})
		return nil
	})
	return out, err
}

// eachLine calls fn with each line of r that is neither blank nor a
// comment (# first), with its number and without trailing white space.
// what names the input in a read error.
func eachLine(r io.Reader, what string, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// ParseList reads a list of exact spec names, one a line; blank lines and
// lines starting with # are ignored, surrounding white space is trimmed.
func ParseList(r io.Reader) ([]string, error) {
	var out []string
	err := eachLine(r, "spec list", func(_ int, line string) error {
		out = append(out, strings.TrimSpace(line))
		return nil
	})
	return out, err
}

// Only keeps the specs named in names, in the order of list. A name that is
// not in list is an error (a typo in smoke.txt must not go unnoticed).
func Only(list []Spec, names []string) ([]Spec, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var out []Spec
	for _, s := range list {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var missing []string
		for _, n := range names {
			if want[n] {
				missing = append(missing, n)
			}
		}
		return nil, fmt.Errorf("%d listed spec(s) not in the selection: %q", len(missing), missing)
	}
	return out, nil
}

// Matching keeps the specs whose name re matches (unanchored).
func Matching(list []Spec, re *regexp.Regexp) []Spec {
	var out []Spec
	for _, s := range list {
		if re.MatchString(s.Name) {
			out = append(out, s)
		}
	}
	return out
}

// SkipRule is one line of skip.txt.
type SkipRule struct {
	// Pattern is an exact spec name or a regexp.
	Pattern string
	// Reason says why k8sm does not run the matching specs.
	Reason string
	// Line is the rule's line number in its file.
	Line int

	re *regexp.Regexp
}

// Matches reports whether the rule covers the spec name: the name equals
// Pattern, or Pattern is a valid regexp that matches it (unanchored).
func (r SkipRule) Matches(name string) bool {
	return name == r.Pattern || (r.re != nil && r.re.MatchString(name))
}

// SkipList is the parsed skip.txt.
type SkipList []SkipRule

// ParseSkip reads skip.txt: lines "<regexp or exact spec name>\t<reason>"
// (the first tab separates them); blank lines and lines starting with # are
// ignored. A line without a pattern or a reason is an error. A pattern that
// does not compile as a regexp (an exact name such as "[sig-api-machinery]
// ..." may not: "g-a" is an invalid range) is used as an exact name only.
func ParseSkip(r io.Reader) (SkipList, error) {
	var out SkipList
	err := eachLine(r, "skip list", func(n int, line string) error {
		pattern, reason, ok := strings.Cut(line, "\t")
		pattern, reason = strings.TrimSpace(pattern), strings.TrimSpace(reason)
		if !ok || pattern == "" || reason == "" {
			return fmt.Errorf("skip list line %d: want \"<pattern>\\t<reason>\", got %q", n, line)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			re = nil
		}
		out = append(out, SkipRule{Pattern: pattern, Reason: reason, Line: n, re: re})
		return nil
	})
	return out, err
}

// Match returns the first rule that covers name.
func (l SkipList) Match(name string) (SkipRule, bool) {
	for _, r := range l {
		if r.Matches(name) {
			return r, true
		}
	}
	return SkipRule{}, false
}

// Apply splits list into the specs to run and the skipped ones, and
// returns the rules that matched none of list (stale rules worth a warning).
func (l SkipList) Apply(list []Spec) (run, skipped []Spec, unused []SkipRule) {
	used := make([]bool, len(l))
	for _, s := range list {
		hit := false
		for i, r := range l {
			if r.Matches(s.Name) {
				used[i], hit = true, true
			}
		}
		if hit {
			skipped = append(skipped, s)
		} else {
			run = append(run, s)
		}
	}
	for i, r := range l {
		if !used[i] {
			unused = append(unused, r)
		}
	}
	return run, skipped, unused
}

// FocusRegexp returns one regexp for ginkgo's --focus that selects exactly
// the named specs: an alternation of the regexp-quoted names, anchored at
// the end of the text and, at the start, at the space that separates the
// suite description from the spec text (ginkgo matches
// "<suite description> <spec text>"). Names are sorted and de-duplicated so
// the output is stable.
func FocusRegexp(names []string) (string, error) {
	if len(names) == 0 {
		return "", ErrEmpty
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	quoted := make([]string, len(sorted))
	for i, n := range sorted {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return `(?:^|\s)(?:` + strings.Join(quoted, "|") + `)$`, nil
}

// ParseFile opens path and parses it with parse; a parse error names the
// file.
func ParseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer func() { _ = f.Close() }()
	v, err := parse(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
