package runtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"k8s.io/client-go/tools/remotecommand"
)

// LogOptions select what Logs returns.
type LogOptions struct {
	// Tail is how many lines from the end to start at ("all" or "" for
	// everything).
	Tail       string
	Follow     bool
	Timestamps bool
	// Since, when set, drops lines older than it.
	Since time.Time
}

// Logs returns the container's stdout and stderr (interleaved) from
// Docker's log driver as o says; with Follow, what comes after until ctx
// ends or the container stops.
func (d *Docker) Logs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error) {
	d.ready(ctx)
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: o.Tail, Follow: o.Follow, Timestamps: o.Timestamps}
	if lo.Tail == "" {
		lo.Tail = "all"
	}
	if !o.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", o.Since.Unix(), o.Since.Nanosecond())
	}
	// A TTY container's log is its terminal's output as it is; others'
	// come multiplexed.
	ins, err := d.c.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", short(id), err)
	}
	rc, err := d.c.ContainerLogs(ctx, id, lo)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", short(id), err)
	}
	if ins.Config != nil && ins.Config.Tty {
		return rc, nil
	}
	return newDemux(rc), nil
}

func newDemux(rc io.ReadCloser) *demux { return &demux{r: bufio.NewReaderSize(rc, 64<<10), c: rc} }

// demux reads Docker's multiplexed log stream (8-byte frame headers:
// stream, 0, 0, 0, big-endian length) as one stream of the frames'
// payloads, stdout and stderr interleaved. A Read fills p with as many
// frames as are already buffered, so a 100 MiB log of short lines goes
// out in large writes, and a followed log as soon as a line comes.
type demux struct {
	r    *bufio.Reader
	c    io.Closer
	left int // payload bytes of the current frame not read yet
}

func (d *demux) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.left == 0 {
			// Block for a header only while nothing was read yet.
			if n > 0 && d.r.Buffered() < 8 {
				break
			}
			var h [8]byte
			if _, err := io.ReadFull(d.r, h[:]); err != nil {
				if n > 0 {
					break
				}
				if errors.Is(err, io.ErrUnexpectedEOF) {
					err = fmt.Errorf("docker log stream: a cut frame header: %w", err)
				}
				return 0, err
			}
			d.left = int(binary.BigEndian.Uint32(h[4:]))
			continue
		}
		want := min(d.left, len(p)-n)
		if n > 0 {
			if b := d.r.Buffered(); b == 0 {
				break
			} else {
				want = min(want, b)
			}
		}
		m, err := d.r.Read(p[n : n+want])
		n += m
		d.left -= m
		if err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

func (d *demux) Close() error { return d.c.Close() }

// Streams are the ends of an exec or attach: nil ones are not attached.
// With TTY, stderr is merged into stdout (as Docker and the kubelet do).
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Resize         <-chan remotecommand.TerminalSize
}

// ExecStream runs cmd in a running container with s attached and returns
// its exit code once it ended (or ctx did).
func (d *Docker) ExecStream(ctx context.Context, id string, cmd []string, s Streams) (int, error) {
	d.ready(ctx)
	ex, err := d.c.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, Tty: s.TTY,
		AttachStdin: s.Stdin != nil, AttachStdout: s.Stdout != nil, AttachStderr: s.Stderr != nil && !s.TTY})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", short(id), err)
	}
	resize := func(sz remotecommand.TerminalSize) error {
		return d.c.ContainerExecResize(ctx, ex.ID, container.ResizeOptions{Height: uint(sz.Height), Width: uint(sz.Width)})
	}
	att, err := d.c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{Tty: s.TTY})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", short(id), err)
	}
	if err := pipe(ctx, att.Conn, att.Reader, att.CloseWrite, att.Close, s, resize); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", short(id), err)
	}
	// The output ended with the process; its exit code may take Docker a
	// moment more.
	for {
		ins, err := d.c.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", short(id), err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("exec in %s: %w", short(id), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Attach connects s to a running container's own streams until it stops,
// the client's input ends (a container with stdinOnce) or ctx ends.
func (d *Docker) Attach(ctx context.Context, id string, s Streams) error {
	d.ready(ctx)
	att, err := d.c.ContainerAttach(ctx, id, container.AttachOptions{Stream: true,
		Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil && !s.TTY})
	if err != nil {
		return fmt.Errorf("attach to %s: %w", short(id), err)
	}
	resize := func(sz remotecommand.TerminalSize) error {
		return d.c.ContainerResize(ctx, id, container.ResizeOptions{Height: uint(sz.Height), Width: uint(sz.Width)})
	}
	if err := pipe(ctx, att.Conn, att.Reader, att.CloseWrite, att.Close, s, resize); err != nil {
		return fmt.Errorf("attach to %s: %w", short(id), err)
	}
	return nil
}

// pipe copies s.Stdin to a hijacked Docker connection (closing its write
// side at the input's end) and the connection's output to s.Stdout and
// s.Stderr (demultiplexed unless TTY), resizing on s.Resize, until the
// output ends or ctx does.
func pipe(ctx context.Context, conn io.Writer, out io.Reader, closeWrite func() error, closeAll func(), s Streams, resize func(remotecommand.TerminalSize) error) error {
	defer closeAll()
	if s.Resize != nil {
		go func() {
			for sz := range s.Resize {
				_ = resize(sz)
			}
		}()
	}
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(conn, s.Stdin)
			_ = closeWrite()
		}()
	}
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if s.TTY {
			_, err = io.Copy(stdout, out)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, out)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("copy output: %w", err)
		}
		return nil
	case <-ctx.Done():
		closeAll() // ends the copy
		if err := <-done; err != nil {
			return errors.Join(ctx.Err(), err)
		}
		return ctx.Err()
	}
}
