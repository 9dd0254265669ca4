package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/comment/ports/stream"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/platform/servicetest"
)

func newApp(s app.Store) app.Application {
	ids := func() string { return uuid.Must(uuid.NewV7()).String() }
	return app.Application{
		CreateComment: app.NewCreateCommentHandler(s, time.Now, ids),
		ListComments:  app.NewListCommentsHandler(s), GetComment: app.NewGetCommentHandler(s),
		DeleteComment: app.NewDeleteCommentHandler(s, time.Now),
		ApplyUser:     app.NewApplyUserHandler(s), ApplyProject: app.NewApplyProjectHandler(s),
		ApplyMembership: app.NewApplyMembershipHandler(s), ApplyCard: app.NewApplyCardHandler(s),
	}
}

// feeder delivers envelopes to the stream handler, as the subscriber would.
type feeder struct {
	t *testing.T
	h *stream.Handler
}

func (f feeder) env(e contracts.Aggregated) eventbus.Envelope {
	id, _ := e.AggregateRef()
	env, err := contracts.New(e, id, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return env
}

func (f feeder) deliver(envs ...eventbus.Envelope) {
	f.t.Helper()
	for _, env := range envs {
		if err := f.h.Handle(context.Background(), &eventbus.Message{Envelope: env, Deliveries: 1}); err != nil {
			f.t.Fatalf("%s v%d: %v", env.Type, env.Version, err)
		}
	}
}

// send delivers fresh envelopes of the events, each twice (a redelivery).
func (f feeder) send(events ...contracts.Aggregated) {
	f.t.Helper()
	for _, e := range events {
		env := f.env(e)
		f.deliver(env, env)
	}
}

func setup(t *testing.T, b backend) (app.Application, feeder) {
	a := newApp(b.store)
	return a, feeder{t: t, h: stream.NewHandler(a, servicetest.Discard())}
}

// project gives p1 (owner ann, members bob and carol) with card c1.
func project(f feeder) {
	f.send(
		contracts.UserRegistered{UserID: "ann", Name: "Ann", AggregateVersion: 1},
		contracts.UserRegistered{UserID: "bob", Name: "Bob", AggregateVersion: 1},
		contracts.ProjectCreated{ProjectID: "p1", Title: "Apollo", OwnerID: "ann", AggregateVersion: 1},
		contracts.MemberAdded{ProjectID: "p1", UserID: "bob", AggregateVersion: 1},
		contracts.MemberAdded{ProjectID: "p1", UserID: "carol", AggregateVersion: 1},
		contracts.CardCreated{CardID: "c1", ProjectID: "p1", Title: "Crash", AggregateVersion: 1},
	)
}

func read[T any](t *testing.T, s app.Store, f func(ctx context.Context, tx app.Tx) (T, error)) (T, error) {
	t.Helper()
	var v T
	err := s.View(context.Background(), func(ctx context.Context, tx app.Tx) error {
		var err error
		v, err = f(ctx, tx)
		return err
	})
	return v, err
}

func TestUserEventsDuplicatedAndOutOfOrder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		_, f := setup(t, b)
		v2 := f.env(contracts.UserRegistered{UserID: "u1", Name: "Ann v2", AggregateVersion: 2})
		v1 := f.env(contracts.UserRegistered{UserID: "u1", Name: "Ann", AggregateVersion: 1})
		f.deliver(v2, v1, v2, v1)
		u, err := read(t, b.store, func(ctx context.Context, tx app.Tx) (app.UserCopy, error) { return tx.User(ctx, "u1") })
		if err != nil || u.Name != "Ann v2" || u.Version != 2 {
			t.Fatalf("user %+v %v", u, err)
		}
	})
}

func TestProjectEventsDuplicatedAndOutOfOrder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		a, f := setup(t, b)
		get := func(id string) app.ProjectCopy {
			p, err := read(t, b.store, func(ctx context.Context, tx app.Tx) (app.ProjectCopy, error) { return tx.Project(ctx, id, app.NoLock) })
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		// updateProject overtakes newProject; both arrive twice.
		f.send(contracts.ProjectUpdated{ProjectID: "p1", Title: "Apollo 2", OwnerID: "ann", AggregateVersion: 2},
			contracts.ProjectCreated{ProjectID: "p1", Title: "Apollo", OwnerID: "ann", AggregateVersion: 1})
		if p := get("p1"); p.Title != "Apollo 2" || p.Version != 2 || p.Deleted {
			t.Fatalf("after the late newProject: %+v", p)
		}
		f.send(contracts.CardCreated{CardID: "c1", ProjectID: "p1", Title: "x", AggregateVersion: 1})
		if _, err := a.CreateComment.Handle(context.Background(), app.CreateComment{CallerID: "ann", CardID: "c1", Body: "hi"}); err != nil {
			t.Fatal(err)
		}
		// deleteProject (twice) removes its comments; a later updateProject, even with
		// a higher version, does not resurrect it.
		f.send(contracts.ProjectDeleted{ProjectID: "p1", Title: "Apollo 2", OwnerID: "ann", AggregateVersion: 3},
			contracts.ProjectUpdated{ProjectID: "p1", Title: "Zombie", OwnerID: "ann", AggregateVersion: 4})
		if p := get("p1"); !p.Deleted || p.Title != "Apollo 2" || p.Version != 3 {
			t.Fatalf("after deleteProject and a late update: %+v", p)
		}
		if n := len(comments(t, b.store, "c1")); n != 0 {
			t.Fatalf("deleteProject left %d comments", n)
		}
		if _, err := a.CreateComment.Handle(context.Background(), app.CreateComment{CallerID: "ann", CardID: "c1", Body: "hi"}); !errors.Is(err, comment.ErrNotFound) {
			t.Fatalf("comment in a deleted project: %v", err)
		}
		// A deletion that arrives before the creation leaves a tombstone the
		// creation cannot pass.
		f.send(contracts.ProjectDeleted{ProjectID: "p2", Title: "Gemini", OwnerID: "bob", AggregateVersion: 2},
			contracts.ProjectCreated{ProjectID: "p2", Title: "Gemini", OwnerID: "bob", AggregateVersion: 1})
		if p := get("p2"); !p.Deleted || p.Version != 2 || p.OwnerID != "bob" {
			t.Fatalf("deleteProject before newProject: %+v", p)
		}
	})
}

func TestMembershipEventsDuplicatedAndOutOfOrder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		a, f := setup(t, b)
		project(f)
		create := func(user string) error {
			_, err := a.CreateComment.Handle(context.Background(), app.CreateComment{CallerID: user, CardID: "c1", Body: "hi"})
			return err
		}
		// dave's kick (v2) arrives before his addition (v1): he never gets in.
		removed := f.env(contracts.MemberRemoved{ProjectID: "p1", UserID: "dave", AggregateVersion: 2})
		added := f.env(contracts.MemberAdded{ProjectID: "p1", UserID: "dave", AggregateVersion: 1})
		f.deliver(removed, added, removed, added)
		if err := create("dave"); !errors.Is(err, comment.ErrNotFound) {
			t.Fatalf("kicked before added: %v", err)
		}
		// A re-add (v3) lets him in; redelivering the old kick does not throw him out.
		readd := f.env(contracts.MemberAdded{ProjectID: "p1", UserID: "dave", AggregateVersion: 3})
		f.deliver(readd, removed, readd)
		if err := create("dave"); err != nil {
			t.Fatalf("re-added member: %v", err)
		}
		ids, _ := read(t, b.store, func(ctx context.Context, tx app.Tx) ([]string, error) { return tx.MemberIDs(ctx, "p1") })
		if fmt.Sprint(ids) != "[bob carol dave]" {
			t.Fatalf("members %v", ids)
		}
		// Kicking bob takes effect at once for creation, listing and reading.
		if err := create("bob"); err != nil {
			t.Fatal(err)
		}
		f.send(contracts.MemberRemoved{ProjectID: "p1", UserID: "bob", AggregateVersion: 2})
		if err := create("bob"); !errors.Is(err, comment.ErrNotFound) {
			t.Fatalf("kicked member creates: %v", err)
		}
		if _, err := a.ListComments.Handle(context.Background(), app.ListComments{CallerID: "bob", CardID: "c1", Limit: 20}); !errors.Is(err, comment.ErrNotFound) {
			t.Fatalf("kicked member lists: %v", err)
		}
	})
}

func TestCardEventsDuplicatedAndOutOfOrder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		a, f := setup(t, b)
		project(f)
		get := func(id string) app.CardCopy {
			c, err := read(t, b.store, func(ctx context.Context, tx app.Tx) (app.CardCopy, error) { return tx.Card(ctx, id, app.NoLock) })
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// The newest state wins whatever the order: changeCardStatus v3, then
		// updateCard v2, then newCard v1, each twice.
		f.send(contracts.CardStatusChanged{CardID: "c2", ProjectID: "p1", Title: "T3", To: "done", AggregateVersion: 3},
			contracts.CardUpdated{CardID: "c2", ProjectID: "p1", Title: "T2", AggregateVersion: 2},
			contracts.CardCreated{CardID: "c2", ProjectID: "p1", Title: "T1", AggregateVersion: 1})
		if c := get("c2"); c.Title != "T3" || c.Version != 3 || c.Deleted {
			t.Fatalf("card after out-of-order updates: %+v", c)
		}
		// An updateCard and changeCardStatus of one PATCH share a version: harmless.
		f.send(contracts.CardUpdated{CardID: "c2", ProjectID: "p1", Title: "T4", AggregateVersion: 4},
			contracts.CardStatusChanged{CardID: "c2", ProjectID: "p1", Title: "T4", To: "todo", AggregateVersion: 4})
		if c := get("c2"); c.Title != "T4" || c.Version != 4 {
			t.Fatalf("card after one PATCH: %+v", c)
		}
		for _, card := range []string{"c1", "c2"} {
			if _, err := a.CreateComment.Handle(context.Background(), app.CreateComment{CallerID: "bob", CardID: card, Body: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
		// deleteCard (twice) removes c2's comments only; late updates do not bring
		// the card back.
		f.send(contracts.CardDeleted{CardID: "c2", ProjectID: "p1", AggregateVersion: 5},
			contracts.CardUpdated{CardID: "c2", ProjectID: "p1", Title: "Zombie", AggregateVersion: 6},
			contracts.CardStatusChanged{CardID: "c2", ProjectID: "p1", Title: "Zombie", AggregateVersion: 3})
		if c := get("c2"); !c.Deleted || c.Title != "T4" || c.Version != 5 {
			t.Fatalf("card after deleteCard and late updates: %+v", c)
		}
		if len(comments(t, b.store, "c2")) != 0 || len(comments(t, b.store, "c1")) != 1 {
			t.Fatal("deleteCard removed the wrong comments")
		}
		if _, err := a.CreateComment.Handle(context.Background(), app.CreateComment{CallerID: "bob", CardID: "c2", Body: "hi"}); !errors.Is(err, comment.ErrNotFound) {
			t.Fatalf("comment on a deleted card: %v", err)
		}
		// deleteCard before newCard: the tombstone holds.
		f.send(contracts.CardDeleted{CardID: "c3", ProjectID: "p1", AggregateVersion: 2},
			contracts.CardCreated{CardID: "c3", ProjectID: "p1", Title: "T1", AggregateVersion: 1})
		if c := get("c3"); !c.Deleted {
			t.Fatalf("deleteCard before newCard: %+v", c)
		}
	})
}

func TestUnknownEventVersionIsAnError(t *testing.T) {
	_, f := setup(t, backends()["memory"](t))
	env := f.env(contracts.CardCreated{CardID: "c1", ProjectID: "p1", AggregateVersion: 1})
	env.Version = 99
	if err := f.h.Handle(context.Background(), &eventbus.Message{Envelope: env}); !errors.Is(err, contracts.ErrUnknownEvent) {
		t.Fatalf("unknown version: %v", err)
	}
}

// TestConcurrentDeletesPublishOnce races deletions of one comment by its author and
// the owner: exactly one succeeds and exactly one deleteComment is stored, so the
// project service's count drops once.
func TestConcurrentDeletesPublishOnce(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		a, f := setup(t, b)
		project(f)
		ctx := context.Background()
		for round := range 5 {
			c, err := a.CreateComment.Handle(ctx, app.CreateComment{CallerID: "bob", CardID: "c1", Body: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			var ok, notFound atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					err := a.DeleteComment.Handle(ctx, []string{"ann", "bob"}[i%2], c.ID())
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, comment.ErrNotFound):
						notFound.Add(1)
					default:
						t.Errorf("delete: %v", err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 1 || notFound.Load() != 7 {
				t.Fatalf("round %d: %d deletions succeeded, %d not found", round, ok.Load(), notFound.Load())
			}
		}
		if n := countType(b.events(t), contracts.TypeDeleteComment); n != 5 {
			t.Fatalf("deleteComment events: %d, want 5", n)
		}
	})
}

// TestCreateRacingCardDeletion races comment creations against the card's deletion:
// every creation either fails with ErrNotFound or lands before the deletion, which
// removes it. No comment outlives its card.
func TestCreateRacingCardDeletion(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		a, f := setup(t, b)
		project(f)
		ctx := context.Background()
		for round := range 15 {
			card := fmt.Sprintf("race-%d", round)
			f.send(contracts.CardCreated{CardID: card, ProjectID: "p1", Title: "x", AggregateVersion: 1})
			del := f.env(contracts.CardDeleted{CardID: card, ProjectID: "p1", AggregateVersion: 2})
			var wg sync.WaitGroup
			startGate := make(chan struct{})
			for i := range 6 {
				wg.Go(func() {
					<-startGate
					for range 4 {
						_, err := a.CreateComment.Handle(ctx, app.CreateComment{CallerID: []string{"ann", "bob"}[i%2], CardID: card, Body: "hi"})
						if err != nil && !errors.Is(err, comment.ErrNotFound) {
							t.Errorf("create: %v", err)
						}
					}
				})
			}
			wg.Go(func() {
				<-startGate
				time.Sleep(time.Duration(round%4) * time.Millisecond)
				if err := f.h.Handle(ctx, &eventbus.Message{Envelope: del}); err != nil {
					t.Errorf("deleteCard: %v", err)
				}
			})
			close(startGate)
			wg.Wait()
			if n := len(comments(t, b.store, card)); n != 0 {
				t.Fatalf("round %d: %d comments outlived their card", round, n)
			}
		}
	})
}

// TestConcurrentCreatesAndDeletesBalance is the comment side of totalComment: after
// concurrent creations and deletions, newComment minus deleteComment events equals
// the live comments.
func TestConcurrentCreatesAndDeletesBalance(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		a, f := setup(t, b)
		project(f)
		ctx := context.Background()
		ids := make(chan string, 200)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 10 {
					c, err := a.CreateComment.Handle(ctx, app.CreateComment{CallerID: []string{"ann", "bob"}[i%2], CardID: "c1", Body: "hi"})
					if err != nil {
						t.Errorf("create: %v", err)
						return
					}
					ids <- c.ID()
				}
			})
		}
		for range 4 {
			wg.Go(func() {
				for range 8 {
					id := <-ids
					if err := a.DeleteComment.Handle(ctx, "ann", id); err != nil {
						t.Errorf("delete: %v", err)
					}
				}
			})
		}
		wg.Wait()
		envs := b.events(t)
		live := len(comments(t, b.store, "c1"))
		if created, deleted := countType(envs, contracts.TypeNewComment), countType(envs, contracts.TypeDeleteComment); created != 80 || deleted != 32 || live != 48 {
			t.Fatalf("created %d, deleted %d, live %d", created, deleted, live)
		}
	})
}
