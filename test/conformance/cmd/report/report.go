package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/k8sm/k8sm/test/conformance/internal/specs"
)

// Result is the outcome of one selected spec.
type Result string

// The four outcomes, in the order the report counts them.
const (
	Passed  Result = "passed"
	Failed  Result = "failed"
	Skipped Result = "skipped"
	NotRun  Result = "not run"
)

// Row is one selected spec's line in the report.
type Row struct {
	Spec    specs.Spec
	Result  Result
	Seconds float64
	// Detail is the first line of the failure message (failed), or the
	// reason (skipped).
	Detail string
}

// SuiteProblem is a failed suite-level node (BeforeSuite, AfterSuite, ...).
type SuiteProblem struct {
	Name, Detail string
}

// Outcome is the whole run, as the report presents it.
type Outcome struct {
	Rows          []Row
	SuiteProblems []SuiteProblem
}

// Count returns how many rows have result r.
func (o Outcome) Count(r Result) int {
	n := 0
	for _, row := range o.Rows {
		if row.Result == r {
			n++
		}
	}
	return n
}

// OK is true when no spec failed and every spec that was meant to run ran.
func (o Outcome) OK() bool { return o.Count(Failed) == 0 && o.Count(NotRun) == 0 }

// Verdict is the last line report prints.
func (o Outcome) Verdict() string {
	return fmt.Sprintf("conformance: %d passed, %d failed, %d skipped of %d",
		o.Count(Passed), o.Count(Failed), o.Count(Skipped), len(o.Rows))
}

// Evaluate gives every selected spec its result from the junit cases and the
// skip list. It is pure: inputs are parsed values.
func Evaluate(selection []specs.Spec, cases []junitCase, skip specs.SkipList) Outcome {
	byName := matchCases(selection, cases)
	var out Outcome
	for _, s := range selection {
		row := Row{Spec: s, Result: NotRun}
		c, ok := byName[s.Name]
		if ok {
			row.Seconds = c.Time
		}
		switch {
		case ok && c.Status == "passed":
			row.Result = Passed
		case ok && isFailure(c):
			row.Result = Failed
			row.Detail = failureLine(c)
		default:
			if rule, hit := skip.Match(s.Name); hit {
				row.Result, row.Detail = Skipped, rule.Reason
			} else if ok && c.Status == "pending" {
				row.Result, row.Detail = Skipped, "pending"
			} else if ok && c.Status == "skipped" && skipReason(c) != "" {
				row.Result, row.Detail = Skipped, skipReason(c)
			}
		}
		out.Rows = append(out.Rows, row)
	}
	for _, c := range cases {
		if _, isSpec := c.specText(); !isSpec && isFailure(c) {
			out.SuiteProblems = append(out.SuiteProblems, SuiteProblem{Name: c.Name, Detail: failureLine(c)})
		}
	}
	return out
}

// matchCases maps each selected spec name to its junit case. A case's spec
// text is the selected name exactly, or the name followed by ginkgo's
// " [label, ...]" suffix; the longest such name wins. When a name has several
// cases, the one that ran is kept over a bare "skipped" one.
func matchCases(selection []specs.Spec, cases []junitCase) map[string]junitCase {
	names := specs.Names(selection)
	// Longest first, so that the first prefix match is the longest.
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	out := make(map[string]junitCase)
	for _, c := range cases {
		text, ok := c.specText()
		if !ok {
			continue
		}
		for _, n := range names {
			if text == n || strings.HasPrefix(text, n+" [") {
				if prev, seen := out[n]; !seen || rank(c) > rank(prev) {
					out[n] = c
				}
				break
			}
		}
	}
	return out
}

// rank orders cases of one name: a real outcome beats a skip with a
// reason, which beats a bare skip.
func rank(c junitCase) int {
	switch {
	case c.Status == "passed" || isFailure(c):
		return 2
	case skipReason(c) != "":
		return 1
	}
	return 0
}

func isFailure(c junitCase) bool {
	switch c.Status {
	case "failed", "timedout", "interrupted", "aborted", "panicked":
		return true
	}
	return c.Status == "" && c.problem() != nil
}

// skipReason is ginkgo's skip message without its "skipped - " prefix; ""
// for a bare "skipped" (a spec the focus left out, or one never reached).
func skipReason(c junitCase) string {
	if c.Skipped == nil {
		return ""
	}
	m := strings.TrimSpace(c.Skipped.Message)
	if m == "skipped" {
		return ""
	}
	return firstLine(strings.TrimPrefix(m, "skipped - "))
}

func failureLine(c junitCase) string {
	p := c.problem()
	if p == nil {
		return c.Status
	}
	line := firstLine(p.Message)
	if line == "" {
		line = firstLine(p.Body)
	}
	if c.Status != "failed" && c.Status != "" {
		line = c.Status + ": " + line
	}
	return strings.TrimSuffix(line, ": ")
}

// firstLine returns the first non-blank line of s, trimmed and cut to 240
// characters.
func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			if r := []rune(l); len(r) > 240 {
				l = string(r[:240]) + "…"
			}
			return l
		}
	}
	return ""
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "`", "'")
}

// WriteMarkdown renders report.md. title names the run (kube version and
// inputs); the output depends on nothing else, so golden files pin it.
func WriteMarkdown(w io.Writer, title string, o Outcome) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# k8sm node conformance report\n\n%s\n\n", title)
	fmt.Fprintf(&b, "**%s**", strings.TrimPrefix(o.Verdict(), "conformance: "))
	if n := o.Count(NotRun); n > 0 {
		fmt.Fprintf(&b, " (%d not run)", n)
	}
	b.WriteString("\n\n")

	if len(o.SuiteProblems) > 0 {
		b.WriteString("## Suite failures\n\n| node | first failure line |\n|---|---|\n")
		for _, p := range o.SuiteProblems {
			fmt.Fprintf(&b, "| %s | %s |\n", cell(p.Name), cell(p.Detail))
		}
		b.WriteString("\n")
	}

	b.WriteString("## By file\n\n| file | passed | failed | skipped | not run | total |\n|---|--:|--:|--:|--:|--:|\n")
	var files []string
	perFile := map[string]map[Result]int{}
	for _, r := range o.Rows {
		if perFile[r.Spec.File] == nil {
			perFile[r.Spec.File] = map[Result]int{}
			files = append(files, r.Spec.File)
		}
		perFile[r.Spec.File][r.Result]++
	}
	slices.Sort(files)
	for _, f := range files {
		c := perFile[f]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", f, c[Passed], c[Failed], c[Skipped], c[NotRun],
			c[Passed]+c[Failed]+c[Skipped]+c[NotRun])
	}
	fmt.Fprintf(&b, "| **total** | %d | %d | %d | %d | %d |\n\n", o.Count(Passed), o.Count(Failed), o.Count(Skipped), o.Count(NotRun), len(o.Rows))

	for _, sec := range []struct {
		title  string
		result Result
		column string
	}{
		{"Failed", Failed, "first failure line"},
		{"Skipped", Skipped, "reason"},
		{"Not run", NotRun, ""},
	} {
		if o.Count(sec.result) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## %s (%d)\n\n", sec.title, o.Count(sec.result))
		if sec.result == NotRun {
			b.WriteString("No result in the junit report, or ginkgo's bare \"skipped\": the run ended " +
				"(suite timeout, interrupt, failed suite setup) before reaching these specs.\n\n")
		}
		if sec.column == "" {
			b.WriteString("| spec | file |\n|---|---|\n")
		} else {
			fmt.Fprintf(&b, "| spec | %s |\n|---|---|\n", sec.column)
		}
		for _, r := range o.Rows {
			if r.Result != sec.result {
				continue
			}
			if sec.column == "" {
				fmt.Fprintf(&b, "| %s | %s |\n", cell(r.Spec.Name), r.Spec.File)
			} else {
				fmt.Fprintf(&b, "| %s | %s |\n", cell(r.Spec.Name), cell(r.Detail))
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("## All specs\n\n| spec | file | result | seconds | first failure line |\n|---|---|---|--:|---|\n")
	for _, r := range o.Rows {
		detail := ""
		if r.Result == Failed {
			detail = r.Detail
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %s |\n", cell(r.Spec.Name), r.Spec.File, r.Result, r.Seconds, cell(detail))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
