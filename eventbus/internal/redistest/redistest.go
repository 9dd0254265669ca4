// Package redistest gives tests a Redis client, real or miniredis, and a
// key prefix of their own that is deleted when the test ends.
package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus/internal/testenv"
)

// Real connects to REDIS_URL (skipping or failing as testenv.Lookup does).
func Real(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testenv.Lookup(t, "REDIS_URL"))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at REDIS_URL: %v", err)
	}
	return c
}

// Mini starts a miniredis server for the test and connects to it.
func Mini(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return m, c
}

// Prefix returns a random key prefix and deletes every key under it when
// the test ends, so tests can share one Redis server.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	prefix := testenv.RandomName("bt-test-") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return prefix
}

// Pending returns how many entries group has delivered but not
// acknowledged on the streams keys.
func Pending(t testing.TB, c redis.UniversalClient, group string, keys ...string) int64 {
	t.Helper()
	var n int64
	for _, key := range keys {
		p, err := c.XPending(context.Background(), key, group).Result()
		if err != nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
			t.Fatalf("XPENDING %s %s: %v", key, group, err)
		}
		if p != nil {
			n += p.Count
		}
	}
	return n
}
