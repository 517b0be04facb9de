package testenv

import (
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	if !Poll(time.Minute, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Fatalf("Poll of a condition true at the 3rd call: made %d calls", calls)
	}
	calls = 0
	if Poll(50*time.Millisecond, func() bool { calls++; return false }) {
		t.Fatal("Poll of a condition never true returned true")
	}
	if calls < 2 {
		t.Fatalf("Poll gave up after %d calls; it must retry until the timeout", calls)
	}
}
