package notification

import (
	"strings"
	"testing"
	"time"
)

func TestParseType(t *testing.T) {
	for _, s := range []string{"registration", "project_created", "project_deleted", "card_created", "card_status_changed", "comment_created"} {
		typ, err := ParseType(s)
		if err != nil || typ.String() != s {
			t.Fatalf("%s: %v %v", s, typ, err)
		}
	}
	for _, s := range []string{"", "Registration", "card_deleted"} {
		if _, err := ParseType(s); err == nil {
			t.Fatalf("%q accepted", s)
		}
	}
}

func TestNewValidates(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	n, err := New("n1", "u1", Registration, "Welcome", "u1", Refs{}, at)
	if err != nil {
		t.Fatal(err)
	}
	if n.Read() || n.CreatedAt().Nanosecond() != 123000000 {
		t.Fatalf("new notification must be unread with ms precision: %+v", n)
	}
	bad := []struct {
		id, user string
		typ      Type
		msg      string
	}{
		{"", "u1", Registration, "m"},
		{"n", "", Registration, "m"},
		{"n", "u1", Type{}, "m"},
		{"n", "u1", Registration, " "},
		{"n", "u1", Registration, strings.Repeat("x", MaxMessageLen+1)},
	}
	for _, b := range bad {
		if _, err := New(b.id, b.user, b.typ, b.msg, "", Refs{}, at); err == nil {
			t.Fatalf("%+v accepted", b)
		}
	}
}
