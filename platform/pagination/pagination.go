// Package pagination parses and describes the three list styles of API.md: offset,
// cursor (opaque, HMAC-signed keyset positions) and page.
package pagination

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bugtracker/bugtracker/platform/problem"
)

// DefaultLimit and MaxLimit bound every list (API.md).
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Query reads one query-string value; *fiber.Ctx satisfies it.
type Query interface {
	Query(key string, defaultValue ...string) string
}

// List is the envelope of every list response.
type List[T, M any] struct {
	Data []T `json:"data"`
	Meta M   `json:"meta"`
}

// Offset is a parsed `?offset=&limit=` request.
type Offset struct {
	Offset int
	Limit  int
}

// OffsetMeta is the meta of an offset list.
type OffsetMeta struct {
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// Meta describes the page served for a list of total items.
func (o Offset) Meta(total int) OffsetMeta {
	return OffsetMeta{Total: total, Offset: o.Offset, Limit: o.Limit}
}

// ParseOffset reads offset (>= 0, default 0) and limit; bad values are a 400 problem.
func ParseOffset(q Query) (Offset, error) {
	limit, err := parseLimit(q)
	if err != nil {
		return Offset{}, err
	}
	off, err := parseInt(q, "offset", 0, 0, int(^uint(0)>>1))
	if err != nil {
		return Offset{}, err
	}
	return Offset{Offset: off, Limit: limit}, nil
}

// Page is a parsed `?page=&limit=` request; pages count from 1.
type Page struct {
	Page  int
	Limit int
}

// PageMeta is the meta of a page list.
type PageMeta struct {
	Total      int `json:"total"`
	Page       int `json:"page"`
	Limit      int `json:"limit"`
	TotalPages int `json:"totalPages"`
}

// Skip is how many items precede the page.
func (p Page) Skip() int { return (p.Page - 1) * p.Limit }

// Meta describes the page served for a list of total items.
func (p Page) Meta(total int) PageMeta {
	return PageMeta{Total: total, Page: p.Page, Limit: p.Limit, TotalPages: (total + p.Limit - 1) / p.Limit}
}

// ParsePage reads page (>= 1, default 1) and limit; bad values are a 400 problem.
func ParsePage(q Query) (Page, error) {
	limit, err := parseLimit(q)
	if err != nil {
		return Page{}, err
	}
	// The upper bound keeps Skip from overflowing.
	page, err := parseInt(q, "page", 1, 1, 1_000_000_000)
	if err != nil {
		return Page{}, err
	}
	return Page{Page: page, Limit: limit}, nil
}

// CursorMeta is the meta of a cursor list; NextCursor is null on the last page.
type CursorMeta struct {
	NextCursor *string `json:"nextCursor"`
	Limit      int     `json:"limit"`
}

// ParseLimit reads `limit` alone, for cursor lists.
func ParseLimit(q Query) (int, error) { return parseLimit(q) }

func parseLimit(q Query) (int, error) {
	return parseInt(q, "limit", DefaultLimit, 1, MaxLimit)
}

func parseInt(q Query, key string, def, lo, hi int) (int, error) {
	raw := q.Query(key)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, problem.BadRequest(fmt.Sprintf("query parameter %q must be an integer from %d to %d", key, lo, hi))
	}
	return n, nil
}

// ErrBadCursor is wrapped by the problem returned for a tampered or foreign cursor.
var ErrBadCursor = errors.New("invalid cursor")

// Cursors signs and verifies opaque cursors. A cursor is the JSON keyset position,
// base64url-encoded, followed by an HMAC-SHA256 over the list's scope and the position,
// so a client can neither forge a position nor replay a cursor on another list.
type Cursors struct {
	key []byte
}

// NewCursors returns a signer keyed by secret (at least 32 bytes).
func NewCursors(secret string) (*Cursors, error) {
	if len(secret) < 32 {
		return nil, errors.New("pagination: cursor secret must be at least 32 bytes")
	}
	return &Cursors{key: []byte(secret)}, nil
}

// Encode returns the cursor for position pos within the list named by scope (for
// example "cards:<projectId>:<status>").
func (s *Cursors) Encode(scope string, pos any) (string, error) {
	payload, err := json.Marshal(pos)
	if err != nil {
		return "", fmt.Errorf("pagination: encode cursor: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(s.sign(scope, payload)), nil
}

// Decode verifies cursor for scope and unmarshals its position into pos. Any failure
// is a 400 problem wrapping ErrBadCursor.
func (s *Cursors) Decode(cursor, scope string, pos any) error {
	bad := func() error {
		p := problem.BadRequest("query parameter \"cursor\" is invalid")
		return errors.Join(p, ErrBadCursor)
	}
	data, sig, ok := strings.Cut(cursor, ".")
	if !ok {
		return bad()
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(data)
	mac, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(scope, payload)) {
		return bad()
	}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(pos); err != nil {
		return bad()
	}
	return nil
}

func (s *Cursors) sign(scope string, payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}
