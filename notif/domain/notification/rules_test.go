package notification

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRecipients(t *testing.T) {
	team := Audience{OwnerID: "owner", MemberIDs: []string{"m1", "m2"}}
	tests := []struct {
		name  string
		typ   Type
		aud   Audience
		actor string
		want  []string
	}{
		{"project created: the owner is told of their own project", ProjectCreated, Audience{OwnerID: "owner"}, "owner", []string{"owner"}},
		{"project deleted: owner and every member, actor included", ProjectDeleted, team, "owner", []string{"owner", "m1", "m2"}},
		{"card created by a member: everyone else", CardCreated, team, "m1", []string{"owner", "m2"}},
		{"card created by the owner: the members", CardCreated, team, "owner", []string{"m1", "m2"}},
		{"status changed by a member", CardStatusChanged, team, "m2", []string{"owner", "m1"}},
		{"comment by the owner", CommentCreated, team, "owner", []string{"m1", "m2"}},
		{"an actor outside the audience excludes nobody", CommentCreated, team, "stranger", []string{"owner", "m1", "m2"}},
		{"owner alone acting on a card: nobody", CardCreated, Audience{OwnerID: "owner"}, "owner", []string{}},
		{"duplicates and empty ids dropped", CardCreated, Audience{OwnerID: "owner", MemberIDs: []string{"m1", "", "owner", "m1", "m2"}}, "x", []string{"owner", "m1", "m2"}},
		{"an empty owner is skipped", ProjectDeleted, Audience{MemberIDs: []string{"m1"}}, "m1", []string{"m1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Recipients(tt.typ, tt.aud, tt.actor)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := Recipients(Registration, team, "owner"); !errors.Is(err, ErrNoRecipientRule) {
		t.Fatalf("registration has no audience rule, got %v", err)
	}
	if _, err := Recipients(Type{}, team, "owner"); !errors.Is(err, ErrNoRecipientRule) {
		t.Fatalf("zero type: %v", err)
	}
}

func TestMessage(t *testing.T) {
	s := Subject{ActorName: "Ann", ProjectTitle: "Web app", CardTitle: "Login fails on Safari"}
	with := func(f func(*Subject)) Subject {
		c := s
		f(&c)
		return c
	}
	tests := []struct {
		name string
		typ  Type
		s    Subject
		want string
	}{
		{"project created", ProjectCreated, s, "Ann created the project 'Web app'"},
		{"project deleted", ProjectDeleted, s, "Ann deleted the project 'Web app'"},
		{"card created", CardCreated, s, "Ann created 'Login fails on Safari' in 'Web app'"},
		{"moved to done", CardStatusChanged, with(func(s *Subject) { s.Status = "done" }), "Ann moved 'Login fails on Safari' to done in 'Web app'"},
		{"moved to in progress", CardStatusChanged, with(func(s *Subject) { s.Status = "in_progress" }), "Ann moved 'Login fails on Safari' to in progress in 'Web app'"},
		{"moved back to todo", CardStatusChanged, with(func(s *Subject) { s.Status = "todo" }), "Ann moved 'Login fails on Safari' to to do in 'Web app'"},
		{"unknown status worded, not refused", CardStatusChanged, with(func(s *Subject) { s.Status = "won_t_fix" }), "Ann moved 'Login fails on Safari' to won t fix in 'Web app'"},
		{"comment quotes its start", CommentCreated, with(func(s *Subject) { s.Comment = "Same on\n\tiOS 17." }), `Ann commented on 'Login fails on Safari' in 'Web app': "Same on iOS 17."`},
		{"empty comment body: no quote", CommentCreated, s, "Ann commented on 'Login fails on Safari' in 'Web app'"},
		{"missing names get neutral words", CardCreated, Subject{}, "Someone created a card in a project"},
		{"control characters flattened", ProjectCreated, Subject{ActorName: "Ann\x00\r\nBob", ProjectTitle: "  Web   app  "}, "Ann Bob created the project 'Web app'"},
		{"quotes inside titles kept", ProjectCreated, Subject{ActorName: "O'Neil", ProjectTitle: "Bob's app"}, "O'Neil created the project 'Bob's app'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Message(tt.typ, tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	if _, err := Message(Registration, s); err == nil {
		t.Fatal("registration messages are the producer's; a template must not invent one")
	}
}

// TestMessageBounds feeds the longest names and titles (in four-byte characters)
// and checks the message is cut where promised and still valid for New.
func TestMessageBounds(t *testing.T) {
	long := strings.Repeat("🐞", 500)
	s := Subject{ActorName: long, ProjectTitle: long, CardTitle: long, Status: long, Comment: long}
	for _, typ := range []Type{ProjectCreated, ProjectDeleted, CardCreated, CardStatusChanged, CommentCreated} {
		msg, err := Message(typ, s)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("%s: cut inside a character", typ)
		}
		if n := utf8.RuneCountInString(msg); n > 700 {
			t.Fatalf("%s: %d characters", typ, n)
		}
		if !strings.Contains(msg, strings.Repeat("🐞", maxActorLen-1)+"…") || strings.Contains(msg, strings.Repeat("🐞", maxTitleLen)) {
			t.Fatalf("%s: fields not cut at their bounds: %q", typ, msg)
		}
		if _, err := New("n", "u", typ, msg, "a", Refs{}, base()); err != nil {
			t.Fatalf("%s: the longest message is refused: %v", typ, err)
		}
	}
	exact := strings.Repeat("x", maxTitleLen)
	msg, _ := Message(ProjectCreated, Subject{ActorName: "Ann", ProjectTitle: exact})
	if msg != "Ann created the project '"+exact+"'" {
		t.Fatalf("a title at its limit must not be cut: %q", msg)
	}
}

func base() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
