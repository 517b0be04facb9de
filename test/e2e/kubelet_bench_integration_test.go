//go:build integration && linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	v1 "k8s.io/api/core/v1"

	"github.com/k8sm/k8sm/agent/runtime"

	"github.com/k8sm/k8sm/test/testenv"
)

// BenchmarkKubeletAPI: what users wait for through the kubelet API,
// against the same operation straight on Docker in the same run, both
// with their CLI: "kubectl exec p -- true" against "docker exec <id>
// true" (median and p99 round trip), and "kubectl logs" of a 100 MiB log
// against "docker logs" of it (MB/s).
func BenchmarkKubeletAPI(b *testing.B) {
	const nodeName, execSamples, logMiB = "k8sm-node1", 20, 100
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, admin := newKubeNode(b, nodeName)
	name := "bench-kubelet-" + testenv.RandomName(4)
	// 100 MiB of 100-byte lines, then DONE, then idle.
	line := strings.Repeat("a", 99)
	n.launchAPIPod(b, ctx, admin, newPod(name, v1.Container{Name: "c", Image: testenv.BusyboxImage,
		Command: []string{"sh", "-c", fmt.Sprintf("yes %s | head -c %d; echo DONE; sleep 3600", line, logMiB<<20)}}))
	list, err := n.dc.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", runtime.LabelPodName+"="+name), filters.Arg("label", runtime.LabelContainerName+"=c"))})
	if err != nil || len(list) != 1 {
		b.Fatalf("the pod's container: %v %d", err, len(list))
	}
	id := list[0].ID
	kubectlCmd := func(args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, testenv.KubeBinary(b, "kubectl"), append([]string{"--kubeconfig", testenv.Kubeconfig}, args...)...)
	}
	dockerCmd := func(args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "docker", append([]string{"-H", testenv.DockerHost}, args...)...)
	}
	waitFor(b, "the 100 MiB log written", func() bool {
		out, _ := dockerCmd("logs", "--tail=1", id).Output()
		return strings.TrimSpace(string(out)) == "DONE"
	})
	timed := func(cmd *exec.Cmd) time.Duration {
		cmd.Stdout = io.Discard
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v: %v", cmd.Args, err)
		}
		return time.Since(start)
	}
	var kExec, dExec, kLogs, dLogs []time.Duration
	for b.Loop() {
		for range execSamples {
			kExec = append(kExec, timed(kubectlCmd("exec", name, "--", "true")))
			dExec = append(dExec, timed(dockerCmd("exec", id, "true")))
		}
		kLogs = append(kLogs, timed(kubectlCmd("logs", name)))
		dLogs = append(dLogs, timed(dockerCmd("logs", id)))
	}
	mbps := func(d time.Duration) float64 { return float64(logMiB) * (1 << 20) / 1e6 / d.Seconds() }
	b.ReportMetric(float64(quantile(kExec, 0.5).Milliseconds()), "exec-median-ms")
	b.ReportMetric(float64(quantile(kExec, 0.99).Milliseconds()), "exec-p99-ms")
	b.ReportMetric(float64(quantile(dExec, 0.5).Milliseconds()), "docker-exec-median-ms")
	b.ReportMetric(float64(quantile(dExec, 0.99).Milliseconds()), "docker-exec-p99-ms")
	b.ReportMetric(float64(quantile(kExec, 0.5))/float64(quantile(dExec, 0.5)), "exec-ratio")
	b.ReportMetric(mbps(quantile(kLogs, 0.5)), "logs-MB/s")
	b.ReportMetric(mbps(quantile(dLogs, 0.5)), "docker-logs-MB/s")
}
