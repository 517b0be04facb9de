package podspec

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// benchDecode measures the per-pod work of a LAUNCH: decode, validate and
// default (goal: well under 1 ms for a typical 3-container pod).
func benchDecode(b *testing.B, data []byte) {
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

// BenchmarkDecodeValidateDefault: testdata/web.yaml as a manifest (YAML).
func BenchmarkDecodeValidateDefault(b *testing.B) {
	benchDecode(b, readFile(b, "testdata/web.yaml"))
}

// BenchmarkDecodeValidateDefaultJSON: the same pod as task data carries it.
func BenchmarkDecodeValidateDefaultJSON(b *testing.B) {
	data, err := yaml.YAMLToJSON(readFile(b, "testdata/web.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, data)
}
