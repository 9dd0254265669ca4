// Package supervisor runs a set of long-lived child processes as one unit:
// it starts them with their own environments, copies their output line by
// line with a name prefix, forwards a graceful stop to all of them, and
// reports the first one that exits on its own.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long [Group.Stop] waits for children to exit
// after SIGTERM before it kills them.
const DefaultStopTimeout = 10 * time.Second

// Service describes one child process.
type Service struct {
	// Name identifies the service in output prefixes and errors.
	Name string

	// Path is the executable to run.
	Path string

	// Args are the command-line arguments, not including the program name.
	Args []string

	// Env is the complete environment of the child ("KEY=value" pairs).
	// When nil, the child inherits the supervisor's environment.
	Env []string

	// Dir is the working directory of the child; empty means the current
	// directory of the supervisor.
	Dir string
}

// Options tune a [Group].
type Options struct {
	// Output receives the prefixed stdout and stderr lines of all children.
	// When nil, os.Stdout is used.
	Output io.Writer

	// StopTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL. Zero means [DefaultStopTimeout].
	StopTimeout time.Duration

	// Logger receives the supervisor's own messages. When nil,
	// slog.Default() is used.
	Logger *slog.Logger
}

// ExitError reports a child that exited while the group was not stopping.
type ExitError struct {
	// Name is the service name of the child.
	Name string

	// Err is the error returned by waiting for the child; nil means the
	// child exited with status 0.
	Err error
}

// Error implements the error interface.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("service %s exited unexpectedly with status 0", e.Name)
	}

	return fmt.Sprintf("service %s exited unexpectedly: %v", e.Name, e.Err)
}

// Unwrap returns the underlying wait error.
func (e *ExitError) Unwrap() error {
	return e.Err
}

// child is one running service.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdout *lineWriter
	stderr *lineWriter
	done   chan struct{} // closed when the process has been waited for
	err    error         // wait error, valid after done is closed
}

// exit is an event sent when a child has exited.
type exit struct {
	name string
	err  error
}

// Group is a set of running child processes.
type Group struct {
	opts     Options
	logger   *slog.Logger
	children []*child
	exits    chan exit

	stopOnce sync.Once
	stopping chan struct{} // closed when Stop begins
	stopped  chan struct{} // closed when Stop has finished
}

// Start starts every service in order and returns the running group. If a
// service cannot be started, the ones already started are stopped and the
// error names the failing service.
func Start(services []Service, opts Options) (*Group, error) {
	if opts.Output == nil {
		opts.Output = os.Stdout
	}

	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}

	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}

	g := &Group{
		opts:     opts,
		logger:   logger,
		exits:    make(chan exit, len(services)),
		stopping: make(chan struct{}),
		stopped:  make(chan struct{}),
	}

	width := 0
	for _, s := range services {
		width = max(width, len(s.Name))
	}

	out := &syncWriter{w: opts.Output}

	for _, s := range services {
		c, err := g.startChild(s, out, width)
		if err != nil {
			g.Stop()

			return nil, fmt.Errorf("start service %s: %w", s.Name, err)
		}

		g.children = append(g.children, c)
	}

	return g, nil
}

// startChild starts one service and a goroutine that waits for it.
func (g *Group) startChild(s Service, out *syncWriter, width int) (*child, error) {
	prefix := fmt.Sprintf("%-*s | ", width, s.Name)

	// The supervisor stops children with SIGTERM and a grace period, so no context kill.
	cmd := exec.Command(s.Path, s.Args...) //nolint:gosec,noctx // starting the configured service binaries is its job
	cmd.Env = s.Env
	cmd.Dir = s.Dir
	cmd.Stdin = nil

	c := &child{
		name:   s.Name,
		cmd:    cmd,
		stdout: &lineWriter{out: out, prefix: prefix},
		stderr: &lineWriter{out: out, prefix: prefix},
		done:   make(chan struct{}),
	}

	cmd.Stdout = c.stdout
	cmd.Stderr = c.stderr

	// A process group of its own keeps a terminal's Ctrl-C away from the
	// child, so that it stops only when the supervisor tells it to and the
	// supervisor can tell an ordered stop from a crash. Pdeathsig stops the
	// child if the supervisor itself dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}

	// Do not let grandchildren that keep the output pipes open block Wait.
	cmd.WaitDelay = 2 * time.Second

	if err := cmd.Start(); err != nil {
		return nil, err
	}

	g.logger.Debug("service started", "service", s.Name, "pid", cmd.Process.Pid)

	go func() {
		err := cmd.Wait()
		c.stdout.flush()
		c.stderr.flush()

		c.err = err
		close(c.done)

		g.exits <- exit{name: c.name, err: err}
	}()

	return c, nil
}

// Wait blocks until ctx is canceled or a child exits on its own. In the
// first case it stops the group and returns nil. In the second it stops the
// remaining children and returns an [*ExitError] naming the child that
// exited. If Stop is called by someone else meanwhile, Wait returns nil
// once the group has stopped.
func (g *Group) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		g.Stop()

		return nil

	case <-g.stopping:
		<-g.stopped

		return nil

	case e := <-g.exits:
		select {
		case <-g.stopping:
			// The exit raced with an ordered stop.
			<-g.stopped

			return nil
		default:
		}

		g.logger.Error("service exited unexpectedly, stopping the others", "service", e.name, "error", e.err)
		g.Stop()

		return &ExitError{Name: e.name, Err: e.err}
	}
}

// Stop sends SIGTERM to every running child (and its process group), waits
// up to the stop timeout for all of them to exit, kills those that are still
// running, and returns once all have been waited for. It is safe to call
// more than once and from several goroutines.
func (g *Group) Stop() {
	g.stopOnce.Do(func() {
		close(g.stopping)
		defer close(g.stopped)

		for _, c := range g.children {
			c.signal(syscall.SIGTERM)
		}

		allDone := make(chan struct{})
		go func() {
			for _, c := range g.children {
				<-c.done
			}
			close(allDone)
		}()

		timer := time.NewTimer(g.opts.StopTimeout)
		defer timer.Stop()

		select {
		case <-allDone:
		case <-timer.C:
			g.killRemaining()
			<-allDone
		}
	})

	<-g.stopped
}

// killRemaining sends SIGKILL to every child that has not exited yet.
func (g *Group) killRemaining() {
	for _, c := range g.children {
		select {
		case <-c.done:
		default:
			g.logger.Warn("service did not stop in time, killing it", "service", c.name, "timeout", g.opts.StopTimeout)
			c.signal(syscall.SIGKILL)
		}
	}
}

// signal sends sig to the child's process group unless it has exited.
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.done:
		return
	default:
	}

	pid := c.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = c.cmd.Process.Signal(sig)
	}
}

// syncWriter serialises writes of complete lines from several children.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// writeLine writes one line under the lock.
func (s *syncWriter) writeLine(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()

	_, _ = s.w.Write(b)
}

// lineWriter splits a child's output into lines and writes each with a
// prefix. It is used by a single copying goroutine of os/exec, and flush is
// called only after that goroutine has finished.
type lineWriter struct {
	out    *syncWriter
	prefix string
	buf    []byte
}

// Write implements io.Writer.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)

	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}

		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}

	// Keep memory bounded for output that never ends a line.
	const maxLine = 64 << 10
	if len(w.buf) > maxLine {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}

	return len(p), nil
}

// flush writes a trailing partial line, if any.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

// emit writes one prefixed line.
func (w *lineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))

	b := make([]byte, 0, len(w.prefix)+len(line)+1)
	b = append(b, w.prefix...)
	b = append(b, line...)
	b = append(b, '\n')

	w.out.writeLine(b)
}
