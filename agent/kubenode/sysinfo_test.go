package kubenode

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// The version the Node reports is the k8s.io version go.mod pins, so
// "kubectl get nodes" tells which API the executor speaks.
func TestKubeVersionMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s.io/api (v\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod does not require k8s.io/api")
	}
	if want := "v1" + strings.TrimPrefix(string(m[1]), "v0"); KubeVersion != want {
		t.Fatalf("KubeVersion %s, but go.mod pins k8s.io/api %s (want %s)", KubeVersion, m[1], want)
	}
}

func TestKubeletVersionIsSemver(t *testing.T) {
	for in, want := range map[string]string{
		"v0.4.1":                "v1.35.8-k8sm.0.4.1",
		"2d695b2-dirty":         "v1.35.8-k8sm.2d695b2-dirty",
		"dev":                   "v1.35.8-k8sm.dev",
		"":                      "v1.35.8-k8sm.dev",
		"v0.5.0-3-g2d695b2+x/y": "v1.35.8-k8sm.0.5.0-3-g2d695b2.x.y",
	} {
		got := KubeletVersion(in)
		_, err := utilversion.ParseSemantic(got)
		if got != want || err != nil {
			t.Errorf("KubeletVersion(%q) = %q (semver: %v), want %q", in, got, err, want)
		}
	}
}

func TestSystemInfo(t *testing.T) {
	root := t.TempDir()
	for p, v := range map[string]string{
		"etc/machine-id":                 "m1\n",
		"proc/sys/kernel/random/boot_id": "b1\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := ReadHost(root)
	if h.MachineID != "m1" || h.BootID != "b1" || h.SystemUUID != "" {
		t.Fatalf("ReadHost = %+v, want machine m1, boot b1, no uuid", h)
	}
	h.KernelVersion, h.OSImage, h.DockerVersion = "6.1.0", "Debian GNU/Linux 13 (trixie)", "26.1.5"
	ni := SystemInfo(h, "v0.4.1")
	if ni.ContainerRuntimeVersion != "docker://26.1.5" || ni.KubeletVersion != "v1.35.8-k8sm.0.4.1" ||
		ni.OperatingSystem != runtime.GOOS || ni.Architecture != runtime.GOARCH ||
		ni.KernelVersion != "6.1.0" || ni.OSImage != "Debian GNU/Linux 13 (trixie)" || ni.MachineID != "m1" {
		t.Fatalf("SystemInfo = %+v", ni)
	}
	if SystemInfo(Host{}, "").ContainerRuntimeVersion != "" {
		t.Fatal("no Docker version must leave the runtime empty, not docker://")
	}
}
