package comment_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/comment/domain/comment"
)

func TestNewValidatesBody(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"one character", "x", true},
		{"5000 multibyte characters", strings.Repeat("ü", 5000), true},
		{"empty", "", false},
		{"blank", " \t\n", false},
		{"5001 characters", strings.Repeat("a", 5001), false},
		{"invalid UTF-8", "a\xffb", false},
		{"NUL", "a\x00b", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := comment.New("id", "card", "project", "author", c.body, at)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got.Body() != c.body || got.CardID() != "card" || got.ProjectID() != "project" || got.AuthorID() != "author" {
					t.Fatalf("fields lost: %+v", got)
				}
				if got.CreatedAt().Location() != time.UTC || got.CreatedAt().Nanosecond() != 123456000 || !got.CreatedAt().Equal(at.Truncate(time.Microsecond)) {
					t.Fatalf("createdAt %v: want UTC to the microsecond", got.CreatedAt())
				}
				return
			}
			var ve *comment.ValidationError
			if !errors.As(err, &ve) || ve.Field != "body" {
				t.Fatalf("want a body ValidationError, got %v", err)
			}
		})
	}
	if _, err := comment.New("", "card", "project", "author", "x", at); err == nil {
		t.Fatal("empty id accepted")
	}
}

func TestRolePermissions(t *testing.T) {
	c, err := comment.New("id", "card", "project", "bob", "x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		role          comment.Role
		user          string
		see, deletion error
	}{
		{comment.Owner, "ann", nil, nil},
		{comment.Member, "bob", nil, nil},
		{comment.Member, "carol", nil, comment.ErrForbidden},
		{comment.Stranger, "dave", comment.ErrNotFound, comment.ErrNotFound},
		{comment.Stranger, "bob", comment.ErrNotFound, comment.ErrNotFound}, // a kicked author
	}
	for _, tc := range cases {
		if err := tc.role.CanSee(); !errors.Is(err, tc.see) {
			t.Errorf("%q as %q sees: %v, want %v", tc.user, tc.role, err, tc.see)
		}
		if err := tc.role.CanDelete(tc.user, c); !errors.Is(err, tc.deletion) {
			t.Errorf("%q as %q deletes: %v, want %v", tc.user, tc.role, err, tc.deletion)
		}
	}
}
