package main

import (
	"bytes"
	"errors"
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

// Unimplemented subcommands fail (exit 2) and say so; they print no output
// that could be mistaken for a result.
func TestStubsFail(t *testing.T) {
	for _, args := range [][]string{{"diag"}} {
		out, err := run(args...)
		if !errors.Is(err, errNotImplemented) {
			t.Errorf("%v: err = %v, want not implemented yet", args, err)
		}
		if exitCode(err) == 0 {
			t.Errorf("%v: exit code 0 for a stub", args)
		}
		if out != "" {
			t.Errorf("%v: stub printed %q", args, out)
		}
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
		if errors.Is(err, errNotImplemented) {
			t.Errorf("%v: bad flag reached the stub instead of being refused", tc.args)
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
