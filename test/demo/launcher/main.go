package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/k8sm/k8sm/agent/runtime"
	"github.com/k8sm/k8sm/podspec"
	"github.com/k8sm/k8sm/ports"
	k8smsched "github.com/k8sm/k8sm/scheduler"
)

type options struct {
	master, podFile, executor, dockerHost, hostIP, cgroupRoot string
	executorArgs, nodeAPIDir                                  string
	timeout                                                   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.master, "master", "127.0.0.1:5050", "Mesos master address")
	flag.StringVar(&o.podFile, "pod", "examples/web.yaml", "the pod manifest to launch")
	flag.StringVar(&o.executor, "executor", "_output/bin/k8sm-agent", "the k8sm-agent binary (absolute or relative path)")
	flag.StringVar(&o.executorArgs, "executor-args", "", "extra k8sm-agent executor flags, space-separated")
	flag.StringVar(&o.dockerHost, "docker-endpoint", "unix:///run/k8sm-test/docker.sock", "Docker endpoint the executor uses (to check what is left)")
	flag.StringVar(&o.hostIP, "host-ip", "127.0.0.1", "the node's IP, where host ports are published")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "mesos", "the agent's cgroup root (to check the executor's cgroup is gone)")
	flag.StringVar(&o.nodeAPIDir, "node-api-dir", "", "the executors' node API socket directory (for k8sm-agent diag; empty: its default)")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "demo FAILED: %v\n", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func loadPod(path string) (*v1.Pod, error) {
	y, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pod, err := podspec.Decode(j)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	podspec.Default(pod, podspec.StandardDefaults())
	if err := podspec.Validate(pod, podspec.Policy{}); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pod.UID = types.UID(uuid.NewString())
	return pod, nil
}

type framework struct {
	caller calls.Caller
	id     string
	events chan *scheduler.Event
}

func (f *framework) call(ctx context.Context, c *scheduler.Call) error {
	c.FrameworkID = &mesos.FrameworkID{Value: f.id}
	resp, err := f.caller.Call(ctx, c)
	if resp != nil {
		_ = resp.Close()
	}
	return err
}

// next returns the next event of one of the types, acknowledging every
// update on the way and printing it.
func (f *framework) next(ctx context.Context, types ...scheduler.Event_Type) (*scheduler.Event, error) {
	for {
		select {
		case e, ok := <-f.events:
			if !ok {
				return nil, errors.New("the master closed the event stream")
			}
			if e.Type == scheduler.Event_UPDATE {
				st := e.Update.Status
				msg := ""
				if st.Message != nil {
					msg = ": " + st.GetMessage()
				}
				say("status update: %s (source %s)%s", st.GetState(), st.GetSource(), msg)
				if st.UUID != nil {
					if err := f.call(ctx, calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID)); err != nil {
						return nil, fmt.Errorf("acknowledge: %w", err)
					}
				}
			}
			for _, t := range types {
				if e.Type == t {
					return e, nil
				}
			}
			if e.Type == scheduler.Event_OFFERS {
				for _, o := range e.Offers.Offers {
					_ = f.call(ctx, calls.Decline(o.ID))
				}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %v: %w", types, ctx.Err())
		}
	}
}

func (f *framework) untilState(ctx context.Context, state mesos.TaskState) (mesos.TaskStatus, error) {
	for {
		e, err := f.next(ctx, scheduler.Event_UPDATE)
		if err != nil {
			return mesos.TaskStatus{}, err
		}
		st := e.Update.Status
		s := st.GetState()
		if s == state {
			return st, nil
		}
		switch s {
		case mesos.TASK_FAILED, mesos.TASK_ERROR, mesos.TASK_LOST, mesos.TASK_DROPPED:
			return st, fmt.Errorf("task ended %s: %s", s, st.GetMessage())
		}
	}
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	exe, err := filepath.Abs(o.executor)
	if err != nil {
		return err
	}
	pod, err := loadPod(o.podFile)
	if err != nil {
		return err
	}
	say("pod %s/%s from %s", pod.Namespace, pod.Name, o.podFile)

	cli := httpcli.New(httpcli.Endpoint("http://"+o.master+"/api/v1/scheduler"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]), httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))))
	f := &framework{caller: httpsched.NewCaller(cli), events: make(chan *scheduler.Event, 64)}
	info := mesos.FrameworkInfo{User: "root", Name: "k8sm-demo", Checkpoint: ptr.To(true)}
	resp, err := f.caller.Call(ctx, calls.Subscribe(&info))
	if err != nil {
		return fmt.Errorf("subscribe to the master at %s: %w", o.master, err)
	}
	go func() {
		defer close(f.events)
		defer func() { _ = resp.Close() }()
		for {
			var e scheduler.Event
			if err := resp.Decode(&e); err != nil {
				return
			}
			f.events <- &e
		}
	}()
	e, err := f.next(ctx, scheduler.Event_SUBSCRIBED)
	if err != nil {
		return err
	}
	f.id = e.Subscribed.FrameworkID.Value
	say("subscribed as framework %s", f.id)

	e, err = f.next(ctx, scheduler.Event_OFFERS)
	if err != nil {
		return err
	}
	offer := e.Offers.Offers[0]
	a, err := ports.Assign(pod, ports.FromResources(offer.Resources), ports.Wildcard)
	if err != nil {
		return fmt.Errorf("host ports: %w", err)
	}
	pod = a.Pod
	exID := "k8sm-demo"
	args := append([]string{exe, "executor"}, strings.Fields(o.executorArgs)...)
	exInfo := mesos.ExecutorInfo{
		Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: exID}, Name: ptr.To("k8sm"),
		Command:   &mesos.CommandInfo{Value: &exe, Shell: ptr.To(false), Arguments: args},
		Resources: podspec.MesosResources(250, 64<<20, nil, ""),
	}
	milli, mem := podspec.TaskResources(pod)
	res := append(podspec.MesosResources(milli, mem, nil, ""), a.Resources...)
	// The TaskInfo exactly as k8sm-scheduler makes it (DESIGN.md "Task
	// data"): the bound pod with its annotations, a kill policy.
	task, bound, err := k8smsched.NewTask(k8smsched.Launch{
		Slot:  &k8smsched.Slot{AgentID: offer.AgentID.Value, Hostname: offer.Hostname, OfferIDs: []string{offer.ID.Value}},
		Bound: pod, Resources: res}, &exInfo)
	if err != nil {
		return err
	}
	taskID := task.TaskID.Value
	hostPort := 0
	for _, hp := range podspec.HostPorts(bound) {
		if !hp.Init {
			hostPort = int(hp.HostPort)
			break
		}
	}
	say("launching task %s on %s (host port %d) with executor %s", taskID, offer.Hostname, hostPort, exe)
	if err := f.call(ctx, calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID))); err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	running, err := f.untilState(ctx, mesos.TASK_RUNNING)
	if err != nil {
		return err
	}
	containerID := running.GetContainerStatus().GetContainerID().GetValue()

	url := "http://" + o.hostIP + ":" + strconv.Itoa(hostPort) + "/"
	body, err := fetch(ctx, url)
	if err != nil {
		return err
	}
	say("GET %s -> %q", url, strings.TrimSpace(body))

	say("k8sm-agent diag (what an operator sees on this node):")
	dargs := []string{"diag", "--docker-endpoint", o.dockerHost, "--cgroup-root", "/" + strings.Trim(o.cgroupRoot, "/"), "--iptables", ""}
	if o.nodeAPIDir != "" {
		dargs = append(dargs, "--node-api-dir", o.nodeAPIDir)
	}
	d := exec.CommandContext(ctx, exe, dargs...)
	d.Stdout, d.Stderr = os.Stdout, os.Stderr
	if err := d.Run(); err != nil {
		// Not fatal: on a shared Docker, others' leftovers are problems too.
		say("k8sm-agent diag: %v (a WARN or FAIL above)", err)
	}

	say("killing the task")
	if err := f.call(ctx, calls.Kill(taskID, offer.AgentID.Value)); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	if _, err := f.untilState(ctx, mesos.TASK_KILLED); err != nil {
		return err
	}
	say("shutting the executor down")
	if err := f.call(ctx, calls.Shutdown(exID, offer.AgentID.Value)); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if _, err := f.next(ctx, scheduler.Event_FAILURE); err != nil {
		return fmt.Errorf("waiting for the executor to exit: %w", err)
	}
	return checkNothingLeft(ctx, o, exID, containerID)
}

func fetch(ctx context.Context, url string) (string, error) {
	var last error
	for ctx.Err() == nil {
		resp, err := http.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 {
				return string(b), nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("fetch the pod's page: %w", last)
}

func checkNothingLeft(ctx context.Context, o options, exID, containerID string) error {
	dc, err := client.NewClientWithOpts(client.WithHost(o.dockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer func() { _ = dc.Close() }()
	list, err := dc.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", runtime.LabelExecutorID+"="+exID))})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	if len(list) != 0 {
		return fmt.Errorf("%d containers of the executor are left", len(list))
	}
	say("no container of the executor is left")
	hier := "/sys/fs/cgroup/memory" // cgroup v1; the unified tree otherwise
	if _, err := os.Stat(hier); err != nil {
		hier = "/sys/fs/cgroup"
	}
	dir := filepath.Join(hier, o.cgroupRoot, containerID)
	if containerID == "" {
		return errors.New("no container id in the RUNNING update")
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the executor's cgroup %s is left", dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	say("the executor's cgroup %s is gone", dir)
	say("demo OK")
	return nil
}
