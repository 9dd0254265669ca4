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
		{contracts.UserRegistered{UserID: "u1", Name: "Ada", Email: "ada@example.com", RegisteredAt: at}, contracts.FamilyUser},
		{contracts.ProjectCreated{ProjectID: "p1", Title: "T", Description: "D", OwnerID: "u1", CreatedAt: at}, contracts.FamilyProject},
		{contracts.ProjectDeleted{ProjectID: "p1", OwnerID: "u1", DeletedBy: "u1", MemberIDs: []string{"u2", "u3"}, DeletedAt: at}, contracts.FamilyProject},
		{contracts.CardCreated{CardID: "c1", ProjectID: "p1", Title: "T", Description: "D", Status: "todo", CreatorID: "u1", CreatedAt: at}, contracts.FamilyCard},
		{contracts.CardUpdated{CardID: "c1", ProjectID: "p1", Title: "T2", Description: "D2", Status: "doing", UpdatedBy: "u2", UpdatedAt: at}, contracts.FamilyCard},
		{contracts.CardStatusChanged{CardID: "c1", ProjectID: "p1", From: "todo", To: "done", ChangedBy: "u2", ChangedAt: at}, contracts.FamilyCard},
		{contracts.CommentCreated{CommentID: "m1", CardID: "c1", ProjectID: "p1", AuthorID: "u1", Body: "hi", CreatedAt: at}, contracts.FamilyComment},
		{contracts.CommentDeleted{CommentID: "m1", CardID: "c1", ProjectID: "p1", DeletedBy: "u1", DeletedAt: at}, contracts.FamilyComment},
		{contracts.NotificationRequested{RecipientIDs: []string{"u2"}, Kind: contracts.KindCardCreated, Message: "new card", ActorID: "u1", ProjectID: "p1", CardID: "c1"}, contracts.FamilyNotif},
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
			if env.Type != tt.ev.EventName() || env.Version != 1 || env.AggregateID != "agg-1" {
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
	if len(seen) != 9 {
		t.Fatalf("covered %d event types, want 9", len(seen))
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
		{Type: contracts.TypeNewCard, Version: 2, Payload: json.RawMessage(`{}`)},
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
