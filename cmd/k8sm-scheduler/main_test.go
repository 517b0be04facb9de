package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestSchedulerFlagsAndStub(t *testing.T) {
	cmd := newCommand()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if len(strings.Fields(f.Usage)) < 3 {
			t.Errorf("--%s: help text %q does not explain the flag", f.Name, f.Usage)
		}
	})

	cmd = newCommand()
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--master") {
		t.Errorf("no --master: err = %v, want it to name --master", err)
	}

	cmd = newCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--master", "127.0.0.1:5050"})
	if err := cmd.Execute(); !errors.Is(err, errNotImplemented) {
		t.Errorf("err = %v, want not implemented yet", err)
	}
	if out.Len() != 0 {
		t.Errorf("stub printed %q", out.String())
	}
}
