package specs

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const sampleYAML = `- testname: Lease
  codename: '[sig-node] Lease lease API should be available [Conformance]'
  description: Create a lease.
  release: v1.17
  file: test/e2e/common/node/lease.go
- testname: ConfigMap Volume, without mapping
  codename: '[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance]
    [Conformance]'
  description: Mount a ConfigMap volume.
  release: v1.9
  file: test/e2e/common/storage/configmap_volume.go
- testname: Pods, QOS
  codename: '[sig-node] Pods Extended Pods Set QOS Class should be set on Pods with
    matching resource requests and limits for memory and cpu [Conformance]'
  release: v1.20
  file: test/e2e/node/pods.go
- testname: Kubectl, version
  codename: '[sig-cli] Kubectl client Kubectl version should check is all data is
    printed [Conformance]'
  release: v1.9
  file: test/e2e/kubectl/kubectl.go
- testname: Service, endpoints
  codename: '[sig-network] Services should serve a basic endpoint from pods [Conformance]'
  release: v1.9
  file: test/e2e/network/service.go
- testname: not under node/ but under nodeX/
  codename: '[sig-x] nodeX thing [Conformance]'
  release: v1.9
  file: test/e2e/nodeX/x.go
`

func TestParseConformanceAndInDirs(t *testing.T) {
	all, err := ParseConformance(strings.NewReader(sampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("parsed %d specs, want 6", len(all))
	}
	// YAML folds the long codename onto one line with single spaces.
	if want := "[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]"; all[1].Name != want {
		t.Errorf("folded codename = %q, want %q", all[1].Name, want)
	}
	got := InDirs(all, DefaultDirs)
	want := []Spec{
		{"[sig-node] Lease lease API should be available [Conformance]", "test/e2e/common/node/lease.go"},
		{"[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]", "test/e2e/common/storage/configmap_volume.go"},
		{"[sig-node] Pods Extended Pods Set QOS Class should be set on Pods with matching resource requests and limits for memory and cpu [Conformance]", "test/e2e/node/pods.go"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("InDirs = %q, want %q", got, want)
	}
}

func TestParseConformanceRejectsIncompleteEntries(t *testing.T) {
	for _, in := range []string{
		"- testname: x\n  file: test/e2e/node/a.go\n",
		"- testname: x\n  codename: '[sig-node] x'\n",
		"not: [a list",
	} {
		if _, err := ParseConformance(strings.NewReader(in)); err == nil {
			t.Errorf("ParseConformance(%q): no error", in)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList(strings.NewReader("# comment\n\n  [sig-node] A [Conformance]  \n[sig-node] B\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"[sig-node] A [Conformance]", "[sig-node] B"}; !slices.Equal(got, want) {
		t.Errorf("ParseList = %q, want %q", got, want)
	}
}

func TestParseSelection(t *testing.T) {
	got, err := ParseSelection(strings.NewReader("# c\ntest/e2e/node/a.go\t[sig-node] A [Conformance]\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Spec{{"[sig-node] A [Conformance]", "test/e2e/node/a.go"}}; !slices.Equal(got, want) {
		t.Errorf("ParseSelection = %q, want %q", got, want)
	}
	if _, err := ParseSelection(strings.NewReader("no tab here\n")); err == nil {
		t.Error("a line without a tab: no error")
	}
}

var list = []Spec{
	{"[sig-node] Pod InPlace Resize Container guaranteed pods resize [Conformance]", "test/e2e/common/node/pod_resize.go"},
	{"[sig-node] Pods should get a host IP [NodeConformance] [Conformance]", "test/e2e/common/node/pods.go"},
	{"[sig-api-machinery] Watchers should be able to restart watching [Conformance]", "test/e2e/apimachinery/watch.go"},
	{"[sig-node] Probing container should *not* be restarted with a exec \"cat /tmp/health\" liveness probe [NodeConformance] [Conformance]", "test/e2e/common/node/container_probe.go"},
}

func TestSkipList(t *testing.T) {
	in := "# why\n" +
		`^\[sig-node\] Pod InPlace Resize Container ` + "\tno in-place resize\n" +
		"[sig-api-machinery] Watchers should be able to restart watching [Conformance]\tan exact name that is no valid regexp\n" +
		"never matches anything\tstale\n"
	rules, err := ParseSkip(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || rules[0].Line != 2 || rules[0].Reason != "no in-place resize" {
		t.Fatalf("rules = %+v", rules)
	}
	run, skipped, unused := rules.Apply(list)
	if want := []Spec{list[1], list[3]}; !slices.Equal(run, want) {
		t.Errorf("run = %q, want %q", run, want)
	}
	if want := []Spec{list[0], list[2]}; !slices.Equal(skipped, want) {
		t.Errorf("skipped = %q, want %q", skipped, want)
	}
	if len(unused) != 1 || unused[0].Pattern != "never matches anything" {
		t.Errorf("unused = %+v", unused)
	}
	if r, ok := rules.Match(list[2].Name); !ok || r.Line != 3 {
		t.Errorf("Match(exact name) = %+v, %v", r, ok)
	}
	// An exact name whose brackets read as a regexp class must not match
	// other names by accident: "[sig-api-machinery]" does not compile
	// ("g-a"), so it is compared for equality only.
	if _, ok := rules.Match("s"); ok {
		t.Error(`Match("s") matched`)
	}
}

func TestParseSkipRejectsLinesWithoutReason(t *testing.T) {
	for _, in := range []string{"pattern only\n", "pattern\t\n", "\treason\n"} {
		if _, err := ParseSkip(strings.NewReader(in)); err == nil {
			t.Errorf("ParseSkip(%q): no error", in)
		}
	}
}

func TestOnly(t *testing.T) {
	got, err := Only(list, []string{list[3].Name, list[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Spec{list[1], list[3]}; !slices.Equal(got, want) {
		t.Errorf("Only = %q, want %q (the selection's order)", got, want)
	}
	if _, err := Only(list, []string{"[sig-node] no such spec"}); err == nil || !strings.Contains(err.Error(), "no such spec") {
		t.Errorf("Only with an unknown name: err = %v", err)
	}
}

func TestMatching(t *testing.T) {
	got := Matching(list, regexp.MustCompile(`host IP|Probing`))
	if want := []Spec{list[1], list[3]}; !slices.Equal(got, want) {
		t.Errorf("Matching = %q, want %q", got, want)
	}
}

// FocusRegexp must select exactly the named specs the way ginkgo matches
// them: against "<suite description> <spec text>".
func TestFocusRegexp(t *testing.T) {
	if _, err := FocusRegexp(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("FocusRegexp(nil) err = %v, want ErrEmpty", err)
	}
	names := []string{list[1].Name, list[3].Name, list[1].Name}
	s, err := FocusRegexp(names)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(s)
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"Kubernetes e2e suite " + list[1].Name, true},
		{"Kubernetes e2e suite " + list[3].Name, true},
		{list[1].Name, true},
		{"Kubernetes e2e suite " + list[0].Name, false},
		{"Kubernetes e2e suite " + list[1].Name + " [Slow]", false},
		{"Kubernetes e2e suite x" + list[1].Name, false},
		{"Kubernetes e2e suite [sig-node] Pods should get a host IPv6 [NodeConformance] [Conformance]", false},
	} {
		if got := re.MatchString(tc.text); got != tc.want {
			t.Errorf("focus matches %q = %v, want %v", tc.text, got, tc.want)
		}
	}
	if strings.Count(s, regexp.QuoteMeta(list[1].Name)) != 1 {
		t.Errorf("duplicates not removed: %s", s)
	}
}
