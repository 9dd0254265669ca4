//go:build bench

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

// TestLoadListNotifications measures GET /api/v1/notifications?page=1&limit=20 for a
// user with 1,000 notifications, at concurrency 16, through the gateway (gateway ->
// notif, which verifies the JWT and asks the Redis revocation list) and, as the
// baseline in the same run, sent to notif directly. It alternates the two in rounds
// so that drift on a shared machine hits both. It is a load test, not part of `make
// test`:
//
//	go -C e2e test -tags bench -run TestLoadListNotifications -v .
//
// with the servers' variables set (see the Makefile's TEST_ENV). The load generator
// runs on the same cores as the services, so absolute numbers are lower bounds;
// compare the ratio. LOAD_ROUND (default 30s) is the length of each measured round,
// LOAD_CONCURRENCY (default 16) the number of concurrent clients.
func TestLoadListNotifications(t *testing.T) {
	s := startSystem(t)
	u := s.register(t, "Ann")
	s.waitNotes(t, u, 1)

	// 999 more notifications, made by notif itself from newNotif events.
	pub, err := redisstream.NewPublisher(s.redis, redisstream.PublisherConfig{Prefix: s.prefix})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	var envs []eventbus.Envelope
	for i := range 999 {
		env, err := contracts.New(contracts.NotificationRequested{
			RecipientIDs: []string{u.id}, Kind: contracts.KindCardCreated, ActorID: "someone",
			Message: fmt.Sprintf("Someone created 'Card %d' in 'Web app'", i), ProjectID: "p1", CardID: fmt.Sprintf("c%d", i),
		}, "p1", start.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	for chunk := range slices.Chunk(envs, 100) {
		if _, err := pub.Publish(context.Background(), chunk...); err != nil {
			t.Fatal(err)
		}
	}
	seeded := time.Now()
	for {
		r := s.call(t, "GET", "/api/v1/notifications?limit=1", u.token, "")
		if r.status == 200 && r.body["meta"].(map[string]any)["total"].(float64) == 1000 {
			break
		}
		if time.Since(seeded) > 2*time.Minute {
			t.Fatalf("seeding: %d %s", r.status, r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("notif stored 999 notifications from events in %v", time.Since(seeded).Round(time.Millisecond))

	const path = "/api/v1/notifications?page=1&limit=20"
	targets := []struct{ name, base string }{{"direct", s.notif}, {"gateway", s.gateway}}
	results := map[string]*listLoadResult{}
	round := 30 * time.Second
	if v, err := time.ParseDuration(os.Getenv("LOAD_ROUND")); err == nil {
		round = v
	}
	conc := 16
	if v, err := strconv.Atoi(os.Getenv("LOAD_CONCURRENCY")); err == nil && v > 0 {
		conc = v
	}
	t.Logf("%d workers, rounds of %v", conc, round)
	for i := range 3 {
		for _, tg := range targets {
			if i == 0 {
				listLoad(t, tg.base+path, u.token, conc, round/3) // warm-up
				continue
			}
			r := listLoad(t, tg.base+path, u.token, conc, round)
			if results[tg.name] == nil {
				results[tg.name] = &listLoadResult{}
			}
			results[tg.name].add(r)
		}
	}
	d, g := results["direct"], results["gateway"]
	t.Logf("direct : %7.1f req/s  p50 %v  p99 %v  (%d requests, %d errors)", d.rate(), d.pct(50), d.pct(99), len(d.lat), d.errors)
	t.Logf("gateway: %7.1f req/s  p50 %v  p99 %v  (%d requests, %d errors)", g.rate(), g.pct(50), g.pct(99), len(g.lat), g.errors)
	t.Logf("gateway/direct: throughput %.2fx, p99 %.2fx", g.rate()/d.rate(), float64(g.pct(99))/float64(d.pct(99)))
	if d.errors+g.errors > 0 {
		t.Fatalf("%d failed requests", d.errors+g.errors)
	}
}

type listLoadResult struct {
	lat     []time.Duration
	elapsed time.Duration
	errors  int
}

func (r *listLoadResult) add(o listLoadResult) {
	r.lat = append(r.lat, o.lat...)
	r.elapsed += o.elapsed
	r.errors += o.errors
}

func (r *listLoadResult) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

func (r *listLoadResult) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

// listLoad sends GET url with the token from c workers for d and returns every latency.
func listLoad(t *testing.T, url, token string, c int, d time.Duration) listLoadResult {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	var (
		mu  sync.Mutex
		res listLoadResult
		wg  sync.WaitGroup
	)
	begin := time.Now()
	deadline := begin.Add(d)
	for range c {
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs++
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"total":1000`) {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(begin)
	return res
}
