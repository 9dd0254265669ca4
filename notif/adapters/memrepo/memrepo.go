// Package memrepo is the in-memory adapter of the notif ports, for tests.
package memrepo

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/bugtracker/bugtracker/eventbus/versioned"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
)

type key struct{ event, user string }

// Store holds user copies and notifications.
type Store struct {
	mu     sync.Mutex
	users  map[string]app.UserCopy
	notifs []notification.Notification
	seen   map[key]bool
}

// New returns an empty store.
func New() *Store {
	return &Store{users: map[string]app.UserCopy{}, seen: map[key]bool{}}
}

// Upsert stores the copy unless the one held is as new or newer.
func (s *Store) Upsert(_ context.Context, u app.UserCopy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.users[u.ID]
	if versioned.Newer(versioned.Held{Exists: ok, Version: held.Version}, u.Version) {
		s.users[u.ID] = u
	}
	return nil
}

// UserCopy returns the stored copy of user id, if any.
func (s *Store) UserCopy(_ context.Context, id string) (app.UserCopy, bool, error) {
	u, ok := s.User(id)
	return u, ok, nil
}

// User returns a stored copy.
func (s *Store) User(id string) (app.UserCopy, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// AddForEvent stores ns once per (event, recipient).
func (s *Store) AddForEvent(_ context.Context, eventID string, ns []notification.Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range ns {
		k := key{eventID, n.UserID()}
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		s.notifs = append(s.notifs, n)
	}
	return nil
}

// List filters, sorts newest first and pages.
func (s *Store) List(_ context.Context, f app.Filter, skip, limit int) ([]notification.Notification, int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []notification.Notification
	unread := 0
	for _, n := range s.notifs {
		if n.UserID() != f.UserID {
			continue
		}
		if !n.Read() {
			unread++
		}
		if f.Unread == nil || *f.Unread != n.Read() {
			match = append(match, n)
		}
	}
	slices.SortFunc(match, func(a, b notification.Notification) int {
		if c := b.CreatedAt().Compare(a.CreatedAt()); c != 0 {
			return c
		}
		return cmp.Compare(b.ID(), a.ID())
	})
	total := len(match)
	lo, hi := min(skip, total), min(skip+limit, total)
	return match[lo:hi], total, unread, nil
}

// MarkRead marks the user's notification read.
func (s *Store) MarkRead(_ context.Context, userID, id string) (notification.Notification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.notifs {
		if n.ID() == id && n.UserID() == userID {
			s.notifs[i] = n.MarkRead()
			return s.notifs[i], nil
		}
	}
	return notification.Notification{}, notification.ErrNotFound
}

// MarkAllRead marks all of the user's notifications read.
func (s *Store) MarkAllRead(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.notifs {
		if n.UserID() == userID {
			s.notifs[i] = n.MarkRead()
		}
	}
	return nil
}
