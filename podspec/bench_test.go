package podspec

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// BenchmarkDecodeValidateDefault: the per-pod work of a LAUNCH for a typical
// 3-container pod (goal: well under 1 ms).
func BenchmarkDecodeValidateDefault(b *testing.B) {
	data := readFile(b, "testdata/web.yaml")
	d := StandardDefaults()
	b.ReportAllocs()
	for b.Loop() {
		pod, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := Validate(pod, Policy{}); err != nil {
			b.Fatal(err)
		}
		Default(pod, d)
	}
}

// BenchmarkDecodeValidateDefaultJSON: the same pod as task data carries it.
func BenchmarkDecodeValidateDefaultJSON(b *testing.B) {
	data, err := yaml.YAMLToJSON(readFile(b, "testdata/web.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	d := StandardDefaults()
	b.ReportAllocs()
	for b.Loop() {
		pod, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := Validate(pod, Policy{}); err != nil {
			b.Fatal(err)
		}
		Default(pod, d)
	}
}
