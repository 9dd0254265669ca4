// Package contract runs the one contract suite of the notif ports against every
// adapter: memory and MongoDB (FerretDB here, a real MongoDB elsewhere).
package contract

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/notif/adapters/memrepo"
	"github.com/bugtracker/bugtracker/notif/adapters/mongorepo"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
	"github.com/bugtracker/bugtracker/platform/mongox"
)

type store interface {
	app.Notifications
	app.Users
	UserCopy(ctx context.Context, id string) (app.UserCopy, bool, error)
}

func backends() map[string]func(t *testing.T) store {
	return map[string]func(t *testing.T) store{
		"memory": func(*testing.T) store { return memrepo.New() },
		"mongo": func(t *testing.T) store {
			uri := os.Getenv("MONGO_URI")
			if uri == "" {
				if os.Getenv("CI") != "" {
					t.Fatal("MONGO_URI must be set in CI")
				}
				t.Skip("MONGO_URI not set")
			}
			ctx := context.Background()
			client, err := mongox.Connect(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			db := client.Database("bt_test_" + hex.EncodeToString(b))
			t.Cleanup(func() {
				_ = db.Drop(context.Background())
				_ = client.Disconnect(context.Background())
			})
			r := mongorepo.New(db)
			for range 2 { // a restart ensures the indexes again
				if err := r.EnsureIndexes(ctx); err != nil {
					t.Fatal(err)
				}
			}
			return r
		},
	}
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mk(t *testing.T, id, user string, minute int) notification.Notification {
	t.Helper()
	n, err := notification.New(id, user, notification.CardCreated, "card "+id, "actor",
		notification.Refs{ProjectID: "p1", CardID: "c-" + id}, base.Add(time.Duration(minute)*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNotificationsContract(t *testing.T) {
	for name, newStore := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)

			t.Run("idempotent per event and recipient", func(t *testing.T) {
				first := []notification.Notification{mk(t, "a1", "alice", 1), mk(t, "b1", "bob", 1)}
				for range 3 {
					if err := s.AddForEvent(ctx, "ev-1", first); err != nil {
						t.Fatal(err)
					}
				}
				// A replay generates fresh ids: the (event, user) pair must still win.
				if err := s.AddForEvent(ctx, "ev-1", []notification.Notification{mk(t, "a9", "alice", 1)}); err != nil {
					t.Fatal(err)
				}
				items, total, unread, err := s.List(ctx, app.Filter{UserID: "alice"}, 0, 20)
				if err != nil || total != 1 || unread != 1 || len(items) != 1 || items[0].ID() != "a1" {
					t.Fatalf("want exactly a1 once: %d %d %v %v", total, unread, ids(items), err)
				}
			})

			t.Run("newest first, paged, own only", func(t *testing.T) {
				for i := 2; i <= 6; i++ {
					if err := s.AddForEvent(ctx, fmt.Sprintf("ev-%d", i), []notification.Notification{mk(t, fmt.Sprintf("a%d", i), "alice", i)}); err != nil {
						t.Fatal(err)
					}
				}
				page1, total, _, err := s.List(ctx, app.Filter{UserID: "alice"}, 0, 4)
				if err != nil || total != 6 {
					t.Fatalf("total %d %v", total, err)
				}
				page2, _, _, _ := s.List(ctx, app.Filter{UserID: "alice"}, 4, 4)
				got := append(ids(page1), ids(page2)...)
				want := []string{"a6", "a5", "a4", "a3", "a2", "a1"}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("order %v, want %v", got, want)
				}
				if page1[0].Refs().CardID != "c-a6" || !page1[0].CreatedAt().Equal(base.Add(6*time.Minute)) {
					t.Fatalf("fields not kept: %+v", page1[0])
				}
				bob, total, _, _ := s.List(ctx, app.Filter{UserID: "bob"}, 0, 20)
				if total != 1 || bob[0].UserID() != "bob" {
					t.Fatalf("bob sees %v", ids(bob))
				}
			})

			t.Run("read and unread", func(t *testing.T) {
				n, err := s.MarkRead(ctx, "alice", "a6")
				if err != nil || !n.Read() {
					t.Fatalf("mark read: %+v %v", n, err)
				}
				if _, err := s.MarkRead(ctx, "bob", "a5"); !errors.Is(err, notification.ErrNotFound) {
					t.Fatalf("bob marked alice's notification: %v", err)
				}
				yes, no := true, false
				_, total, unread, _ := s.List(ctx, app.Filter{UserID: "alice", Unread: &yes}, 0, 20)
				if total != 5 || unread != 5 {
					t.Fatalf("unread filter: total %d unread %d", total, unread)
				}
				readOnes, total, _, _ := s.List(ctx, app.Filter{UserID: "alice", Unread: &no}, 0, 20)
				if total != 1 || readOnes[0].ID() != "a6" {
					t.Fatalf("read filter: %v", ids(readOnes))
				}
				if err := s.MarkAllRead(ctx, "alice"); err != nil {
					t.Fatal(err)
				}
				_, _, unread, _ = s.List(ctx, app.Filter{UserID: "alice"}, 0, 20)
				_, _, bobUnread, _ := s.List(ctx, app.Filter{UserID: "bob"}, 0, 20)
				if unread != 0 || bobUnread != 1 {
					t.Fatalf("read-all: alice %d bob %d", unread, bobUnread)
				}
			})

			t.Run("concurrent replays store once", func(t *testing.T) {
				var wg sync.WaitGroup
				for i := range 8 {
					wg.Go(func() {
						n := mk(t, fmt.Sprintf("c%d", i), "carol", 1)
						if err := s.AddForEvent(ctx, "ev-carol", []notification.Notification{n}); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				_, total, _, _ := s.List(ctx, app.Filter{UserID: "carol"}, 0, 20)
				if total != 1 {
					t.Fatalf("carol has %d notifications for one event", total)
				}
			})

			t.Run("redelivery with a new recipient adds only that one", func(t *testing.T) {
				if err := s.AddForEvent(ctx, "ev-dave", []notification.Notification{mk(t, "d1", "dave", 1)}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.MarkRead(ctx, "dave", "d1"); err != nil {
					t.Fatal(err)
				}
				// The same event again, with fresh ids and one more recipient: dave's
				// stored notification keeps its id and read flag, erin's is added.
				again := []notification.Notification{mk(t, "d2", "dave", 1), mk(t, "e1", "erin", 1), mk(t, "d3", "dave", 1)}
				if err := s.AddForEvent(ctx, "ev-dave", again); err != nil {
					t.Fatalf("a partly stored event must not fail: %v", err)
				}
				dave, total, unread, _ := s.List(ctx, app.Filter{UserID: "dave"}, 0, 20)
				if total != 1 || unread != 0 || dave[0].ID() != "d1" || !dave[0].Read() {
					t.Fatalf("dave: total %d unread %d %v", total, unread, ids(dave))
				}
				erin, total, _, _ := s.List(ctx, app.Filter{UserID: "erin"}, 0, 20)
				if total != 1 || erin[0].ID() != "e1" {
					t.Fatalf("erin: %v", ids(erin))
				}
			})

			t.Run("one event for many recipients", func(t *testing.T) {
				const n = 300
				batch := make([]notification.Notification, n)
				for i := range batch {
					batch[i] = mk(t, fmt.Sprintf("fan-%03d", i), fmt.Sprintf("fan-user-%03d", i), 9)
				}
				for range 2 {
					if err := s.AddForEvent(ctx, "ev-fan", batch); err != nil {
						t.Fatal(err)
					}
				}
				for _, i := range []int{0, 150, n - 1} {
					u := fmt.Sprintf("fan-user-%03d", i)
					got, total, _, err := s.List(ctx, app.Filter{UserID: u}, 0, 20)
					if err != nil || total != 1 || got[0].ID() != fmt.Sprintf("fan-%03d", i) {
						t.Fatalf("%s: %v %v", u, ids(got), err)
					}
				}
			})

			t.Run("a page beyond the end is empty, counts still right", func(t *testing.T) {
				got, total, unread, err := s.List(ctx, app.Filter{UserID: "alice"}, 100, 20)
				if err != nil || len(got) != 0 || total != 6 || unread != 0 {
					t.Fatalf("%v %d %d %v", ids(got), total, unread, err)
				}
				got, total, _, _ = s.List(ctx, app.Filter{UserID: "nobody"}, 0, 20)
				if len(got) != 0 || total != 0 {
					t.Fatalf("a user without notifications: %v", ids(got))
				}
			})

			t.Run("counts stay exact under concurrent writes", func(t *testing.T) {
				// Every kind of write races with the others and with lists (which, on
				// MongoDB, cache the counts they compute): each event is delivered three
				// times at once, each mark is sent three times at once, read-alls run
				// beside inserts. After each round the list's counts must match the
				// notifications it returns.
				const user = "gina"
				var wg sync.WaitGroup
				list := func() {
					if _, _, _, err := s.List(ctx, app.Filter{UserID: user}, 0, 5); err != nil {
						t.Error(err)
					}
				}
				deliver := func(i, copies int) {
					for k := range copies {
						wg.Go(func() {
							n := mk(t, fmt.Sprintf("g%02d-%d", i, k), user, i)
							if err := s.AddForEvent(ctx, fmt.Sprintf("ev-g%02d", i), []notification.Notification{n}); err != nil {
								t.Error(err)
							}
						})
					}
				}
				readAll := func() {
					wg.Go(func() {
						if err := s.MarkAllRead(ctx, user); err != nil {
							t.Error(err)
						}
					})
				}
				exact := func(round string, wantTotal int) []notification.Notification {
					t.Helper()
					items, total, unread, err := s.List(ctx, app.Filter{UserID: user}, 0, 100)
					if err != nil {
						t.Fatal(err)
					}
					truth := 0
					for _, n := range items {
						if !n.Read() {
							truth++
						}
					}
					if total != wantTotal || len(items) != wantTotal || unread != truth {
						t.Fatalf("%s: total %d unread %d, but %d stored of which %d unread (want %d)", round, total, unread, len(items), truth, wantTotal)
					}
					return items
				}

				for i := range 30 {
					deliver(i, 3)
					wg.Go(list)
					if i%10 == 5 {
						readAll()
					}
				}
				wg.Wait()
				items := exact("inserts, replays and read-alls", 30)

				for j, n := range items {
					if j%3 == 0 {
						for range 3 {
							wg.Go(func() {
								if _, err := s.MarkRead(ctx, user, n.ID()); err != nil {
									t.Error(err)
								}
							})
						}
					}
					if j%10 == 0 {
						deliver(j, 1)
					}
					wg.Go(list)
				}
				wg.Wait()
				exact("marks and replays", 30)

				for i := 30; i < 40; i++ {
					deliver(i, 2)
					wg.Go(list)
				}
				readAll()
				wg.Wait()
				exact("inserts beside a read-all", 40)
				// A plain sequence after the races: each write shows in the next list.
				if err := s.AddForEvent(ctx, "ev-g40", []notification.Notification{mk(t, "g40", user, 40)}); err != nil {
					t.Fatal(err)
				}
				exact("an insert", 41)
				if _, err := s.MarkRead(ctx, user, "g40"); err != nil {
					t.Fatal(err)
				}
				exact("a mark", 41)
				if err := s.MarkAllRead(ctx, user); err != nil {
					t.Fatal(err)
				}
				if _, _, unread, _ := s.List(ctx, app.Filter{UserID: user}, 0, 1); unread != 0 {
					t.Fatalf("unread %d after read-all", unread)
				}
			})

			t.Run("a write shows in every list started after it returned, while lists run", func(t *testing.T) {
				// Lists run without pause beside a sequence of writes, so some count
				// while a write is under way; each list after a write must see it. A
				// store that retired cached counts before its write instead of after
				// would let such a list cache the counts from before the write.
				const user = "hank"
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							if _, _, _, err := s.List(ctx, app.Filter{UserID: user}, 0, 5); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				defer func() { close(stop); wg.Wait() }()
				check := func(step string, wantTotal, wantUnread int) {
					t.Helper()
					_, total, unread, err := s.List(ctx, app.Filter{UserID: user}, 0, 5)
					if err != nil || total != wantTotal || unread != wantUnread {
						t.Fatalf("%s: total %d unread %d (%v), want %d and %d", step, total, unread, err, wantTotal, wantUnread)
					}
				}
				const n = 20
				for i := range n {
					if err := s.AddForEvent(ctx, fmt.Sprintf("ev-h%02d", i), []notification.Notification{mk(t, fmt.Sprintf("h%02d", i), user, i)}); err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("insert %d", i), i+1, i+1)
				}
				for i := range n - 5 {
					if _, err := s.MarkRead(ctx, user, fmt.Sprintf("h%02d", i)); err != nil {
						t.Fatal(err)
					}
					check(fmt.Sprintf("mark %d", i), n, n-i-1)
				}
				if err := s.MarkAllRead(ctx, user); err != nil {
					t.Fatal(err)
				}
				check("read-all", n, 0)
			})

			t.Run("user copies upsert", func(t *testing.T) {
				u := app.UserCopy{ID: "u1", Name: "Ann", Email: "ann@example.com", RegisteredAt: base, Version: 1}
				for range 2 {
					if err := s.Upsert(ctx, u); err != nil {
						t.Fatal(err)
					}
				}
			})

			t.Run("user copies apply only newer versions", func(t *testing.T) {
				for _, c := range []struct {
					name    string
					version int64
				}{{"v2", 2}, {"v1 late", 1}, {"v3", 3}, {"v3 again", 3}, {"v2 late", 2}} {
					u := app.UserCopy{ID: "u2", Name: c.name, Email: "u2@example.com", RegisteredAt: base, Version: c.version}
					if err := s.Upsert(ctx, u); err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
				}
				got, ok, err := s.UserCopy(ctx, "u2")
				if err != nil || !ok || got.Name != "v3" || got.Version != 3 {
					t.Fatalf("copy %+v, %v, %v; want version 3 named v3", got, ok, err)
				}
			})
		})
	}
}

func ids(ns []notification.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID()
	}
	return out
}
