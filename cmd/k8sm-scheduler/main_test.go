package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestFlagsExplainThemselves(t *testing.T) {
	newCommand().Flags().VisitAll(func(f *pflag.Flag) {
		if len(strings.Fields(f.Usage)) < 3 {
			t.Errorf("--%s: help text %q does not explain the flag", f.Name, f.Usage)
		}
	})
}

// Every bad flag is refused before anything starts, with an error naming it.
func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--master"},
		{[]string{"--master", "m:5050", "--executor-mem", "lots"}, "--executor-mem"},
		{[]string{"--master", "m:5050", "--executor-mem", "16Mi"}, "--executor-mem"},
		{[]string{"--master", "m:5050", "--default-container-mem-limit", "x"}, "--default-container-mem-limit"},
		{[]string{"--master", "m:5050", "--host-port-strategy", "random"}, "--host-port-strategy"},
		{[]string{"--master", "m:5050", "--static-pods-config", "/nonexistent/k8sm"}, "--static-pods-config"},
		{[]string{"--master", "m:5050", "--executor-env", "NOVALUE"}, "--executor-env"},
		{[]string{"--master", "m:5050", "--kubeconfig", "/nonexistent/kubeconfig"}, "--kubeconfig"},
		{[]string{"--master", "m:5050", "--kubeconfig", "/nonexistent/kubeconfig", "--log-level", "loud"}, "--kubeconfig"},
	} {
		cmd := newCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(tc.args)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to name %s", tc.args, err, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	cmd := newCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil || !strings.HasPrefix(out.String(), "k8sm-scheduler ") {
		t.Fatalf("--version: %v %q", err, out.String())
	}
}
