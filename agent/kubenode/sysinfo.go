package kubenode

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// KubeVersion is the Kubernetes version whose node API the executor
// speaks: the k8s.io modules it is built with (go.mod pins them; a test
// keeps the two equal).
const KubeVersion = "v1.35.8"

// Host is what the node knows of its machine and runtime, for the Node's
// status.nodeInfo.
type Host struct {
	// MachineID, SystemUUID and BootID as the kubelet reads them
	// (/etc/machine-id, DMI product_uuid, /proc/sys/kernel/random/boot_id);
	// empty when unreadable.
	MachineID, SystemUUID, BootID string
	KernelVersion, OSImage        string
	// DockerVersion is the engine's server version.
	DockerVersion string
}

// KubeletVersion is what the executor reports as the Node's kubelet
// version: the Kubernetes version it speaks, with k8sm's own version as a
// semver pre-release suffix, e.g. v1.35.8-k8sm.0.4.1 ("kubectl get nodes"
// shows it in VERSION). As a pre-release it sorts before v1.35.8, which no
// API server check of node versions looks at. Characters semver does not
// allow in a pre-release become dots.
func KubeletVersion(k8smVersion string) string {
	v := strings.Trim(semverUnsafe.ReplaceAllString(strings.TrimPrefix(k8smVersion, "v"), "."), ".")
	if v == "" {
		v = "dev"
	}
	return KubeVersion + "-k8sm." + v
}

var semverUnsafe = regexp.MustCompile(`[^0-9A-Za-z-]+`)

// SystemInfo is the Node's status.nodeInfo for h, as the kubelet fills it
// (pkg/kubelet/nodestatus MachineInfo and VersionInfo): operating system
// and architecture of the build, the container runtime as
// docker://<version>. kubeProxyVersion stays empty, as the kubelet leaves
// it since DisableNodeKubeProxyVersion.
func SystemInfo(h Host, k8smVersion string) v1.NodeSystemInfo {
	kv := KubeletVersion(k8smVersion)
	rt := ""
	if h.DockerVersion != "" {
		rt = "docker://" + h.DockerVersion
	}
	return v1.NodeSystemInfo{
		MachineID: h.MachineID, SystemUUID: h.SystemUUID, BootID: h.BootID,
		KernelVersion: h.KernelVersion, OSImage: h.OSImage,
		ContainerRuntimeVersion: rt,
		KubeletVersion:          kv,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}
}

// ReadHost reads the machine's identifiers below root ("/" on a node) where
// the kubelet reads them (cadvisor's machine info); a file that cannot be
// read leaves its field empty.
func ReadHost(root string) Host {
	read := func(paths ...string) string {
		for _, p := range paths {
			if b, err := os.ReadFile(filepath.Join(root, p)); err == nil {
				if s := strings.TrimSpace(string(b)); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return Host{
		MachineID:  read("etc/machine-id", "var/lib/dbus/machine-id"),
		SystemUUID: read("sys/class/dmi/id/product_uuid"),
		BootID:     read("proc/sys/kernel/random/boot_id"),
	}
}
