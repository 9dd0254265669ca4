package throttle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/platform/testenv"
)

// backends are every adapter of app.Throttle; the same contract runs against each.
func backends() map[string]func(t *testing.T) app.Throttle {
	return map[string]func(t *testing.T) app.Throttle{
		"memory": func(*testing.T) app.Throttle { return NewMemory() },
		"miniredis": func(t *testing.T) app.Throttle {
			mr := miniredis.RunT(t)
			return NewRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()}), "t:")
		},
		"redis": func(t *testing.T) app.Throttle {
			opt, err := redis.ParseURL(testenv.Require(t, "REDIS_URL"))
			if err != nil {
				t.Fatal(err)
			}
			client := redis.NewClient(opt)
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			prefix := "bt-test-" + hex.EncodeToString(b) + ":"
			t.Cleanup(func() {
				keys, _ := client.Keys(context.Background(), prefix+"*").Result()
				if len(keys) > 0 {
					client.Del(context.Background(), keys...)
				}
				_ = client.Close()
			})
			return NewRedis(client, prefix)
		},
	}
}

func TestThrottleContract(t *testing.T) {
	for name, newThrottle := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			th := newThrottle(t)
			for i := range 3 {
				if wait, err := th.Reserve(ctx, 3, time.Minute, "email:a", "ip:1"); err != nil || wait != 0 {
					t.Fatalf("attempt %d refused: %v %v", i+1, wait, err)
				}
			}
			wait, err := th.Reserve(ctx, 3, time.Minute, "email:a", "ip:2")
			if err != nil || wait <= 50*time.Second || wait > time.Minute {
				t.Fatalf("want about a minute after 3 attempts on email:a, got %v %v", wait, err)
			}
			// The refused attempt counted nothing: ip:2 is still fresh.
			for i := range 3 {
				if wait, _ := th.Reserve(ctx, 3, time.Minute, "ip:2"); wait != 0 {
					t.Fatalf("a refused reservation was counted on ip:2 (attempt %d refused)", i+1)
				}
			}
			if wait, _ := th.Reserve(ctx, 3, time.Minute, "ip:1"); wait == 0 {
				t.Fatal("ip:1 had 3 attempts too")
			}
			if wait, _ := th.Reserve(ctx, 3, time.Minute, "email:b", "ip:3"); wait != 0 {
				t.Fatalf("untouched keys refused: %v", wait)
			}

			// Release gives one attempt back per key, never below zero.
			if err := th.Release(ctx, "email:a", "never-used"); err != nil {
				t.Fatal(err)
			}
			if wait, _ := th.Reserve(ctx, 3, time.Minute, "email:a"); wait != 0 {
				t.Fatal("a released attempt was not given back")
			}
			if wait, _ := th.Reserve(ctx, 3, time.Minute, "email:a"); wait == 0 {
				t.Fatal("release gave back more than one attempt")
			}
			_ = th.Release(ctx, "never-used")
			if wait, _ := th.Reserve(ctx, 1, time.Minute, "never-used"); wait != 0 {
				t.Fatal("releasing an unused key made it negative or blocked it")
			}
			if wait, _ := th.Reserve(ctx, 1, time.Minute, "never-used"); wait == 0 {
				t.Fatal("releasing an unused key banked an attempt")
			}

			// A burst of simultaneous reservations: exactly the limit gets through.
			var granted atomic.Int32
			var wg sync.WaitGroup
			for range 40 {
				wg.Go(func() {
					wait, err := th.Reserve(ctx, 10, time.Minute, "email:c", "ip:c")
					if err != nil {
						t.Error(err)
					}
					if wait == 0 {
						granted.Add(1)
					}
				})
			}
			wg.Wait()
			if granted.Load() != 10 {
				t.Fatalf("%d of 40 simultaneous reservations granted, want exactly 10", granted.Load())
			}
		})
	}
}

func TestWindowExpires(t *testing.T) {
	m := NewMemory()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	_, _ = m.Reserve(ctx, 1, 15*time.Minute, "k")
	if wait, _ := m.Reserve(ctx, 1, 15*time.Minute, "k"); wait != 15*time.Minute {
		t.Fatalf("wait %v", wait)
	}
	now = now.Add(15 * time.Minute)
	if wait, _ := m.Reserve(ctx, 1, 15*time.Minute, "k"); wait != 0 {
		t.Fatalf("window did not expire: %v", wait)
	}

	mr := miniredis.RunT(t)
	r := NewRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()}), "")
	_, _ = r.Reserve(ctx, 1, 15*time.Minute, "k")
	if wait, _ := r.Reserve(ctx, 1, 15*time.Minute, "k"); wait <= 14*time.Minute {
		t.Fatalf("redis wait %v", wait)
	}
	mr.FastForward(15 * time.Minute)
	if wait, _ := r.Reserve(ctx, 1, 15*time.Minute, "k"); wait != 0 {
		t.Fatalf("redis window did not expire: %v", wait)
	}
}
