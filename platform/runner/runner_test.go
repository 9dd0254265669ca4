package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// fake records how it was stopped.
type fake struct {
	graceful atomic.Bool
	aborted  atomic.Bool
	stop     chan struct{}
	started  chan struct{}
	fail     error
}

func newFake() *fake { return &fake{stop: make(chan struct{}), started: make(chan struct{})} }

func (f *fake) Run(ctx context.Context) error {
	close(f.started)
	if f.fail != nil {
		return f.fail
	}
	select {
	case <-f.stop:
		return nil
	case <-ctx.Done():
		f.aborted.Store(true)
		return ctx.Err()
	}
}

func (f *fake) Shutdown(context.Context) error {
	f.graceful.Store(true)
	close(f.stop)
	return nil
}

type plain struct{ aborted atomic.Bool }

func (p *plain) Run(ctx context.Context) error {
	<-ctx.Done()
	p.aborted.Store(true)
	return ctx.Err()
}

func TestSignalStopsGracefulComponentsFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, p := newFake(), &plain{}
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, slog.Default(), time.Second, map[string]Component{"g": g, "p": p}) }()
	<-g.started
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if !g.graceful.Load() || g.aborted.Load() {
		t.Fatal("graceful component must be shut down, not aborted")
	}
	if !p.aborted.Load() {
		t.Fatal("plain component must be aborted after the graceful ones")
	}
}

func TestFailingComponentStopsTheRest(t *testing.T) {
	boom := errors.New("boom")
	bad, g := newFake(), newFake()
	bad.fail = boom
	err := Run(context.Background(), slog.Default(), time.Second, map[string]Component{"bad": bad, "g": g})
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	if !g.graceful.Load() {
		t.Fatal("the healthy component must be shut down gracefully")
	}
}
