package service_test

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/auth/service"
)

// spyHasher counts the hashes it runs and the most that ran at once; each takes
// delay, like argon2 does.
type spyHasher struct {
	delay          time.Duration
	calls, running atomic.Int32
	mu             sync.Mutex
	maxRunning     int32
}

func (s *spyHasher) enter() func() {
	s.calls.Add(1)
	n := s.running.Add(1)
	s.mu.Lock()
	s.maxRunning = max(s.maxRunning, n)
	s.mu.Unlock()
	time.Sleep(s.delay)
	return func() { s.running.Add(-1) }
}

func (s *spyHasher) Hash(p string) (string, error) {
	defer s.enter()()
	return "spy:" + p, nil
}

func (s *spyHasher) Verify(p, h string) (bool, error) {
	defer s.enter()()
	return h == "spy:"+p, nil
}

func (s *spyHasher) peak() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxRunning
}

// burst sends n requests at once and returns their results.
func burst(t *testing.T, h *harness, n int, req func(i int) (path, body string, headers []string)) []result {
	t.Helper()
	out := make([]result, n)
	var ready, wg sync.WaitGroup
	ready.Add(1)
	for i := range n {
		wg.Go(func() {
			path, body, headers := req(i)
			ready.Wait()
			out[i] = h.do(t, "POST", path, "", body, headers...)
		})
	}
	ready.Done()
	wg.Wait()
	return out
}

// TestConcurrentWrongLoginsAreBounded is defect 2 of issue 7: 40 simultaneous wrong
// passwords for one account. The attempt is reserved before the password is checked,
// so only the limit (10) reach the hasher and the other 30 get 429 with Retry-After.
func TestConcurrentWrongLoginsAreBounded(t *testing.T) {
	spy := &spyHasher{delay: 20 * time.Millisecond}
	h := startWith(t, spy, nil)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	spy.calls.Store(0)
	results := burst(t, h, 40, func(i int) (string, string, []string) {
		return "/api/v1/auth/login", fmt.Sprintf(`{"email":"ann@example.com","password":"guess %d"}`, i), nil
	})
	count := map[int]int{}
	for _, r := range results {
		count[r.status]++
		if r.status == 429 {
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 without a usable Retry-After: %q", r.header.Get("Retry-After"))
			}
		}
	}
	if count[401] != 10 || count[429] != 30 {
		t.Fatalf("statuses %v, want 10 x 401 and 30 x 429", count)
	}
	if n := spy.calls.Load(); n != 10 {
		t.Fatalf("%d passwords were checked, want 10 (the limit)", n)
	}
	// The right password is refused too now: the account is throttled, not guessed.
	expectProblem(t, h.post(t, "/api/v1/auth/login", `{"email":"ann@example.com","password":"correct horse"}`), 429)
}

// TestSuccessfulLoginsDoNotUseTheBudget: a successful login gives its reservation
// back, so a user who logs in often is never throttled.
func TestSuccessfulLoginsDoNotUseTheBudget(t *testing.T) {
	h := startWith(t, &spyHasher{}, nil)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	for range 15 {
		h.login(t, "ann@example.com", "correct horse")
	}
}

// TestHashCapacity is defect 4 of issue 7: with the cap at 2, 30 simultaneous logins
// never run more than 2 hashes at once, and those that found no slot within the queue
// wait get 503 problem+json with Retry-After (never an unbounded pile of hashes).
func TestHashCapacity(t *testing.T) {
	spy := &spyHasher{delay: 100 * time.Millisecond}
	const queueWait = 250 * time.Millisecond
	h := startWith(t, spy, func(c *service.Config) {
		c.Hash.Concurrency, c.Hash.QueueWait = 2, queueWait
	})
	var mu sync.Mutex
	took := map[int][]time.Duration{}
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(1)
	for i := range 30 {
		wg.Go(func() {
			ready.Wait()
			start := time.Now()
			// Distinct emails and client IPs: the throttle is not what answers here.
			r := h.do(t, "POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"email":"user%d@example.com","password":"guess"}`, i),
				"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			if r.status == 503 {
				if r.header.Get("Content-Type") != "application/problem+json" || r.header.Get("Retry-After") == "" {
					t.Errorf("503 without problem+json or Retry-After: %v %s", r.header, r.raw)
				}
			}
			mu.Lock()
			took[r.status] = append(took[r.status], time.Since(start))
			mu.Unlock()
		})
	}
	ready.Done()
	wg.Wait()
	if peak := spy.peak(); peak > 2 {
		t.Fatalf("%d hashes ran at once, cap 2", peak)
	}
	if len(took[401])+len(took[503]) != 30 || len(took[503]) == 0 || len(took[401]) < 2 {
		t.Fatalf("statuses %v, want some 401 (evaluated) and the surplus 503", counts(took))
	}
	for _, d := range took[503] {
		if d < queueWait {
			t.Fatalf("a 503 came after %v, before the queue wait of %v", d, queueWait)
		}
	}
	t.Logf("statuses %v, peak %d hashes at once", counts(took), spy.peak())
}

func counts(m map[int][]time.Duration) map[int]int {
	out := map[int]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// TestRegisterResetAndChangePasswordAreThrottled: each of them costs a hash or
// guesses a secret, so each is throttled per client IP (change password also per
// user) and refuses with 429 before any hash.
func TestRegisterResetAndChangePasswordAreThrottled(t *testing.T) {
	spy := &spyHasher{}
	h := startWith(t, spy, func(c *service.Config) {
		c.Throttle.RegisterMax, c.Throttle.ResetMax, c.Throttle.PasswordMax = 3, 3, 3
	})
	ip := func(n int) []string { return []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", n)} }

	for i := range 3 {
		r := h.do(t, "POST", "/api/v1/auth/register", "", fmt.Sprintf(`{"name":"U","email":"u%d@example.com","password":"correct horse"}`, i), ip(1)...)
		if r.status != 201 {
			t.Fatalf("register %d: %d %s", i, r.status, r.raw)
		}
	}
	calls := spy.calls.Load()
	expectProblem(t, h.do(t, "POST", "/api/v1/auth/register", "", `{"name":"U","email":"u9@example.com","password":"correct horse"}`, ip(1)...), 429)
	if spy.calls.Load() != calls {
		t.Fatal("a throttled registration was hashed")
	}
	if r := h.do(t, "POST", "/api/v1/auth/register", "", `{"name":"U","email":"u9@example.com","password":"correct horse"}`, ip(2)...); r.status != 201 {
		t.Fatalf("another IP: %d", r.status)
	}

	for i := range 3 {
		expectProblem(t, h.do(t, "POST", "/api/v1/auth/password/reset", "", fmt.Sprintf(`{"token":"guess-%d","newPassword":"brand new pass"}`, i), ip(3)...), 400)
	}
	expectProblem(t, h.do(t, "POST", "/api/v1/auth/password/reset", "", `{"token":"guess-x","newPassword":"brand new pass"}`, ip(3)...), 429)

	tok := h.login(t, "u0@example.com", "correct horse").access
	for i := range 3 {
		r := h.do(t, "POST", "/api/v1/auth/password", tok, fmt.Sprintf(`{"currentPassword":"guess %d","newPassword":"brand new pass"}`, i), ip(4)...)
		expectProblem(t, r, 401)
	}
	// Per user: another IP does not help the holder of a stolen access token.
	r := h.do(t, "POST", "/api/v1/auth/password", tok, `{"currentPassword":"correct horse","newPassword":"brand new pass"}`, ip(5)...)
	expectProblem(t, r, 429)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

// TestResetWithBogusTokenCostsNoHash: a reset hashes the new password only after its
// token checked out (30 bogus resets once drove auth to 430 MB).
func TestResetWithBogusTokenCostsNoHash(t *testing.T) {
	spy := &spyHasher{}
	h := startWith(t, spy, nil)
	for i := range 5 {
		expectProblem(t, h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":"bogus-%d","newPassword":"brand new pass"}`, i)), 400)
	}
	if n := spy.calls.Load(); n != 1 { // the dummy hash made at start
		t.Fatalf("%d hashes for bogus reset tokens", n-1)
	}
}

// TestOlderResetTokensDieWithAResetOrAPasswordChange is defect 3 of issue 7: two
// mails, a reset with the second, and the first is refused; a token mailed before a
// password change is refused after it.
func TestOlderResetTokensDieWithAResetOrAPasswordChange(t *testing.T) {
	h := start(t)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	mailToken := func(n int) string {
		t.Helper()
		if r := h.post(t, "/api/v1/auth/password/forgot", `{"email":"ann@example.com"}`); r.status != 202 {
			t.Fatalf("forgot: %d", r.status)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if msgs := h.smtp.Messages(); len(msgs) >= n {
				return tokenLine.FindStringSubmatch(msgs[n-1].Body)[1]
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("mail %d not sent", n)
		return ""
	}
	first, second := mailToken(1), mailToken(2)
	if first == second {
		t.Fatal("two mails carried one token")
	}
	if r := h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"newPassword":"second pass"}`, second)); r.status != 204 {
		t.Fatalf("reset with the second token: %d %s", r.status, r.raw)
	}
	expectProblem(t, h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"newPassword":"attacker pass"}`, first)), 400)

	third := mailToken(3)
	tok := h.login(t, "ann@example.com", "second pass").access
	if r := h.do(t, "POST", "/api/v1/auth/password", tok, `{"currentPassword":"second pass","newPassword":"changed pass"}`); r.status != 204 {
		t.Fatalf("change: %d %s", r.status, r.raw)
	}
	expectProblem(t, h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"newPassword":"attacker pass"}`, third)), 400)
	h.login(t, "ann@example.com", "changed pass")
}
