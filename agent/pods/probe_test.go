package pods

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestTrackerThresholds(t *testing.T) {
	for _, tc := range []struct {
		kind             string
		success, failure int32
		results          string // o = ok, x = failed
		changes          string // the result after each change, in order
	}{
		{Readiness, 1, 3, "ooo", "o"},
		{Readiness, 2, 3, "oxoo", "o"},
		{Readiness, 1, 3, "oxxoxxx", "ox"},
		{Liveness, 1, 3, "xxoxxx", "x"}, // starts alive: only the 3rd failure in a row changes it
		{Liveness, 1, 1, "ox", "x"},
		{Startup, 1, 30, "xxxo", "o"},
		{Readiness, 0, 0, "ox", "ox"}, // thresholds default to 1
	} {
		tr := newTracker(tc.kind, &v1.Probe{SuccessThreshold: tc.success, FailureThreshold: tc.failure})
		var got []byte
		for _, r := range tc.results {
			if tr.observe(r == 'o') {
				if tr.result {
					got = append(got, 'o')
				} else {
					got = append(got, 'x')
				}
			}
		}
		if string(got) != tc.changes {
			t.Errorf("%s %d/%d on %s: changes %q, want %q", tc.kind, tc.success, tc.failure, tc.results, got, tc.changes)
		}
	}
}
