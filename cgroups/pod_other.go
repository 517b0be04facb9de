//go:build !linux

package cgroups

import (
	"context"
	"errors"
	"io"
)

// Config of a Manager; see the Linux documentation.
type Config struct {
	Root    string
	Unified bool
	Parent  string
}

// Manager is unsupported off Linux.
type Manager struct{}

// PodCgroup is unsupported off Linux.
type PodCgroup struct{}

// Stats is what a pod cgroup uses.
type Stats struct {
	MemoryUsage, MemoryWorkingSet, MemoryLimit, OOMKills, CPUUsageNanos, Pids uint64
}

// HostUnified is false off Linux.
func HostUnified() bool { return false }

// New returns errors.ErrUnsupported off Linux.
func New(Config) (*Manager, error) { return nil, errors.ErrUnsupported }

func (*Manager) Create(string, Limits) (*PodCgroup, error) { return nil, errors.ErrUnsupported }
func (*Manager) Load(string) (*PodCgroup, error)           { return nil, errors.ErrUnsupported }
func (*Manager) StatsOf(string) (Stats, error)             { return Stats{}, errors.ErrUnsupported }
func (*Manager) EnterLeaf(int) error                       { return errors.ErrUnsupported }
func (*PodCgroup) Update(Limits) error                     { return errors.ErrUnsupported }
func (*PodCgroup) Stats() (Stats, error)                   { return Stats{}, errors.ErrUnsupported }
func (*PodCgroup) Procs() ([]int, error)                   { return nil, errors.ErrUnsupported }
func (*PodCgroup) KillAll(context.Context) error           { return errors.ErrUnsupported }
func (*PodCgroup) Delete(context.Context) error            { return errors.ErrUnsupported }
func (*PodCgroup) OOMKills() (uint64, error)               { return 0, errors.ErrUnsupported }
func (*PodCgroup) Path() string                            { return "" }

// ParseProcCgroup returns errors.ErrUnsupported off Linux.
func ParseProcCgroup(io.Reader) (Paths, error) { return Paths{}, errors.ErrUnsupported }

// Self returns errors.ErrUnsupported off Linux.
func Self(string) (Paths, error) { return Paths{}, errors.ErrUnsupported }
