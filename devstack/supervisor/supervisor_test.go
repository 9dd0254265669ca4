package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/devstack/supervisor"
)

// helperEnv selects the behaviour of the test binary when it is re-executed
// as a child process.
const helperEnv = "SUPERVISOR_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}

	os.Exit(m.Run())
}

// runHelper is the body of the helper child process.
func runHelper(mode string) int {
	switch mode {
	case "serve":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)

		fmt.Printf("GREETING=%s\n", os.Getenv("GREETING"))
		fmt.Fprintln(os.Stderr, "to stderr")
		fmt.Println("ready")

		<-term
		fmt.Println("got SIGTERM")
		fmt.Print("partial line without newline")

		return 0

	case "crash":
		fmt.Println("ready")
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(os.Stderr, "crashing")

		return 3

	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)

		return 0

	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)

		return 2
	}
}

// buffer is an io.Writer safe for concurrent use.
type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}

// waitFor polls out until it contains every one of lines or fails the test.
func waitFor(t *testing.T, out *buffer, lines ...string) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		missing := false
		for _, l := range lines {
			if !strings.Contains(out.String(), l) {
				missing = true
			}
		}

		if !missing {
			return
		}

		time.Sleep(10 * time.Millisecond)
	}

	t.Fatalf("output lacks %q; got:\n%s", lines, out.String())
}

// helper returns a service that re-executes the test binary in mode.
func helper(t *testing.T, name, mode string, extraEnv ...string) supervisor.Service {
	t.Helper()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	env := append(os.Environ(), helperEnv+"="+mode)
	if os.Getenv("GORACE") == "" {
		// Under -race a child otherwise sleeps a second before exiting.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	env = append(env, extraEnv...)

	return supervisor.Service{Name: name, Path: exe, Env: env}
}

// quietLogger discards the supervisor's own messages.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestEnvOutputPrefixAndSIGTERMForwarding(t *testing.T) {
	out := &buffer{}

	g, err := supervisor.Start([]supervisor.Service{
		helper(t, "auth", "serve", "GREETING=hello-auth"),
		helper(t, "gateway", "serve", "GREETING=hello-gateway"),
	}, supervisor.Options{Output: out, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	waitFor(t, out,
		"auth    | GREETING=hello-auth\n",
		"gateway | GREETING=hello-gateway\n",
		"auth    | to stderr\n",
		"auth    | ready\n",
		"gateway | ready\n",
	)

	ctx, cancel := context.WithCancel(t.Context())

	waitErr := make(chan error, 1)
	go func() { waitErr <- g.Wait(ctx) }()

	cancel()

	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("Wait after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after cancel")
	}

	got := out.String()
	for _, want := range []string{
		"auth    | got SIGTERM\n",
		"gateway | got SIGTERM\n",
		"auth    | partial line without newline\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; got:\n%s", want, got)
		}
	}

	for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if !strings.HasPrefix(line, "auth    | ") && !strings.HasPrefix(line, "gateway | ") {
			t.Errorf("line without a service prefix: %q", line)
		}
	}

	g.Stop() // a second stop must return at once
}

func TestUnexpectedExitIsReported(t *testing.T) {
	out := &buffer{}

	g, err := supervisor.Start([]supervisor.Service{
		helper(t, "notif", "serve"),
		helper(t, "auth", "crash"),
	}, supervisor.Options{Output: out, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	waitFor(t, out, "notif | ready\n")

	err = g.Wait(t.Context())

	var exitErr *supervisor.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("Wait returned %v, want an *ExitError", err)
	}

	if exitErr.Name != "auth" {
		t.Errorf("ExitError names %q, want %q", exitErr.Name, "auth")
	}

	if !strings.Contains(err.Error(), "auth") {
		t.Errorf("error message %q does not name the service", err)
	}

	var procErr *exec.ExitError
	if !errors.As(err, &procErr) || procErr.ExitCode() != 3 {
		t.Errorf("ExitError wraps %v, want exit status 3", exitErr.Err)
	}

	got := out.String()
	if !strings.Contains(got, "auth  | crashing\n") {
		t.Errorf("output lacks the crashing child's last line; got:\n%s", got)
	}

	if !strings.Contains(got, "notif | got SIGTERM\n") {
		t.Errorf("surviving child was not sent SIGTERM; got:\n%s", got)
	}
}

func TestStopKillsChildThatIgnoresSIGTERM(t *testing.T) {
	out := &buffer{}

	g, err := supervisor.Start([]supervisor.Service{
		helper(t, "stubborn", "stubborn"),
	}, supervisor.Options{Output: out, Logger: quietLogger(), StopTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	waitFor(t, out, "stubborn | ready\n")

	start := time.Now()
	g.Stop()

	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v, want about the 300ms stop timeout", d)
	}

	if err := g.Wait(t.Context()); err != nil {
		t.Errorf("Wait after Stop: %v, want nil", err)
	}
}

func TestStartFailureNamesService(t *testing.T) {
	out := &buffer{}

	_, err := supervisor.Start([]supervisor.Service{
		helper(t, "auth", "serve"),
		{Name: "missing", Path: "/nonexistent/devstack-test-binary"},
	}, supervisor.Options{Output: out, Logger: quietLogger()})
	if err == nil {
		t.Fatal("Start succeeded, want an error")
	}

	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %q does not name the service", err)
	}
}
