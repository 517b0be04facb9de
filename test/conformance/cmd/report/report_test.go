package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestReport runs the command on a small ginkgo JUnit sample: a pass, a
// failure, a suite timeout, a run-time skip with a reason, a spec the run
// never reached (bare "skipped"), a skip.txt spec, a spec missing from the
// junit file, and a failed suite node.
func TestReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "report.md")
	var stdout, stderr bytes.Buffer
	ok, err := run([]string{
		"-selection", "testdata/selection.tsv", "-junit", "testdata/junit.xml",
		"-skip", "testdata/skip.txt", "-out", out,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if ok {
		t.Error("ok = true with failed and not-run specs")
	}

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if got, want := lines[len(lines)-1], "conformance: 2 passed, 2 failed, 2 skipped of 8"; got != want {
		t.Errorf("last line = %q, want %q\nstdout:\n%s", got, want, stdout.String())
	}
	if got, want := lines[len(lines)-2], "2 specs were not run"; got != want {
		t.Errorf("line before last = %q, want %q", got, want)
	}
	for _, want := range []string{
		"FAILED: [sig-node] Pods should get a host IP [NodeConformance] [Conformance]: Timed out after 300.000s.",
		"FAILED: [sig-node] Pods should be updated [NodeConformance] [Conformance]: timedout: A suite timeout occurred",
		"SUITE FAILED: [ReportAfterSuite] Kubernetes e2e suite report: could not write the summary",
	} {
		if !strings.Contains(stdout.String(), want+"\n") {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}

	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report.md differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

func TestReportAllPassed(t *testing.T) {
	dir := t.TempDir()
	sel := filepath.Join(dir, "sel.tsv")
	junit := filepath.Join(dir, "junit.xml")
	must(t, os.WriteFile(sel, []byte("test/e2e/common/node/lease.go\t[sig-node] Lease lease API should be available [Conformance]\n"), 0o644))
	must(t, os.WriteFile(junit, []byte(`<testsuites><testsuite>
<testcase name="[It] [sig-node] Lease lease API should be available [Conformance] [sig-node, Conformance]" status="passed" time="1.5"></testcase>
</testsuite></testsuites>`), 0o644))
	var stdout, stderr bytes.Buffer
	ok, err := run([]string{"-selection", sel, "-junit", junit, "-out", filepath.Join(dir, "r.md")}, &stdout, &stderr)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v\n%s%s", ok, err, stdout.String(), stderr.String())
	}
	if want := "report: " + filepath.Join(dir, "r.md") + "\nconformance: 1 passed, 0 failed, 0 skipped of 1\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
}

// Without a junit file (ginkgo died first) every spec is "not run".
func TestReportWithoutJUnit(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	ok, err := run([]string{
		"-selection", "testdata/selection.tsv", "-skip", "testdata/skip.txt",
		"-junit", filepath.Join(dir, "none.xml"), "-out", filepath.Join(dir, "r.md"),
	}, &stdout, &stderr)
	if err != nil || ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	if !strings.HasSuffix(stdout.String(), "7 specs were not run\nconformance: 0 passed, 0 failed, 1 skipped of 8\n") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xml")
	must(t, os.WriteFile(bad, []byte("<testsuites><testsuite>"), 0o644))
	badSkip := filepath.Join(dir, "skip.txt")
	must(t, os.WriteFile(badSkip, []byte("a pattern without a reason\n"), 0o644))
	for name, args := range map[string][]string{
		"no selection":      {"-junit", "testdata/junit.xml"},
		"missing selection": {"-selection", "testdata/nope.tsv", "-junit", "testdata/junit.xml"},
		"broken junit":      {"-selection", "testdata/selection.tsv", "-junit", bad},
		"bad skip list":     {"-selection", "testdata/selection.tsv", "-junit", "testdata/junit.xml", "-skip", badSkip},
	} {
		var stdout, stderr bytes.Buffer
		if _, err := run(append(args, "-out", filepath.Join(dir, "r.md")), &stdout, &stderr); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
