//go:build integration && linux

package pods_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/pods"
	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/test/testenv"
)

// benchManager is newManager for benchmarks: it signals readiness per pod.
func benchManager(b *testing.B) (*pods.Manager, *bed, func(uid string) <-chan struct{}) {
	b.Helper()
	bd := newBed(b)
	bd.owner.ExecutorID = testenv.RandomName(4)
	rt, cg := bd.rt, bd.cg
	var mu sync.Mutex
	readyCh := map[string]chan struct{}{}
	get := func(uid string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if readyCh[uid] == nil {
			readyCh[uid] = make(chan struct{})
		}
		return readyCh[uid]
	}
	m := pods.NewManager(pods.ManagerConfig{Worker: pods.WorkerConfig{
		Machine: pods.Config{BackoffBase: time.Second, BackoffMax: 10 * time.Second, BackoffReset: time.Minute},
		Spec: pods.SpecOptions{Owner: bd.owner, HostIP: "127.0.0.1", PauseImage: testenv.PauseImage,
			VolumeRoot: b.TempDir()},
		DockerDriver: "cgroupfs", StopTimeout: 10 * time.Second,
	}}, rt, pods.CgroupsOf(cg), nil, func(uid string, s v1.PodStatus, _ pods.State) {
		if ready(s) {
			ch := get(uid)
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer scancel()
		_ = stopAll(sctx, m, time.Now().Add(2*time.Second))
		cancel()
		<-done
	})
	return m, bd, func(uid string) <-chan struct{} { return get(uid) }
}

func benchPod(i int) *v1.Pod {
	p := newPod(fmt.Sprintf("bench-%d", i), v1.RestartPolicyAlways,
		v1.Container{Name: "app", Image: testenv.BusyboxImage, Command: []string{"sleep", "3600"}})
	podspec.Default(p, podspec.StandardDefaults())
	return p
}

func report(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(ds[(len(ds)*99)/100].Microseconds())/1000, "ms-p99")
}

// BenchmarkPodStart: LAUNCH of a pod (sandbox + one app container, local
// image) until its Ready status; compare with BenchmarkRawDockerStart.
func BenchmarkPodStart(b *testing.B) {
	m, _, readyOf := benchManager(b)
	var ds []time.Duration
	for i := 0; b.Loop(); i++ {
		p := benchPod(i)
		milli, mem := podspec.TaskResources(p)
		start := time.Now()
		if err := m.Launch(p, "pod."+string(p.UID), cgroups.Limits{CPURequestMilli: milli, MemoryBytes: mem}); err != nil {
			b.Fatal(err)
		}
		<-readyOf(string(p.UID))
		ds = append(ds, time.Since(start))
		b.StopTimer()
		_ = m.Kill(string(p.UID), time.Millisecond)
		<-m.Done(string(p.UID))
		b.StartTimer()
	}
	report(b, ds)
}

// BenchmarkRawDockerStart: the same two containers with the same options,
// created and started straight through the Docker client.
func BenchmarkRawDockerStart(b *testing.B) {
	_, bd, _ := benchManager(b)
	ctx := context.Background()
	var ds []time.Duration
	for i := 0; b.Loop(); i++ {
		p := benchPod(i)
		o := pods.SpecOptions{Owner: bd.owner, TaskID: "t", CgroupParent: bd.mc.Path + "/raw", HostIP: "127.0.0.1", PauseImage: testenv.PauseImage}
		start := time.Now()
		sb, err := bd.rt.Create(ctx, pods.SandboxSpec(p, o))
		if err != nil {
			b.Fatal(err)
		}
		if err := bd.rt.Start(ctx, sb); err != nil {
			b.Fatal(err)
		}
		o.SandboxID = sb
		spec, err := pods.ContainerSpec(p, &p.Spec.Containers[0], o)
		if err != nil {
			b.Fatal(err)
		}
		app, err := bd.rt.Create(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if err := bd.rt.Start(ctx, app); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
		b.StopTimer()
		_ = bd.rt.Remove(ctx, app)
		_ = bd.rt.Remove(ctx, sb)
		b.StartTimer()
	}
	report(b, ds)
}

// BenchmarkStart100AtOnce: 100 pods launched together until all are Ready.
func BenchmarkStart100AtOnce(b *testing.B) {
	m, _, readyOf := benchManager(b)
	for i := 0; b.Loop(); i++ {
		var ps []*v1.Pod
		for j := range 100 {
			ps = append(ps, benchPod(i*1000+j))
		}
		start := time.Now()
		for _, p := range ps {
			milli, mem := podspec.TaskResources(p)
			if err := m.Launch(p, "pod."+string(p.UID), cgroups.Limits{CPURequestMilli: milli, MemoryBytes: mem}); err != nil {
				b.Fatal(err)
			}
		}
		for _, p := range ps {
			<-readyOf(string(p.UID))
		}
		b.ReportMetric(100/time.Since(start).Seconds(), "pods/s")
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		stopStart := time.Now()
		if err := stopAll(ctx, m, time.Now().Add(2*time.Second)); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(stopStart).Seconds(), "s-stopall-100")
		cancel()
		b.StartTimer()
	}
}

// BenchmarkRawDocker100AtOnce is the baseline of BenchmarkStart100AtOnce:
// the same 100 sandboxes and app containers created and started straight
// through the Docker client, all at once; then all SIGKILLed and removed at
// once (the floor of StopAll's removal).
func BenchmarkRawDocker100AtOnce(b *testing.B) {
	_, bd, _ := benchManager(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		ids := make([][2]string, 100)
		var wg sync.WaitGroup
		start := time.Now()
		for j := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := benchPod(i*1000 + j)
				o := pods.SpecOptions{Owner: bd.owner, TaskID: "t", CgroupParent: fmt.Sprintf("%s/raw%d", bd.mc.Path, j), HostIP: "127.0.0.1", PauseImage: testenv.PauseImage}
				sb, err := bd.rt.Create(ctx, pods.SandboxSpec(p, o))
				if err == nil {
					err = bd.rt.Start(ctx, sb)
				}
				if err != nil {
					b.Error(err)
					return
				}
				o.SandboxID = sb
				spec, _ := pods.ContainerSpec(p, &p.Spec.Containers[0], o)
				app, err := bd.rt.Create(ctx, spec)
				if err == nil {
					err = bd.rt.Start(ctx, app)
				}
				if err != nil {
					b.Error(err)
				}
				ids[j] = [2]string{sb, app}
			}()
		}
		wg.Wait()
		b.ReportMetric(100/time.Since(start).Seconds(), "pods/s")
		b.StopTimer()
		rmStart := time.Now()
		for _, pair := range ids {
			for _, id := range pair {
				wg.Add(1)
				go func() { defer wg.Done(); _ = bd.rt.Remove(ctx, id) }()
			}
		}
		wg.Wait()
		b.ReportMetric(time.Since(rmStart).Seconds(), "s-remove-100")
		b.StartTimer()
	}
}
