package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/staticpods"
)

// ExecutorConfig says how agents start "k8sm-agent executor".
type ExecutorConfig struct {
	// Command is the k8sm-agent binary on the agents (a path, or a name
	// the agent's PATH resolves).
	Command string
	// Args follow "executor": every executor-affecting flag.
	Args []string
	// Env is given to the executor (NAME=value).
	Env []string
	// CPUs and MemBytes are the executor's own resources (DESIGN.md
	// "Resources"); the static pods' (staticpods.Sum) are added. CPUs is
	// rounded to a millicore, as Mesos does.
	CPUs     float64
	MemBytes int64
	// StaticPods run on every executor; they are packed into
	// ExecutorInfo.data.
	StaticPods []*v1.Pod
	// Role of the executor's resources ("" or "*": unreserved).
	Role string
}

// NewExecutorInfo builds the ExecutorInfo every task names, and its needs.
// Its id is k8sm-<hash> of the command, arguments, environment and static
// pods, never resources (DESIGN.md "Executor identity"): changing any of
// them makes a new executor id, and agents running the old one are
// declined until it exits.
func NewExecutorInfo(cfg ExecutorConfig) (mesos.ExecutorInfo, Executor, error) {
	if cfg.Command == "" {
		return mesos.ExecutorInfo{}, Executor{}, fmt.Errorf("executor command: empty")
	}
	for _, e := range cfg.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return mesos.ExecutorInfo{}, Executor{}, fmt.Errorf("executor env %q: want NAME=value", e)
		}
	}
	var data []byte
	if len(cfg.StaticPods) > 0 {
		var err error
		if data, err = staticpods.Pack(cfg.StaticPods); err != nil {
			return mesos.ExecutorInfo{}, Executor{}, fmt.Errorf("pack static pods: %w", err)
		}
	}
	args := append([]string{cfg.Command, "executor"}, cfg.Args...)
	env := slices.Clone(cfg.Env)
	slices.Sort(env)

	h := sha256.New()
	ident, _ := json.Marshal(struct {
		Args []string
		Env  []string
	}{args, env})
	h.Write(ident)
	h.Write(data)
	id := "k8sm-" + hex.EncodeToString(h.Sum(nil))[:16]

	smilli, smem := staticpods.Sum(cfg.StaticPods)
	milli := podspec.MesosMilli(cfg.CPUs) + smilli
	mem := cfg.MemBytes + smem
	role := cfg.Role
	if role == "*" {
		role = ""
	}
	res := podspec.MesosResources(milli, mem, nil, role)

	var vars []mesos.Environment_Variable
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		vars = append(vars, mesos.Environment_Variable{Name: k, Type: mesos.Environment_Variable_VALUE.Enum(), Value: &v})
	}
	info := mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: id},
		Name:       ptr.To("k8sm"),
		Source:     ptr.To("k8sm-scheduler"),
		Command: &mesos.CommandInfo{
			Value: ptr.To(cfg.Command), Shell: ptr.To(false), Arguments: args,
		},
		Resources: res,
		Data:      data,
	}
	if len(vars) > 0 {
		info.Command.Environment = &mesos.Environment{Variables: vars}
	}
	ex := Executor{ID: id, CPUMilli: milli, MemMilli: podspec.MesosMilli(podspec.MemMB(mem))}
	return info, ex, nil
}
