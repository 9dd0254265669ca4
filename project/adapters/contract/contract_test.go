// Package contract runs the one contract suite of the project Store port against
// every adapter: memory, SQLite (the `make run` default) and MariaDB (production).
package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
	"github.com/bugtracker/bugtracker/project/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/project/adapters/memrepo"
	"github.com/bugtracker/bugtracker/project/app"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// backend is a store under test; replica returns a second store over the same data,
// as a second process would have (the memory store is its own replica).
type backend struct {
	store   app.Store
	replica func() app.Store
	events  func(t *testing.T) int
	// envelopes returns the events stored so far, in order.
	envelopes func(t *testing.T) []eventbus.Envelope
}

func backends() map[string]func(t *testing.T) backend {
	sqlBackend := func(kind database.Kind) func(t *testing.T) backend {
		return func(t *testing.T) backend {
			url := dbtest.URL(t, kind)
			db, err := database.Open(context.Background(), url, database.Pool{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			urls.Store(db, url)
			if err := database.Migrate(context.Background(), db, bunrepo.Migrations); err != nil {
				t.Fatal(err)
			}
			return backend{
				store: bunrepo.New(db, nil),
				replica: func() app.Store {
					other, err := database.Open(context.Background(), dbURL(t, db, kind), database.Pool{})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = other.Close() })
					return bunrepo.New(other, nil)
				},
				events: func(t *testing.T) int { return countRows(t, db, "outbox") },
				envelopes: func(t *testing.T) []eventbus.Envelope {
					var raw []string
					if err := db.NewSelect().TableExpr("outbox").Column("envelope").OrderExpr("seq").Scan(context.Background(), &raw); err != nil {
						t.Fatal(err)
					}
					envs := make([]eventbus.Envelope, len(raw))
					for i, r := range raw {
						if err := json.Unmarshal([]byte(r), &envs[i]); err != nil {
							t.Fatal(err)
						}
					}
					return envs
				},
			}
		}
	}
	return map[string]func(t *testing.T) backend{
		"memory": func(*testing.T) backend {
			s := memrepo.New()
			return backend{
				store: s, replica: func() app.Store { return s }, events: func(*testing.T) int { return len(s.Events()) },
				envelopes: func(*testing.T) []eventbus.Envelope { return s.Events() },
			}
		},
		"sqlite":  sqlBackend(database.SQLite),
		"mariadb": sqlBackend(database.MySQL),
	}
}

// urls remembers each test database's URL so a replica can open its own pool.
var urls sync.Map

func dbURL(t *testing.T, db *bun.DB, _ database.Kind) string {
	u, ok := urls.Load(db)
	if !ok {
		t.Fatal("unknown database")
	}
	return u.(string)
}

func countRows(t *testing.T, db *bun.DB, table string) int {
	n, err := db.NewSelect().TableExpr(table).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

type fixture struct {
	b   backend
	app app.Application
	now time.Time
	mu  sync.Mutex
}

func newFixture(t *testing.T, b backend, maxMembers int) *fixture {
	f := &fixture{b: b, now: time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)}
	clock := func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.now = f.now.Add(time.Millisecond)
		return f.now
	}
	f.app = buildApp(b.store, clock, maxMembers)
	for _, u := range []string{"ann", "bob", "cid", "dan"} {
		f.user(t, b.store, u, 1)
	}
	return f
}

func buildApp(s app.Store, clock app.Clock, maxMembers int) app.Application {
	d := app.Deps{Store: s, Clock: clock, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }, MaxMembers: app.MaxMembers(maxMembers)}
	p := app.NewPolicy(s)
	return app.Application{
		CreateProject: app.NewCreateProjectHandler(d), ListProjects: app.NewListProjectsHandler(d),
		GetProject: app.NewGetProjectHandler(d, p), UpdateProject: app.NewUpdateProjectHandler(d, p),
		DeleteProject: app.NewDeleteProjectHandler(d, p), AddMember: app.NewAddMemberHandler(d, p),
		ListMembers: app.NewListMembersHandler(d, p), RemoveMember: app.NewRemoveMemberHandler(d, p),
		CreateCard: app.NewCreateCardHandler(d, p), ListCards: app.NewListCardsHandler(d, p),
		GetCard: app.NewGetCardHandler(d, p), UpdateCard: app.NewUpdateCardHandler(d, p),
		DeleteCard: app.NewDeleteCardHandler(d, p), RecordUser: app.NewRecordUserHandler(d),
		RecordComment: app.NewRecordCommentHandler(d),
	}
}

func (f *fixture) user(t *testing.T, s app.Store, id string, version int64) {
	t.Helper()
	name := strings.ToUpper(id[:1]) + id[1:]
	if _, err := s.ApplyUser(context.Background(), uuid.NewString(), app.UserCopy{ID: id, Name: name, Email: id + "@example.com", Version: version}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) project(t *testing.T, owner, title string) project.Project {
	t.Helper()
	p, err := f.app.CreateProject.Handle(context.Background(), app.CreateProject{CallerID: owner, Title: title})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) card(t *testing.T, p project.Project, caller, title, status string) project.Card {
	t.Helper()
	c, err := f.app.CreateCard.Handle(context.Background(), app.CreateCard{CallerID: caller, ProjectID: p.ID(), Title: title, Status: status})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func forEach(t *testing.T, f func(t *testing.T, b backend)) {
	for name, nb := range backends() {
		t.Run(name, func(t *testing.T) { f(t, nb(t)) })
	}
}

func TestProjectsAndMembersContract(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newFixture(t, b, 500)
		p := f.project(t, "ann", "Login 100%_done")
		f.project(t, "ann", "login 100xxdone")
		f.project(t, "bob", "Bob's")
		if b.events(t) != 3 {
			t.Fatalf("events stored: %d", b.events(t))
		}
		got, access, err := b.store.Access(ctx, p.ID(), "ann")
		if err != nil || access != project.Owner || got.Title() != p.Title() || !got.CreatedAt().Equal(p.CreatedAt()) || got.Version() != 1 {
			t.Fatalf("round trip: %+v %v %v (want createdAt %v)", got, access, err, p.CreatedAt())
		}
		if _, a, _ := b.store.Access(ctx, p.ID(), "bob"); a != project.Stranger {
			t.Fatalf("bob before joining: %v", a)
		}
		if _, _, err := b.store.Access(ctx, "missing", "ann"); !errors.Is(err, project.ErrProjectNotFound) {
			t.Fatalf("missing project: %v", err)
		}
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "bob"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "cid"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "bob"}); !errors.Is(err, project.ErrAlreadyMember) {
			t.Fatalf("twice: %v", err)
		}
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "zed"}); !errors.Is(err, project.ErrUnknownUser) {
			t.Fatalf("unknown user: %v", err)
		}
		if _, a, _ := b.store.Access(ctx, p.ID(), "bob"); a != project.MemberAccess {
			t.Fatalf("bob after joining: %v", a)
		}

		list, total, err := b.store.ListProjects(ctx, "ann", "", 0, 10)
		if err != nil || total != 2 || list[0].ID() != p.ID() {
			t.Fatalf("ann's projects: %v %d %v", list, total, err)
		}
		if _, total, _ := b.store.ListProjects(ctx, "ann", "100%_", 0, 10); total != 1 {
			t.Fatalf("%% and _ must be literal: %d", total)
		}
		if _, total, _ := b.store.ListProjects(ctx, "ann", "LOGIN", 0, 10); total != 2 {
			t.Fatalf("case-insensitive: %d", total)
		}
		if list, total, _ := b.store.ListProjects(ctx, "bob", "", 0, 10); total != 2 || list[0].ID() != p.ID() {
			t.Fatalf("bob's projects (member of one, owner of one): %d", total)
		}
		if list, total, _ := b.store.ListProjects(ctx, "ann", "", 1, 1); total != 2 || len(list) != 1 || list[0].Title() != "login 100xxdone" {
			t.Fatalf("offset page: %v %d", list, total)
		}

		ms, total, err := b.store.ListMembers(ctx, p.ID(), 0, 10)
		if err != nil || total != 3 || ms[0].UserID != "ann" || ms[0].Role != project.RoleOwner || ms[1].UserID != "bob" ||
			ms[1].Name != "Bob" || ms[1].Email != "bob@example.com" || ms[2].UserID != "cid" {
			t.Fatalf("members: %+v %d %v", ms, total, err)
		}
		if err := f.app.RemoveMember.Handle(ctx, "ann", p.ID(), "bob"); err != nil {
			t.Fatal(err)
		}
		if err := f.app.RemoveMember.Handle(ctx, "ann", p.ID(), "bob"); !errors.Is(err, project.ErrMemberNotFound) {
			t.Fatalf("kick twice: %v", err)
		}
		if err := f.app.RemoveMember.Handle(ctx, "ann", p.ID(), "ann"); !errors.Is(err, project.ErrOwnerNotRemovable) {
			t.Fatalf("kick owner: %v", err)
		}
		if _, a, _ := b.store.Access(ctx, p.ID(), "bob"); a != project.Stranger {
			t.Fatalf("bob after the kick: %v", a)
		}
		if _, total, _ := b.store.ListProjects(ctx, "bob", "", 0, 10); total != 1 {
			t.Fatalf("bob lists the project he was kicked from: %d", total)
		}
		// Re-added after the kick: the membership continues (version 3) and lists again.
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "bob"}); err != nil {
			t.Fatalf("re-add: %v", err)
		}
		if _, a, _ := b.store.Access(ctx, p.ID(), "bob"); a != project.MemberAccess {
			t.Fatalf("bob after the re-add: %v", a)
		}
		if err := f.app.RemoveMember.Handle(ctx, "ann", p.ID(), "bob"); err != nil {
			t.Fatal(err)
		}
		var versions []int64
		for _, env := range b.envelopes(t) {
			if env.AggregateID != contracts.MembershipID(p.ID(), "bob") {
				continue
			}
			ev, err := contracts.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			_, v := ev.(contracts.Aggregated).AggregateRef()
			versions = append(versions, v)
		}
		if fmt.Sprint(versions) != "[1 2 3 4]" {
			t.Fatalf("membership versions of add, kick, re-add, kick: %v", versions)
		}

		title := "Renamed"
		up, err := f.app.UpdateProject.Handle(ctx, app.UpdateProject{CallerID: "ann", ProjectID: p.ID(), Title: &title})
		if err != nil || up.Version() != 2 {
			t.Fatalf("update: %v %v", up, err)
		}
		if got, _, _ := b.store.Access(ctx, p.ID(), "ann"); got.Title() != "Renamed" || got.Version() != 2 || !got.UpdatedAt().Equal(up.UpdatedAt()) {
			t.Fatalf("update not stored: %+v", got)
		}
		c := f.card(t, p, "cid", "c", "")
		if err := f.app.DeleteProject.Handle(ctx, "ann", p.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Card(ctx, c.ID()); !errors.Is(err, project.ErrCardNotFound) {
			t.Fatalf("card survived its project: %v", err)
		}
		if _, total, _ := b.store.ListMembers(ctx, p.ID(), 0, 10); total != 0 {
			t.Fatalf("members survived their project: %d", total)
		}
		if _, total, _ := b.store.ListProjects(ctx, "cid", "", 0, 10); total != 0 {
			t.Fatalf("cid still lists the deleted project: %d", total)
		}
	})
}

func TestCardsContract(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newFixture(t, b, 500)
		p := f.project(t, "ann", "P")
		q := f.project(t, "ann", "Q")
		var ids []string
		for i := range 7 {
			ids = append(ids, f.card(t, p, "ann", fmt.Sprintf("c%d", i), []string{"todo", "done"}[i%2]).ID())
		}
		f.card(t, q, "ann", "other project", "")
		got, err := b.store.Card(ctx, ids[0])
		if err != nil || got.Title() != "c0" || got.Status() != project.StatusTodo || got.CreatorID() != "ann" || got.Version() != 1 ||
			got.CreatedAt().Nanosecond()%1000 != 0 {
			t.Fatalf("card round trip: %+v %v", got, err)
		}
		all, err := b.store.ListCards(ctx, app.CardFilter{ProjectID: p.ID()}, 100)
		if err != nil || len(all) != 7 {
			t.Fatalf("list: %d %v", len(all), err)
		}
		for i, c := range all {
			if c.ID() != ids[i] {
				t.Fatalf("order at %d: %s", i, c.Title())
			}
		}
		after := &app.CardPosition{CreatedAt: all[2].CreatedAt(), ID: all[2].ID()}
		rest, _ := b.store.ListCards(ctx, app.CardFilter{ProjectID: p.ID(), After: after}, 2)
		if len(rest) != 2 || rest[0].ID() != ids[3] || rest[1].ID() != ids[4] {
			t.Fatalf("keyset page: %v", rest)
		}
		todo, _ := b.store.ListCards(ctx, app.CardFilter{ProjectID: p.ID(), Status: project.StatusTodo, After: after}, 10)
		if len(todo) != 2 || todo[0].ID() != ids[4] || todo[1].ID() != ids[6] {
			t.Fatalf("status filter after a position: %v", todo)
		}
		// Two cards at the same instant order by id.
		same := time.Date(2026, 5, 5, 5, 5, 5, 5000, time.UTC)
		fixed := buildApp(b.store, func() time.Time { return same }, 500)
		c1, _ := fixed.CreateCard.Handle(ctx, app.CreateCard{CallerID: "ann", ProjectID: q.ID(), Title: "a"})
		c2, _ := fixed.CreateCard.Handle(ctx, app.CreateCard{CallerID: "ann", ProjectID: q.ID(), Title: "b"})
		page, _ := b.store.ListCards(ctx, app.CardFilter{ProjectID: q.ID(), After: &app.CardPosition{CreatedAt: same, ID: c1.ID()}}, 10)
		if len(page) != 1 || page[0].ID() != c2.ID() {
			t.Fatalf("tie on createdAt: %v", page)
		}

		status, title := "in_progress", "edited"
		u, err := f.app.UpdateCard.Handle(ctx, app.UpdateCard{CallerID: "ann", CardID: ids[0], Status: &status, Title: &title})
		if err != nil || u.Version() != 2 {
			t.Fatalf("update: %v %v", u, err)
		}
		if got, _ := b.store.Card(ctx, ids[0]); got.Status() != project.StatusInProgress || got.Title() != "edited" || got.Version() != 2 {
			t.Fatalf("update not stored: %+v", got)
		}
		if err := f.app.DeleteCard.Handle(ctx, "ann", ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Card(ctx, ids[0]); !errors.Is(err, project.ErrCardNotFound) {
			t.Fatalf("deleted card: %v", err)
		}
		if err := f.app.DeleteCard.Handle(ctx, "ann", ids[0]); !errors.Is(err, project.ErrCardNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})
}

func TestUserCopyVersionRule(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newFixture(t, b, 500)
		if ok, err := b.store.ApplyUser(ctx, "e2", app.UserCopy{ID: "zed", Name: "Zed new", Email: "new@x", Version: 2}); !ok || err != nil {
			t.Fatalf("apply: %v %v", ok, err)
		}
		if ok, _ := b.store.ApplyUser(ctx, "e2", app.UserCopy{ID: "zed", Name: "again", Version: 9}); ok {
			t.Fatal("the same event applied twice")
		}
		if _, err := b.store.ApplyUser(ctx, "e1", app.UserCopy{ID: "zed", Name: "Zed old", Email: "old@x", Version: 1}); err != nil {
			t.Fatal(err)
		}
		p := f.project(t, "ann", "P")
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "zed"}); err != nil {
			t.Fatal(err)
		}
		ms, _, _ := b.store.ListMembers(ctx, p.ID(), 1, 1)
		if ms[0].Name != "Zed new" || ms[0].Email != "new@x" {
			t.Fatalf("an older newUser won: %+v", ms[0])
		}
		if _, err := b.store.ApplyUser(ctx, "e3", app.UserCopy{ID: "zed", Name: "Zed 3", Email: "3@x", Version: 3}); err != nil {
			t.Fatal(err)
		}
		if ms, _, _ := b.store.ListMembers(ctx, p.ID(), 1, 1); ms[0].Name != "Zed 3" {
			t.Fatalf("a newer newUser lost: %+v", ms[0])
		}
	})
}

type commentEvent struct {
	id, comment string
	live        bool
}

func totalOf(t *testing.T, s app.Store, cardID string) int {
	c, err := s.Card(context.Background(), cardID)
	if err != nil {
		t.Fatal(err)
	}
	return c.TotalComment()
}

func TestCommentCountContract(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newFixture(t, b, 500)
		c := f.card(t, f.project(t, "ann", "P"), "ann", "c", "")
		steps := []struct {
			ev   commentEvent
			want int
		}{
			{commentEvent{"e1", "k1", true}, 1},
			{commentEvent{"e1", "k1", true}, 1},   // same event again
			{commentEvent{"e1b", "k1", true}, 1},  // another newComment of the same comment
			{commentEvent{"e2", "k2", true}, 2},   //
			{commentEvent{"e3", "k3", false}, 2},  // deletion before creation
			{commentEvent{"e4", "k3", true}, 2},   // the creation then never counts
			{commentEvent{"e5", "k2", false}, 1},  //
			{commentEvent{"e6", "k2", false}, 1},  // deleted twice
			{commentEvent{"e7", "k1", false}, 0},  //
			{commentEvent{"e8", "k1", false}, 0},  // never negative
			{commentEvent{"e9", "k1", true}, 0},   // no resurrection
			{commentEvent{"e10", "kx", false}, 0}, // unknown comment
		}
		for i, s := range steps {
			if _, err := b.store.ApplyComment(ctx, s.ev.id, s.ev.comment, c.ID(), s.ev.live); err != nil {
				t.Fatal(err)
			}
			if got := totalOf(t, b.store, c.ID()); got != s.want {
				t.Fatalf("step %d (%+v): totalComment %d, want %d", i, s.ev, got, s.want)
			}
		}
		// A card update does not overwrite the count.
		title := "t"
		if _, err := f.app.UpdateCard.Handle(ctx, app.UpdateCard{CallerID: "ann", CardID: c.ID(), Title: &title}); err != nil {
			t.Fatal(err)
		}
		_, _ = b.store.ApplyComment(ctx, "e11", "k4", c.ID(), true)
		if got := totalOf(t, b.store, c.ID()); got != 1 {
			t.Fatalf("after an update: %d", got)
		}
	})
}

// TestConcurrentCommentConsumers delivers every event to two replicas at once, as
// after a claim or a republish: creations and deletions of 40 comments, half of the
// deletions before their creations. The count ends exact on every store.
func TestConcurrentCommentConsumers(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, 500)
		c := f.card(t, f.project(t, "ann", "P"), "ann", "c", "")
		replicas := []app.Store{b.store, b.replica()}
		var evs []commentEvent
		for i := range 40 {
			k := fmt.Sprintf("k%d", i)
			create, del := commentEvent{"c-" + k, k, true}, commentEvent{"d-" + k, k, false}
			switch i % 4 {
			case 0: // created, then deleted
				evs = append(evs, create, del)
			case 1: // deleted first
				evs = append(evs, del, create)
			default: // stays live
				evs = append(evs, create)
			}
		}
		var wg sync.WaitGroup
		var failures atomic.Int32
		for _, r := range replicas {
			for w := range 2 { // two workers per replica, each taking every other event
				wg.Go(func() {
					for i := w; i < len(evs); i += 2 {
						ev := evs[i]
						if _, err := r.ApplyComment(context.Background(), ev.id, ev.comment, c.ID(), ev.live); err != nil {
							failures.Add(1)
							t.Errorf("apply %+v: %v", ev, err)
						}
					}
				})
			}
		}
		wg.Wait()
		if got := totalOf(t, b.store, c.ID()); got != 20 || failures.Load() != 0 {
			t.Fatalf("totalComment %d, want 20 (%d failures)", got, failures.Load())
		}
	})
}

// TestConcurrentAddMember: the same user added by 10 requests at once joins once, and
// 10 different users racing for 3 free places fill exactly 3 (the project row lock
// makes the count and the insert one step).
func TestConcurrentAddMember(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newFixture(t, b, 4)
		p := f.project(t, "ann", "P")
		var ok, dup atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				_, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "bob"})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, project.ErrAlreadyMember):
					dup.Add(1)
				default:
					t.Errorf("add: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || dup.Load() != 9 {
			t.Fatalf("same user: %d added, %d duplicates", ok.Load(), dup.Load())
		}
		ok.Store(0)
		var full atomic.Int32
		for i := range 10 {
			id := fmt.Sprintf("racer%d", i)
			f.user(t, b.store, id, 1)
			wg.Go(func() {
				_, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: id})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, project.ErrTooManyMembers):
					full.Add(1)
				default:
					t.Errorf("add: %v", err)
				}
			})
		}
		wg.Wait()
		if _, total, _ := b.store.ListMembers(ctx, p.ID(), 0, 100); ok.Load() != 3 || full.Load() != 7 || total != 5 {
			t.Fatalf("bound 4: %d added, %d refused, %d in the list (owner + bob + 3)", ok.Load(), full.Load(), total)
		}
	})
}

// TestKickRacesCardCreation: cards created while the member is kicked are either
// committed before the kick or refused after it; none is created by a member whose
// kick committed first (both lock the project row).
func TestKickRacesCardCreation(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newFixture(t, b, 500)
		p := f.project(t, "ann", "P")
		if _, err := f.app.AddMember.Handle(ctx, app.AddMember{CallerID: "ann", ProjectID: p.ID(), UserID: "bob"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var created sync.Map
		for i := range 8 {
			wg.Go(func() {
				c, err := f.app.CreateCard.Handle(ctx, app.CreateCard{CallerID: "bob", ProjectID: p.ID(), Title: fmt.Sprint(i)})
				if err == nil {
					created.Store(c.ID(), c.CreatedAt())
				} else if !errors.Is(err, project.ErrProjectNotFound) {
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Go(func() {
			if err := f.app.RemoveMember.Handle(ctx, "ann", p.ID(), "bob"); err != nil {
				t.Errorf("kick: %v", err)
			}
		})
		wg.Wait()
		if _, err := f.app.CreateCard.Handle(ctx, app.CreateCard{CallerID: "bob", ProjectID: p.ID(), Title: "late"}); !errors.Is(err, project.ErrProjectNotFound) {
			t.Fatalf("kicked member created a card: %v", err)
		}
		n := 0
		created.Range(func(any, any) bool { n++; return true })
		cards, _ := b.store.ListCards(ctx, app.CardFilter{ProjectID: p.ID()}, 100)
		if len(cards) != n {
			t.Fatalf("%d cards stored, %d reported created", len(cards), n)
		}
	})
}

// TestWriteIsAtomic: a transaction that fails after writing state and events leaves
// neither behind, so no event ever describes a change that did not happen (and the
// reverse, since both commit together).
func TestWriteIsAtomic(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		p, err := project.NewProject("0190a000-0000-7000-8000-00000000aaaa", "T", "", "ann", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		env, err := contracts.New(contracts.ProjectCreated{ProjectID: p.ID(), Title: "T", OwnerID: "ann", AggregateVersion: 1}, p.ID(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = b.store.Write(ctx, func(ctx context.Context, tx app.Tx) error {
			if err := tx.InsertProject(ctx, p); err != nil {
				return err
			}
			if err := tx.Publish(ctx, env); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("write: %v", err)
		}
		if _, _, err := b.store.Access(ctx, p.ID(), "ann"); !errors.Is(err, project.ErrProjectNotFound) {
			t.Fatalf("a failed write left its project: %v", err)
		}
		if n := b.events(t); n != 0 {
			t.Fatalf("a failed write left %d events", n)
		}
	})
}
