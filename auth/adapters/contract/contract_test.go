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
			return backend{users: repo, sessions: repo, events: func(t *testing.T) int {
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
			return backend{users: s, sessions: s, events: func(*testing.T) int { return len(s.Events()) }}
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

			if err := b.sessions.Create(ctx, app.RefreshSession{
				ID: "s1", FamilyID: "s1", UserID: ann.ID(), TokenHash: app.HashRefreshToken("tok"),
				CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
			}); err != nil {
				t.Fatal(err)
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
