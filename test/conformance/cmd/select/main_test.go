package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/k8sm/k8sm/test/conformance/internal/specs"
)

const (
	lease  = "[sig-node] Lease lease API should be available [Conformance]"
	resize = "[sig-node] Pod InPlace Resize Container resize pod via the replace endpoint [MinimumKubeletVersion:1.34] [Conformance]"
	cmVol  = "[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]"
	qos    = "[sig-node] Pods Extended Pods Set QOS Class should be set on Pods with matching resource requests and limits for memory and cpu [Conformance]"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runSelect(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(append([]string{"-conformance", "testdata/conformance.yaml"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestSelect(t *testing.T) {
	skip := writeFile(t, "skip.txt", "# c\n"+`^\[sig-node\] Pod InPlace Resize `+"\tno resize\n")
	smoke := writeFile(t, "smoke.txt", "# c\n"+qos+"\n"+lease+"\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, strings.Join([]string{lease, resize, cmVol, qos}, "\n") + "\n"},
		{"files", []string{"-files"}, "test/e2e/common/node/lease.go\t" + lease + "\n" +
			"test/e2e/common/node/pod_resize.go\t" + resize + "\n" +
			"test/e2e/common/storage/configmap_volume.go\t" + cmVol + "\n" +
			"test/e2e/node/pods.go\t" + qos + "\n"},
		{"skip", []string{"-skip", skip}, strings.Join([]string{lease, cmVol, qos}, "\n") + "\n"},
		{"only", []string{"-only", smoke, "-skip", skip}, lease + "\n" + qos + "\n"},
		{"focus", []string{"-focus", `sig-storage|QOS`}, cmVol + "\n" + qos + "\n"},
		{"dirs", []string{"-dirs", "test/e2e/kubectl"}, "[sig-cli] Kubectl client Kubectl version should check is all data is printed [Conformance]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := runSelect(t, tc.args...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			if out != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.want)
			}
		})
	}
}

func TestSelectRegexp(t *testing.T) {
	skip := writeFile(t, "skip.txt", `^\[sig-node\] Pod InPlace Resize `+"\tno resize\n")
	out, stderr, err := runSelect(t, "-regexp", "-skip", skip)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line, got %q", out)
	}
	re := regexp.MustCompile(strings.TrimSpace(out))
	for name, want := range map[string]bool{lease: true, cmVol: true, qos: true, resize: false} {
		if got := re.MatchString("Kubernetes e2e suite " + name); got != want {
			t.Errorf("focus matches %q = %v, want %v", name, got, want)
		}
	}
	if !strings.Contains(stderr, "1 skipped by") || !strings.Contains(stderr, "3 specs selected") {
		t.Errorf("stderr counts:\n%s", stderr)
	}
}

func TestSelectErrors(t *testing.T) {
	unknown := writeFile(t, "smoke.txt", "[sig-node] no such spec [Conformance]\n")
	stale := writeFile(t, "skip.txt", "matches nothing\tstale\n")
	for name, args := range map[string][]string{
		"unknown -only name":     {"-only", unknown},
		"empty regexp":           {"-regexp", "-focus", "no spec has this"},
		"files and regexp":       {"-files", "-regexp"},
		"bad focus":              {"-focus", "("},
		"extra argument":         {"extra"},
		"missing conformance":    {"-conformance", "testdata/nope.yaml"},
		"missing skip list file": {"-skip", "testdata/nope.txt"},
	} {
		if _, _, err := runSelect(t, args...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, stderr, err := runSelect(t, "-skip", stale)
	if err != nil || !strings.Contains(stderr, "warning: "+stale+":1 matches no selected spec") {
		t.Errorf("stale skip rule: err %v, stderr:\n%s", err, stderr)
	}
}

// TestUpstreamSelection pins the real v1.35.8 selection and checks that
// smoke.txt and skip.txt fit it. It needs the k8s.io/kubernetes module in the
// module cache (go mod download) and skips without it.
func TestUpstreamSelection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	path, err := conformanceFromModCache()
	if err != nil {
		t.Skipf("k8s.io/kubernetes not in the module cache: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("k8s.io/kubernetes not in the module cache: %v", err)
	}
	all, err := specs.ParseFile(path, specs.ParseConformance)
	if err != nil {
		t.Fatal(err)
	}
	sel := specs.InDirs(all, specs.DefaultDirs)
	perDir := map[string]int{}
	for _, s := range sel {
		for _, d := range specs.DefaultDirs {
			if strings.HasPrefix(s.File, d+"/") {
				perDir[d]++
			}
		}
	}
	if len(all) != 441 || len(sel) != 175 || perDir["test/e2e/common/node"] != 91 ||
		perDir["test/e2e/common/storage"] != 74 || perDir["test/e2e/node"] != 10 {
		t.Errorf("v1.35.8: %d specs, %d selected, per directory %v; want 441, 175, 91/74/10", len(all), len(sel), perDir)
	}

	smoke, err := specs.ParseFile("../../smoke.txt", specs.ParseList)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := specs.Only(sel, smoke); err != nil {
		t.Errorf("smoke.txt: %v", err)
	}
	rules, err := specs.ParseFile("../../skip.txt", specs.ParseSkip)
	if err != nil {
		t.Fatal(err)
	}
	_, skipped, unused := rules.Apply(sel)
	if len(unused) > 0 {
		t.Errorf("skip.txt rules that match nothing: %+v", unused)
	}
	for _, s := range skipped {
		if !strings.Contains(s.Name, "Pod InPlace Resize") {
			t.Errorf("skip.txt skips %q", s.Name)
		}
	}
	if len(skipped) != 6 {
		t.Errorf("skip.txt skips %d specs, want the 6 in-place resize specs", len(skipped))
	}
}
