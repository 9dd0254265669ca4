// Package memrepo is the in-memory adapter of the auth ports, for unit and component
// tests. It keeps the events it was given so tests can assert them.
package memrepo

import (
	"context"
	"sync"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
)

// Store holds users, sessions and published events.
type Store struct {
	mu       sync.Mutex
	byID     map[string]user.User
	byEmail  map[string]string
	sessions map[string]app.RefreshSession
	events   []eventbus.Envelope
}

// New returns an empty store.
func New() *Store {
	return &Store{byID: map[string]user.User{}, byEmail: map[string]string{}, sessions: map[string]app.RefreshSession{}}
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

// Create stores a refresh session.
func (s *Store) Create(_ context.Context, rs app.RefreshSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[rs.TokenHash] = rs
	return nil
}

// Events returns the events added so far.
func (s *Store) Events() []eventbus.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]eventbus.Envelope(nil), s.events...)
}
