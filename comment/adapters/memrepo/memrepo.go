// Package memrepo is the in-memory adapter of the comment service's Store, for
// component tests. One mutex serialises every transaction, which is the strongest
// isolation there is; an undo log rolls a failed transaction back.
package memrepo

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/eventbus"
)

// Store implements app.Store in memory.
type Store struct {
	mu        sync.RWMutex
	users     map[string]app.UserCopy
	projects  map[string]app.ProjectCopy
	members   map[[2]string]app.MemberCopy
	cards     map[string]app.CardCopy
	comments  map[string]comment.Comment
	processed map[string]bool
	events    []eventbus.Envelope
	// afterCommit runs after a transaction that published events commits.
	afterCommit func([]eventbus.Envelope)
}

// New returns an empty store.
func New() *Store {
	return &Store{
		users: map[string]app.UserCopy{}, projects: map[string]app.ProjectCopy{},
		members: map[[2]string]app.MemberCopy{}, cards: map[string]app.CardCopy{},
		comments: map[string]comment.Comment{}, processed: map[string]bool{},
		afterCommit: func([]eventbus.Envelope) {},
	}
}

// OnCommit sets a function called with the events of each committed transaction
// (outside the lock), so a test can forward them to an in-memory bus as the outbox
// relay would.
func (s *Store) OnCommit(f func([]eventbus.Envelope)) { s.afterCommit = f }

// Events returns a copy of every event stored so far, in commit order.
func (s *Store) Events() []eventbus.Envelope {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.events)
}

// CommentCount returns how many comments are stored.
func (s *Store) CommentCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.comments)
}

// Update implements app.Store.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	s.mu.Lock()
	tx := &tx{s: s, write: true}
	err := fn(ctx, tx)
	if err != nil {
		tx.rollback()
	}
	s.mu.Unlock()
	if err == nil && len(tx.published) > 0 {
		s.afterCommit(tx.published)
	}
	return err
}

// View implements app.Store.
func (s *Store) View(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(ctx, &tx{s: s})
}

// ApplyEvent implements app.Store.
func (s *Store) ApplyEvent(ctx context.Context, eventID string, fn func(ctx context.Context, tx app.Tx) error) (bool, error) {
	if eventID == "" {
		return false, errors.New("memrepo: empty event id")
	}
	applied := false
	err := s.Update(ctx, func(ctx context.Context, t app.Tx) error {
		if s.processed[eventID] {
			return nil
		}
		if err := fn(ctx, t); err != nil {
			return err
		}
		s.processed[eventID] = true
		t.(*tx).undo = append(t.(*tx).undo, func() { delete(s.processed, eventID) })
		applied = true
		return nil
	})
	return applied, err
}

// tx is one transaction; writes record how to undo them.
type tx struct {
	s         *Store
	write     bool
	undo      []func()
	published []eventbus.Envelope
}

var errReadOnly = errors.New("memrepo: write in a read-only view")

func (t *tx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.published = nil
}

// remember records how to restore m[k] to what it is now.
func remember[K comparable, V any](t *tx, m map[K]V, k K) {
	old, had := m[k]
	t.undo = append(t.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

func put[K comparable, V any](t *tx, m map[K]V, k K, v V) error {
	if !t.write {
		return errReadOnly
	}
	remember(t, m, k)
	m[k] = v
	return nil
}

func get[K comparable, V any](m map[K]V, k K) (V, error) {
	v, ok := m[k]
	if !ok {
		return v, app.ErrNoCopy
	}
	return v, nil
}

func (t *tx) User(_ context.Context, id string) (app.UserCopy, error) { return get(t.s.users, id) }

func (t *tx) Project(_ context.Context, id string, _ app.Lock) (app.ProjectCopy, error) {
	return get(t.s.projects, id)
}

func (t *tx) Member(_ context.Context, projectID, userID string, _ app.Lock) (app.MemberCopy, error) {
	return get(t.s.members, [2]string{projectID, userID})
}

func (t *tx) MemberIDs(_ context.Context, projectID string) ([]string, error) {
	var ids []string
	for k, m := range t.s.members {
		if k[0] == projectID && !m.Removed {
			ids = append(ids, k[1])
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (t *tx) Card(_ context.Context, id string, _ app.Lock) (app.CardCopy, error) {
	return get(t.s.cards, id)
}

func (t *tx) CardAccess(_ context.Context, cardID, userID string, _ app.Lock) (app.CardAccess, error) {
	c, err := get(t.s.cards, cardID)
	if err != nil {
		return app.CardAccess{}, err
	}
	a := app.CardAccess{Card: c}
	a.Project, a.ProjectFound = t.s.projects[c.ProjectID]
	a.Member, a.MemberFound = t.s.members[[2]string{c.ProjectID, userID}]
	return a, nil
}

func (t *tx) SaveUser(_ context.Context, u app.UserCopy) error { return put(t, t.s.users, u.ID, u) }

func (t *tx) SaveProject(_ context.Context, p app.ProjectCopy) error {
	return put(t, t.s.projects, p.ID, p)
}

func (t *tx) SaveMember(_ context.Context, m app.MemberCopy) error {
	return put(t, t.s.members, [2]string{m.ProjectID, m.UserID}, m)
}

func (t *tx) SaveCard(_ context.Context, c app.CardCopy) error { return put(t, t.s.cards, c.ID, c) }

func (t *tx) AddComment(_ context.Context, c comment.Comment) error {
	if _, dup := t.s.comments[c.ID()]; dup {
		return errors.New("memrepo: duplicate comment id")
	}
	return put(t, t.s.comments, c.ID(), c)
}

func (t *tx) Comment(_ context.Context, id string, _ app.Lock) (comment.Comment, error) {
	c, ok := t.s.comments[id]
	if !ok {
		return comment.Comment{}, comment.ErrNotFound
	}
	return c, nil
}

func compare(a comment.Comment, at app.Position) int {
	return cmp.Or(a.CreatedAt().Compare(at.CreatedAt), cmp.Compare(a.ID(), at.ID))
}

func (t *tx) Comments(_ context.Context, cardID string, after *app.Position, limit int) ([]comment.Comment, error) {
	var out []comment.Comment
	for _, c := range t.s.comments {
		if c.CardID() == cardID && (after == nil || compare(c, *after) > 0) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b comment.Comment) int {
		return compare(a, app.Position{CreatedAt: b.CreatedAt(), ID: b.ID()})
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *tx) remove(keep func(comment.Comment) bool) (int, error) {
	if !t.write {
		return 0, errReadOnly
	}
	n := 0
	for id, c := range t.s.comments {
		if !keep(c) {
			remember(t, t.s.comments, id)
			delete(t.s.comments, id)
			n++
		}
	}
	return n, nil
}

func (t *tx) RemoveComment(_ context.Context, id string) (bool, error) {
	n, err := t.remove(func(c comment.Comment) bool { return c.ID() != id })
	return n == 1, err
}

func (t *tx) RemoveCardComments(_ context.Context, cardID string) (int, error) {
	return t.remove(func(c comment.Comment) bool { return c.CardID() != cardID })
}

func (t *tx) RemoveProjectComments(_ context.Context, projectID string) (int, error) {
	return t.remove(func(c comment.Comment) bool { return c.ProjectID() != projectID })
}

func (t *tx) Publish(_ context.Context, envs ...eventbus.Envelope) error {
	if !t.write {
		return errReadOnly
	}
	n := len(t.s.events)
	t.s.events = append(t.s.events, envs...)
	t.undo = append(t.undo, func() { t.s.events = t.s.events[:n] })
	t.published = append(t.published, envs...)
	return nil
}
