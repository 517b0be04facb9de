package podspec

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeYAMLAndJSON(t *testing.T) {
	y := readFile(t, "testdata/web.yaml")
	pod, err := Decode(y)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Name != "web" || len(pod.Spec.Containers) != 2 || len(pod.Spec.InitContainers) != 1 {
		t.Fatalf("decoded wrong pod: %s, %d containers", pod.Name, len(pod.Spec.Containers))
	}
	js := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i"}]}}`)
	if _, err := Decode(js); err != nil {
		t.Fatalf("JSON: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	const head = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
	for _, tc := range []struct {
		name   string
		in     string
		fields []string // field paths the error must name
		msg    string   // substring of the error
	}{
		{"unknown nested field", head + "spec:\n  containers:\n  - {name: c, image: i, imagePullPolice: Always}\n",
			[]string{"spec.containers[0].imagePullPolice"}, `unknown field "spec.containers[0].imagePullPolice"`},
		{"unknown top field", head + "spec: {containers: [{name: c, image: i}]}\nstatus2: {}\n",
			[]string{"status2"}, "status2"},
		{"duplicate JSON field", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"},"spec":{}}`,
			[]string{"metadata.name"}, "duplicate field"},
		{"duplicate YAML key", head + "spec: {}\nspec: {}\n", nil, "spec"},
		{"wrong kind", "apiVersion: v1\nkind: Deployment\nmetadata: {name: a}\n", []string{"kind"}, `kind: must be "Pod", got "Deployment"`},
		{"missing apiVersion", "kind: Pod\nmetadata: {name: a}\n", []string{"apiVersion"}, `apiVersion: must be "v1"`},
		{"not a pod at all", "just text", nil, "cannot unmarshal string"},
		{"wrong type", head + "spec: {containers: 5}\n", nil, "spec.containers"},
		{"empty", "", []string{"kind", "apiVersion"}, ""},
		{"huge exponent in a limit", head + "spec: {containers: [{name: c, image: i, resources: {limits: {cpu: \"1e-9999999\"}}}]}\n",
			[]string{"spec.containers[0].resources.limits.cpu"}, "quantity exponent out of range"},
		{"huge exponent as a JSON number", `{"apiVersion":"v1","kind":"Pod","spec":{"volumes":[{"name":"v","emptyDir":{"sizeLimit":1E+0001000}}]}}`,
			[]string{"spec.volumes[0].emptyDir.sizeLimit"}, "quantity exponent out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			for _, f := range tc.fields {
				if !slices.Contains(de.Fields, f) {
					t.Errorf("Fields = %q, want it to contain %q", de.Fields, f)
				}
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestDecodeSizeBound(t *testing.T) {
	big := append([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n#"), bytes.Repeat([]byte("x"), MaxPodBytes)...)
	if _, err := Decode(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestExponentTooLong(t *testing.T) {
	for s, want := range map[string]bool{
		"1e-9999999": true, "1E100": true, "5e+0100": true, "1e99": false, "1E3": false,
		"1Ei": false, "2E": false, "500m": false, "1e": false, "64Mi": false, "1e0099": false,
	} {
		if got := exponentTooLong(s); got != want {
			t.Errorf("exponentTooLong(%q) = %v, want %v", s, got, want)
		}
	}
}

// A command argument that looks like a quantity is not a quantity.
func TestHugeExponentOutsideQuantitiesIsFine(t *testing.T) {
	in := "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i, args: [\"1e-9999999\"], env: [{name: requests, value: \"1e9999\"}]}]}\n"
	if _, err := Decode([]byte(in)); err != nil {
		t.Fatal(err)
	}
}

// The byte pre-filter never hides what the full check finds: every string
// exponentTooLong refuses passes it.
func TestPreFilterCoversExponentCheck(t *testing.T) {
	for _, q := range []string{"1e-9999999", "1E100", "5e+0100", "1e00100", "2e999", "1e99", "1Ei", "500m", "1e0099"} {
		if exponentTooLong(q) && !mayHaveLongExponent([]byte(`{"a":"`+q+`"}`)) {
			t.Errorf("%q: refused by the check but skipped by the pre-filter", q)
		}
	}
	if mayHaveLongExponent([]byte(`{"cpu":"250m","memory":"64Mi","n":"1e99","image":"k8sm.local/busybox:test"}`)) {
		t.Error("pre-filter fires on an ordinary pod")
	}
}
