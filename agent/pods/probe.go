package pods

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"
)

// tracker applies a probe's success and failure thresholds (pure): a result
// changes only after that many results in a row.
type tracker struct {
	success, failure int32
	okRun, failRun   int32
	result           bool
}

// newTracker starts where the kubelet starts: liveness as success,
// readiness and startup as failure.
func newTracker(kind string, p *v1.Probe) *tracker {
	return &tracker{success: max(p.SuccessThreshold, 1), failure: max(p.FailureThreshold, 1), result: kind == Liveness}
}

// observe records one result and reports whether the probe's result changed.
func (t *tracker) observe(ok bool) (changed bool) {
	if ok {
		t.okRun, t.failRun = t.okRun+1, 0
		if !t.result && t.okRun >= t.success {
			t.result = true
			return true
		}
		return false
	}
	t.failRun, t.okRun = t.failRun+1, 0
	if t.result && t.failRun >= t.failure {
		t.result = false
		return true
	}
	return false
}

// Execer runs a command in a container (*runtime.Docker satisfies it).
type Execer interface {
	Exec(ctx context.Context, id string, cmd []string) (int, []byte, error)
}

// probeOnce runs one probe of container c (Docker id) of a pod at podIP.
// A probe that cannot run (a named port that does not exist) fails.
func probeOnce(ctx context.Context, ex Execer, c *v1.Container, id, podIP string, p *v1.Probe) bool {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := p.ProbeHandler
	return runHandler(ctx, ex, c, id, podIP, handler{h.Exec, h.HTTPGet, h.TCPSocket, nil}) == nil
}

// handler is the union of a probe's and a lifecycle hook's actions.
type handler struct {
	exec  *v1.ExecAction
	http  *v1.HTTPGetAction
	tcp   *v1.TCPSocketAction
	sleep *v1.SleepAction
}

// runHandler runs one probe or hook action within ctx; nil is success, an
// error says what failed.
func runHandler(ctx context.Context, ex Execer, c *v1.Container, id, podIP string, h handler) error {
	switch {
	case h.exec != nil:
		code, out, err := ex.Exec(ctx, id, h.exec.Command)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %q exited with %d: %.200s", h.exec.Command, code, out)
		}
		return nil
	case h.http != nil:
		addr, err := endpoint(c, h.http.Port, h.http.Host, podIP)
		if err != nil {
			return err
		}
		scheme := "http"
		if h.http.Scheme == v1.URISchemeHTTPS {
			scheme = "https"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s://%s%s", scheme, addr, h.http.Path), nil)
		if err != nil {
			return err
		}
		for _, hd := range h.http.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		return nil
	case h.tcp != nil:
		addr, err := endpoint(c, h.tcp.Port, h.tcp.Host, podIP)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case h.sleep != nil:
		t := time.NewTimer(time.Duration(h.sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("no action given")
}

// endpoint is host:port of a probe: the probe's host or else the pod IP, and
// its port by number or by the container's port name.
func endpoint(c *v1.Container, port intstr.IntOrString, host, podIP string) (string, error) {
	n, err := resolvePort(port, c)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = podIP
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %q has no port named %q", c.Name, p.StrVal)
}

// runProbe probes until ctx ends: after the initial delay, every period,
// sending a Probe event when the result changes. A startup probe stops at
// its first success.
func runProbe(ctx context.Context, clk clock.WithDelayedExecution, send func(any), ex Execer, c *v1.Container, id, podIP, kind string, p *v1.Probe) {
	t := newTracker(kind, p)
	wait := time.Duration(p.InitialDelaySeconds) * time.Second
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	for {
		if !sleep(ctx, clk, wait) {
			return
		}
		if t.observe(probeOnce(ctx, ex, c, id, podIP, p)) && ctx.Err() == nil {
			send(Probe{Name: c.Name, Kind: kind, OK: t.result})
			if kind == Startup && t.result {
				return
			}
		}
		wait = period
	}
}

// sleep waits d on clk; false when ctx ended first.
func sleep(ctx context.Context, clk clock.WithDelayedExecution, d time.Duration) bool {
	fired := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}
