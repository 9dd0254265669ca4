// Package runner runs a service's long-lived components (HTTP server, outbox relay,
// stream subscribers) together and stops them gracefully: on a signal each component
// is asked to finish what it holds, and only after the grace period is it aborted.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Component is a long-lived part of a process. Run blocks until the component stops;
// cancelling its context aborts it.
type Component interface {
	Run(ctx context.Context) error
}

// GracefulComponent can also finish its work in hand when asked to stop.
type GracefulComponent interface {
	Component
	Shutdown(ctx context.Context) error
}

// Run starts every component and blocks until ctx is cancelled (a signal) or one of
// them stops. Then graceful components get grace to shut down, after which all are
// aborted. It returns the first error a component stopped with.
func Run(ctx context.Context, log *slog.Logger, grace time.Duration, components map[string]Component) error {
	runCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()

	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(components))
	for name, c := range components {
		go func() { done <- result{name, c.Run(runCtx)} }()
	}

	var first error
	remaining := len(components)
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx))
	case r := <-done:
		remaining--
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			first = fmt.Errorf("%s: %w", r.name, r.err)
		}
		log.Error("component stopped, shutting down", "component", r.name, "error", r.err)
	}

	graceCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	var wg sync.WaitGroup
	for name, c := range components {
		if g, ok := c.(GracefulComponent); ok {
			wg.Go(func() {
				if err := g.Shutdown(graceCtx); err != nil {
					log.Warn("graceful shutdown incomplete", "component", name, "error", err)
				}
			})
		}
	}
	wg.Wait()
	abort()
	for ; remaining > 0; remaining-- {
		r := <-done
		if first == nil && r.err != nil && !errors.Is(r.err, context.Canceled) {
			first = fmt.Errorf("%s: %w", r.name, r.err)
		}
	}
	return first
}

// HTTP serves a Fiber app as a graceful component.
type HTTP struct {
	App  *fiber.App
	Addr string
	// Listener, when set, is served instead of listening on Addr (tests use port 0).
	Listener net.Listener
}

// Run serves until Shutdown.
func (h *HTTP) Run(ctx context.Context) error {
	ln := h.Listener
	if ln == nil {
		var err error
		if ln, err = new(net.ListenConfig).Listen(ctx, "tcp", h.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", h.Addr, err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- h.App.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		_ = h.App.Shutdown()
		return ctx.Err()
	}
}

// Shutdown stops accepting connections and waits for requests in flight.
func (h *HTTP) Shutdown(ctx context.Context) error {
	return h.App.ShutdownWithContext(ctx)
}
