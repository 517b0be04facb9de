package staticpods

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/k8sm/k8sm/podspec"
)

// Limits.
const (
	// MaxFileBytes: larger manifest files are skipped.
	MaxFileBytes = 1 << 20
	// MaxUnpackedBytes bounds what Unpack decompresses.
	MaxUnpackedBytes = 16 << 20
)

// Annotations set on every static pod.
const (
	// SourceAnnotation is the kubelet's: "file" for static pods.
	SourceAnnotation = "kubernetes.io/config.source"
	// HashAnnotation is the kubelet's content hash of a static pod.
	HashAnnotation = "kubernetes.io/config.hash"
	// FileAnnotation names the manifest file and document a pod came from.
	FileAnnotation = "k8sm.io/static-pod-file"
)

// ErrTooLarge is returned (wrapped) by Unpack for data over MaxUnpackedBytes.
var ErrTooLarge = errors.New("static pods larger than 16 MiB unpacked")

// Options of Load.
type Options struct {
	Policy   podspec.Policy
	Defaults podspec.Defaults
	// Lenient loads the good files when some are bad, reporting the bad
	// ones in Result.Invalid. By default one bad file fails the whole load.
	Lenient bool
}

// Skipped is a directory entry Load did not read, and why.
type Skipped struct {
	Path   string
	Reason string
}

// Result of Load.
type Result struct {
	Pods    []*v1.Pod // by file name, then document index
	Skipped []Skipped
	Invalid []error // lenient mode only: one error per bad file
}

// Load reads every *.yaml, *.yml and *.json regular file in dir (a file may
// hold several YAML documents, one Pod each), and decodes, defaults and
// validates each pod through podspec. Dotfiles, directories, other
// extensions, symlinks that lead outside dir and files over MaxFileBytes are
// skipped with a reason. A dir that is group- or world-writable is refused:
// whoever can write there runs pods on every node. Errors name the file, the
// document index and the field. Pod names (namespace/name) must be unique.
// Pods get the static pod annotations and, when they have none, a UID
// derived from their file name, document index and content.
func Load(dir string, opts Options) (*Result, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("static pods: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("static pods: %s is not a directory", dir)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("static pods: directory %s is group- or world-writable (mode %04o): anyone who can write there runs pods on every node; run chmod go-w %s",
			dir, st.Mode().Perm(), dir)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("static pods: %w", err)
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("static pods: %w", err)
	}
	res := &Result{}
	var errs []error
	owner := map[string]string{} // namespace/name -> where it was defined
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if reason := skipReason(path, e.Name(), realDir); reason != "" {
			res.Skipped = append(res.Skipped, Skipped{path, reason})
			continue
		}
		pods, err := loadFile(path, e.Name(), opts)
		if err == nil {
			for _, p := range pods {
				k := p.Namespace + "/" + p.Name
				if prev, dup := owner[k]; dup {
					err = fmt.Errorf("%s: pod %s is also defined in %s",
						filepath.Join(dir, p.Annotations[FileAnnotation]), k, prev)
					break
				}
				owner[k] = p.Annotations[FileAnnotation]
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Pods = append(res.Pods, pods...)
	}
	if len(errs) > 0 {
		if !opts.Lenient {
			return nil, fmt.Errorf("static pods in %s: %w", dir, errors.Join(errs...))
		}
		res.Invalid = errs
	}
	return res, nil
}

// skipReason says why an entry is not a manifest to read, or "".
func skipReason(path, name, realDir string) string {
	if strings.HasPrefix(name, ".") {
		return "dotfile"
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
	default:
		return "not a .yaml, .yml or .json file"
	}
	lst, err := os.Lstat(path)
	if err != nil {
		return err.Error()
	}
	if lst.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "broken symlink: " + err.Error()
		}
		if rel, err := filepath.Rel(realDir, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "symlink to " + target + ", outside the directory"
		}
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return err.Error()
	case st.IsDir():
		return "directory"
	case !st.Mode().IsRegular():
		return "not a regular file"
	case st.Size() > MaxFileBytes:
		return fmt.Sprintf("larger than 1 MiB (%d bytes)", st.Size())
	}
	return ""
}

func loadFile(path, name string, opts Options) ([]*v1.Pod, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes { // it grew since the Stat
		return nil, fmt.Errorf("%s: larger than 1 MiB", path)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var pods []*v1.Pod
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if isEmptyDoc(doc) {
			continue
		}
		pod, err := podspec.Decode(doc)
		if err == nil {
			identify(pod, fmt.Sprintf("%s#%d", name, i), doc)
			podspec.Default(pod, opts.Defaults)
			err = podspec.Validate(pod, opts.Policy)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		pods = append(pods, pod)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s: no pod in file", path)
	}
	return pods, nil
}

// isEmptyDoc: only blank lines and comments (a leading or trailing "---"
// leaves such documents).
func isEmptyDoc(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

// identify stamps the static pod annotations and a content-derived UID.
func identify(pod *v1.Pod, source string, doc []byte) {
	sum := sha256.Sum256(append([]byte(source+"\n"), doc...))
	hash := hex.EncodeToString(sum[:16])
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[SourceAnnotation] = "file"
	pod.Annotations[HashAnnotation] = hash
	pod.Annotations[FileAnnotation] = source
	if pod.UID == "" {
		pod.UID = types.UID(hash)
	}
}

// Pack returns the pods as a gzipped v1 PodList JSON for ExecutorInfo.data.
// The same pods always give the same bytes (no timestamp in the gzip header,
// struct fields and map keys in a fixed order), so the executor id hash
// that covers them is stable.
func Pack(pods []*v1.Pod) ([]byte, error) {
	list := v1.PodList{TypeMeta: typeMeta("PodList")}
	for _, p := range pods {
		c := p.DeepCopy()
		c.TypeMeta = typeMeta("Pod")
		list.Items = append(list.Items, *c)
	}
	js, err := json.Marshal(&list)
	if err != nil {
		return nil, fmt.Errorf("pack static pods: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(js); err != nil {
		return nil, fmt.Errorf("pack static pods: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack static pods: %w", err)
	}
	return buf.Bytes(), nil
}

func typeMeta(kind string) (tm metav1.TypeMeta) {
	tm.Kind, tm.APIVersion = kind, "v1"
	return tm
}

// Unpack reverses Pack. It refuses data that decompresses to more than
// MaxUnpackedBytes, and decodes every pod strictly through podspec.Decode;
// it neither defaults nor validates (the executor applies its own policy).
func Unpack(data []byte) ([]*v1.Pod, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("unpack static pods: %w", err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, MaxUnpackedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("unpack static pods: %w", err)
	}
	if len(js) > MaxUnpackedBytes {
		return nil, fmt.Errorf("unpack static pods: %w", ErrTooLarge)
	}
	var list struct {
		Kind       string            `json:"kind"`
		APIVersion string            `json:"apiVersion"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(js, &list); err != nil {
		return nil, fmt.Errorf("unpack static pods: %w", err)
	}
	if list.Kind != "PodList" || list.APIVersion != "v1" {
		return nil, fmt.Errorf("unpack static pods: want a v1 PodList, got kind %q apiVersion %q", list.Kind, list.APIVersion)
	}
	pods := make([]*v1.Pod, 0, len(list.Items))
	for i, raw := range list.Items {
		p, err := podspec.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("unpack static pods: item %d: %w", i, err)
		}
		pods = append(pods, p)
	}
	return pods, nil
}

// Sum is the resources the static pods add to the executor's own: the sum
// of their podspec.TaskResources (each pod's limits plus the sandbox
// allowance), since the executor gives each static pod a pod cgroup of
// exactly that inside its own.
func Sum(pods []*v1.Pod) (milliCPU, memBytes int64) {
	for _, p := range pods {
		c, m := podspec.TaskResources(p)
		milliCPU += c
		memBytes += m
	}
	return milliCPU, memBytes
}
