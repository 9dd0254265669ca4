// Package servicetest starts a service's components for component tests: the real
// HTTP server on a random loopback port plus whatever else the service runs (event
// consumers, relays), stopped gracefully when the test ends.
package servicetest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/platform/runner"
)

// Discard is a logger for tests that want quiet output.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Start serves http on 127.0.0.1 with a free port, runs every component, and returns
// the base URL (http://127.0.0.1:port). The test fails if a component stops with an
// error, including at cleanup.
func Start(t testing.TB, http *runner.HTTP, components map[string]runner.Component) string {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	http.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx, Discard(), 5*time.Second, components) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service stopped with %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
