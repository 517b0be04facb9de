// Command select prints the upstream conformance specs k8sm runs: every
// entry of k8s.io/kubernetes v1.35.8's test/conformance/testdata/conformance.yaml
// whose file lies under test/e2e/common/node, test/e2e/common/storage or
// test/e2e/node (175 specs), optionally narrowed.
//
// Usage:
//
//	select [-conformance FILE] [-dirs D1,D2] [-only LIST] [-focus RE] [-skip FILE] [-files | -regexp]
//
// By default it prints one spec name (its full ginkgo text, conformance.yaml's
// "codename") a line. -files prints "file<TAB>name" lines; -regexp prints one
// regexp for ginkgo --focus that selects exactly those specs (about 25 kB for
// all of them, well under Linux's 128 kB limit for one argument). -only keeps
// the specs named in a list file (smoke.txt; a name that is not selected is an
// error), -focus those matching a regexp, -skip drops the specs skip.txt
// covers. Counts go to stderr. Without -conformance, the file is found in the
// module cache with "go list -m k8s.io/kubernetes", run in the current
// directory (which must be inside the test/conformance module).
package main
