// Package hashlimit bounds the memory password hashing can take: it wraps a
// PasswordHasher so that at most a configured number of hashes run at once, a short
// bounded queue waits for a slot, and everything beyond is refused with
// app.ErrHasherBusy (503 with Retry-After) instead of piling up argon2 buffers until
// the process runs out of memory.
package hashlimit

import (
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/bugtracker/bugtracker/auth/app"
)

// Config sizes the limit. A zero field takes its default; the default concurrency is
// the CPU count (GOMAXPROCS), which is also where hashing throughput stops growing.
type Config struct {
	// Concurrency is how many hashes may run at once.
	Concurrency int `env:"CONCURRENCY" envDefault:"0"`
	// Queue is how many callers may wait for a slot.
	Queue int `env:"QUEUE" envDefault:"64"`
	// QueueWait is how long a caller waits for a slot before it is refused.
	QueueWait time.Duration `env:"QUEUE_WAIT" envDefault:"2s"`
}

// Validate refuses settings that would disable the limit or refuse everything.
func (c Config) Validate() error {
	if c.Concurrency < 0 || c.Queue < 0 || c.QueueWait < 0 {
		return errors.New("AUTH_HASH_CONCURRENCY/_QUEUE/_QUEUE_WAIT: must not be negative")
	}
	return nil
}

// Limited is a PasswordHasher that runs the inner one within the limit.
type Limited struct {
	inner   app.PasswordHasher
	slots   chan struct{}
	queue   int64
	waiting atomic.Int64
	wait    time.Duration
}

// New wraps inner.
func New(inner app.PasswordHasher, c Config) *Limited {
	n := c.Concurrency
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if c.Queue <= 0 {
		c.Queue = 64
	}
	if c.QueueWait <= 0 {
		c.QueueWait = 2 * time.Second
	}
	return &Limited{inner: inner, slots: make(chan struct{}, n), queue: int64(c.Queue), wait: c.QueueWait}
}

// Concurrency is the number of hashes allowed at once.
func (l *Limited) Concurrency() int { return cap(l.slots) }

// Hash hashes within the limit.
func (l *Limited) Hash(password string) (string, error) {
	if err := l.acquire(); err != nil {
		return "", err
	}
	defer l.releaseSlot()
	return l.inner.Hash(password)
}

// Verify verifies within the limit.
func (l *Limited) Verify(password, hash string) (bool, error) {
	if err := l.acquire(); err != nil {
		return false, err
	}
	defer l.releaseSlot()
	return l.inner.Verify(password, hash)
}

// acquire takes a slot at once, or joins the queue when it has room and waits up to
// the queue wait.
func (l *Limited) acquire() error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.waiting.Add(1) > l.queue {
		l.waiting.Add(-1)
		return app.ErrHasherBusy
	}
	defer l.waiting.Add(-1)
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return app.ErrHasherBusy
	}
}

func (l *Limited) releaseSlot() { <-l.slots }
