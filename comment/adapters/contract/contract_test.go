// Package contract runs the one contract suite of the comment service's Store port
// against every adapter: memory, SQLite (the `make run` default) and MariaDB. The
// same suite drives the use cases and the event handlers over each adapter, so the
// locking and idempotency the use cases rely on are proven on every store.
package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/comment/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/comment/adapters/memrepo"
	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
)

// backend is a store under test plus a way to read the events it stored.
type backend struct {
	store  app.Store
	events func(t *testing.T) []eventbus.Envelope
}

func backends() map[string]func(t *testing.T) backend {
	sql := func(kind database.Kind) func(t *testing.T) backend {
		return func(t *testing.T) backend {
			db := dbtest.Open(t, kind)
			for range 2 { // a restart migrates again, harmlessly
				if err := database.Migrate(context.Background(), db, bunrepo.Migrations); err != nil {
					t.Fatal(err)
				}
			}
			return backend{store: bunrepo.New(db, "comment", nil), events: func(t *testing.T) []eventbus.Envelope {
				var raws []string
				if err := db.NewSelect().Table("outbox").Column("envelope").Order("seq").Scan(context.Background(), &raws); err != nil {
					t.Fatal(err)
				}
				envs := make([]eventbus.Envelope, len(raws))
				for i, raw := range raws {
					if err := json.Unmarshal([]byte(raw), &envs[i]); err != nil {
						t.Fatal(err)
					}
				}
				return envs
			}}
		}
	}
	return map[string]func(t *testing.T) backend{
		"memory": func(*testing.T) backend {
			s := memrepo.New()
			return backend{store: s, events: func(*testing.T) []eventbus.Envelope { return s.Events() }}
		},
		"sqlite":  sql(database.SQLite),
		"mariadb": sql(database.MySQL),
	}
}

func forEach(t *testing.T, f func(t *testing.T, b backend)) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) { f(t, newBackend(t)) })
	}
}

func update(t *testing.T, s app.Store, fn func(ctx context.Context, tx app.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s app.Store, fn func(ctx context.Context, tx app.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func mustComment(t *testing.T, id, card, project, author string, at time.Time) comment.Comment {
	t.Helper()
	c, err := comment.New(id, card, project, author, "body of "+id, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func comments(t *testing.T, s app.Store, cardID string) []comment.Comment {
	t.Helper()
	var out []comment.Comment
	view(t, s, func(ctx context.Context, tx app.Tx) error {
		var err error
		out, err = tx.Comments(ctx, cardID, nil, 100000)
		return err
	})
	return out
}

func countType(envs []eventbus.Envelope, typ string) int {
	n := 0
	for _, e := range envs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestCopiesContract(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s := b.store
		view(t, s, func(ctx context.Context, tx app.Tx) error {
			if _, err := tx.User(ctx, "u1"); !errors.Is(err, app.ErrNoCopy) {
				t.Errorf("missing user: %v", err)
			}
			if _, err := tx.Project(ctx, "p1", app.NoLock); !errors.Is(err, app.ErrNoCopy) {
				t.Errorf("missing project: %v", err)
			}
			if _, err := tx.Member(ctx, "p1", "u1", app.NoLock); !errors.Is(err, app.ErrNoCopy) {
				t.Errorf("missing member: %v", err)
			}
			if _, err := tx.Card(ctx, "c1", app.NoLock); !errors.Is(err, app.ErrNoCopy) {
				t.Errorf("missing card: %v", err)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx app.Tx) error {
			return errors.Join(
				tx.SaveUser(ctx, app.UserCopy{ID: "u1", Name: "Ann", Version: 1}),
				tx.SaveUser(ctx, app.UserCopy{ID: "u1", Name: "Ann B", Version: 2}),
				tx.SaveProject(ctx, app.ProjectCopy{ID: "p1", Title: "Apollo", OwnerID: "u1", Version: 1}),
				tx.SaveProject(ctx, app.ProjectCopy{ID: "p1", Title: "Apollo", OwnerID: "u1", Version: 3, Deleted: true}),
				tx.SaveMember(ctx, app.MemberCopy{ProjectID: "p2", UserID: "u3", Version: 1}),
				tx.SaveMember(ctx, app.MemberCopy{ProjectID: "p2", UserID: "u2", Version: 1}),
				tx.SaveMember(ctx, app.MemberCopy{ProjectID: "p2", UserID: "u4", Version: 2, Removed: true}),
				tx.SaveMember(ctx, app.MemberCopy{ProjectID: "p3", UserID: "u5", Version: 1}),
				tx.SaveCard(ctx, app.CardCopy{ID: "c1", ProjectID: "p2", Title: "One", Version: 1}),
				tx.SaveCard(ctx, app.CardCopy{ID: "c1", ProjectID: "p2", Title: "One v2", Version: 2}),
				tx.SaveProject(ctx, app.ProjectCopy{ID: "p4", Title: "Gemini", OwnerID: "u1", Version: 7}),
				tx.SaveCard(ctx, app.CardCopy{ID: "c4", ProjectID: "p4", Title: "Four", Version: 1}),
				tx.SaveMember(ctx, app.MemberCopy{ProjectID: "p4", UserID: "u2", Version: 1}),
			)
		})
		for _, lock := range []app.Lock{app.NoLock, app.Share, app.Exclusive} {
			update(t, s, func(ctx context.Context, tx app.Tx) error {
				if u, err := tx.User(ctx, "u1"); err != nil || u != (app.UserCopy{ID: "u1", Name: "Ann B", Version: 2}) {
					t.Errorf("user %+v %v", u, err)
				}
				if p, err := tx.Project(ctx, "p1", lock); err != nil || p != (app.ProjectCopy{ID: "p1", Title: "Apollo", OwnerID: "u1", Version: 3, Deleted: true}) {
					t.Errorf("project %+v %v", p, err)
				}
				if m, err := tx.Member(ctx, "p2", "u4", lock); err != nil || m != (app.MemberCopy{ProjectID: "p2", UserID: "u4", Version: 2, Removed: true}) {
					t.Errorf("member %+v %v", m, err)
				}
				if c, err := tx.Card(ctx, "c1", lock); err != nil || c != (app.CardCopy{ID: "c1", ProjectID: "p2", Title: "One v2", Version: 2}) {
					t.Errorf("card %+v %v", c, err)
				}
				a, err := tx.CardAccess(ctx, "c1", "u4", lock)
				if err != nil || a.Card.Title != "One v2" || a.ProjectFound || !a.MemberFound || !a.Member.Removed || a.Member.Version != 2 {
					t.Errorf("card access, project p2 missing, u4 kicked: %+v %v", a, err)
				}
				if a, err := tx.CardAccess(ctx, "c1", "nobody", lock); err != nil || a.MemberFound {
					t.Errorf("card access of a non-member: %+v %v", a, err)
				}
				if _, err := tx.CardAccess(ctx, "missing", "u4", lock); !errors.Is(err, app.ErrNoCopy) {
					t.Errorf("card access of a missing card: %v", err)
				}
				a, err = tx.CardAccess(ctx, "c4", "u2", lock)
				if err != nil || !a.ProjectFound || a.Project != (app.ProjectCopy{ID: "p4", Title: "Gemini", OwnerID: "u1", Version: 7}) ||
					!a.MemberFound || a.Member != (app.MemberCopy{ProjectID: "p4", UserID: "u2", Version: 1}) || a.Card.ID != "c4" {
					t.Errorf("card access of a member: %+v %v", a, err)
				}
				ids, err := tx.MemberIDs(ctx, "p2")
				if err != nil || fmt.Sprint(ids) != "[u2 u3]" {
					t.Errorf("live members of p2: %v %v", ids, err)
				}
				return nil
			})
		}
	})
}

func TestCommentsContract(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s := b.store
		base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		// Times with and without fractions, and a tie broken by id, in shuffled order.
		ats := map[string]time.Time{
			"0190-a": base.Add(500 * time.Millisecond),
			"0190-b": base,
			"0190-c": base.Add(123456 * time.Microsecond),
			"0190-d": base.Add(123456 * time.Microsecond),
			"0190-e": base.Add(time.Second + time.Microsecond),
			"0190-f": base.Add(2 * time.Second),
		}
		want := []string{"0190-b", "0190-c", "0190-d", "0190-a", "0190-e", "0190-f"}
		update(t, s, func(ctx context.Context, tx app.Tx) error {
			for _, id := range []string{"0190-e", "0190-a", "0190-d", "0190-b", "0190-f", "0190-c"} {
				if err := tx.AddComment(ctx, mustComment(t, id, "c1", "p1", "u1", ats[id])); err != nil {
					return err
				}
			}
			return errors.Join(
				tx.AddComment(ctx, mustComment(t, "0190-x", "c2", "p1", "u1", base)),
				tx.AddComment(ctx, mustComment(t, "0190-y", "c3", "p2", "u1", base)),
			)
		})
		view(t, s, func(ctx context.Context, tx app.Tx) error {
			got, err := tx.Comment(ctx, "0190-c", app.NoLock)
			if err != nil {
				return err
			}
			if got.ID() != "0190-c" || got.CardID() != "c1" || got.ProjectID() != "p1" || got.AuthorID() != "u1" ||
				got.Body() != "body of 0190-c" || !got.CreatedAt().Equal(ats["0190-c"]) || got.CreatedAt().Location() != time.UTC {
				t.Errorf("round trip: %+v", got)
			}
			if _, err := tx.Comment(ctx, "missing", app.NoLock); !errors.Is(err, comment.ErrNotFound) {
				t.Errorf("missing comment: %v", err)
			}
			// Every page size walks the same order, each comment once.
			for limit := 1; limit <= 7; limit++ {
				var walked []string
				var after *app.Position
				for {
					page, err := tx.Comments(ctx, "c1", after, limit)
					if err != nil {
						return err
					}
					for _, c := range page {
						walked = append(walked, c.ID())
					}
					if len(page) < limit {
						break
					}
					last := page[len(page)-1]
					after = &app.Position{CreatedAt: last.CreatedAt(), ID: last.ID()}
				}
				if fmt.Sprint(walked) != fmt.Sprint(want) {
					t.Errorf("limit %d walked %v, want %v", limit, walked, want)
				}
			}
			return nil
		})

		update(t, s, func(ctx context.Context, tx app.Tx) error {
			if ok, err := tx.RemoveComment(ctx, "0190-a"); !ok || err != nil {
				t.Errorf("remove: %v %v", ok, err)
			}
			if ok, err := tx.RemoveComment(ctx, "0190-a"); ok || err != nil {
				t.Errorf("remove twice: %v %v", ok, err)
			}
			if n, err := tx.RemoveCardComments(ctx, "c1"); n != 5 || err != nil {
				t.Errorf("remove card comments: %d %v", n, err)
			}
			if n, err := tx.RemoveProjectComments(ctx, "p1"); n != 1 || err != nil {
				t.Errorf("remove project comments: %d %v", n, err)
			}
			return nil
		})
		if len(comments(t, s, "c1")) != 0 || len(comments(t, s, "c2")) != 0 || len(comments(t, s, "c3")) != 1 {
			t.Fatal("removals removed the wrong comments")
		}
	})
}

func TestTransactionsAndOutbox(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s := b.store
		ctx := context.Background()
		env, err := contracts.New(contracts.CommentCreated{CommentID: "0190-a", AggregateVersion: 1}, "0190-a", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// A failing transaction leaves neither its comment nor its event behind.
		boom := errors.New("boom")
		err = s.Update(ctx, func(ctx context.Context, tx app.Tx) error {
			if err := tx.AddComment(ctx, mustComment(t, "0190-a", "c1", "p1", "u1", time.Now())); err != nil {
				return err
			}
			if err := tx.Publish(ctx, env); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		if len(comments(t, s, "c1")) != 0 || len(b.events(t)) != 0 {
			t.Fatal("a rolled back transaction left data")
		}
		update(t, s, func(ctx context.Context, tx app.Tx) error {
			return errors.Join(tx.AddComment(ctx, mustComment(t, "0190-a", "c1", "p1", "u1", time.Now())), tx.Publish(ctx, env))
		})
		if envs := b.events(t); len(envs) != 1 || envs[0].ID != env.ID || envs[0].Type != contracts.TypeNewComment {
			t.Fatalf("outbox: %+v", envs)
		}

		// ApplyEvent runs once per event id; a failure records nothing, so the
		// redelivery applies.
		runs := 0
		apply := func(fail bool) (bool, error) {
			return s.ApplyEvent(ctx, "event-1", func(ctx context.Context, tx app.Tx) error {
				runs++
				if err := tx.SaveUser(ctx, app.UserCopy{ID: "u1", Name: "Ann", Version: int64(runs)}); err != nil {
					return err
				}
				if fail {
					return boom
				}
				return nil
			})
		}
		if applied, err := apply(true); applied || !errors.Is(err, boom) {
			t.Fatalf("failing apply: %v %v", applied, err)
		}
		view(t, s, func(ctx context.Context, tx app.Tx) error {
			if _, err := tx.User(ctx, "u1"); !errors.Is(err, app.ErrNoCopy) {
				t.Errorf("failed apply kept its write: %v", err)
			}
			return nil
		})
		if applied, err := apply(false); !applied || err != nil {
			t.Fatalf("apply: %v %v", applied, err)
		}
		if applied, err := apply(false); applied || err != nil || runs != 2 {
			t.Fatalf("duplicate apply: %v %v, fn ran %d times", applied, err, runs)
		}
		if _, err := s.ApplyEvent(ctx, "", func(context.Context, app.Tx) error { return nil }); err == nil {
			t.Fatal("empty event id accepted")
		}
	})
}
