package podspec

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

func rl(cpu, mem string) v1.ResourceList {
	l := v1.ResourceList{}
	if cpu != "" {
		l[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func TestDefaultResources(t *testing.T) {
	for _, tc := range []struct {
		name             string
		limits, requests v1.ResourceList
		wantLim, wantReq v1.ResourceList
	}{
		{"nothing declared", nil, nil, rl("250m", "64Mi"), rl("250m", "64Mi")},
		{"request only", nil, rl("100m", "40Mi"), rl("100m", "40Mi"), rl("100m", "40Mi")},
		{"limit only", rl("2", "1Gi"), nil, rl("2", "1Gi"), rl("2", "1Gi")},
		{"both", rl("1", "256Mi"), rl("500m", "128Mi"), rl("1", "256Mi"), rl("500m", "128Mi")},
		{"clamped to minimum", rl("1m", "1Mi"), rl("1m", "1Mi"), rl("10m", "32Mi"), rl("10m", "32Mi")},
		{"cpu declared, memory not", rl("1", ""), nil, rl("1", "64Mi"), rl("1", "64Mi")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "i",
				Resources: v1.ResourceRequirements{Limits: tc.limits, Requests: tc.requests}}}}}
			Default(pod, StandardDefaults())
			r := pod.Spec.Containers[0].Resources
			if !apiequality.Semantic.DeepEqual(r.Limits, tc.wantLim) || !apiequality.Semantic.DeepEqual(r.Requests, tc.wantReq) {
				t.Fatalf("limits %v requests %v, want %v %v", r.Limits, r.Requests, tc.wantLim, tc.wantReq)
			}
		})
	}
}

func TestDefaultFillsAndIsIdempotent(t *testing.T) {
	pod := goodPod(t)
	Default(pod, StandardDefaults())
	if pod.Spec.RestartPolicy != v1.RestartPolicyAlways || *pod.Spec.TerminationGracePeriodSeconds != 30 {
		t.Errorf("pod defaults: restartPolicy %q grace %d", pod.Spec.RestartPolicy, *pod.Spec.TerminationGracePeriodSeconds)
	}
	httpd := pod.Spec.Containers[0]
	if httpd.Ports[0].Protocol != v1.ProtocolTCP || httpd.ImagePullPolicy != v1.PullIfNotPresent {
		t.Errorf("container defaults: protocol %q pull %q", httpd.Ports[0].Protocol, httpd.ImagePullPolicy)
	}
	if p := httpd.LivenessProbe; p.PeriodSeconds != 10 || p.TimeoutSeconds != 1 || p.FailureThreshold != 3 || p.HTTPGet.Scheme != v1.URISchemeHTTP {
		t.Errorf("probe defaults: %+v", p)
	}
	if p := httpd.ReadinessProbe; p.PeriodSeconds != 2 {
		t.Errorf("readiness periodSeconds overwritten: %d", p.PeriodSeconds)
	}
	if err := Validate(pod, Policy{}); err != nil {
		t.Fatalf("defaulting made a valid pod invalid: %v", err)
	}
	again := pod.DeepCopy()
	Default(again, StandardDefaults())
	if !apiequality.Semantic.DeepEqual(pod, again) {
		t.Fatal("Default is not idempotent")
	}
}

func TestPullPolicyFor(t *testing.T) {
	for image, want := range map[string]v1.PullPolicy{
		"busybox":                   v1.PullAlways,
		"busybox:latest":            v1.PullAlways,
		"k8sm.local/busybox:test":   v1.PullIfNotPresent,
		"registry:5000/app":         v1.PullAlways,
		"registry:5000/app:1.2":     v1.PullIfNotPresent,
		"app@sha256:0123456789abcd": v1.PullIfNotPresent,
	} {
		if got := pullPolicyFor(image); got != want {
			t.Errorf("pullPolicyFor(%q) = %q, want %q", image, got, want)
		}
	}
}
