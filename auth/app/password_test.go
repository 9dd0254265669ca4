package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bugtracker/bugtracker/auth/adapters/memrepo"
	"github.com/bugtracker/bugtracker/auth/adapters/throttle"
	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
)

// flakyMailer fails while down is set and records what it delivered.
type flakyMailer struct {
	down atomic.Bool
	mu   sync.Mutex
	sent []app.Mail
}

func (m *flakyMailer) Send(_ context.Context, mail app.Mail) error {
	if m.down.Load() {
		return errors.New("smtp: connection refused")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, mail)
	return nil
}

func (m *flakyMailer) first() app.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[0]
}

func (m *flakyMailer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var testLimits = app.Limits{
	Login: app.Limit{Max: 10, Window: 15 * time.Minute}, Register: app.Limit{Max: 20, Window: 15 * time.Minute},
	Reset: app.Limit{Max: 10, Window: 15 * time.Minute}, ChangePassword: app.Limit{Max: 10, Window: 15 * time.Minute},
}

func newForgot(store *memrepo.Store, mailer app.Mailer, c *clock) *app.ForgotPasswordHandler {
	return app.NewForgotPasswordHandler(store, store, store, mailer, throttle.NewMemory(), testLimits, c.Now,
		func() string { return uuid.Must(uuid.NewV7()).String() }, "http://x/reset", slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func run(t *testing.T, h *app.ForgotPasswordHandler) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		<-done
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForgotPasswordSurvivesCrashAndMailFailure: a request answered 202 is stored,
// so a worker that never ran (a crash) loses nothing, and a failed send is retried
// once its lease runs out.
func TestForgotPasswordSurvivesCrashAndMailFailure(t *testing.T) {
	ctx := context.Background()
	store := memrepo.New()
	u, _ := user.NewUser("0190a000-0000-7000-8000-000000000001", "Ann", "ann@example.com", "h", time.Now())
	if err := store.Add(ctx, u); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Now()}
	mailer := &flakyMailer{}
	mailer.down.Store(true)

	// Process A accepts the request and dies before its worker runs.
	if err := newForgot(store, mailer, c).Handle(ctx, app.ForgotPassword{Email: "ANN@example.com"}); err != nil {
		t.Fatal(err)
	}
	// Process B's worker finds it, but the mail server is down.
	b := newForgot(store, mailer, c)
	run(t, b)
	time.Sleep(200 * time.Millisecond)
	if mailer.count() != 0 {
		t.Fatal("mailed while the server was down")
	}
	// The server recovers; the request is retried when its lease expires.
	mailer.down.Store(false)
	c.Add(3 * time.Minute)
	waitFor(t, "the retried mail", func() bool { return mailer.count() == 1 })
	if got := mailer.first(); got.To != "ann@example.com" || !strings.Contains(got.Text, "token: ") {
		t.Fatalf("mail %+v", got)
	}
	c.Add(3 * time.Minute)
	time.Sleep(1500 * time.Millisecond) // a poll period: a done request is not mailed again
	if mailer.count() != 1 {
		t.Fatalf("mailed %d times", mailer.count())
	}
}
