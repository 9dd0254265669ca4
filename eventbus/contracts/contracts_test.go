package contracts_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 30, 0, 123456789, time.UTC)
	tests := []struct {
		ev     eventbus.Event
		family string
	}{
		{contracts.UserRegistered{UserID: "u1", Name: "Ada", Email: "ada@example.com", RegisteredAt: at, AggregateVersion: 1}, contracts.FamilyUser},
		{contracts.ProjectCreated{ProjectID: "p1", Title: "T", Description: "D", OwnerID: "u1", OwnerName: "Ada", CreatedAt: at, AggregateVersion: 1}, contracts.FamilyProject},
		{contracts.ProjectUpdated{ProjectID: "p1", Title: "T2", Description: "D2", OwnerID: "u1", UpdatedBy: "u1", UpdatedAt: at, AggregateVersion: 2}, contracts.FamilyProject},
		{contracts.ProjectDeleted{ProjectID: "p1", Title: "T", OwnerID: "u1", DeletedBy: "u1", ActorName: "Ada", Audience: contracts.Audience{OwnerID: "u1", MemberIDs: []string{"u2", "u3"}}, DeletedAt: at, AggregateVersion: 3}, contracts.FamilyProject},
		{contracts.MemberAdded{ProjectID: "p1", UserID: "u2", Role: "member", AddedBy: "u1", AddedAt: at, AggregateVersion: 1}, contracts.FamilyProject},
		{contracts.MemberRemoved{ProjectID: "p1", UserID: "u2", RemovedBy: "u1", RemovedAt: at, AggregateVersion: 2}, contracts.FamilyProject},
		{contracts.CardCreated{CardID: "c1", ProjectID: "p1", Title: "T", Description: "D", Status: "todo", CreatorID: "u1", CreatedAt: at, AggregateVersion: 1, ProjectTitle: "P", ActorName: "Ada", Audience: contracts.Audience{OwnerID: "u1", MemberIDs: []string{"u2"}}}, contracts.FamilyCard},
		{contracts.CardUpdated{CardID: "c1", ProjectID: "p1", Title: "T2", Description: "D2", Status: "in_progress", UpdatedBy: "u2", UpdatedAt: at, AggregateVersion: 2}, contracts.FamilyCard},
		{contracts.CardStatusChanged{CardID: "c1", ProjectID: "p1", Title: "T2", Description: "D2", From: "todo", To: "done", ChangedBy: "u2", ChangedAt: at, AggregateVersion: 3, ProjectTitle: "P", ActorName: "Bob", Audience: contracts.Audience{OwnerID: "u1", MemberIDs: []string{"u2"}}}, contracts.FamilyCard},
		{contracts.CardDeleted{CardID: "c1", ProjectID: "p1", DeletedBy: "u1", DeletedAt: at, AggregateVersion: 4}, contracts.FamilyCard},
		{contracts.CommentCreated{CommentID: "m1", CardID: "c1", ProjectID: "p1", AuthorID: "u1", Body: "hi", CreatedAt: at, AggregateVersion: 1, CardTitle: "T", ProjectTitle: "P", ActorName: "Ada", Audience: contracts.Audience{OwnerID: "u1"}}, contracts.FamilyComment},
		{contracts.CommentDeleted{CommentID: "m1", CardID: "c1", ProjectID: "p1", AuthorID: "u1", DeletedBy: "u1", DeletedAt: at, AggregateVersion: 2}, contracts.FamilyComment},
		{contracts.NotificationRequested{RecipientIDs: []string{"u2"}, Kind: contracts.KindRegistration, Message: "welcome", ActorID: "u2"}, contracts.FamilyNotif},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.ev.EventName(), func(t *testing.T) {
			seen[tt.ev.EventName()] = true
			local := at.In(time.FixedZone("CET", 3600))
			env, err := contracts.New(tt.ev, "agg-1", local)
			if err != nil {
				t.Fatal(err)
			}
			if env.Type != tt.ev.EventName() || env.Version != tt.ev.EventVersion() || env.AggregateID != "agg-1" {
				t.Fatalf("envelope metadata = %+v", env)
			}
			if !env.OccurredAt.Equal(at) || env.OccurredAt.Location() != time.UTC {
				t.Fatalf("OccurredAt = %v, want %v in UTC", env.OccurredAt, at)
			}
			wire, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			var back eventbus.Envelope
			if err := json.Unmarshal(wire, &back); err != nil {
				t.Fatal(err)
			}
			got, err := contracts.Decode(back)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.ev) {
				t.Fatalf("decoded %#v, want %#v", got, tt.ev)
			}
			if f := contracts.Family(env.Type); f != tt.family {
				t.Fatalf("Family(%q) = %q, want %q", env.Type, f, tt.family)
			}
		})
	}
	if len(seen) != 13 {
		t.Fatalf("covered %d event types, want 13", len(seen))
	}
}

func TestEnvelopeIDsAreUUIDv7(t *testing.T) {
	a, err := contracts.New(contracts.UserRegistered{UserID: "u1"}, "u1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := contracts.New(contracts.UserRegistered{UserID: "u1"}, "u1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 36 || a.ID[14] != '7' || a.ID == b.ID {
		t.Fatalf("ids %q and %q are not distinct UUIDv7", a.ID, b.ID)
	}
}

func TestDecodeUnknown(t *testing.T) {
	for _, env := range []eventbus.Envelope{
		{Type: "noSuchEvent", Version: 1, Payload: json.RawMessage(`{}`)},
		{Type: contracts.TypeNewCard, Version: 3, Payload: json.RawMessage(`{}`)},
	} {
		if _, err := contracts.Decode(env); !errors.Is(err, contracts.ErrUnknownEvent) {
			t.Fatalf("Decode(%s v%d) error = %v, want ErrUnknownEvent", env.Type, env.Version, err)
		}
	}
	if _, err := contracts.Decode(eventbus.Envelope{Type: contracts.TypeNewCard, Version: 1, Payload: json.RawMessage(`[`)}); err == nil || errors.Is(err, contracts.ErrUnknownEvent) {
		t.Fatalf("malformed payload error = %v, want a decode error", err)
	}
	if contracts.Family("noSuchEvent") != "" {
		t.Fatal("unknown type has a family")
	}
}

func TestVersionOneIsUpcast(t *testing.T) {
	env := eventbus.Envelope{ID: "e1", Type: contracts.TypeNewUser, Version: 1, Payload: json.RawMessage(`{"userId":"u1","name":"Ada","email":"ada@example.com","registeredAt":"2026-11-24T10:30:00Z"}`)}
	ev, err := contracts.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := ev.(contracts.UserRegistered)
	if !ok || u.UserID != "u1" || u.Name != "Ada" || u.AggregateVersion != 1 {
		t.Fatalf("newUser v1 decoded as %#v, want UserRegistered u1 at version 1", ev)
	}
}

func TestEveryAggregateEventIsAggregated(t *testing.T) {
	for _, ev := range []eventbus.Event{
		contracts.UserRegistered{},
		contracts.ProjectCreated{},
		contracts.ProjectUpdated{},
		contracts.ProjectDeleted{},
		contracts.MemberAdded{},
		contracts.MemberRemoved{},
		contracts.CardCreated{},
		contracts.CardUpdated{},
		contracts.CardStatusChanged{},
		contracts.CardDeleted{},
		contracts.CommentCreated{},
		contracts.CommentDeleted{},
	} {
		if _, ok := ev.(contracts.Aggregated); !ok {
			t.Errorf("%s does not carry an aggregate version", ev.EventName())
		}
	}
	if id, v := (contracts.MemberRemoved{ProjectID: "p", UserID: "u", AggregateVersion: 2}).AggregateRef(); id != "p/u" || v != 2 {
		t.Fatalf("membership ref = %s v%d", id, v)
	}
}
