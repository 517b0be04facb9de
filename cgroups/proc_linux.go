package cgroups

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/cgroups/v3"
)

// ParseProcCgroup parses the format of /proc/<pid>/cgroup: v1 lines
// "N:controller[,controller]:/path", the v2 line "0::/path", and hybrid
// hosts with both. Paths may contain spaces and ':'.
func ParseProcCgroup(r io.Reader) (Paths, error) {
	v1, unified, err := cgroups.ParseCgroupFromReaderUnified(r)
	if err != nil {
		return Paths{}, fmt.Errorf("parse /proc/<pid>/cgroup: %w", err)
	}
	return Paths{V1: v1, Unified: unified}, nil
}

// Self returns the cgroups of the calling process from <procRoot>/self/cgroup
// (procRoot is "/proc" outside tests).
func Self(procRoot string) (Paths, error) {
	f, err := os.Open(filepath.Join(procRoot, "self", "cgroup"))
	if err != nil {
		return Paths{}, fmt.Errorf("find own cgroup: %w", err)
	}
	defer func() { _ = f.Close() }()
	return ParseProcCgroup(f)
}
