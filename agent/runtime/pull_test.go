package runtime

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// Concurrent EnsureImage calls for one image share one pull, and all see its
// result.
func TestPullsDeduplicated(t *testing.T) {
	d, err := New(Config{Endpoint: "unix:///nonexistent.sock"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	d.pull = func(ctx context.Context, ref string) error {
		started <- struct{}{}
		<-release
		return &PullError{Image: ref, Msg: "manifest unknown"}
	}
	joined := make(chan struct{}, 10)
	d.joined = func(string) { joined <- struct{}{} }
	var wg sync.WaitGroup
	errs := make([]error, 5)
	// The first caller's pull is in flight before the others call.
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = d.EnsureImage(context.Background(), "reg/app:1", PullAlways) }()
	<-started
	for i := 1; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = d.EnsureImage(context.Background(), "reg/app:1", PullAlways) }()
	}
	// Wait until all five hold the pull: the first's is still blocked on
	// release, so the other four joined it rather than starting their own.
	for range 5 {
		<-joined
	}
	close(release)
	wg.Wait()
	if n := d.Pulls.Load(); n != 1 {
		t.Fatalf("%d pulls for 5 concurrent callers, want 1", n)
	}
	for i, err := range errs {
		var pe *PullError
		if !errors.As(err, &pe) || pe.Msg != "manifest unknown" {
			t.Errorf("caller %d: err = %v, want the pull's error", i, err)
		}
	}
}
