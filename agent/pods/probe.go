package pods

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	switch {
	case h.Exec != nil:
		code, _, err := ex.Exec(ctx, id, h.Exec.Command)
		return err == nil && code == 0
	case h.HTTPGet != nil:
		addr, err := endpoint(c, h.HTTPGet.Port, h.HTTPGet.Host, podIP)
		if err != nil {
			return false
		}
		scheme := "http"
		if h.HTTPGet.Scheme == v1.URISchemeHTTPS {
			scheme = "https"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s://%s%s", scheme, addr, h.HTTPGet.Path), nil)
		if err != nil {
			return false
		}
		for _, hd := range h.HTTPGet.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	case h.TCPSocket != nil:
		addr, err := endpoint(c, h.TCPSocket.Port, h.TCPSocket.Host, podIP)
		if err != nil {
			return false
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	}
	return false
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
func runProbe(ctx context.Context, send func(any), ex Execer, c *v1.Container, id, podIP, kind string, p *v1.Probe) {
	t := newTracker(kind, p)
	delay := time.Duration(p.InitialDelaySeconds) * time.Second
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if t.observe(probeOnce(ctx, ex, c, id, podIP, p)) && ctx.Err() == nil {
			send(Probe{Name: c.Name, Kind: kind, OK: t.result})
			if kind == Startup && t.result {
				return
			}
		}
		timer.Reset(period)
	}
}
