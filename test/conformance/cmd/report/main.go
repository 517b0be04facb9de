package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/k8sm/k8sm/test/conformance/internal/specs"
)

func main() {
	ok, err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "report: %v\n", err)
		os.Exit(2)
	case !ok:
		os.Exit(1)
	}
}

// run writes the report and prints the verdict; ok is false when a spec
// failed or was not run.
func run(args []string, stdout, stderr io.Writer) (ok bool, err error) {
	fset := flag.NewFlagSet("report", flag.ContinueOnError)
	fset.SetOutput(stderr)
	selection := fset.String("selection", "", "the selected specs, \"file<TAB>name\" lines (select -files)")
	junit := fset.String("junit", "", "ginkgo's merged JUnit report")
	skip := fset.String("skip", "", "skip.txt (<pattern>\\t<reason> lines)")
	out := fset.String("out", "_output/conformance/report.md", "the Markdown report to write")
	title := fset.String("title", "Kubernetes v1.35.8 node conformance specs (test/e2e/common/node, common/storage, node) on a k8sm cluster.", "the report's first paragraph")
	if err := fset.Parse(args); err != nil {
		return false, err
	}
	if *selection == "" || *junit == "" || fset.NArg() > 0 {
		return false, errors.New("usage: report -selection FILE -junit FILE [-skip FILE] [-out FILE]")
	}

	sel, err := specs.ParseFile(*selection, specs.ParseSelection)
	if err != nil {
		return false, err
	}
	var rules specs.SkipList
	if *skip != "" {
		if rules, err = specs.ParseFile(*skip, specs.ParseSkip); err != nil {
			return false, err
		}
	}
	cases, err := specs.ParseFile(*junit, parseJUnit)
	if errors.Is(err, fs.ErrNotExist) {
		_, _ = fmt.Fprintf(stderr, "report: %s does not exist (ginkgo wrote no report): every spec counts as not run\n", *junit)
		cases, err = nil, nil
	}
	if err != nil {
		return false, err
	}

	o := Evaluate(sel, cases, rules)
	var md bytes.Buffer
	if err := WriteMarkdown(&md, *title, o); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return false, fmt.Errorf("create report directory: %w", err)
	}
	if err := os.WriteFile(*out, md.Bytes(), 0o644); err != nil {
		return false, fmt.Errorf("write report: %w", err)
	}

	var msg bytes.Buffer
	for _, p := range o.SuiteProblems {
		fmt.Fprintf(&msg, "SUITE FAILED: %s: %s\n", p.Name, p.Detail)
	}
	for _, r := range o.Rows {
		if r.Result == Failed {
			fmt.Fprintf(&msg, "FAILED: %s: %s\n", r.Spec.Name, r.Detail)
		}
	}
	fmt.Fprintf(&msg, "report: %s\n", *out)
	if n := o.Count(NotRun); n > 0 {
		fmt.Fprintf(&msg, "%d specs were not run\n", n)
	}
	fmt.Fprintln(&msg, o.Verdict())
	if _, err := stdout.Write(msg.Bytes()); err != nil {
		return false, err
	}
	return o.OK(), nil
}
