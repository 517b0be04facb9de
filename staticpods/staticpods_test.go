package staticpods

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/k8sm/k8sm/podspec"
)

var update = flag.Bool("update", false, "rewrite golden files")

func opts() Options {
	return Options{Defaults: podspec.StandardDefaults()}
}

// copyDir copies testdata/<name> into a fresh 0755 temp dir, so modes do
// not depend on the checkout's umask.
func copyDir(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", name, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func names(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden (go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestLoadGood(t *testing.T) {
	dir := copyDir(t, "good")
	res, err := Load(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kube-system/web", "kube-system/logger", "kube-system/node-agent"}
	if got := names(res.Pods); !slices.Equal(got, want) {
		t.Fatalf("pods = %v, want %v (file name, then document order)", got, want)
	}
	var skipped []string
	for _, s := range res.Skipped {
		skipped = append(skipped, filepath.Base(s.Path)+": "+s.Reason)
	}
	if want := []string{".hidden.yaml: dotfile", "README.md: not a .yaml, .yml or .json file"}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped = %q, want %q", skipped, want)
	}
	logger := res.Pods[1]
	if l := logger.Spec.Containers[0].Resources.Limits; l.Cpu().String() != "250m" || l.Memory().String() != "64Mi" {
		t.Errorf("logger not defaulted: %v", l)
	}
	if logger.Annotations[SourceAnnotation] != "file" || logger.Annotations[FileAnnotation] != "10-web.yaml#1" || logger.UID == "" {
		t.Errorf("static identity missing: %v uid %q", logger.Annotations, logger.UID)
	}
	again, _ := Load(dir, opts())
	if again.Pods[1].UID != logger.UID {
		t.Error("UID not deterministic")
	}
	// 100m+250m+50m cpu; 32+64+40 MiB, plus the sandbox allowance of
	// each of the 3 pods.
	wantMem := 136*podspec.MiB + 3*podspec.SandboxMemoryBytes
	if milli, mem := Sum(res.Pods); milli != 400 || mem != int64(wantMem) {
		t.Errorf("Sum = %dm, %d bytes; want 400m, %d", milli, mem, wantMem)
	}
}

func TestLoadSkips(t *testing.T) {
	dir := copyDir(t, "good")
	outside := filepath.Join(t.TempDir(), "evil.yaml")
	if err := os.WriteFile(outside, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: evil}\nspec: {containers: [{name: c, image: i}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(outside, filepath.Join(dir, "30-evil.yaml")))
	must(os.Symlink("20-agent.json", filepath.Join(dir, "40-alias.json.yaml")))
	must(os.Mkdir(filepath.Join(dir, "50-dir.yaml"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "60-big.yaml"), bytes.Repeat([]byte("#"), MaxFileBytes+1), 0o644))
	must(os.Symlink("nowhere", filepath.Join(dir, "70-broken.yaml")))

	res, err := Load(dir, Options{Defaults: podspec.StandardDefaults(), Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, s := range res.Skipped {
		reasons[filepath.Base(s.Path)] = s.Reason
	}
	for name, want := range map[string]string{
		"30-evil.yaml": "outside the directory", "50-dir.yaml": "directory",
		"60-big.yaml": "larger than 1 MiB", "70-broken.yaml": "broken symlink",
	} {
		if !strings.Contains(reasons[name], want) {
			t.Errorf("%s: skip reason %q, want %q", name, reasons[name], want)
		}
	}
	// The symlink inside the directory is read, and its pod collides with
	// the file it points to.
	if len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0].Error(), "also defined in 20-agent.json#0") {
		t.Errorf("invalid = %v, want the alias reported as a duplicate", res.Invalid)
	}
	if slices.Contains(names(res.Pods), "default/evil") {
		t.Error("loaded a pod through a symlink leading outside the directory")
	}
}

func TestLoadRefusesWritableDir(t *testing.T) {
	dir := copyDir(t, "good")
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, opts())
	if err == nil || !strings.Contains(err.Error(), "group- or world-writable") || !strings.Contains(err.Error(), "chmod go-w") {
		t.Fatalf("err = %v, want a refusal that says how to fix it", err)
	}
}

func TestLoadStrictAndLenient(t *testing.T) {
	dir := copyDir(t, "bad")
	_, err := Load(dir, opts())
	if err == nil {
		t.Fatal("strict load of a directory with bad files succeeded")
	}
	golden(t, "bad_errors.golden", []byte(strings.ReplaceAll(err.Error(), dir, "<dir>")+"\n"))

	res, err := Load(dir, Options{Defaults: podspec.StandardDefaults(), Lenient: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res.Pods); !slices.Equal(got, []string{"default/c"}) {
		t.Errorf("lenient pods = %v, want only the good file's", got)
	}
	if len(res.Invalid) != 4 {
		t.Errorf("lenient invalid = %d errors, want 4: %v", len(res.Invalid), res.Invalid)
	}
}

func TestPackDeterministicAndRoundTrips(t *testing.T) {
	res, err := Load(copyDir(t, "good"), opts())
	if err != nil {
		t.Fatal(err)
	}
	a, err := Pack(res.Pods)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Pack(res.Pods)
	if !bytes.Equal(a, b) {
		t.Fatal("Pack is not deterministic")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header carries time %v / name %q", zr.ModTime, zr.Name)
	}
	var js bytes.Buffer
	if _, err := js.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	golden(t, "pack.golden.json", append(js.Bytes(), '\n'))

	back, err := Unpack(a)
	if err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(back, res.Pods) {
		t.Fatal("Unpack(Pack(pods)) differs from pods")
	}
}

func TestUnpackRefuses(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	bomb := gz(bytes.Repeat([]byte(" "), MaxUnpackedBytes+1))
	if _, err := Unpack(bomb); !errors.Is(err, ErrTooLarge) {
		t.Errorf("bomb: err = %v, want ErrTooLarge", err)
	}
	for name, data := range map[string][]byte{
		"not gzip":    []byte("{}"),
		"not a list":  gz([]byte(`{"kind":"Pod","apiVersion":"v1"}`)),
		"bad item":    gz([]byte(`{"kind":"PodList","apiVersion":"v1","items":[{"kind":"Pod","apiVersion":"v1","spec":{"nope":1}}]}`)),
		"truncated":   gz([]byte(`{"kind":"PodList"`)),
		"not json":    gz([]byte("hello")),
		"items typed": gz([]byte(`{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"x"}}]}`)),
	} {
		if _, err := Unpack(data); err == nil {
			t.Errorf("%s: Unpack accepted it", name)
		}
	}
}
