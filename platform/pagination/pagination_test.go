package pagination

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/platform/problem"
)

type query map[string]string

func (q query) Query(k string, _ ...string) string { return q[k] }

func TestParseOffset(t *testing.T) {
	good := []struct {
		q    query
		want Offset
	}{
		{query{}, Offset{0, 20}},
		{query{"offset": "40", "limit": "100"}, Offset{40, 100}},
		{query{"limit": "1"}, Offset{0, 1}},
	}
	for _, tc := range good {
		got, err := ParseOffset(tc.q)
		if err != nil || got != tc.want {
			t.Fatalf("%v: got %v %v", tc.q, got, err)
		}
	}
	for _, q := range []query{{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"offset": "-1"}, {"offset": "1.5"}} {
		_, err := ParseOffset(q)
		var p *problem.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
			t.Fatalf("%v: want 400, got %v", q, err)
		}
	}
}

func TestPageMeta(t *testing.T) {
	p, err := ParsePage(query{"page": "3", "limit": "20"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Skip() != 40 {
		t.Fatalf("skip %d", p.Skip())
	}
	if m := p.Meta(57); m.TotalPages != 3 || m.Total != 57 || m.Page != 3 {
		t.Fatalf("meta %+v", m)
	}
	if m := p.Meta(0); m.TotalPages != 0 {
		t.Fatalf("empty list has no pages: %+v", m)
	}
	if _, err := ParsePage(query{"page": "0"}); err == nil {
		t.Fatal("page 0 accepted")
	}
}

type position struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

func TestCursorRoundTripAndTamper(t *testing.T) {
	c, err := NewCursors("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	pos := position{CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), ID: "abc"}
	tok, err := c.Encode("cards:p1", pos)
	if err != nil {
		t.Fatal(err)
	}
	var got position
	if err := c.Decode(tok, "cards:p1", &got); err != nil || !got.CreatedAt.Equal(pos.CreatedAt) || got.ID != "abc" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	other, _ := NewCursors("ffffffffffffffffffffffffffffffff")
	tampered := []byte(tok)
	tampered[2] ^= 1
	cases := map[string]func() error{
		"foreign scope":  func() error { return c.Decode(tok, "cards:p2", &got) },
		"other key":      func() error { return other.Decode(tok, "cards:p1", &got) },
		"tampered":       func() error { return c.Decode(string(tampered), "cards:p1", &got) },
		"garbage":        func() error { return c.Decode("not-a-cursor", "cards:p1", &got) },
		"empty":          func() error { return c.Decode("", "cards:p1", &got) },
		"signature only": func() error { return c.Decode("."+tok, "cards:p1", &got) },
	}
	for name, f := range cases {
		err := f()
		var p *problem.Problem
		if !errors.Is(err, ErrBadCursor) || !errors.As(err, &p) || p.Status != 400 {
			t.Fatalf("%s: want 400 bad cursor, got %v", name, err)
		}
	}
	if _, err := NewCursors("short"); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestParseLimitForCursorLists(t *testing.T) {
	if n, err := ParseLimit(query{}); err != nil || n != DefaultLimit {
		t.Fatalf("default: %d %v", n, err)
	}
	if n, err := ParseLimit(query{"limit": "100"}); err != nil || n != 100 {
		t.Fatalf("max: %d %v", n, err)
	}
	for _, bad := range []string{"0", "101", "ten"} {
		if _, err := ParseLimit(query{"limit": bad}); err == nil {
			t.Fatalf("limit=%s accepted", bad)
		}
	}
}
