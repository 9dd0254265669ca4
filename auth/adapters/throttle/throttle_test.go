package throttle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
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
				if wait, err := th.Blocked(ctx, 3, "email:a", "ip:1"); err != nil || wait != 0 {
					t.Fatalf("blocked after %d hits: %v %v", i, wait, err)
				}
				if err := th.Hit(ctx, time.Minute, "email:a", "ip:1"); err != nil {
					t.Fatal(err)
				}
			}
			wait, err := th.Blocked(ctx, 3, "email:a", "ip:2")
			if err != nil || wait <= 50*time.Second || wait > time.Minute {
				t.Fatalf("want about a minute after 3 hits on email:a, got %v %v", wait, err)
			}
			if wait, _ := th.Blocked(ctx, 3, "ip:1"); wait == 0 {
				t.Fatal("ip:1 was hit 3 times too")
			}
			if wait, _ := th.Blocked(ctx, 3, "email:b", "ip:2"); wait != 0 {
				t.Fatalf("untouched keys blocked: %v", wait)
			}

			// Concurrent hits are all counted.
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() { _ = th.Hit(ctx, time.Minute, "email:c") })
			}
			wg.Wait()
			if wait, _ := th.Blocked(ctx, 20, "email:c"); wait == 0 {
				t.Fatal("lost concurrent hits")
			}
			if wait, _ := th.Blocked(ctx, 21, "email:c"); wait != 0 {
				t.Fatal("counted more hits than made")
			}
		})
	}
}

func TestWindowExpires(t *testing.T) {
	m := NewMemory()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	_ = m.Hit(ctx, 15*time.Minute, "k")
	if wait, _ := m.Blocked(ctx, 1, "k"); wait != 15*time.Minute {
		t.Fatalf("wait %v", wait)
	}
	now = now.Add(15 * time.Minute)
	if wait, _ := m.Blocked(ctx, 1, "k"); wait != 0 {
		t.Fatalf("window did not expire: %v", wait)
	}

	mr := miniredis.RunT(t)
	r := NewRedis(redis.NewClient(&redis.Options{Addr: mr.Addr()}), "")
	_ = r.Hit(ctx, 15*time.Minute, "k")
	mr.FastForward(15 * time.Minute)
	if wait, _ := r.Blocked(ctx, 1, "k"); wait != 0 {
		t.Fatalf("redis window did not expire: %v", wait)
	}
}
