package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/notif/adapters/memrepo"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
)

func ids() app.IDGenerator {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("n%04d", n.Add(1)) }
}

var at = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func recipientsOf(t *testing.T, s *memrepo.Store, users ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, u := range users {
		items, _, _, err := s.List(context.Background(), app.Filter{UserID: u}, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range items {
			out[u] = append(out[u], n.Message())
		}
	}
	return out
}

func TestNotifyAudienceAddressesAndWords(t *testing.T) {
	ctx := context.Background()
	s := memrepo.New()
	h := app.NewNotifyAudienceHandler(s, ids(), app.DefaultMaxRecipients)
	cmd := app.NotifyAudience{
		EventID: "ev-1", Type: notification.CardStatusChanged, ActorID: "m1",
		Audience: notification.Audience{OwnerID: "owner", MemberIDs: []string{"m1", "m2"}},
		Subject:  notification.Subject{ActorName: "Ann", ProjectTitle: "Web app", CardTitle: "Login fails on Safari", Status: "done"},
		Refs:     notification.Refs{ProjectID: "p1", CardID: "c1"},
		At:       at,
	}
	for range 3 { // redeliveries change nothing
		d, err := h.Handle(ctx, cmd)
		if err != nil || d.Recipients != 2 || d.Dropped != 0 {
			t.Fatalf("delivery %+v %v", d, err)
		}
	}
	got := recipientsOf(t, s, "owner", "m1", "m2")
	want := "Ann moved 'Login fails on Safari' to done in 'Web app'"
	if len(got["owner"]) != 1 || len(got["m2"]) != 1 || len(got["m1"]) != 0 || got["owner"][0] != want {
		t.Fatalf("notifications %v", got)
	}
	items, _, _, _ := s.List(ctx, app.Filter{UserID: "m2"}, 0, 1)
	n := items[0]
	if n.Type() != notification.CardStatusChanged || n.ActorID() != "m1" || n.Refs().CardID != "c1" || !n.CreatedAt().Equal(at) {
		t.Fatalf("fields %+v", n)
	}
}

func TestNotifyAudienceCapsFanOut(t *testing.T) {
	ctx := context.Background()
	s := memrepo.New()
	h := app.NewNotifyAudienceHandler(s, ids(), 3)
	members := make([]string, 10)
	for i := range members {
		members[i] = fmt.Sprintf("m%d", i)
	}
	d, err := h.Handle(ctx, app.NotifyAudience{
		EventID: "ev-big", Type: notification.ProjectDeleted, ActorID: "owner",
		Audience: notification.Audience{OwnerID: "owner", MemberIDs: members},
		Subject:  notification.Subject{ActorName: "Ann", ProjectTitle: "Web app"}, At: at,
	})
	if err != nil || d.Recipients != 3 || d.Dropped != 8 {
		t.Fatalf("delivery %+v %v", d, err)
	}
	got := recipientsOf(t, s, append([]string{"owner"}, members...)...)
	var told []string
	for u, msgs := range got {
		if len(msgs) > 0 {
			told = append(told, u)
		}
	}
	slices.Sort(told)
	if !slices.Equal(told, []string{"m0", "m1", "owner"}) {
		t.Fatalf("the owner and the first members must be kept, got %v", told)
	}
}

func TestNotifyNewNotif(t *testing.T) {
	ctx := context.Background()
	s := memrepo.New()
	h := app.NewNotifyHandler(s, ids(), 2)
	d, err := h.Handle(ctx, app.Notify{EventID: "ev-r", Recipients: []string{"u1", "", "u1", "u2", "u3"}, Type: "registration", Message: "Welcome, Ann!", ActorID: "u1", At: at})
	if err != nil || d.Recipients != 2 || d.Dropped != 1 {
		t.Fatalf("delivery %+v %v", d, err)
	}
	if got := recipientsOf(t, s, "u1", "u2", "u3"); len(got["u1"]) != 1 || len(got["u2"]) != 1 || len(got["u3"]) != 0 {
		t.Fatalf("duplicates and empty ids must not count against the cap: %v", got)
	}
	if _, err := h.Handle(ctx, app.Notify{EventID: "ev-x", Recipients: []string{"u1"}, Type: "card_deleted", Message: "x", At: at}); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
	if _, err := h.Handle(ctx, app.Notify{Recipients: []string{"u1"}, Type: "registration", Message: "x", At: at}); err == nil {
		t.Fatal("an event without id cannot be idempotent and must be refused")
	}
}

func TestNotifyAudienceRefusesTypesWithoutRule(t *testing.T) {
	h := app.NewNotifyAudienceHandler(memrepo.New(), ids(), 10)
	_, err := h.Handle(context.Background(), app.NotifyAudience{EventID: "e", Type: notification.Registration, Audience: notification.Audience{OwnerID: "o"}})
	if !errors.Is(err, notification.ErrNoRecipientRule) {
		t.Fatalf("got %v", err)
	}
}

type failingStore struct{ app.Notifications }

func (failingStore) AddForEvent(context.Context, string, []notification.Notification) error {
	return errors.New("store down")
}

func TestNotifyAudienceReportsStoreFailure(t *testing.T) {
	h := app.NewNotifyAudienceHandler(failingStore{}, ids(), 10)
	_, err := h.Handle(context.Background(), app.NotifyAudience{
		EventID: "e", Type: notification.CardCreated, ActorID: "o",
		Audience: notification.Audience{OwnerID: "o", MemberIDs: []string{"m"}}, At: at,
	})
	if err == nil {
		t.Fatal("a store failure must reach the consumer, which then retries the event")
	}
}
