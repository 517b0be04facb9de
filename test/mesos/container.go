package mesos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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

// posixContainer is the PosixLauncher: the executor leads its own process
// group, and destroy is os::killtree(pid, SIGKILL, groups, sessions)
// (src/slave/containerizer/mesos/launcher.cpp:171,
// 3rdparty/stout/include/stout/os/killtree.hpp): the tree below the
// executor is stopped, then every process in it, and in every process
// group met, is killed. As in Mesos, a process that left the tree while
// its parent was already gone escapes; the LinuxLauncher (cgroups) has no
// such hole.
type posixContainer struct {
	pgid  int
	mu    sync.Mutex
	known map[int]bool // every process a kill has met
}

func (p *posixContainer) add(int) error { return nil }
func (p *posixContainer) update(_ float64, _ uint64, h uint64, _ bool) (uint64, error) {
	return h, nil
}
func (p *posixContainer) paths() []string { return nil }

func (p *posixContainer) kill() { p.killOnce() }

// killOnce stops and SIGKILLs the tree and its groups; it reports how many
// live processes it signalled.
func (p *posixContainer) killOnce() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	procs := readProcs()
	set := map[int]bool{}
	var visit func(pid int)
	visit = func(pid int) {
		if set[pid] {
			return
		}
		set[pid] = true
		for _, c := range procs {
			if c.ppid == pid {
				visit(c.pid)
			}
		}
	}
	if p.known == nil {
		p.known = map[int]bool{}
	}
	for _, pr := range procs {
		if pr.pgrp == p.pgid || pr.pid == p.pgid || p.known[pr.pid] {
			visit(pr.pid)
		}
	}
	groups := map[int]bool{}
	for _, pr := range procs {
		if set[pr.pid] {
			groups[pr.pgrp] = true
		}
	}
	var live []int
	for _, pr := range procs {
		if (set[pr.pid] || groups[pr.pgrp]) && pr.state != "Z" {
			live = append(live, pr.pid)
		}
	}
	for _, pid := range live {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	for _, pid := range live {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		p.known[pid] = true
	}
	return len(live)
}

// destroy kills until no live process of the tree or its groups is left.
func (p *posixContainer) destroy() error {
	deadline := time.Now().Add(20 * time.Second)
	for p.killOnce() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("process tree of %d survives SIGKILL", p.pgid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

type proc struct {
	pid, ppid, pgrp int
	state           string
}

// readProcs lists every process from /proc/<pid>/stat:
// "pid (comm) state ppid pgrp ...".
func readProcs() []proc {
	var out []proc
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
		if p, ok := parseStat(b); ok {
			p.pid = pid
			out = append(out, p)
		}
	}
	return out
}

// parseStat reads the state, ppid and pgrp of a /proc/<pid>[/task/<tid>]/stat
// file, "pid (comm) state ppid pgrp ...". The command may hold spaces and
// parentheses: the last ")" ends it.
func parseStat(b []byte) (proc, bool) {
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 3 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return proc{ppid: ppid, pgrp: pgrp, state: f[0]}, true
}

// groupMembers lists the live (not zombie) processes of group pgid.
func groupMembers(pgid int) []int {
	var out []int
	for _, p := range readProcs() {
		if p.pgrp == pgid && p.state != "Z" {
			out = append(out, p.pid)
		}
	}
	return out
}

// treeMembers lists root and its live descendants.
func treeMembers(root int) []int {
	procs := readProcs()
	var out []int
	var visit func(pid int)
	visit = func(pid int) {
		for _, c := range procs {
			if c.ppid == pid && c.state != "Z" {
				out = append(out, c.pid)
				visit(c.pid)
			}
		}
	}
	out = append(out, root)
	visit(root)
	return out
}
