package staticpods

import (
	"bytes"
	"os"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/k8sm/k8sm/podspec"
)

// FuzzUnpack: arbitrary data never panics Unpack or takes it past its bounds,
// and whatever it accepts packs and unpacks to the same pods.
func FuzzUnpack(f *testing.F) {
	pods, err := Unpack(mustPack(f))
	if err != nil {
		f.Fatal(err)
	}
	packed, _ := Pack(pods)
	f.Add(packed)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		pods, err := Unpack(data)
		if err != nil {
			return
		}
		again, err := Pack(pods)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unpack(again)
		if err != nil {
			t.Fatalf("Unpack of Pack output: %v", err)
		}
		if !apiequality.Semantic.DeepEqual(pods, back) {
			t.Fatal("round trip changed the pods")
		}
		if twice, _ := Pack(back); !bytes.Equal(twice, again) {
			t.Fatal("Pack is not deterministic after a round trip")
		}
	})
}

func mustPack(f *testing.F) []byte {
	data, err := os.ReadFile("testdata/good/20-agent.json")
	if err != nil {
		f.Fatal(err)
	}
	pod, err := podspec.Decode(data)
	if err != nil {
		f.Fatal(err)
	}
	podspec.Default(pod, podspec.StandardDefaults())
	b, err := Pack([]*v1.Pod{pod})
	if err != nil {
		f.Fatal(err)
	}
	return b
}
