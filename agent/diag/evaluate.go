package diag

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/proxy"
)

// API is what one node API socket said.
type API struct {
	Socket string
	// Err: the socket did not answer (the executor is gone).
	Err     error
	Info    nodeapi.Info
	Pods    []v1.Pod
	Summary *stats.Summary
	Proxy   *proxy.Status // nil: no proxy in this executor
	// CPU is the executor's CPU use in cores (from two readings).
	CPU float64
}

// DockerContainer is one k8sm-labelled container.
type DockerContainer struct {
	ID, Name string
	Labels   map[string]string
	State    string
	Created  time.Time
	Pid      int
	// Cgroup is the container's memory (v1) or unified (v2) cgroup path,
	// from /proc/<pid>/cgroup ("" when not running).
	Cgroup string
}

// PodCgroup is a directory below an executor's Mesos container cgroup.
type PodCgroup struct {
	ContainerID, PodUID string
	Path                string // relative to the hierarchy's root
	Procs               int
}

// Inputs are the raw observations; each source may be missing.
type Inputs struct {
	Now        time.Time
	CgroupRoot string // the Mesos agent's --cgroups_root, "mesos"
	// OrphanGrace: younger k8sm containers are never orphans (diag's
	// default is the const OrphanGrace).
	OrphanGrace time.Duration
	APIDir      string
	APIErr      error // the socket directory could not be read
	APIs        []API

	DockerEndpoint string
	DockerErr      error
	DockerDriver   string
	Containers     []DockerContainer

	CgroupErr  error
	PodCgroups []PodCgroup

	IptablesErr error
	Chains      int
}

// OrphanGrace spares younger containers from being called orphans (a pod
// being started): the executors' reaper grace at the default
// --reap-interval.
const OrphanGrace = 2 * time.Minute

// Evaluate turns observations into the report and its problems. It is
// pure.
func Evaluate(in Inputs) *Report {
	r := &Report{Time: in.Now, Proxy: Proxy{Chains: in.Chains}, Pods: []Pod{}, Executors: []Executor{}, Orphans: []Orphan{}, LeakedCgroups: []string{}}
	add := func(l Level, check, what, fix string) {
		r.Problems = append(r.Problems, Problem{Level: l, Check: check, What: what, Fix: fix})
	}
	live := map[string]bool{} // executor container ids that answer
	// executor container ids whose socket is there but does not answer in
	// time: maybe alive and busy, so not judged dead
	unresponsive := map[string]bool{}
	// executor container ids not dead (live or unresponsive), as
	// pods.Orphans takes them: their tasks are not judged here
	alive := map[string]map[string]bool{}
	known := map[string]bool{}  // container ids known to be k8sm executors'
	podsOf := map[string]bool{} // "<container id>/<pod uid>" of live pods
	var ports []int32

	if in.APIErr != nil {
		add(Warn, "executors", fmt.Sprintf("the node API directory %s cannot be read: %v", in.APIDir, in.APIErr), "check --node-api-dir")
	}
	for _, a := range in.APIs {
		e := Executor{Socket: a.Socket, ContainerID: strings.TrimSuffix(path.Base(a.Socket), ".sock")}
		known[e.ContainerID] = true
		if a.Err != nil {
			e.Error = a.Err.Error()
			e.Unresponsive = !deadSocket(a.Err)
			r.Executors = append(r.Executors, e)
			if e.Unresponsive {
				unresponsive[e.ContainerID], alive[e.ContainerID] = true, nil
				add(Warn, "executors", fmt.Sprintf("executor container %s does not answer on %s in time: %v", short(e.ContainerID), a.Socket, a.Err),
					"it may be alive and busy: its pods are left alone; run diag again, or look at the executor's stderr in its sandbox")
				continue
			}
			add(Warn, "executors", fmt.Sprintf("executor container %s does not answer on %s (the executor died)", short(e.ContainerID), a.Socket),
				"k8sm-agent diag --reap removes its socket and what it left")
			continue
		}
		i := a.Info
		e.Alive, e.ExecutorID, e.FrameworkID, e.PID, e.StartedAt = true, i.ExecutorID, i.FrameworkID, i.PID, i.StartedAt
		e.AgentEndpoint, e.Subscribed, e.Cgroup = i.AgentEndpoint, i.Subscribed, i.Cgroup
		e.MemoryLimit, e.MemoryUsage, e.CPUUsageCores, e.CPUs, e.PortRanges = i.MemoryLimitBytes, i.MemoryUsageBytes, a.CPU, i.CPUs, i.PortRanges
		if i.ContainerID != "" {
			e.ContainerID = i.ContainerID
		}
		live[e.ContainerID], known[e.ContainerID], alive[e.ContainerID] = true, true, nil
		r.Executors = append(r.Executors, e)
		r.HostPorts.Offered = append(r.HostPorts.Offered, i.PortRanges...)
		if !i.Subscribed {
			add(Warn, "executors", fmt.Sprintf("executor %s is not connected to its agent at %s", i.ExecutorID, i.AgentEndpoint),
				"is the Mesos agent up? the executor re-subscribes until MESOS_RECOVERY_TIMEOUT")
		}
		if i.MemoryLimitBytes > 0 && i.MemoryUsageBytes*10 >= i.MemoryLimitBytes*9 {
			add(Warn, "memory", fmt.Sprintf("executor %s uses %s of its %s limit", i.ExecutorID, mib(i.MemoryUsageBytes), mib(i.MemoryLimitBytes)),
				"the kernel OOM-kills inside it soon: give the tasks more memory")
		}
		usageOf := map[string]*stats.PodStats{}
		if a.Summary != nil {
			for k := range a.Summary.Pods {
				usageOf[a.Summary.Pods[k].PodRef.UID] = &a.Summary.Pods[k]
			}
		}
		for _, p := range a.Pods {
			pd := podOf(p, e.ContainerID, usageOf[string(p.UID)])
			podsOf[e.ContainerID+"/"+string(p.UID)] = true
			ports = append(ports, pd.HostPorts...)
			r.Pods = append(r.Pods, pd)
		}
		if a.Proxy != nil {
			r.Proxy.Running = true
			r.Proxy.ServicePorts, r.Proxy.Endpoints, r.Proxy.LastSync, r.Proxy.LastError =
				a.Proxy.ServicePorts, a.Proxy.Endpoints, a.Proxy.LastSync, a.Proxy.LastError
			if a.Proxy.LastError != "" {
				add(Warn, "proxy", "the last Service rules sync failed: "+a.Proxy.LastError, "see the executor's log (sandbox stderr)")
			}
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	r.HostPorts.InUse = ports

	// Docker.
	switch {
	case in.DockerErr != nil:
		add(Fail, "docker", fmt.Sprintf("Docker is unreachable at %s: %v", in.DockerEndpoint, in.DockerErr),
			"start dockerd (systemctl start docker) or give --docker-endpoint; pods cannot start or stop")
	case in.DockerDriver == "systemd":
		add(Fail, "docker", "Docker uses the systemd cgroup driver: pod containers would escape the executors' Mesos cgroups",
			`run dockerd with --exec-opt native.cgroupdriver=cgroupfs`)
	}
	// Orphans by the executors' own definition (pods.Orphans), over every
	// agent and framework: a container is one when its executor container
	// is gone and it is older than the orphan grace. Gone means nothing
	// listens on its socket (or there is none): an executor that is slow to
	// answer keeps its pods.
	summaries := make([]runtime.Summary, 0, len(in.Containers))
	for _, c := range in.Containers {
		summaries = append(summaries, runtime.Summary{ID: c.ID, Labels: c.Labels, State: c.State, Created: c.Created})
	}
	orphaned := map[string]bool{}
	for _, o := range pods.Orphans(pods.OrphanInput{Containers: summaries, Live: alive, Now: in.Now, Grace: in.OrphanGrace}) {
		orphaned[o.ID] = true
	}
	for _, c := range in.Containers {
		cid := c.Labels[runtime.LabelContainerID]
		known[cid] = true
		if orphaned[c.ID] {
			r.Orphans = append(r.Orphans, Orphan{ID: c.ID, Name: c.Name, ContainerID: cid, State: c.State,
				Pod: c.Labels[runtime.LabelPodNamespace] + "/" + c.Labels[runtime.LabelPodName]})
			continue
		}
		if !live[cid] {
			continue // a young container, or one of an executor that does not answer in time
		}
		if c.State == "running" && c.Cgroup != "" {
			want := "/" + strings.Trim(in.CgroupRoot, "/") + "/" + cid + "/"
			if !strings.HasPrefix(c.Cgroup+"/", want) {
				add(Fail, "cgroups", fmt.Sprintf("container %s (%s) runs in cgroup %s, outside its executor's %s", short(c.ID), c.Name, c.Cgroup, want),
					"Mesos does not account for it: kill the task and check Docker's cgroup driver")
			}
		}
	}
	if len(r.Orphans) > 0 {
		add(Warn, "orphans", fmt.Sprintf("%d k8sm containers whose executor is gone", len(r.Orphans)), "k8sm-agent diag --reap removes them")
	}

	// Pod cgroups.
	if in.CgroupErr != nil {
		add(Warn, "cgroups", "the Mesos cgroups cannot be read: "+in.CgroupErr.Error(), "check --cgroup-root")
	}
	for _, pc := range in.PodCgroups {
		if !known[pc.ContainerID] || podsOf[pc.ContainerID+"/"+pc.PodUID] {
			continue // not k8sm's, or a live pod's
		}
		if live[pc.ContainerID] && pc.Procs == 0 && hasContainerOfPod(in.Containers, pc.PodUID) {
			continue // a pod being started or stopped right now
		}
		if unresponsive[pc.ContainerID] {
			continue // of an executor that may be alive and busy: cannot tell
		}
		r.LeakedCgroups = append(r.LeakedCgroups, pc.Path)
	}
	if n := len(r.LeakedCgroups); n > 0 {
		add(Warn, "cgroups", fmt.Sprintf("%d pod cgroups no pod owns (%s)", n, strings.Join(r.LeakedCgroups, ", ")), "k8sm-agent diag --reap removes them")
	}

	// iptables.
	switch {
	case in.IptablesErr != nil:
		r.Proxy.Chains = -1
		add(Warn, "proxy", "iptables cannot be read: "+in.IptablesErr.Error(), "is iptables installed? (--iptables)")
	case in.Chains > 0 && !r.Proxy.Running:
		add(Warn, "proxy", fmt.Sprintf("%d K8SM- iptables chains but no running proxy: Services lead to stale endpoints", in.Chains),
			"k8sm-agent diag --reap (or k8sm-agent proxy --cleanup) removes them")
	}
	if len(r.Problems) == 0 {
		add(OK, "node", fmt.Sprintf("%d executors, %d pods, nothing wrong found", len(r.Executors), len(r.Pods)), "")
	}
	sort.SliceStable(r.Pods, func(i, j int) bool {
		return r.Pods[i].Namespace+"/"+r.Pods[i].Name < r.Pods[j].Namespace+"/"+r.Pods[j].Name
	})
	return r
}

// deadSocket tells whether a node API error means that nothing listens on
// the socket (connection refused, or the socket file is gone): the
// executor is dead. Any other error (a timeout) may be of a live executor
// that is busy.
func deadSocket(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

func hasContainerOfPod(cs []DockerContainer, uid string) bool {
	for _, c := range cs {
		if c.Labels[runtime.LabelPodUID] == uid {
			return true
		}
	}
	return false
}

// podOf summarizes one pod of the node API.
func podOf(p v1.Pod, containerID string, u *stats.PodStats) Pod {
	pd := Pod{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), ContainerID: containerID, Phase: string(p.Status.Phase),
		Containers: []Container{}, TaskID: dash(p.Annotations[podspec.TaskIDAnnotation])}
	if p.Status.StartTime != nil {
		pd.StartedAt = p.Status.StartTime.Time
	}
	for _, hp := range podspec.HostPorts(&p) {
		if !hp.Init && hp.HostPort > 0 {
			pd.HostPorts = append(pd.HostPorts, hp.HostPort)
		}
	}
	ready := 0
	for _, cs := range p.Status.ContainerStatuses {
		c := Container{Name: cs.Name, Restarts: cs.RestartCount}
		pd.Restarts += cs.RestartCount
		if cs.Ready {
			ready++
		}
		switch st := cs.State; {
		case st.Running != nil:
			c.State = "running"
		case st.Terminated != nil:
			c.State, c.ExitCode = "terminated ("+st.Terminated.Reason+")", &st.Terminated.ExitCode
		case st.Waiting != nil:
			c.State = "waiting (" + st.Waiting.Reason + ")"
		}
		if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == "OOMKilled" {
			pd.OOMKills++
		}
		if t := cs.State.Terminated; t != nil && t.Reason == "OOMKilled" {
			pd.OOMKills++
		}
		pd.Containers = append(pd.Containers, c)
	}
	pd.Ready = fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
	if u != nil && u.Memory != nil && u.Memory.WorkingSetBytes != nil {
		pd.MemoryUsage = *u.Memory.WorkingSetBytes
		if u.Memory.AvailableBytes != nil {
			pd.MemoryLimit = pd.MemoryUsage + *u.Memory.AvailableBytes
		}
	}
	return pd
}
