// Command report turns a conformance run into _output/conformance/report.md
// and a one-line verdict.
//
// Usage:
//
//	report -selection FILE -junit FILE [-skip FILE] [-out FILE]
//
// The selection is "file<TAB>name" lines (cmd/select -files): every spec the
// run was meant to cover, the ones skip.txt removes included. The junit file
// is the ginkgo CLI's merged --junit-report. Each selected spec gets one
// result:
//
//   - passed, or failed (ginkgo's failed, timedout, interrupted, aborted and
//     panicked states) with the first line of its failure message;
//   - skipped: covered by skip.txt (with that reason), or skipped by the spec
//     itself at run time (e2eskipper, with ginkgo's message);
//   - not run: no junit entry, or ginkgo's bare "skipped" (the focus missed
//     it, or the suite was interrupted, timed out or failed its setup first).
//
// report.md has a table by file, the skipped specs with their reasons, and a
// row per spec. On stdout, the last line is exactly
// "conformance: N passed, N failed, N skipped of M" (M the selection's size),
// preceded by "N specs were not run" when some were not. The exit status is 0
// only with no failed and no not-run spec; 1 otherwise; 2 for bad input. A
// missing junit file is not bad input: every spec is then "not run".
package main
