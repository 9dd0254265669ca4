package hashlimit

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/auth/app"
)

// gate is a hasher that blocks until released, counting what runs at once.
type gate struct {
	mu      sync.Mutex
	running int
	peak    int
	release chan struct{}
}

func (g *gate) run() {
	g.mu.Lock()
	g.running++
	g.peak = max(g.peak, g.running)
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
}

func (g *gate) Hash(string) (string, error)         { g.run(); return "h", nil }
func (g *gate) Verify(string, string) (bool, error) { g.run(); return true, nil }

// TestQueueIsBounded: with one slot and a queue of one, a third caller is refused at
// once, the queued one gets the slot when it frees, and one that waits longer than
// the queue wait is refused.
func TestQueueIsBounded(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	l := New(g, Config{Concurrency: 1, Queue: 1, QueueWait: time.Second})
	results := make(chan error, 2)
	go func() { _, err := l.Hash("a"); results <- err }()
	waitRunning(t, g, 1)
	go func() { _, err := l.Verify("b", "h"); results <- err }()
	deadline := time.Now().Add(time.Second)
	for l.waiting.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := l.Hash("c"); !errors.Is(err, app.ErrHasherBusy) {
		t.Fatalf("third caller beyond the queue: %v", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("a caller beyond the queue waited instead of being refused at once")
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("running or queued caller: %v", err)
		}
	}
	if g.peak != 1 {
		t.Fatalf("%d ran at once, limit 1", g.peak)
	}

	short := New(g, Config{Concurrency: 1, Queue: 4, QueueWait: 50 * time.Millisecond})
	go func() { _, _ = short.Hash("a") }()
	waitRunning(t, g, 1)
	start = time.Now()
	if _, err := short.Hash("b"); !errors.Is(err, app.ErrHasherBusy) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("queue wait: %v after %v", err, time.Since(start))
	}
	g.release <- struct{}{}
}

func waitRunning(t *testing.T, g *gate, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		r := g.running
		g.mu.Unlock()
		if r == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d hashes never ran", n)
}

func TestDefaults(t *testing.T) {
	l := New(&gate{}, Config{})
	if l.Concurrency() < 1 || l.queue != 64 || l.wait != 2*time.Second {
		t.Fatalf("defaults: %d %d %v", l.Concurrency(), l.queue, l.wait)
	}
	if err := (Config{Concurrency: -1}).Validate(); err == nil {
		t.Fatal("negative concurrency accepted")
	}
}
