package scheduler

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
	"github.com/k8sm/k8sm/staticpods"
)

// TestPropertyPodArithmeticAgrees is a property test of the one pod
// arithmetic (issue 19): for random pods (odd units, missing limits and
// requests so the defaults apply, init containers), what the scheduler asks
// Mesos for, what the executor makes the pod cgroup (podspec.TaskResources
// of the pod it decodes from the task data), and what the pod adds to the
// executor's resources as a static pod agree to the millicore and the
// byte, and are the pod's limits (summed as the kubelet sums them, rounded
// up) plus the sandbox allowance.
func TestPropertyPodArithmeticAgrees(t *testing.T) {
	const pods = 500
	r := rand.New(rand.NewPCG(19, 2))
	defaults := []podspec.Defaults{podspec.StandardDefaults(), {
		CPULimit: resource.MustParse("0.1005"), MemLimit: resource.MustParse("100M"),
		MinCPU: resource.MustParse("1m"), MinMem: resource.MustParse("7"),
	}}
	dir := t.TempDir()
	ex := Executor{ID: "k8sm-prop"}
	exInfo := mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: ex.ID}}
	type sums struct{ milli, bytes int64 }
	var (
		allStatic   []*v1.Pod
		podDefaults []podspec.Defaults
		models      []sums
	)
	for i := range pods {
		manifest := randomPod(r, i)
		d := defaults[r.IntN(len(defaults))]
		podDefaults = append(podDefaults, d)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("pod %d: %s\ndefaults: limits %s cpu, %s memory; minimum %s, %s\n%s", i, fmt.Sprintf(format, args...),
				&d.CPULimit, &d.MemLimit, &d.MinCPU, &d.MinMem, manifest)
		}
		// The scheduler: the pod as the API server has it, defaulted as
		// onPod does, placed on a big offer of an agent that runs our
		// executor, and the TaskInfo it launches.
		pod, err := podspec.Decode([]byte(manifest))
		if err != nil {
			fail("decode: %v", err)
		}
		podspec.Default(pod, d)
		if err := podspec.Validate(pod, podspec.Policy{}); err != nil {
			fail("the generator made an invalid pod: %v", err)
		}
		s := slot(t, offer("o1", "a1", 1e5, 1e7, 31000, 31999, "", ex.ID))
		plan := Place([]*Pod{NewPod(pod, ports.Wildcard)}, []*Slot{s}, ex, ports.Wildcard)
		if len(plan.Launches) != 1 {
			fail("not placed: %+v", plan.Unplaced)
		}
		task, _, err := NewTask(plan.Launches[0], &exInfo)
		if err != nil {
			fail("NewTask: %v", err)
		}
		var sched sums
		sched.milli, sched.bytes, _ = podspec.FromMesos(task.Resources)

		// The executor: the pod of the task data, defaulted again, gets a
		// pod cgroup of TaskResources.
		epod, err := podspec.Decode(task.Data)
		if err != nil {
			fail("decode task data: %v", err)
		}
		podspec.Default(epod, d)
		var exec sums
		exec.milli, exec.bytes = podspec.TaskResources(epod)

		// The same manifest as a static pod, loaded and summed.
		if err := os.WriteFile(filepath.Join(dir, "pod.yaml"), []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := staticpods.Load(dir, staticpods.Options{Defaults: d})
		if err != nil || len(res.Pods) != 1 {
			fail("static pod load: %v (%d pods)", err, len(res.Pods))
		}
		var static sums
		static.milli, static.bytes = staticpods.Sum(res.Pods)
		allStatic = append(allStatic, res.Pods[0])

		want := modelTaskResources(pod)
		models = append(models, want)
		for _, got := range []struct {
			what string
			sums
		}{
			{"scheduler's task resources", sched},
			{"executor's pod cgroup", exec},
			{"static pods' sum", static},
		} {
			if got.sums != want {
				fail("%s = %dm, %d bytes; want %dm, %d bytes (the model)", got.what, got.milli, got.bytes, want.milli, want.bytes)
			}
		}
	}

	// All of them as the static pods of one executor: its resources are the
	// sum, and the pod cgroups the executor makes for them (after Unpack
	// and defaulting) fill them exactly.
	var total sums
	for _, m := range models {
		total.milli += m.milli
		total.bytes += m.bytes
	}
	info, sex, err := NewExecutorInfo(ExecutorConfig{Command: "k8sm-agent", StaticPods: allStatic})
	if err != nil {
		t.Fatal(err)
	}
	if milli, bytes, _ := podspec.FromMesos(info.Resources); milli != total.milli || bytes != total.bytes {
		t.Fatalf("ExecutorInfo resources %dm, %d bytes; want %dm, %d", milli, bytes, total.milli, total.bytes)
	}
	if sex.CPUMilli != total.milli || sex.MemMilli != total.bytes/podspec.MiB*1000 {
		t.Fatalf("placement's executor needs %dm, %d/1000 MB; want %dm, %d MB", sex.CPUMilli, sex.MemMilli, total.milli, total.bytes/podspec.MiB)
	}
	unpacked, err := staticpods.Unpack(info.Data)
	if err != nil || len(unpacked) != len(models) {
		t.Fatalf("unpack: %v (%d pods)", err, len(unpacked))
	}
	for i, p := range unpacked {
		podspec.Default(p, podDefaults[i])
		if milli, bytes := podspec.TaskResources(p); milli != models[i].milli || bytes != models[i].bytes {
			t.Fatalf("static pod %d: the executor's pod cgroup %dm, %d bytes; want %dm, %d", i, milli, bytes, models[i].milli, models[i].bytes)
		}
	}
}

// modelTaskResources computes a defaulted pod's task resources apart from
// podspec: the larger of the app containers' limit sum and the largest
// init container's limit, per resource, rounded up to a millicore and a
// byte, plus the 16 MiB sandbox allowance, memory rounded up to a MiB.
func modelTaskResources(pod *v1.Pod) (out struct{ milli, bytes int64 }) {
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		var sum resource.Quantity
		for _, c := range pod.Spec.Containers {
			sum.Add(c.Resources.Limits[name])
		}
		for _, c := range pod.Spec.InitContainers {
			if l := c.Resources.Limits[name]; l.Cmp(sum) > 0 {
				sum = l.DeepCopy()
			}
		}
		if name == v1.ResourceCPU {
			out.milli = sum.MilliValue()
		} else {
			const mib = 1 << 20
			out.bytes = (sum.Value() + 16*mib + mib - 1) / mib * mib
		}
	}
	return out
}

// randomPod is the YAML manifest of a pod with random containers, init
// containers, requests and limits in odd units (some missing, so that the
// defaults apply) and container ports with and without host ports.
func randomPod(r *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata: {name: p%d, namespace: default, uid: uid-%d}\nspec:\n", i, i)
	port, hostPort := 8000, 31000
	writeContainers := func(key string, n int, withPorts bool) {
		if n == 0 {
			return
		}
		fmt.Fprintf(&b, "  %s:\n", key)
		for j := range n {
			fmt.Fprintf(&b, "  - name: %s%d\n    image: busybox:1\n", key[:4], j)
			if withPorts && r.IntN(3) == 0 {
				b.WriteString("    ports:\n")
				for range 1 + r.IntN(2) {
					hp := 0
					if r.IntN(2) == 0 {
						hp = hostPort
						hostPort += 1 + r.IntN(5)
					}
					fmt.Fprintf(&b, "    - {containerPort: %d, hostPort: %d}\n", port, hp)
					port++
				}
			}
			var lims, reqs []string
			for _, name := range []string{"cpu", "memory"} {
				gen := randomCPU
				if name == "memory" {
					gen = randomMem
				}
				switch r.IntN(4) {
				case 0: // neither: the default limit
				case 1:
					reqs = append(reqs, name+": \""+gen(r)+"\"")
				case 2:
					lims = append(lims, name+": \""+gen(r)+"\"")
				case 3:
					a, c := gen(r), gen(r)
					qa, qc := resource.MustParse(a), resource.MustParse(c)
					if qa.Cmp(qc) > 0 {
						a, c = c, a
					}
					reqs = append(reqs, name+": \""+a+"\"")
					lims = append(lims, name+": \""+c+"\"")
				}
			}
			if len(lims)+len(reqs) > 0 {
				b.WriteString("    resources:\n")
				if len(lims) > 0 {
					fmt.Fprintf(&b, "      limits: {%s}\n", strings.Join(lims, ", "))
				}
				if len(reqs) > 0 {
					fmt.Fprintf(&b, "      requests: {%s}\n", strings.Join(reqs, ", "))
				}
			}
		}
	}
	writeContainers("initContainers", r.IntN(3), false)
	writeContainers("containers", 1+r.IntN(4), true)
	return b.String()
}

// randomCPU is a cpu quantity in one of the forms people write: "1001m",
// "0.3", "1.0005", "2", "150u", "5e-3".
func randomCPU(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("%dm", 1+r.IntN(4000))
	case 1:
		return fmt.Sprintf("0.%d", 1+r.IntN(9))
	case 2:
		return fmt.Sprintf("%d.%04d", r.IntN(3), 1+r.IntN(9999))
	case 3:
		return fmt.Sprint(1 + r.IntN(4))
	case 4:
		return fmt.Sprintf("%du", 1+r.IntN(3_000_000))
	default:
		return fmt.Sprintf("%de-3", 1+r.IntN(3000))
	}
}

// randomMem is a memory quantity in one of the forms people write: "129Mi",
// "1G", "7" (bytes), "300Ki", "1.5Gi", "129e6", "0.5".
func randomMem(r *rand.Rand) string {
	switch r.IntN(7) {
	case 0:
		return fmt.Sprintf("%dMi", 1+r.IntN(4096))
	case 1:
		return fmt.Sprintf("%d%s", 1+r.IntN(4), []string{"k", "M", "G"}[r.IntN(3)])
	case 2:
		return fmt.Sprint(1 + r.IntN(1<<31))
	case 3:
		return fmt.Sprintf("%dKi", 1+r.IntN(1<<20))
	case 4:
		return fmt.Sprintf("%d.%dGi", r.IntN(4), 1+r.IntN(9))
	case 5:
		return fmt.Sprintf("%de%d", 1+r.IntN(999), 3+r.IntN(6))
	default:
		return fmt.Sprintf("%d.5", r.IntN(10))
	}
}
