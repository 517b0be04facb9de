package executor

import (
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
)

// The executor's outbox: the loop publishes, under viewMu, what the node
// API reads (the nodeapi.Source methods Pods and Info).

// Pods returns the executor's pods now, static pods included, in task id
// order; safe for concurrent use.
func (e *Executor) Pods() []nodeapi.PodView {
	e.viewMu.RLock()
	defer e.viewMu.RUnlock()
	out := make([]nodeapi.PodView, 0, len(e.view))
	for _, v := range e.view {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

// Info is who the executor is and what Mesos gave it and its live tasks;
// safe for concurrent use.
func (e *Executor) Info() nodeapi.Info {
	e.viewMu.RLock()
	defer e.viewMu.RUnlock()
	in := e.info
	in.PortRanges = append([]string(nil), in.PortRanges...)
	return in
}

// publish hands a task's newest pod status to the API server reporter and
// refreshes the node API's view of it; the loop calls it whenever a task's
// pod status changes.
func (e *Executor) publish(t *task) {
	if t.pod == nil {
		return
	}
	if e.podStatus != nil {
		e.podStatus(t.pod, t.status)
	}
	e.viewMu.Lock()
	defer e.viewMu.Unlock()
	if terminal(t.state) {
		delete(e.view, t.info.TaskID.Value)
	} else {
		e.view[t.info.TaskID.Value] = nodeapi.PodView{TaskID: t.info.TaskID.Value, Pod: t.pod, Status: t.status}
	}
}

// publishStatic refreshes the node API's view of a static pod and hands
// its status to the API server reporter (its mirror pod).
func (e *Executor) publishStatic(pod *v1.Pod, r report) {
	if e.podStatus != nil {
		e.podStatus(pod, r.st)
	}
	id := StaticTaskID(pod)
	e.viewMu.Lock()
	defer e.viewMu.Unlock()
	e.view[id] = nodeapi.PodView{TaskID: id, Pod: pod, Status: r.st}
}

// setConnected records whether the executor is subscribed now.
func (e *Executor) setConnected(on bool) {
	e.connected = on
	e.viewMu.Lock()
	defer e.viewMu.Unlock()
	e.info.Subscribed = on
}

// publishIdentity publishes who the executor is once SUBSCRIBED told it.
func (e *Executor) publishIdentity() {
	e.viewMu.Lock()
	defer e.viewMu.Unlock()
	e.info.AgentID, e.info.ContainerID, e.info.Hostname = e.id.AgentID, e.id.ContainerID, e.id.Agent.Hostname
	e.info.PortRanges = nil
	for _, r := range e.id.Agent.Resources {
		if r.Name == "ports" && r.Ranges != nil {
			for _, rg := range r.Ranges.Range {
				e.info.PortRanges = append(e.info.PortRanges, ports.FormatRange(rg))
			}
		}
	}
}

// publishResources publishes what Mesos gave the executor and its live
// tasks; the loop calls it after each task state change.
func (e *Executor) publishResources() {
	res := append(mesos.Resources{}, e.id.Executor.Resources...)
	for _, t := range e.tasks {
		if !terminal(t.state) {
			res = append(res, t.info.Resources...)
		}
	}
	cpus, mem, _ := podspec.FromMesos(res)
	e.viewMu.Lock()
	defer e.viewMu.Unlock()
	e.info.CPUs, e.info.MemBytes = podspec.MesosScalar(cpus), mem
}
