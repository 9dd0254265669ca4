// Package throttle holds the adapters of the attempt-counting port: Redis, shared by
// every replica, and memory for tests. Each key is a fixed window that starts at its
// first attempt and expires with it.
package throttle

import (
	"context"
	"errors"
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

// reserveScript checks every key and, only when none is used up, counts one attempt
// on each, as one atomic step in Redis; it returns the wait in milliseconds (0 when
// the attempt was counted). A counter without a TTL (which a crash between INCR and
// PEXPIRE cannot leave, as the script is atomic, but an operator could) gets one.
var reserveScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wait = 0
for _, k in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', k) or '0')
  if n >= limit then
    local ttl = redis.call('PTTL', k)
    if ttl < 0 then
      redis.call('PEXPIRE', k, window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, window) end
end
return 0
`)

// releaseScript takes one attempt back from each existing counter above zero.
var releaseScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', k) or '0')
  if n > 0 then redis.call('DECR', k) end
end
return 0
`)

func (r *Redis) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = r.prefix + k
	}
	return out
}

// Reserve counts one attempt on every key unless one is used up, atomically (a Lua
// script), and returns the longest remaining window among the used-up keys.
func (r *Redis) Reserve(ctx context.Context, limit int, window time.Duration, keys ...string) (time.Duration, error) {
	ms, err := reserveScript.Run(ctx, r.client, r.keys(keys), limit, window.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Release takes one attempt back from each key.
func (r *Redis) Release(ctx context.Context, keys ...string) error {
	if err := releaseScript.Run(ctx, r.client, r.keys(keys)).Err(); err != nil && !errors.Is(err, redis.Nil) {
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

// Reserve counts one attempt on every key unless one is used up, under one lock.
func (m *Memory) Reserve(_ context.Context, limit int, d time.Duration, keys ...string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var wait time.Duration
	for _, k := range keys {
		if w, ok := m.keys[k]; ok && now.Before(w.until) && w.count >= limit {
			wait = max(wait, w.until.Sub(now))
		}
	}
	if wait > 0 {
		return wait, nil
	}
	for _, k := range keys {
		w := m.keys[k]
		if !now.Before(w.until) {
			w = window{until: now.Add(d)}
		}
		w.count++
		m.keys[k] = w
	}
	return 0, nil
}

// Release takes one attempt back from each key.
func (m *Memory) Release(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, k := range keys {
		if w, ok := m.keys[k]; ok && now.Before(w.until) && w.count > 0 {
			w.count--
			m.keys[k] = w
		}
	}
	return nil
}
