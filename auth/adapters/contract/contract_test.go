// Package contract runs the one contract suite of the auth ports against every
// adapter: memory, SQLite (the `make run` default) and PostgreSQL.
package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/auth/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/auth/adapters/memrepo"
	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
)

// backend is an adapter under test plus a way to count the events it stored.
type backend struct {
	users    app.Users
	sessions app.Sessions
	resets   app.ResetTokens
	requests app.ResetRequests
	events   func(t *testing.T) int
}

func backends() map[string]func(t *testing.T) backend {
	bun := func(kind database.Kind) func(t *testing.T) backend {
		return func(t *testing.T) backend {
			db := dbtest.Open(t, kind)
			if err := database.Migrate(context.Background(), db, bunrepo.Migrations); err != nil {
				t.Fatal(err)
			}
			repo := bunrepo.New(db, nil)
			return backend{users: repo, sessions: repo, resets: repo, requests: repo, events: func(t *testing.T) int {
				n, err := db.NewSelect().Table("outbox").Count(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return int(n)
			}}
		}
	}
	return map[string]func(t *testing.T) backend{
		"memory": func(*testing.T) backend {
			s := memrepo.New()
			return backend{users: s, sessions: s, resets: s, requests: s, events: func(*testing.T) int { return len(s.Events()) }}
		},
		"sqlite":   bun(database.SQLite),
		"postgres": bun(database.Postgres),
	}
}

func newUser(t *testing.T, id, email string) user.User {
	t.Helper()
	u, err := user.NewUser(id, "User "+id, email, "$argon2id$fake", time.Date(2026, 2, 3, 4, 5, 6, 789123000, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func event(t *testing.T, u user.User) eventbus.Envelope {
	env, err := contracts.New(contracts.UserRegistered{UserID: u.ID(), Name: u.Name(), Email: u.Email()}, u.ID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestUsersContract(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t)
			ann := newUser(t, "0190a000-0000-7000-8000-000000000001", "Ann@Example.com")
			if err := b.users.Add(ctx, ann, event(t, ann)); err != nil {
				t.Fatal(err)
			}
			if b.events(t) != 1 {
				t.Fatalf("events stored: %d", b.events(t))
			}

			got, err := b.users.ByEmail(ctx, "  ann@EXAMPLE.com ")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID() != ann.ID() || got.Name() != ann.Name() || got.Email() != "Ann@Example.com" ||
				got.PasswordHash() != ann.PasswordHash() || !got.CreatedAt().Equal(ann.CreatedAt()) {
				t.Fatalf("round trip lost data: %+v vs %+v", got, ann)
			}
			if byID, err := b.users.ByID(ctx, ann.ID()); err != nil || byID.Email() != ann.Email() {
				t.Fatalf("by id: %v %v", byID, err)
			}
			if _, err := b.users.ByID(ctx, "missing"); !errors.Is(err, user.ErrNotFound) {
				t.Fatalf("missing id: %v", err)
			}
			if _, err := b.users.ByEmail(ctx, "nobody@example.com"); !errors.Is(err, user.ErrNotFound) {
				t.Fatalf("missing email: %v", err)
			}

			dup := newUser(t, "0190a000-0000-7000-8000-000000000002", "ANN@example.COM")
			if err := b.users.Add(ctx, dup, event(t, dup)); !errors.Is(err, user.ErrEmailTaken) {
				t.Fatalf("case-insensitive duplicate: %v", err)
			}
			if b.events(t) != 1 {
				t.Fatal("a refused registration still stored its event")
			}

			if err := b.users.UpdatePassword(ctx, ann.ID(), "$argon2id$new", time.Now()); err != nil {
				t.Fatal(err)
			}
			if got, _ := b.users.ByID(ctx, ann.ID()); got.PasswordHash() != "$argon2id$new" {
				t.Fatalf("password not updated: %q", got.PasswordHash())
			}
			if err := b.users.UpdatePassword(ctx, "missing", "x", time.Now()); !errors.Is(err, user.ErrNotFound) {
				t.Fatalf("update of a missing user: %v", err)
			}
		})
	}
}

// TestConcurrentRegistrationOfOneEmail: 20 goroutines race to register one email and
// exactly one wins, on every adapter (the unique index decides, not a prior read).
func TestConcurrentRegistrationOfOneEmail(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t)
			var wins, taken atomic.Int32
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					u := newUser(t, fmt.Sprintf("0190a000-0000-7000-8000-0000000001%02d", i), "Race@Example.com")
					switch err := b.users.Add(context.Background(), u, event(t, u)); {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, user.ErrEmailTaken):
						taken.Add(1)
					default:
						t.Errorf("unexpected error: %v", err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 || taken.Load() != 19 {
				t.Fatalf("wins %d, taken %d", wins.Load(), taken.Load())
			}
			if b.events(t) != 1 {
				t.Fatalf("events %d, want 1", b.events(t))
			}
		})
	}
}

func TestListUsersContract(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t)
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			names := []string{"Ann Lee", "bob", "ANNA", "Joanne", "50% off_sale", "Zed"}
			for i, n := range names {
				// Two users share a createdAt, so the id decides their order.
				at := base.Add(time.Duration(i/2) * time.Minute)
				u, err := user.NewUser(fmt.Sprintf("0190a000-0000-7000-8000-%012d", 6-i), n, fmt.Sprintf("u%d@example.com", i), "h", at)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.users.Add(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			list := func(filter string, offset, limit int) ([]string, int) {
				us, total, err := b.users.List(ctx, filter, offset, limit)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]string, len(us))
				for i, u := range us {
					out[i] = u.Name()
				}
				return out, total
			}
			all, total := list("", 0, 100)
			if want := "[bob Ann Lee Joanne ANNA Zed 50% off_sale]"; fmt.Sprint(all) != want || total != 6 {
				t.Fatalf("order by createdAt then id: %v (%d), want %s", all, total, want)
			}
			page, total := list("", 2, 2)
			if fmt.Sprint(page) != "[Joanne ANNA]" || total != 6 {
				t.Fatalf("page 2: %v %d", page, total)
			}
			if got, total := list("ann", 0, 100); fmt.Sprint(got) != "[Ann Lee Joanne ANNA]" || total != 3 {
				t.Fatalf("case-insensitive substring: %v %d", got, total)
			}
			if got, _ := list("%", 0, 100); fmt.Sprint(got) != "[50% off_sale]" {
				t.Fatalf("%% must be literal: %v", got)
			}
			if got, _ := list("_", 0, 100); fmt.Sprint(got) != "[50% off_sale]" {
				t.Fatalf("_ must be literal: %v", got)
			}
			if got, total := list("ann", 5, 10); len(got) != 0 || total != 3 {
				t.Fatalf("past the end: %v %d", got, total)
			}
		})
	}
}

func session(id, family, userID string, at time.Time) app.RefreshSession {
	return app.RefreshSession{
		ID: id, FamilyID: family, UserID: userID, TokenHash: app.HashToken("tok-" + id),
		CreatedAt: at, ExpiresAt: at.Add(time.Hour),
		Access: app.AccessToken{ID: "jti-" + id, ExpiresAt: at.Add(15 * time.Minute)},
	}
}

func TestSessionsContract(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t)
			now := time.Now().UTC().Truncate(time.Microsecond)
			if err := b.sessions.Create(ctx, session("s1", "f1", "u1", now)); err != nil {
				t.Fatal(err)
			}
			got, err := b.sessions.ByTokenHash(ctx, app.HashToken("tok-s1"))
			if err != nil || got.FamilyID != "f1" || got.UserID != "u1" || got.UsedAt != nil || got.RevokedAt != nil ||
				got.Access.ID != "jti-s1" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Fatalf("round trip: %+v %v", got, err)
			}
			if _, err := b.sessions.ByTokenHash(ctx, app.HashToken("nope")); !errors.Is(err, app.ErrSessionNotFound) {
				t.Fatalf("unknown hash: %v", err)
			}

			// Ten concurrent rotations of one token: exactly one wins.
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					ok, err := b.sessions.Rotate(ctx, "s1", session(fmt.Sprintf("s1-next-%d", i), "f1", "u1", now), now)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d rotations of one token won", wins.Load())
			}
			if used, _ := b.sessions.ByTokenHash(ctx, app.HashToken("tok-s1")); used.UsedAt == nil {
				t.Fatal("rotated token not marked used")
			}

			// Another family of the same user, and one of another user.
			if err := b.sessions.Create(ctx, session("s2", "f2", "u1", now)); err != nil {
				t.Fatal(err)
			}
			expired := session("s3", "f3", "u1", now.Add(-time.Hour))
			if err := b.sessions.Create(ctx, expired); err != nil {
				t.Fatal(err)
			}
			if err := b.sessions.Create(ctx, session("s4", "f4", "u2", now)); err != nil {
				t.Fatal(err)
			}

			live, err := b.sessions.RevokeUser(ctx, "u1", "f1", now)
			if err != nil {
				t.Fatal(err)
			}
			if len(live) != 1 || live[0].ID != "jti-s2" {
				t.Fatalf("live access tokens of the other u1 sessions: %+v", live)
			}
			if s, _ := b.sessions.ByTokenHash(ctx, app.HashToken("tok-s2")); s.RevokedAt == nil {
				t.Fatal("f2 not revoked")
			}
			if s, _ := b.sessions.ByTokenHash(ctx, app.HashToken("tok-s4")); s.RevokedAt != nil {
				t.Fatal("another user's session revoked")
			}
			if s, _ := b.sessions.ByTokenHash(ctx, app.HashToken("tok-s1")); s.RevokedAt != nil {
				t.Fatal("the kept family was revoked")
			}

			live, err = b.sessions.RevokeFamily(ctx, "f1", now)
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			for _, a := range live {
				ids[a.ID] = true
			}
			if len(ids) != 2 || !ids["jti-s1"] {
				t.Fatalf("f1's live access tokens (s1 and its rotation): %+v", live)
			}
			if ok, _ := b.sessions.Rotate(ctx, "s1", session("late", "f1", "u1", now), now); ok {
				t.Fatal("rotated a revoked token")
			}
		})
	}
}

func TestResetTokensContract(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t)
			u := newUser(t, "0190a000-0000-7000-8000-0000000000aa", "reset@example.com")
			if err := b.users.Add(ctx, u); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			for _, tok := range []app.ResetToken{
				{ID: "r1", UserID: u.ID(), TokenHash: app.HashToken("good"), CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)},
				{ID: "r2", UserID: u.ID(), TokenHash: app.HashToken("old"), CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-30 * time.Minute)},
			} {
				if err := b.resets.CreateReset(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := b.resets.Redeem(ctx, app.HashToken("old"), "h-old", now); !errors.Is(err, user.ErrInvalidResetToken) {
				t.Fatalf("expired token: %v", err)
			}
			if _, err := b.resets.Redeem(ctx, app.HashToken("unknown"), "h-x", now); !errors.Is(err, user.ErrInvalidResetToken) {
				t.Fatalf("unknown token: %v", err)
			}
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					id, err := b.resets.Redeem(ctx, app.HashToken("good"), "h-new", now)
					switch {
					case err == nil && id == u.ID():
						wins.Add(1)
					case errors.Is(err, user.ErrInvalidResetToken):
					default:
						t.Errorf("redeem: %q %v", id, err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("single-use token redeemed %d times", wins.Load())
			}
			if got, _ := b.users.ByID(ctx, u.ID()); got.PasswordHash() != "h-new" {
				t.Fatalf("password after reset: %q", got.PasswordHash())
			}

			// A reset spends the user's other tokens; a password change spends all.
			mk := func(id, token string) {
				t.Helper()
				if err := b.resets.CreateReset(ctx, app.ResetToken{ID: id, UserID: u.ID(), TokenHash: app.HashToken(token), CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			mk("r3", "first mail")
			mk("r4", "second mail")
			if owner, err := b.resets.FindReset(ctx, app.HashToken("first mail"), now); err != nil || owner != u.ID() {
				t.Fatalf("find a usable token: %q %v", owner, err)
			}
			if _, err := b.resets.FindReset(ctx, app.HashToken("good"), now); !errors.Is(err, user.ErrInvalidResetToken) {
				t.Fatalf("find a used token: %v", err)
			}
			if _, err := b.resets.Redeem(ctx, app.HashToken("second mail"), "h-second", now); err != nil {
				t.Fatal(err)
			}
			if _, err := b.resets.FindReset(ctx, app.HashToken("first mail"), now); !errors.Is(err, user.ErrInvalidResetToken) {
				t.Fatalf("an older token survived a reset: %v", err)
			}
			if _, err := b.resets.Redeem(ctx, app.HashToken("first mail"), "h-first", now); !errors.Is(err, user.ErrInvalidResetToken) {
				t.Fatalf("an older token redeemed after a reset: %v", err)
			}
			mk("r5", "third mail")
			if err := b.users.UpdatePassword(ctx, u.ID(), "h-changed", now); err != nil {
				t.Fatal(err)
			}
			if _, err := b.resets.Redeem(ctx, app.HashToken("third mail"), "h-third", now); !errors.Is(err, user.ErrInvalidResetToken) {
				t.Fatalf("a token mailed before a password change redeemed after it: %v", err)
			}
			if got, _ := b.users.ByID(ctx, u.ID()); got.PasswordHash() != "h-changed" {
				t.Fatalf("password: %q", got.PasswordHash())
			}
		})
	}
}

func TestResetRequestsContract(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := newBackend(t).requests
			base := time.Now().UTC().Truncate(time.Microsecond)
			for i := range 3 {
				if err := q.EnqueueReset(ctx, app.ResetRequest{ID: fmt.Sprintf("r%d", i), Email: "a@example.com", RequestedAt: base.Add(time.Duration(i) * time.Second)}); err != nil {
					t.Fatal(err)
				}
			}
			now := base.Add(time.Minute)
			claimed, err := q.ClaimResets(ctx, now, now.Add(2*time.Minute), 2)
			if err != nil || len(claimed) != 2 || claimed[0].ID != "r0" || claimed[1].ID != "r1" || claimed[0].Attempts != 1 || claimed[0].Email != "a@example.com" {
				t.Fatalf("first claim: %+v %v", claimed, err)
			}
			if again, _ := q.ClaimResets(ctx, now, now.Add(2*time.Minute), 10); len(again) != 1 || again[0].ID != "r2" {
				t.Fatalf("leased requests must not be claimed again: %+v", again)
			}
			later := now.Add(3 * time.Minute)
			retried, _ := q.ClaimResets(ctx, later, later.Add(2*time.Minute), 10)
			if len(retried) != 3 || retried[0].ID != "r0" || retried[0].Attempts != 2 {
				t.Fatalf("after the lease: %+v", retried)
			}
			for _, r := range retried {
				if err := q.DeleteReset(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
			if left, _ := q.ClaimResets(ctx, later.Add(time.Hour), later.Add(2*time.Hour), 10); len(left) != 0 {
				t.Fatalf("deleted requests came back: %+v", left)
			}

			// Workers claiming concurrently never share a request.
			for i := range 6 {
				_ = q.EnqueueReset(ctx, app.ResetRequest{ID: fmt.Sprintf("c%d", i), Email: "b@example.com", RequestedAt: base})
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for range 6 {
				wg.Go(func() {
					rs, err := q.ClaimResets(ctx, now, now.Add(time.Minute), 1)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					defer mu.Unlock()
					for _, r := range rs {
						seen[r.ID]++
					}
				})
			}
			wg.Wait()
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("request %s claimed %d times", id, n)
				}
			}
			if len(seen) == 0 {
				t.Fatal("no worker claimed anything")
			}
		})
	}
}
