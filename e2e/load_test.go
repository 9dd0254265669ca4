package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult is what one load run measured.
type loadResult struct {
	requests, errors int64
	rps              float64
	p50, p99         time.Duration
}

// load sends requests from clients concurrent workers for d and measures them; a
// request is an error unless it answers want.
func load(clients int, d time.Duration, want int, newReq func() *http.Request) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var errs, n atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) {
				t0 := time.Now()
				resp, err := client.Do(newReq())
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
				if err != nil || resp.StatusCode != want {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	return loadResult{requests: n.Load(), errors: errs.Load(), rps: float64(n.Load()) / elapsed.Seconds(), p50: q(0.50), p99: q(0.99)}
}

// BenchmarkProjectThroughGateway measures GET /cards/{id} and POST
// /projects/{id}/cards at 16 and 64 concurrent clients through the gateway, with the
// project service on MariaDB, and the GET also directly against the service in the
// same run as a baseline. It reports req/s, p50, p99 and errors (which must be 0).
// Run it with -benchtime 1x: each case is a fixed 5-second load.
func BenchmarkProjectThroughGateway(b *testing.B) {
	s := startSystem(b)
	_, token := s.user(b, "Ann")
	newReq := func(base, method, path, body string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			return req
		}
	}
	p := s.call(b, "POST", "/api/v1/projects", token, `{"title":"Load"}`)
	pid, _ := p.body["id"].(string)
	c := s.call(b, "POST", "/api/v1/projects/"+pid+"/cards", token, `{"title":"Hot card","description":"read a lot"}`)
	cid, _ := c.body["id"].(string)
	if pid == "" || cid == "" {
		b.Fatalf("setup: %s %s", p.raw, c.raw)
	}
	cases := []struct {
		name   string
		want   int
		newReq func() *http.Request
	}{
		{"get/direct", 200, newReq(s.project, "GET", "/api/v1/cards/"+cid, "")},
		{"get/gateway", 200, newReq(s.gateway, "GET", "/api/v1/cards/"+cid, "")},
		{"create/gateway", 201, newReq(s.gateway, "POST", "/api/v1/projects/"+pid+"/cards", `{"title":"load card","status":"todo"}`)},
	}
	for _, clients := range []int{16, 64} {
		for _, tc := range cases {
			b.Run(fmt.Sprintf("%s/c%d", tc.name, clients), func(b *testing.B) {
				var r loadResult
				for b.Loop() {
					r = load(clients, 5*time.Second, tc.want, tc.newReq)
				}
				b.ReportMetric(r.rps, "req/s")
				b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(r.errors), "errors")
				if r.errors != 0 {
					b.Errorf("%d of %d requests failed", r.errors, r.requests)
				}
			})
		}
	}
}
