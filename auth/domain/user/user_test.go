package user

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateRegistration(t *testing.T) {
	cases := []struct {
		name, email, password string
		bad                   []string
	}{
		{"Ann", "ann@example.com", "password1", nil},
		{strings.Repeat("é", 100), "a@b.co", strings.Repeat("x", 128), nil},
		{"", "ann@example.com", "password1", []string{"name"}},
		{"   ", "ann@example.com", "password1", []string{"name"}},
		{strings.Repeat("a", 101), "ann@example.com", "password1", []string{"name"}},
		{"Ann", "not-an-email", "password1", []string{"email"}},
		{"Ann", "Ann <ann@example.com>", "password1", []string{"email"}},
		{"Ann", "", "password1", []string{"email"}},
		{"Ann", "ann@example.com", "short", []string{"password"}},
		{"Ann", "ann@example.com", strings.Repeat("x", 129), []string{"password"}},
		{"", "", "", []string{"name", "email", "password"}},
	}
	for _, tc := range cases {
		err := ValidateRegistration(tc.name, tc.email, tc.password)
		if tc.bad == nil {
			if err != nil {
				t.Errorf("%q/%q: unexpected %v", tc.name, tc.email, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Violations) != len(tc.bad) {
			t.Fatalf("%q/%q/%q: want %v, got %v", tc.name, tc.email, tc.password, tc.bad, err)
		}
		for i, f := range tc.bad {
			if ve.Violations[i].Field != f {
				t.Errorf("violation %d is %s, want %s", i, ve.Violations[i].Field, f)
			}
		}
	}
}

func TestNewUserNormalizes(t *testing.T) {
	u, err := NewUser("id1", "Ann", " Ann@Example.COM ", "hash", time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if u.Email() != "Ann@Example.COM" || u.NormalizedEmail() != "ann@example.com" {
		t.Fatalf("email %q %q", u.Email(), u.NormalizedEmail())
	}
	if u.CreatedAt().Location() != time.UTC {
		t.Fatal("created at must be UTC")
	}
	if _, err := NewUser("", "Ann", "a@b.co", "", time.Now()); err == nil {
		t.Fatal("missing id and hash accepted")
	}
}
