package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election configures leader election (client-go defaults of
// kube-scheduler: 15s, 10s, 2s).
type Election struct {
	Ref                                       StateRef // the Lease: namespace and name
	Identity                                  string   // unique per instance
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Elect runs lead while this instance holds the Lease, until ctx ends. A
// receive on stepDown makes the leader stop lead, release the Lease and
// stay out of the election for one lease duration, so that another
// instance takes over; lead returning ErrFailedOver does the same. Losing
// the Lease stops lead; the instance then campaigns again. lead's ctx ends
// when leadership does, and the next term starts only after lead returned.
func Elect(ctx context.Context, cs kubernetes.Interface, e Election, stepDown <-chan struct{}, m *Metrics, log *slog.Logger, lead func(context.Context) error) error {
	if e.LeaseDuration <= 0 {
		e.LeaseDuration = 15 * time.Second
	}
	if e.RenewDeadline <= 0 {
		e.RenewDeadline = 10 * time.Second
	}
	if e.RetryPeriod <= 0 {
		e.RetryPeriod = 2 * time.Second
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	for ctx.Err() == nil {
		term, cancel := context.WithCancel(ctx)
		var (
			leadErr  error
			stepped  bool
			finished = make(chan struct{})
			started  atomic.Bool
		)
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: e.Ref.Namespace, Name: e.Ref.Name},
				Client:     cs.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
			},
			LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod,
			ReleaseOnCancel: true, Name: e.Ref.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(c context.Context) {
					started.Store(true)
					defer close(finished)
					m.Leader.Set(1)
					log.Info("leading", "identity", e.Identity, "lease", e.Ref.Namespace+"/"+e.Ref.Name)
					leadErr = lead(c)
					cancel()
				},
				OnStoppedLeading: func() {
					m.Leader.Set(0)
					log.Info("not leading", "identity", e.Identity)
				},
				OnNewLeader: func(id string) {
					if id != e.Identity {
						log.Info("following the leader", "leader", id)
					}
				},
			},
		})
		if err != nil {
			cancel()
			return err
		}
		go func() {
			select {
			case <-stepDown:
				log.Info("SIGUSR1: stepping down")
				stepped = true
				cancel()
			case <-term.Done():
			}
		}()
		le.Run(term)
		cancel()
		if started.Load() {
			<-finished
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pause := e.RetryPeriod
		switch {
		case stepped, errors.Is(leadErr, ErrFailedOver):
			pause = e.LeaseDuration
		case leadErr != nil && !errors.Is(leadErr, context.Canceled):
			log.Error("scheduler stopped", "err", leadErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
	return ctx.Err()
}
