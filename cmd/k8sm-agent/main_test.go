package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func run(args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCommand(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// Every flag of every command explains itself in --help.
func TestEveryFlagHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && len(strings.Fields(f.Usage)) < 3 {
				t.Errorf("%s --%s: help text %q does not explain the flag", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(&bytes.Buffer{}))
}

func TestHelpListsFlags(t *testing.T) {
	out, err := run("executor", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--default-container-cpu-limit", "--docker-endpoint", "--cgroup-root", "--suicide-timeout", "--launch-grace-period", "--kubeconfig"} {
		if !strings.Contains(out, f) {
			t.Errorf("executor --help does not list %s:\n%s", f, out)
		}
	}
}

// diag on a node without k8sm and without Docker: it still reports (exit
// 1, Docker unreachable named with its endpoint), in both formats.
func TestDiagOnABareNode(t *testing.T) {
	dir := t.TempDir()
	args := []string{"diag", "--node-api-dir", dir + "/sockets", "--cgroup-fs", dir, "--docker-endpoint", "unix://" + dir + "/docker.sock",
		"--iptables", "", "--timeout", "1s"}
	out, err := run(args...)
	if exitCode(err) != 1 || !strings.Contains(out, "Docker is unreachable at unix://"+dir+"/docker.sock") || !strings.Contains(out, "EXECUTORS\n  (none)") {
		t.Fatalf("diag: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	out, err = run(append(args, "-o", "json")...)
	if exitCode(err) != 1 || !strings.Contains(out, `"level": "FAIL"`) {
		t.Fatalf("diag -o json: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	if _, err := run("diag", "--dry-run"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--dry-run") {
		t.Fatalf("--dry-run without --reap: %v", err)
	}
}

// Outside a Mesos agent the executor says which MESOS_* variables it lacks.
func TestExecutorNeedsTheMesosEnvironment(t *testing.T) {
	_, err := run("executor")
	if err == nil || !strings.Contains(err.Error(), "MESOS_FRAMEWORK_ID") || exitCode(err) == 0 {
		t.Fatalf("executor without MESOS_*: err = %v", err)
	}
}

func TestFlagValidationNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"executor", "--default-container-cpu-limit=0"}, "--default-container-cpu-limit"},
		{[]string{"executor", "--default-container-mem-limit=lots"}, "--default-container-mem-limit"},
		{[]string{"executor", "--default-container-mem-limit=-1Mi"}, "--default-container-mem-limit"},
		{[]string{"executor", "--suicide-timeout=0s"}, "--suicide-timeout"},
		{[]string{"diag", "-o", "yaml"}, "--output"},
		{[]string{"executor", "--proxy"}, "--proxy"},
		{[]string{"executor", "--kubeconfig=/k", "--proxy-masquerade-bit=40"}, "--proxy-masquerade-bit"},
		{[]string{"executor", "--kubeconfig=/k", "--proxy-min-sync-interval=0s"}, "--proxy-min-sync-interval"},
		{[]string{"executor", "--node-api-address=:1"}, "--node-api-address"},
		{[]string{"executor", "--go-memory-limit=lots"}, "--go-memory-limit"},
		{[]string{"proxy"}, "--kubeconfig"},
		{[]string{"proxy", "--proxy-masquerade-bit=-1", "--cleanup"}, "--proxy-masquerade-bit"},
	} {
		_, err := run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: err = %v, want it to name %s", tc.args, err, tc.flag)
		}
		if exitCode(err) != 2 {
			t.Errorf("%v: exit code %d, want 2 (a usage error)", tc.args, exitCode(err))
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := run("version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "k8sm-agent "+version+" (go") {
		t.Fatalf("version printed %q", out)
	}
}
