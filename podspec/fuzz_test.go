package podspec

import (
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// FuzzDecodeValidate: no input panics Decode, Validate or Default; Default is
// idempotent and never turns a valid pod invalid.
func FuzzDecodeValidate(f *testing.F) {
	for _, seed := range [][]byte{
		readFile(f, "testdata/web.yaml"),
		[]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":80,"hostPort":31000}]}]}}`),
		[]byte("apiVersion: v1\nkind: Pod\nspec: {hostNetwork: true, volumes: [{name: v, hostPath: {path: /}}]}\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pod, err := Decode(data)
		if err != nil {
			return
		}
		valid := Validate(pod, Policy{}) == nil
		_ = Validate(pod, Policy{AllowPrivileged: true, AllowHostPath: true})
		Default(pod, StandardDefaults())
		if valid {
			if err := Validate(pod, Policy{}); err != nil {
				t.Fatalf("Default made a valid pod invalid: %v", err)
			}
		}
		again := pod.DeepCopy()
		Default(again, StandardDefaults())
		if !apiequality.Semantic.DeepEqual(pod, again) {
			t.Fatal("Default is not idempotent")
		}
		_ = HostPorts(pod)
		if valid {
			if cpus, mem := Resources(pod); cpus < 0 || mem < 0 {
				t.Fatalf("Resources of a valid pod overflowed: %v cpus, %d bytes", cpus, mem)
			}
		}
	})
}
