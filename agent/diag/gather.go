package diag

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/k8sm/k8sm/agent/nodeapi"
	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/proxy"
)

// Config says where the sources are.
type Config struct {
	// APIDir holds the executors' node API sockets (/run/k8sm/executors).
	APIDir         string
	DockerEndpoint string
	// CgroupFS is where the cgroup hierarchies are mounted (/sys/fs/cgroup);
	// CgroupRoot the Mesos agent's --cgroups_root ("mesos").
	CgroupFS, CgroupRoot string
	// Iptables is the iptables command ("iptables"); "" skips iptables.
	Iptables string
	// Timeout bounds each source (default 5s).
	Timeout time.Duration
	// OrphanGrace: younger k8sm containers are never orphans (diag's
	// --orphan-grace, default OrphanGrace; 0: none).
	OrphanGrace time.Duration
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 5 * time.Second
	}
	return c.Timeout
}

// Gather reads every source. A source that cannot be read is recorded in
// Inputs (and becomes a problem), never an error: diag must work on a sick
// node.
func Gather(ctx context.Context, cfg Config) Inputs {
	in := Inputs{Now: time.Now(), CgroupRoot: cfg.CgroupRoot, APIDir: cfg.APIDir, DockerEndpoint: cfg.DockerEndpoint, OrphanGrace: cfg.OrphanGrace}
	in.APIs, in.APIErr = gatherAPIs(ctx, cfg)
	in.DockerDriver, in.Containers, in.DockerErr = gatherDocker(ctx, cfg)
	in.PodCgroups, in.CgroupErr = gatherCgroups(cfg)
	if cfg.Iptables != "" {
		in.Chains, in.IptablesErr = gatherChains(ctx, cfg)
	}
	return in
}

// unixClient talks HTTP to one socket.
func unixClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
}

func getJSON(ctx context.Context, c *http.Client, path string, v any) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://executor"+path, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return true, json.NewDecoder(resp.Body).Decode(v)
}

func gatherAPIs(ctx context.Context, cfg Config) ([]API, error) {
	socks, err := filepath.Glob(filepath.Join(cfg.APIDir, "*.sock"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.APIDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sort.Strings(socks)
	out := make([]API, len(socks))
	read := make([]time.Time, len(socks)) // when each first /executor was read
	for i, s := range socks {
		a := &out[i]
		a.Socket = s
		c := unixClient(s, cfg.timeout())
		read[i] = time.Now()
		if _, err := getJSON(ctx, c, "/executor", &a.Info); err != nil {
			a.Err = err
			continue
		}
		var list v1.PodList
		if _, err := getJSON(ctx, c, "/pods", &list); err == nil {
			a.Pods = list.Items
		}
		var sum stats.Summary
		if ok, err := getJSON(ctx, c, "/stats/summary", &sum); ok && err == nil {
			a.Summary = &sum
		}
		var ps proxy.Status
		if ok, err := getJSON(ctx, c, "/proxy", &ps); ok && err == nil {
			a.Proxy = &ps
		}
	}
	// CPU in cores: a second reading of each container's CPU time, after
	// one pause for all of them.
	if len(out) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	for i := range out {
		a := &out[i]
		if a.Err != nil {
			continue
		}
		var again nodeapi.Info
		if _, err := getJSON(ctx, unixClient(a.Socket, cfg.timeout()), "/executor", &again); err == nil && again.CPUUsageNanos >= a.Info.CPUUsageNanos {
			a.CPU = float64(again.CPUUsageNanos-a.Info.CPUUsageNanos) / float64(time.Since(read[i]).Nanoseconds())
		}
	}
	return out, nil
}

func gatherDocker(ctx context.Context, cfg Config) (string, []DockerContainer, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	d, err := runtime.New(runtime.Config{Endpoint: cfg.DockerEndpoint, CallTimeout: cfg.timeout()}, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = d.Close() }()
	info, err := d.Info(ctx)
	if err != nil {
		return "", nil, err
	}
	list, err := d.List(ctx, map[string]string{runtime.LabelFrameworkID: ""})
	if err != nil {
		return info.CgroupDriver, nil, err
	}
	var out []DockerContainer
	for _, s := range list {
		c := DockerContainer{ID: s.ID, Labels: s.Labels, State: s.State, Created: s.Created}
		if st, err := d.Inspect(ctx, s.ID); err == nil {
			c.Name, c.Pid = strings.TrimPrefix(st.Name, "/"), st.Pid
			if st.Running && st.Pid > 0 {
				c.Cgroup = procCgroup(st.Pid)
			}
		}
		out = append(out, c)
	}
	return info.CgroupDriver, out, nil
}

// procCgroup is a process's memory cgroup (v1) or its unified one (v2).
func procCgroup(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	unified := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return parts[2]
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	return unified
}

// cgroupDir is the hierarchy diag reads pod cgroups in: memory on v1 (and
// hybrid), the unified one on v2.
func cgroupDir(cfg Config) string {
	if _, err := os.Stat(filepath.Join(cfg.CgroupFS, "cgroup.controllers")); err == nil {
		return cfg.CgroupFS
	}
	return filepath.Join(cfg.CgroupFS, "memory")
}

func gatherCgroups(cfg Config) ([]PodCgroup, error) {
	base := cgroupDir(cfg)
	root := filepath.Join(base, strings.Trim(cfg.CgroupRoot, "/"))
	containers, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no Mesos container here at all
	}
	if err != nil {
		return nil, err
	}
	var out []PodCgroup
	for _, c := range containers {
		if !c.IsDir() {
			continue
		}
		pods, err := os.ReadDir(filepath.Join(root, c.Name()))
		if err != nil {
			continue
		}
		for _, p := range pods {
			if !p.IsDir() || !looksLikeUID(p.Name()) {
				continue // the v2 leaf, Mesos' nested containers, ...
			}
			rel := "/" + strings.Trim(cfg.CgroupRoot, "/") + "/" + c.Name() + "/" + p.Name()
			out = append(out, PodCgroup{ContainerID: c.Name(), PodUID: p.Name(), Path: rel, Procs: countProcs(filepath.Join(base, rel))})
		}
	}
	return out, nil
}

// looksLikeUID: pod UIDs are UUIDs or (static pods) 32 hex digits.
func looksLikeUID(s string) bool {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return false
	}
	_, err := strconv.ParseUint(h[:16], 16, 64)
	_, err2 := strconv.ParseUint(h[16:], 16, 64)
	return err == nil && err2 == nil
}

// countProcs counts the processes in a cgroup tree.
func countProcs(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		n += len(strings.Fields(string(b)))
		return nil
	})
	return n
}

func gatherChains(ctx context.Context, cfg Config) (int, error) {
	ipt, err := proxy.NewExec(cfg.Iptables)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*cfg.timeout())
	defer cancel()
	n := 0
	for _, t := range proxy.Tables {
		save, err := ipt.Save(ctx, t)
		if err != nil {
			return 0, err
		}
		n += len(proxy.OwnedChains(save))
	}
	return n, nil
}
