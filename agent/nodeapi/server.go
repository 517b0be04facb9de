package nodeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8sm/k8sm/cgroups"
	"github.com/k8sm/k8sm/podspec"
)

// Source is what the node API reads of the executor; both methods are
// safe for concurrent use and return at once.
type Source interface {
	// Pods are the pods the executor runs now, static pods included, in
	// task id order.
	Pods() []PodView
	// Info is who the executor is and what Mesos gave it; the server
	// fills PID, StartedAt, Cgroup and the usage figures.
	Info() Info
}

// CgroupStats reads the usage of a cgroup below the executor's Mesos
// container cgroup: rel "" is that container (the executor and its pods),
// "<pod uid>" a pod's cgroup, "<pod uid>/<docker id>" one container's.
type CgroupStats func(rel string) (cgroups.Stats, error)

// ContainerLogs streams a container's output (pods.Manager.Logs) as opts
// say; with Follow until the container stops or ctx ends.
type ContainerLogs func(ctx context.Context, podUID, container string, opts LogOptions) (io.ReadCloser, error)

// LogOptions are the kubelet's container log options, as /containerLogs
// takes them (v1.PodLogOptions), less limitBytes, which the server
// applies.
type LogOptions struct {
	// Previous: the last terminated instance of the container.
	Previous   bool
	Follow     bool
	Timestamps bool
	// TailLines, when set, is how many lines from the end to start at.
	TailLines *int64
	// Since, when set, drops lines older than it.
	Since time.Time
}

// Node is the node side the executor brought up at its first SUBSCRIBED.
type Node struct {
	// Name is the node's name (the agent's hostname).
	Name string
	// CgroupPath is the executor's Mesos container cgroup.
	CgroupPath string
	Stats      CgroupStats
	Logs       ContainerLogs
	// Streams serve the kubelet API's exec, attach, run and port-forward.
	Streams Streams
}

// Server is the node API. Its zero value is not usable: use New.
type Server struct {
	src       Source
	gatherer  prometheus.Gatherer
	startedAt time.Time
	mux       *http.ServeMux

	nodeMu sync.RWMutex
	node   Node

	samplesMu sync.Mutex
	samples   map[string]cpuSample // by cgroup rel path: the last CPU reading
}

// New makes the node API of src; /metrics serves gatherer (none when nil).
func New(src Source, gatherer prometheus.Gatherer) *Server {
	s := &Server{src: src, gatherer: gatherer, startedAt: time.Now(), mux: http.NewServeMux(), samples: map[string]cpuSample{}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /pods", s.servePods)
	s.mux.HandleFunc("GET /stats/summary", func(w http.ResponseWriter, _ *http.Request) {
		sum, err := s.Summary(time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, sum)
	})
	s.mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	s.mux.HandleFunc("GET /executor", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Info()) })
	if gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return s
}

// SetNode hands over the node side once the executor has subscribed.
func (s *Server) SetNode(n Node) {
	s.nodeMu.Lock()
	s.node = n
	s.nodeMu.Unlock()
}

func (s *Server) getNode() Node {
	s.nodeMu.RLock()
	defer s.nodeMu.RUnlock()
	return s.node
}

// ServeHTTP serves the node API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Info is the executor now: the Source's part, the process, and the
// executor's Mesos container's usage when the node side is up.
func (s *Server) Info() Info {
	in := s.src.Info()
	in.PID, in.StartedAt = os.Getpid(), s.startedAt
	n := s.getNode()
	in.Cgroup = n.CgroupPath
	if n.Stats != nil {
		if st, err := n.Stats(""); err == nil {
			in.MemoryUsageBytes, in.CPUUsageNanos = st.MemoryUsage, st.CPUUsageNanos
			if st.MemoryLimit < unlimited {
				in.MemoryLimitBytes = st.MemoryLimit
			}
		}
	}
	return in
}

func (s *Server) servePods(w http.ResponseWriter, _ *http.Request) {
	list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []v1.Pod{}}
	for _, v := range s.src.Pods() {
		p := v.Pod.DeepCopy()
		p.Status = v.Status
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[podspec.TaskIDAnnotation] = v.TaskID
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, list)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// findPod is the pod named ns/name on this node, or nil.
func (s *Server) findPod(ns, name string) *v1.Pod {
	for _, v := range s.src.Pods() {
		if v.Pod.Namespace == ns && v.Pod.Name == name {
			return v.Pod
		}
	}
	return nil
}

// serveLogs streams a container's log as the kubelet's /containerLogs
// does: plain text, with the query's follow, previous, timestamps,
// tailLines, limitBytes, sinceSeconds and sinceTime. Bad options are 422
// naming the option; a pod or container not here 404; an instance that is
// not there (no previous one, not started yet) 400, as the kubelet.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	logs := s.getNode().Logs
	if logs == nil {
		http.Error(w, "no pods run here yet", http.StatusServiceUnavailable)
		return
	}
	opts, limit, err := ParseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	pod := s.findPod(ns, name)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on this node", ns, name), http.StatusNotFound)
		return
	}
	if !hasContainer(pod, ctr) {
		http.Error(w, fmt.Sprintf("pod %s/%s has no container %q", ns, name, ctr), http.StatusNotFound)
		return
	}
	rc, err := logs(r.Context(), string(pod.UID), ctr, opts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer func() { _ = rc.Close() }()
	var in io.Reader = rc
	if limit > 0 {
		in = io.LimitReader(rc, limit)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := flushWriter{w, http.NewResponseController(w)}
	_, _ = io.Copy(fw, in)
}

// ParseLogOptions reads /containerLogs' query as the kubelet does (the
// legacy tail=N|all too), and returns the options and limitBytes (0: no
// limit). Errors name the option.
func ParseLogOptions(q url.Values, now time.Time) (LogOptions, int64, error) {
	var o LogOptions
	flag := func(k string) bool {
		v := q.Get(k)
		return q.Has(k) && v != "0" && !strings.EqualFold(v, "false")
	}
	o.Previous, o.Follow, o.Timestamps = flag("previous"), flag("follow"), flag("timestamps")
	num := func(k string, min int64) (*int64, error) {
		if !q.Has(k) {
			return nil, nil
		}
		n, err := strconv.ParseInt(q.Get(k), 10, 64)
		if err != nil || n < min {
			return nil, fmt.Errorf("%s: want a whole number >= %d, got %q", k, min, q.Get(k))
		}
		return &n, nil
	}
	if t := q.Get("tail"); t != "" && !q.Has("tailLines") && t != "all" {
		q = maps.Clone(q)
		q.Set("tailLines", t)
	}
	var err error
	if o.TailLines, err = num("tailLines", 0); err != nil {
		return o, 0, err
	}
	limit, err := num("limitBytes", 1)
	if err != nil {
		return o, 0, err
	}
	secs, err := num("sinceSeconds", 1)
	if err != nil {
		return o, 0, err
	}
	if v := q.Get("sinceTime"); v != "" && v != "null" {
		if secs != nil {
			return o, 0, errors.New("sinceSeconds and sinceTime: give at most one")
		}
		if o.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return o, 0, fmt.Errorf("sinceTime: want an RFC 3339 time, got %q", v)
		}
	}
	if secs != nil {
		o.Since = now.Add(-time.Duration(*secs) * time.Second)
	}
	if limit == nil {
		return o, 0, nil
	}
	return o, *limit, nil
}

func hasContainer(pod *v1.Pod, name string) bool {
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

// flushWriter flushes after each write, so a followed log streams.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	_ = f.rc.Flush()
	return n, err
}
