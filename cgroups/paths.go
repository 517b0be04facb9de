package cgroups

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Paths is where a process lives in each cgroup hierarchy, as
// /proc/<pid>/cgroup tells: V1 maps controller names ("memory", "cpu", and
// "name=systemd" for named hierarchies) to paths; Unified is the cgroup v2
// path ("" when the process is in no v2 hierarchy).
type Paths struct {
	V1      map[string]string
	Unified string
}

// ErrNoExecutorCgroup is returned when no hierarchy places the process below
// the root, so there is no Mesos cgroup to nest pods in.
var ErrNoExecutorCgroup = errors.New("process is in no cgroup below the root")

// Executor returns the cgroup path Mesos placed the executor in: on a v1 or
// hybrid host the path of the memory controller (which Mesos enforces; else
// cpu, then freezer), on a pure v2 host the unified path. unified tells
// which kind of host this is. Mesos uses the same path in every hierarchy
// it manages, so one path serves all.
func (p Paths) Executor(unified bool) (string, error) {
	if unified {
		if p.Unified == "" || p.Unified == "/" {
			return "", ErrNoExecutorCgroup
		}
		return path.Clean(p.Unified), nil
	}
	for _, c := range []string{"memory", "cpu", "freezer"} {
		if v, ok := p.V1[c]; ok && v != "/" && v != "" {
			return path.Clean(v), nil
		}
	}
	return "", ErrNoExecutorCgroup
}

// ErrNotBelowRoot is returned (wrapped) by MesosContainer when the
// executor's cgroup is not inside the agent's cgroup root.
var ErrNotBelowRoot = errors.New("not below the cgroup root")

// MesosContainer returns the cgroup of the executor's Mesos container, the
// parent of every pod cgroup: Executor(unified) without a last "leaf"
// element (Mesos runs an executor in <container>/leaf on cgroup v2; no
// container of its is named so on v1). It must lie strictly below
// /<cgroupRoot> (the agent's --cgroups_root): anywhere else, the root
// itself included, pods would escape the container's accounting, so that
// is an ErrNotBelowRoot naming both.
func (p Paths) MesosContainer(unified bool, cgroupRoot string) (string, error) {
	root := strings.Trim(cgroupRoot, "/")
	if root == "" {
		return "", errors.New("no cgroup root given: the Mesos agent's --cgroups_root is needed")
	}
	c, err := p.Executor(unified)
	if err != nil {
		return "", err
	}
	c = strings.TrimSuffix(c, "/leaf")
	if !strings.HasPrefix(c, "/"+root+"/") {
		return "", fmt.Errorf("the executor runs in cgroup %s, %w /%s: pods would escape Mesos' accounting", c, ErrNotBelowRoot, root)
	}
	return c, nil
}
