package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/k8sm/k8sm/test/mesos"
)

func TestRunServesState(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *mesos.Master, 1)
	var logs bytes.Buffer
	cmd := newCommand(&logs, func(m *mesos.Master) { ready <- m })
	cmd.SetArgs([]string{"--master", "127.0.0.1:0", "--agent", "127.0.0.1:0", "--work-dir", t.TempDir(),
		"--resources", "cpus:2;mem:1024;ports:[31000-31010]", "--attributes", "rack:r1;zone:z1",
		"--hostname", "node-a", "--isolation", "posix"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var m *mesos.Master
	select {
	case m = <-ready:
	case err := <-done:
		t.Fatalf("mesos-double exited: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("mesos-double not ready")
	}
	resp, err := http.Get("http://" + m.Addr() + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var st mesos.MasterState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Agents) != 1 || st.Agents[0].Hostname != "node-a" || !st.Agents[0].Registered ||
		!strings.Contains(st.Agents[0].Resources, "ports:[31000-31010]") {
		t.Fatalf("/state agents = %+v", st.Agents)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("exit after SIGTERM-like cancel: %v", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for args, want := range map[string]string{
		"":                                        "--work-dir is required",
		"--work-dir /tmp --resources cpus":        "--resources",
		"--work-dir /tmp --isolation docker":      "--isolation",
		"--work-dir /tmp --attributes rack":       "--attributes",
		"--work-dir /tmp --log-level chatty":      "--log-level",
		"--work-dir /tmp --resources cpus(r):1":   "reserved",
		"--work-dir /tmp --resources ports:[9-1]": "range",
	} {
		cmd := newCommand(&bytes.Buffer{}, nil)
		cmd.SetArgs(strings.Fields(args))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %s", args, err, want)
		}
	}
}

func TestReadAgents(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := dir + "/agents.yaml"
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := mesos.AgentConfig{CgroupRoot: "mesos", ExecutorEnv: []string{"PATH=/bin"}}
	got, err := readAgents(write(`
- {hostname: n1, addr: "10.0.0.1:5051", netns: /var/run/netns/n1, workDir: /w1, cgroupRoot: up/n1, attributes: "zone:z1", resources: "cpus:1;mem:512", env: [A=1]}
- {hostname: n2, addr: "10.0.0.2:5051", workDir: /w2}
`), base)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].NetNS != "/var/run/netns/n1" || got[0].CgroupRoot != "up/n1" || got[1].CgroupRoot != "mesos" ||
		len(got[0].Attributes) != 1 || len(got[0].Resources) != 2 || len(got[0].ExecutorEnv) != 2 || len(got[1].ExecutorEnv) != 1 {
		t.Fatalf("agents %+v", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{`- {hostname: n1, addr: "a:1"}`, "agent 0: hostname, addr and workDir are required"},
		{`- {hostname: n1, addr: "a:1", workDir: /w, resources: "cpus:x"}`, "agent 0: resources"},
		{`- {hostname: n1, addr: "a:1", workDir: /w, env: [NOVALUE]}`, `env "NOVALUE"`},
		{`- {hostname: n1, addr: "a:1", workDir: /w, bogus: 1}`, "bogus"},
		{`[]`, "no agents"},
	} {
		if _, err := readAgents(write(tc.yaml), base); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
