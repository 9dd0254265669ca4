// Package throttle holds the adapters of the attempt-counting port: Redis, shared by
// every replica, and memory for tests. Each key is a fixed window that starts at its
// first hit and expires with it.
package throttle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis counts attempts in Redis keys that expire with their window.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns the adapter; prefix namespaces its keys.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix + "throttle:"}
}

// Blocked reports the longest remaining window among keys that reached limit.
func (r *Redis) Blocked(ctx context.Context, limit int, keys ...string) (time.Duration, error) {
	pipe := r.client.Pipeline()
	counts := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		counts[i] = pipe.Get(ctx, r.prefix+k)
		ttls[i] = pipe.PTTL(ctx, r.prefix+k)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil { //nolint:errorlint // go-redis returns the sentinel itself
		return 0, fmt.Errorf("throttle: %w", err)
	}
	var wait time.Duration
	for i := range keys {
		n, err := counts[i].Int()
		if err != nil || n < limit {
			continue
		}
		wait = max(wait, ttls[i].Val())
	}
	return wait, nil
}

// Hit counts one attempt against each key: the first hit creates the key with the
// window as its TTL, later hits only increment it.
func (r *Redis) Hit(ctx context.Context, window time.Duration, keys ...string) error {
	_, err := r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, k := range keys {
			pipe.SetNX(ctx, r.prefix+k, 0, window)
			pipe.Incr(ctx, r.prefix+k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	return nil
}

// Memory counts attempts in process memory.
type Memory struct {
	mu   sync.Mutex
	keys map[string]window
	now  func() time.Time
}

type window struct {
	count int
	until time.Time
}

// NewMemory returns an empty counter set.
func NewMemory() *Memory { return &Memory{keys: map[string]window{}, now: time.Now} }

// Blocked reports the longest remaining window among keys that reached limit.
func (m *Memory) Blocked(_ context.Context, limit int, keys ...string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var wait time.Duration
	for _, k := range keys {
		if w, ok := m.keys[k]; ok && now.Before(w.until) && w.count >= limit {
			wait = max(wait, w.until.Sub(now))
		}
	}
	return wait, nil
}

// Hit counts one attempt against each key.
func (m *Memory) Hit(_ context.Context, d time.Duration, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, k := range keys {
		w := m.keys[k]
		if !now.Before(w.until) {
			w = window{until: now.Add(d)}
		}
		w.count++
		m.keys[k] = w
	}
	return nil
}
