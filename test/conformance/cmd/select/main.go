package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/k8sm/k8sm/test/conformance/internal/specs"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "select: %v\n", err)
		}
		os.Exit(2)
	}
}

type options struct {
	conformance string
	dirs        string
	only        string
	focus       string
	skip        string
	files       bool
	regexp      bool
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("select", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.conformance, "conformance", "", "upstream conformance.yaml (default: from the module cache, via go list)")
	fs.StringVar(&o.dirs, "dirs", strings.Join(specs.DefaultDirs, ","), "comma-separated upstream directories whose specs are selected")
	fs.StringVar(&o.only, "only", "", "keep only the specs named in this file (one exact name a line)")
	fs.StringVar(&o.focus, "focus", "", "keep only the specs matching this regexp")
	fs.StringVar(&o.skip, "skip", "", "drop the specs covered by this skip list (<pattern>\\t<reason> lines)")
	fs.BoolVar(&o.files, "files", false, "print \"file<TAB>name\" lines")
	fs.BoolVar(&o.regexp, "regexp", false, "print one ginkgo --focus regexp selecting exactly the specs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.files && o.regexp {
		return errors.New("-files and -regexp exclude each other")
	}
	if o.conformance == "" {
		p, err := conformanceFromModCache()
		if err != nil {
			return err
		}
		o.conformance = p
	}

	all, err := specs.ParseFile(o.conformance, specs.ParseConformance)
	if err != nil {
		return err
	}
	list := specs.InDirs(all, splitComma(o.dirs))
	_, _ = fmt.Fprintf(stderr, "select: %d of %d conformance specs under %s\n", len(list), len(all), o.dirs)
	var rules specs.SkipList
	if o.skip != "" {
		if rules, err = specs.ParseFile(o.skip, specs.ParseSkip); err != nil {
			return err
		}
		// Stale rules are judged against the whole selection, not the
		// -only or -focus subset.
		_, _, unused := rules.Apply(list)
		for _, r := range unused {
			_, _ = fmt.Fprintf(stderr, "select: warning: %s:%d matches no selected spec: %s\n", o.skip, r.Line, r.Pattern)
		}
	}
	if o.only != "" {
		names, err := specs.ParseFile(o.only, specs.ParseList)
		if err != nil {
			return err
		}
		if list, err = specs.Only(list, names); err != nil {
			return fmt.Errorf("%s: %w", o.only, err)
		}
		_, _ = fmt.Fprintf(stderr, "select: %d listed in %s\n", len(list), o.only)
	}
	if o.focus != "" {
		re, err := regexp.Compile(o.focus)
		if err != nil {
			return fmt.Errorf("-focus: %w", err)
		}
		list = specs.Matching(list, re)
		_, _ = fmt.Fprintf(stderr, "select: %d match -focus %q\n", len(list), o.focus)
	}
	if o.skip != "" {
		run, skipped, _ := rules.Apply(list)
		_, _ = fmt.Fprintf(stderr, "select: %d skipped by %s\n", len(skipped), o.skip)
		list = run
	}
	_, _ = fmt.Fprintf(stderr, "select: %d specs selected\n", len(list))

	switch {
	case o.regexp:
		re, err := specs.FocusRegexp(specs.Names(list))
		if err != nil {
			return fmt.Errorf("focus regexp: %w", err)
		}
		_, err = fmt.Fprintln(stdout, re)
		return err
	case o.files:
		for _, s := range list {
			if _, err := fmt.Fprintf(stdout, "%s\t%s\n", s.File, s.Name); err != nil {
				return err
			}
		}
	default:
		for _, s := range list {
			if _, err := fmt.Fprintln(stdout, s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// conformanceFromModCache locates conformance.yaml in the module cache
// directory of the k8s.io/kubernetes version the current module requires.
func conformanceFromModCache() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m k8s.io/kubernetes (run inside test/conformance, or pass -conformance): %w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m k8s.io/kubernetes: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", errors.New("go list -m k8s.io/kubernetes: module not downloaded (go mod download k8s.io/kubernetes)")
	}
	return filepath.Join(dir, "test", "conformance", "testdata", "conformance.yaml"), nil
}
