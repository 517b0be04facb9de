//go:build integration && linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/test/testenv"
)

func sleeper(name string) *v1.Pod {
	return newPod(name, v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"}})
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// rawDockerPod is the baseline: what Docker itself takes to create and
// start a pause container and one app container joined to its network.
// With cg, they go into a pod cgroup made below cg's parent with limits,
// as k8sm makes one, each container under the CPU limit as its quota;
// without, in Docker's own cgroup without limits.
func rawDockerPod(b *testing.B, n *node, cg *cgroups.Manager, limits cgroups.Limits) time.Duration {
	ctx := context.Background()
	start := time.Now()
	var pc *cgroups.PodCgroup
	parent := ""
	if cg != nil {
		var err error
		if pc, err = cg.Create("raw-"+testenv.RandomName(6), limits); err != nil {
			b.Fatal(err)
		}
		parent = pc.Path()
	}
	ids := rawDockerStart(b, n, parent, limits.CPULimitMilli)
	took := time.Since(start)
	for _, id := range ids {
		_ = n.dc.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	}
	if pc != nil {
		if err := pc.Delete(ctx); err != nil {
			b.Error(err)
		}
	}
	return took
}

// rawDockerBurst is the baseline of a burst: pods raw pods (as
// rawDockerPod) started all at once, then all force-removed at once.
func rawDockerBurst(b *testing.B, n *node, pods int) (up, down time.Duration) {
	ids := make([][]string, pods)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() { ids[i] = rawDockerStart(b, n, "", 0) })
	}
	wg.Wait()
	up = time.Since(start)
	start = time.Now()
	for _, pod := range ids {
		for _, id := range pod {
			wg.Go(func() { _ = n.dc.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true}) })
		}
	}
	wg.Wait()
	return up, time.Since(start)
}

// rawDockerStart creates and starts a pause container and an app container
// in its network namespace, in cgroup parent ("": Docker's own) and each
// under a CPU quota of milliCPU (0: none), and returns their ids (app
// first).
func rawDockerStart(b *testing.B, n *node, parent string, milliCPU int64) []string {
	ctx := context.Background()
	name := "k8sm-bench-raw-" + testenv.RandomName(6)
	res := container.Resources{CgroupParent: parent, NanoCPUs: milliCPU * 1e6}
	sb, err := n.dc.ContainerCreate(ctx, &container.Config{Image: testenv.PauseImage}, &container.HostConfig{Resources: res}, &network.NetworkingConfig{}, nil, name+"-pause")
	if err != nil {
		b.Error(err)
		return nil
	}
	if err := n.dc.ContainerStart(ctx, sb.ID, container.StartOptions{}); err != nil {
		b.Error(err)
		return []string{sb.ID}
	}
	app, err := n.dc.ContainerCreate(ctx, &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "1000"}},
		&container.HostConfig{NetworkMode: container.NetworkMode("container:" + sb.ID), Resources: res}, nil, nil, name)
	if err != nil {
		b.Error(err)
		return []string{sb.ID}
	}
	if err := n.dc.ContainerStart(ctx, app.ID, container.StartOptions{}); err != nil {
		b.Error(err)
	}
	return []string{app.ID, sb.ID}
}

// BenchmarkLaunchToRunning: ACCEPT with one pod -> TASK_RUNNING through the
// double and the real executor, against raw Docker doing the same two
// containers in the same run. The executor is started (and warmed by one
// pod) before the clock runs; each iteration takes launchSamples samples,
// so that even one iteration gives a median and a tail.
//
// The pod has no limits, so it runs under the podspec default of 250m: a
// CFS quota on its pod cgroup (made before its containers, as the
// kubelet's) and on its container. Starting a container is CPU work done
// inside those cgroups (runc init), so "ratio" compares with raw Docker
// starting the same containers in the same kind of pod cgroup below the
// executor's Mesos container; "ratio-unconfined" with raw Docker in its own
// cgroup without limits.
func BenchmarkLaunchToRunning(b *testing.B) {
	const launchSamples = 15
	n := newNode(b, 5*time.Second)
	probe := sleeper("probe")
	podspec.Default(probe, podspec.StandardDefaults())
	milli, mem := podspec.TaskResources(probe)
	limits := cgroups.Limits{CPURequestMilli: milli, CPULimitMilli: milli, MemoryBytes: mem}
	var k8sm, raw, unconfined []time.Duration
	one := func(name string) time.Duration {
		task := n.podTask(b, sleeper(name), nil)
		id := task.TaskID.Value
		o := n.sched.Offer()
		start := time.Now()
		n.sched.Launch(o, task)
		n.expect(id, mesos.TASK_STARTING)
		n.expect(id, mesos.TASK_RUNNING)
		took := time.Since(start)
		n.sched.Must(calls.Kill(id, n.a.ID()))
		n.expect(id, mesos.TASK_KILLED)
		return took
	}
	one("warm")
	// The executor's Mesos container as a Docker cgroup parent: its path
	// below the hierarchy's mount (v1: below the controller's).
	var parent string
	for _, e := range n.a.Executors() {
		if len(e.Cgroups) > 0 {
			rel := strings.TrimPrefix(e.Cgroups[0], "/sys/fs/cgroup/")
			if !cgroups.HostUnified() {
				_, rel, _ = strings.Cut(rel, "/")
			}
			parent = "/" + rel
		}
	}
	if parent == "" {
		b.Fatal("the executor's Mesos container has no cgroup")
	}
	cg, err := cgroups.New(cgroups.Config{Root: "/sys/fs/cgroup", Unified: cgroups.HostUnified(), Parent: parent})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		for j := range launchSamples {
			k8sm = append(k8sm, one(fmt.Sprintf("bench-%d-%d", i, j)))
			raw = append(raw, rawDockerPod(b, n, cg, limits))
			unconfined = append(unconfined, rawDockerPod(b, n, nil, cgroups.Limits{}))
		}
	}
	b.ReportMetric(float64(quantile(k8sm, 0.5).Milliseconds()), "median-ms")
	b.ReportMetric(float64(quantile(k8sm, 0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(float64(quantile(raw, 0.5).Milliseconds()), "raw-docker-median-ms")
	b.ReportMetric(float64(quantile(raw, 0.99).Milliseconds()), "raw-docker-p99-ms")
	b.ReportMetric(float64(quantile(k8sm, 0.5))/float64(quantile(raw, 0.5)), "ratio")
	b.ReportMetric(float64(quantile(unconfined, 0.5).Milliseconds()), "raw-unconfined-median-ms")
	b.ReportMetric(float64(quantile(k8sm, 0.5))/float64(quantile(unconfined, 0.5)), "ratio-unconfined")
}

// rssKiB is a process's resident memory from /proc/<pid>/status: VmRSS,
// and its part that is private anonymous memory (RssAnon: heap, stacks,
// what the process itself allocates). The rest is mostly pages of the
// executable mapped from the page cache, shared and reclaimable.
func rssKiB(b *testing.B, pid int) (total, anon float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	kib := func(v string) float64 {
		f, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		return f
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			total = kib(v)
		}
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			anon = kib(v)
		}
	}
	if total == 0 || anon == 0 {
		b.Fatalf("no VmRSS or RssAnon in /proc/%d/status", pid)
	}
	return total, anon
}

// BenchmarkHundredPods: 100 pods (K8SM_BENCH_PODS) launched at once (pods/s until all are
// RUNNING), the executor's RSS idle and with them, and SHUTDOWN of all of
// them (seconds until every TASK_KILLED); against raw Docker starting the
// same containers all at once and force-removing them all at once, on the
// same daemon in the same run.
func BenchmarkHundredPods(b *testing.B) {
	pods := 100
	if v, err := strconv.Atoi(os.Getenv("K8SM_BENCH_PODS")); err == nil && v > 0 {
		pods = v // a smaller burst on a slow machine
	}
	for b.Loop() {
		n := newNode(b, 30*time.Second)
		// 100 pods at once keep dockerd busy well past the usual wait.
		n.sched.Timeout = 5 * time.Minute
		warm := n.podTask(b, sleeper("warm"), nil)
		n.launch(warm)
		n.expect(warm.TaskID.Value, mesos.TASK_STARTING)
		n.expect(warm.TaskID.Value, mesos.TASK_RUNNING)
		n.sched.Must(calls.Kill(warm.TaskID.Value, n.a.ID()))
		n.expect(warm.TaskID.Value, mesos.TASK_KILLED)
		pid := n.a.Executors()[0].PID
		idle, idleAnon := rssKiB(b, pid)
		rawUp, rawDown := rawDockerBurst(b, n, pods)
		if b.Failed() {
			b.FailNow()
		}

		var tasks []mesos.TaskInfo
		for i := range pods {
			tasks = append(tasks, n.podTask(b, sleeper(fmt.Sprintf("many-%d", i)), nil))
		}
		start := time.Now()
		n.launch(tasks...)
		n.ackUntil(b, tasks, mesos.TASK_RUNNING)
		up := time.Since(start)
		loaded, loadedAnon := rssKiB(b, pid)

		start = time.Now()
		n.sched.Must(calls.Shutdown(n.exID, n.a.ID()))
		n.ackUntil(b, tasks, mesos.TASK_KILLED)
		down := time.Since(start)
		b.ReportMetric(float64(pods)/up.Seconds(), "pods/s")
		b.ReportMetric(down.Seconds(), "shutdown-s")
		b.ReportMetric(float64(pods)/rawUp.Seconds(), "raw-docker-pods/s")
		b.ReportMetric(rawUp.Seconds()/up.Seconds(), "pods/s-ratio")
		b.ReportMetric(rawDown.Seconds(), "raw-docker-remove-s")
		b.ReportMetric(down.Seconds()/rawDown.Seconds(), "shutdown-ratio")
		b.ReportMetric(idle/1024, "idle-rss-MiB")
		b.ReportMetric(loaded/1024, "rss-loaded-MiB")
		b.ReportMetric(idleAnon/1024, "idle-anon-MiB")
		b.ReportMetric(loadedAnon/1024, "anon-loaded-MiB")
	}
}
