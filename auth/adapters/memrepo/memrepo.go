// Package memrepo is the in-memory adapter of the auth ports, for unit and component
// tests. It keeps the events it was given so tests can assert them.
package memrepo

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
)

// Store holds users, sessions, reset tokens and published events.
type Store struct {
	mu       sync.Mutex
	byID     map[string]user.User
	byEmail  map[string]string
	sessions map[string]app.RefreshSession // by token hash
	resets   map[string]*reset             // by token hash
	requests map[string]*resetRequest
	events   []eventbus.Envelope
}

type resetRequest struct {
	app.ResetRequest
	notBefore time.Time
}

type reset struct {
	app.ResetToken
	used bool
}

// New returns an empty store.
func New() *Store {
	return &Store{
		byID: map[string]user.User{}, byEmail: map[string]string{},
		sessions: map[string]app.RefreshSession{}, resets: map[string]*reset{}, requests: map[string]*resetRequest{},
	}
}

// Add stores u and its events atomically.
func (s *Store) Add(_ context.Context, u user.User, events ...eventbus.Envelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.byEmail[u.NormalizedEmail()]; taken {
		return user.ErrEmailTaken
	}
	s.byID[u.ID()] = u
	s.byEmail[u.NormalizedEmail()] = u.ID()
	s.events = append(s.events, events...)
	return nil
}

// ByEmail finds a user case-insensitively.
func (s *Store) ByEmail(_ context.Context, email string) (user.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byEmail[user.NormalizeEmail(email)]
	if !ok {
		return user.User{}, user.ErrNotFound
	}
	return s.byID[id], nil
}

// ByID finds a user by id.
func (s *Store) ByID(_ context.Context, id string) (user.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return user.User{}, user.ErrNotFound
	}
	return u, nil
}

// List filters by name substring (case-insensitive), orders and pages.
func (s *Store) List(_ context.Context, name string, offset, limit int) ([]user.User, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []user.User
	for _, u := range s.byID {
		if strings.Contains(strings.ToLower(u.Name()), strings.ToLower(name)) {
			match = append(match, u)
		}
	}
	slices.SortFunc(match, func(a, b user.User) int {
		return cmp.Or(a.CreatedAt().Compare(b.CreatedAt()), cmp.Compare(a.ID(), b.ID()))
	})
	lo, hi := min(offset, len(match)), min(offset+limit, len(match))
	return match[lo:hi], len(match), nil
}

// UpdatePassword replaces the hash and spends the user's reset tokens.
func (s *Store) UpdatePassword(_ context.Context, id, hash string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.setPassword(id, hash); err != nil {
		return err
	}
	s.spendResets(id)
	return nil
}

func (s *Store) spendResets(userID string) {
	for _, r := range s.resets {
		if r.UserID == userID {
			r.used = true
		}
	}
}

func (s *Store) setPassword(id, hash string) error {
	u, ok := s.byID[id]
	if !ok {
		return user.ErrNotFound
	}
	s.byID[id] = user.UnmarshalUserFromDB(u.ID(), u.Name(), u.Email(), hash, u.CreatedAt())
	return nil
}

// Create stores a refresh session.
func (s *Store) Create(_ context.Context, rs app.RefreshSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[rs.TokenHash] = rs
	return nil
}

// ByTokenHash finds a refresh session.
func (s *Store) ByTokenHash(_ context.Context, hash string) (app.RefreshSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, ok := s.sessions[hash]
	if !ok {
		return app.RefreshSession{}, app.ErrSessionNotFound
	}
	return rs, nil
}

// Rotate marks old used and stores next, unless old was used or revoked.
func (s *Store) Rotate(_ context.Context, oldID string, next app.RefreshSession, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, rs := range s.sessions {
		if rs.ID != oldID {
			continue
		}
		if rs.UsedAt != nil || rs.RevokedAt != nil {
			return false, nil
		}
		rs.UsedAt = &at
		s.sessions[h] = rs
		s.sessions[next.TokenHash] = next
		return true, nil
	}
	return false, nil
}

// RevokeFamily revokes a family.
func (s *Store) RevokeFamily(_ context.Context, family string, at time.Time) ([]app.AccessToken, error) {
	return s.revoke(at, func(rs app.RefreshSession) bool { return rs.FamilyID == family }), nil
}

// RevokeUser revokes every family of the user but keep.
func (s *Store) RevokeUser(_ context.Context, userID, keep string, at time.Time) ([]app.AccessToken, error) {
	return s.revoke(at, func(rs app.RefreshSession) bool { return rs.UserID == userID && rs.FamilyID != keep }), nil
}

func (s *Store) revoke(at time.Time, match func(app.RefreshSession) bool) []app.AccessToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	var live []app.AccessToken
	for h, rs := range s.sessions {
		if !match(rs) {
			continue
		}
		if rs.RevokedAt == nil {
			rs.RevokedAt = &at
			s.sessions[h] = rs
		}
		if rs.Access.ID != "" && rs.Access.ExpiresAt.After(at) {
			live = append(live, rs.Access)
		}
	}
	return live
}

// CreateReset stores a reset token.
func (s *Store) CreateReset(_ context.Context, t app.ResetToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets[t.TokenHash] = &reset{ResetToken: t}
	return nil
}

// FindReset returns the owner of a usable reset token.
func (s *Store) FindReset(_ context.Context, hash string, at time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.resets[hash]
	if !ok || r.used || !at.Before(r.ExpiresAt) {
		return "", user.ErrInvalidResetToken
	}
	return r.UserID, nil
}

// Redeem consumes a reset token, sets the password and spends the user's other
// reset tokens.
func (s *Store) Redeem(_ context.Context, hash, newPasswordHash string, at time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.resets[hash]
	if !ok || r.used || !at.Before(r.ExpiresAt) {
		return "", user.ErrInvalidResetToken
	}
	if err := s.setPassword(r.UserID, newPasswordHash); err != nil {
		return "", err
	}
	s.spendResets(r.UserID)
	return r.UserID, nil
}

// EnqueueReset stores a forgot-password request.
func (s *Store) EnqueueReset(_ context.Context, r app.ResetRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[r.ID] = &resetRequest{ResetRequest: r, notBefore: r.RequestedAt}
	return nil
}

// ClaimResets leases due requests, oldest first.
func (s *Store) ClaimResets(_ context.Context, now, leaseUntil time.Time, limit int) ([]app.ResetRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*resetRequest
	for _, r := range s.requests {
		if !r.notBefore.After(now) {
			due = append(due, r)
		}
	}
	slices.SortFunc(due, func(a, b *resetRequest) int { return a.RequestedAt.Compare(b.RequestedAt) })
	out := make([]app.ResetRequest, 0, min(limit, len(due)))
	for _, r := range due[:min(limit, len(due))] {
		r.notBefore = leaseUntil
		r.Attempts++
		out = append(out, r.ResetRequest)
	}
	return out, nil
}

// DeleteReset removes a request.
func (s *Store) DeleteReset(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	return nil
}

// Events returns the events added so far.
func (s *Store) Events() []eventbus.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]eventbus.Envelope(nil), s.events...)
}
