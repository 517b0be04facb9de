package cgroups

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Paths
	}{
		{"v1", "4:memory:/mesos/abc\n3:cpu,cpuacct:/mesos/abc\n1:name=systemd:/\n",
			Paths{V1: map[string]string{"memory": "/mesos/abc", "cpu": "/mesos/abc", "cpuacct": "/mesos/abc", "name=systemd": "/"}}},
		{"v2", "0::/mesos/abc/executor\n", Paths{V1: map[string]string{}, Unified: "/mesos/abc/executor"}},
		{"hybrid", "5:pids:/\n4:memory:/process_api/d32\n0::/\n",
			Paths{V1: map[string]string{"pids": "/", "memory": "/process_api/d32"}, Unified: "/"}},
		{"space and colon in path", "4:memory:/mesos/a b:c\n0::/odd:path here\n",
			Paths{V1: map[string]string{"memory": "/mesos/a b:c"}, Unified: "/odd:path here"}},
	} {
		got, err := ParseProcCgroup(strings.NewReader(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := ParseProcCgroup(strings.NewReader("garbage\n")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestSelfReadsProcRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "self", "cgroup"), []byte("4:memory:/mesos/xyz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Self(root)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := p.Executor(false); e != "/mesos/xyz" {
		t.Fatalf("Executor = %q", e)
	}
}
