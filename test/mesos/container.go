package mesos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// container is where an executor runs: its processes, limits and
// destruction.
type container interface {
	// add puts a process into the container (before it execs).
	add(pid int) error
	// update applies cpus and mem (MB) as the cgroups isolators do and
	// returns the hard memory limit now in force.
	update(cpus float64, memMB uint64, hardLimit uint64, cfs bool) (uint64, error)
	// kill SIGKILLs every process in the container now.
	kill()
	// destroy kills until nothing is left and removes the container.
	destroy() error
	// paths are the container's cgroup directories.
	paths() []string
}

// posixContainer is the PosixLauncher: a process group, destroyed with
// os::killtree(pid, SIGKILL) (src/slave/containerizer/mesos/launcher.cpp:171).
// destroy returns once no live process of the group is left.
type posixContainer struct{ pgid int }

func (p *posixContainer) add(int) error { return nil }
func (p *posixContainer) update(_ float64, _ uint64, h uint64, _ bool) (uint64, error) {
	return h, nil
}
func (p *posixContainer) kill()           { _ = syscall.Kill(-p.pgid, syscall.SIGKILL) }
func (p *posixContainer) paths() []string { return nil }

func (p *posixContainer) destroy() error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.kill()
		left := groupMembers(p.pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d: processes %v survive SIGKILL", p.pgid, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// groupMembers lists the live (not zombie) processes of group pgid, from
// /proc/<pid>/stat: "pid (comm) state ppid pgrp ...".
func groupMembers(pgid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+1:]
		f := strings.Fields(rest)
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}
