package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Level of a problem line.
type Level string

// The levels, in order.
const (
	OK   Level = "OK"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Problem is one line of the problems section: what is wrong and what to
// do about it.
type Problem struct {
	Level Level  `json:"level"`
	Check string `json:"check"`
	What  string `json:"what"`
	Fix   string `json:"fix,omitempty"`
}

// Executor is one executor found through its node API socket.
type Executor struct {
	Socket string `json:"socket"`
	// Alive: the socket answered. A dead executor's socket has only its
	// container id (the file name).
	Alive bool `json:"alive"`
	// Unresponsive: the socket is there but did not answer in time (not
	// refused): the executor may be alive and busy, so neither its socket
	// nor its pods are reaped.
	Unresponsive  bool      `json:"unresponsive,omitempty"`
	ContainerID   string    `json:"containerID"`
	ExecutorID    string    `json:"executorID,omitempty"`
	FrameworkID   string    `json:"frameworkID,omitempty"`
	PID           int       `json:"pid,omitempty"`
	StartedAt     time.Time `json:"startedAt,omitempty"`
	AgentEndpoint string    `json:"agentEndpoint,omitempty"`
	Subscribed    bool      `json:"subscribed"`
	Cgroup        string    `json:"cgroup,omitempty"`
	MemoryLimit   uint64    `json:"memoryLimitBytes,omitempty"`
	MemoryUsage   uint64    `json:"memoryUsageBytes,omitempty"`
	CPUUsageCores float64   `json:"cpuUsageCores,omitempty"`
	CPUs          float64   `json:"cpus,omitempty"`
	PortRanges    []string  `json:"portRanges,omitempty"`
	Error         string    `json:"error,omitempty"`
}

// Container is one container of a pod.
type Container struct {
	Name     string `json:"name"`
	State    string `json:"state"` // running, waiting (reason), terminated (reason)
	ExitCode *int32 `json:"exitCode,omitempty"`
	Restarts int32  `json:"restarts"`
}

// Pod is one pod an executor runs.
type Pod struct {
	Namespace   string      `json:"namespace"`
	Name        string      `json:"name"`
	UID         string      `json:"uid"`
	TaskID      string      `json:"taskID"`
	ContainerID string      `json:"executorContainerID"`
	Phase       string      `json:"phase"`
	Ready       string      `json:"ready"` // "1/2"
	Restarts    int32       `json:"restarts"`
	HostPorts   []int32     `json:"hostPorts,omitempty"`
	MemoryUsage uint64      `json:"memoryUsageBytes,omitempty"`
	MemoryLimit uint64      `json:"memoryLimitBytes,omitempty"`
	OOMKills    int         `json:"oomKills"`
	StartedAt   time.Time   `json:"startedAt,omitempty"`
	Containers  []Container `json:"containers"`
}

// HostPorts is the host ports pods use against what the agent offers.
type HostPorts struct {
	InUse   []int32  `json:"inUse"`
	Offered []string `json:"offered,omitempty"` // ranges, "31000-32000"
}

// Proxy is what the Service proxy programmed, and the K8SM- chains found.
type Proxy struct {
	// Running: some executor reports a proxy.
	Running      bool      `json:"running"`
	ServicePorts int       `json:"servicePorts"`
	Endpoints    int       `json:"endpoints"`
	LastSync     time.Time `json:"lastSync,omitempty"`
	LastError    string    `json:"lastError,omitempty"`
	// Chains is the number of K8SM- chains in nat and filter (-1: iptables
	// could not be read).
	Chains int `json:"chains"`
}

// Orphan is a k8sm container no live executor owns.
type Orphan struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Pod         string `json:"pod"`
	ContainerID string `json:"executorContainerID"`
	State       string `json:"state"`
}

// Report is everything diag found.
type Report struct {
	Time      time.Time  `json:"time"`
	Executors []Executor `json:"executors"`
	Pods      []Pod      `json:"pods"`
	HostPorts HostPorts  `json:"hostPorts"`
	Proxy     Proxy      `json:"proxy"`
	Orphans   []Orphan   `json:"orphans"`
	// LeakedCgroups are pod cgroups no live executor's pod owns.
	LeakedCgroups []string  `json:"leakedCgroups"`
	Problems      []Problem `json:"problems"`
}

// Worst is the highest level among the problems.
func (r *Report) Worst() Level {
	w := OK
	for _, p := range r.Problems {
		switch p.Level {
		case Fail:
			return Fail
		case Warn:
			w = Warn
		}
	}
	return w
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return r.WriteAnyJSON(w, r) }

// WriteAnyJSON writes v (the report with more beside it) as indented JSON.
func (*Report) WriteAnyJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func mib(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fMi", float64(b)/(1<<20))
}

func usage(used, limit uint64) string {
	if limit == 0 {
		return mib(used)
	}
	return fmt.Sprintf("%s/%s (%d%%)", mib(used), mib(limit), used*100/limit)
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return d.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(id string) string { return id[:min(12, len(id))] }

// WriteTable writes the report as aligned tables, one section each.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(tw, format, a...) }
	p("EXECUTORS\n")
	if len(r.Executors) == 0 {
		p("  (none)\n")
	} else {
		p("  EXECUTOR\tCONTAINER\tPID\tUP\tAGENT\tSUBSCRIBED\tMEMORY\tCPU\tCGROUP\n")
		for _, e := range r.Executors {
			if !e.Alive {
				state := "dead"
				if e.Unresponsive {
					state = "no answer"
				}
				p("  %s\t%s\t-\t-\t-\t%s\t-\t-\t%s\n", dash(e.ExecutorID), short(e.ContainerID), state, dash(e.Error))
				continue
			}
			sub := "no"
			if e.Subscribed {
				sub = "yes"
			}
			p("  %s\t%s\t%d\t%s\t%s\t%s\t%s\t%.2f/%.2g\t%s\n", e.ExecutorID, short(e.ContainerID), e.PID, age(r.Time, e.StartedAt),
				e.AgentEndpoint, sub, usage(e.MemoryUsage, e.MemoryLimit), e.CPUUsageCores, e.CPUs, dash(e.Cgroup))
		}
	}
	p("\nPODS\n")
	if len(r.Pods) == 0 {
		p("  (none)\n")
	} else {
		p("  POD\tTASK\tPHASE\tREADY\tRESTARTS\tHOST PORTS\tMEMORY\tOOM\tAGE\n")
		for _, pd := range r.Pods {
			var ports []string
			for _, hp := range pd.HostPorts {
				ports = append(ports, fmt.Sprint(hp))
			}
			p("  %s/%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", pd.Namespace, pd.Name, pd.TaskID, pd.Phase, pd.Ready, pd.Restarts,
				dash(strings.Join(ports, ",")), usage(pd.MemoryUsage, pd.MemoryLimit), pd.OOMKills, age(r.Time, pd.StartedAt))
			for _, c := range pd.Containers {
				exit := ""
				if c.ExitCode != nil {
					exit = fmt.Sprintf(" exit %d", *c.ExitCode)
				}
				p("    %s\t%s%s\t\t\t%d\n", c.Name, c.State, exit, c.Restarts)
			}
		}
	}
	p("\nHOST PORTS\n")
	offered := "unknown"
	if len(r.HostPorts.Offered) > 0 {
		offered = strings.Join(r.HostPorts.Offered, ",")
	}
	var inUse []string
	for _, hp := range r.HostPorts.InUse {
		inUse = append(inUse, fmt.Sprint(hp))
	}
	p("  in use\t%s\n  offered\t%s\n", dash(strings.Join(inUse, ",")), offered)
	p("\nPROXY\n")
	chains := fmt.Sprint(r.Proxy.Chains)
	if r.Proxy.Chains < 0 {
		chains = "unknown"
	}
	if r.Proxy.Running {
		p("  services\t%d\n  endpoints\t%d\n  K8SM- chains\t%s\n  last sync\t%s ago\n  last error\t%s\n",
			r.Proxy.ServicePorts, r.Proxy.Endpoints, chains, age(r.Time, r.Proxy.LastSync), dash(r.Proxy.LastError))
	} else {
		p("  not running\n  K8SM- chains\t%s\n", chains)
	}
	p("\nPROBLEMS\n")
	probs := append([]Problem(nil), r.Problems...)
	sort.SliceStable(probs, func(i, j int) bool { return rank(probs[i].Level) > rank(probs[j].Level) })
	for _, pr := range probs {
		fix := ""
		if pr.Fix != "" {
			fix = ": " + pr.Fix
		}
		p("  %s\t%s\t%s%s\n", pr.Level, pr.Check, pr.What, fix)
	}
	return tw.Flush()
}

func rank(l Level) int {
	switch l {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}
