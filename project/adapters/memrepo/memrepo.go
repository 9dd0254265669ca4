// Package memrepo is the in-memory adapter of the project service's Store, for
// component tests and for programs that reuse the domain without a database (see the
// app package's example). A write holds one lock for its whole transaction and works
// on a copy of the state that replaces it only on success, so it is atomic and
// serialised like the SQL adapter's transactions.
package memrepo

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/project/app"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

type membership struct {
	role    project.Role
	addedAt time.Time
	active  bool
	version int64
}

type state struct {
	projects  map[string]project.Project
	members   map[string]map[string]membership // project id -> user id
	cards     map[string]project.Card
	users     map[string]app.UserCopy
	comments  map[string]bool // comment id -> live (false: tombstone)
	processed map[string]bool
	events    []eventbus.Envelope
}

func (s *state) clone() *state {
	c := &state{
		projects: maps.Clone(s.projects), members: make(map[string]map[string]membership, len(s.members)),
		cards: maps.Clone(s.cards), users: maps.Clone(s.users), comments: maps.Clone(s.comments),
		processed: maps.Clone(s.processed), events: slices.Clone(s.events),
	}
	for k, v := range s.members {
		c.members[k] = maps.Clone(v)
	}
	return c
}

// Store implements app.Store in memory.
type Store struct {
	mu sync.RWMutex
	s  *state
}

// New returns an empty store.
func New() *Store {
	return &Store{s: &state{
		projects: map[string]project.Project{}, members: map[string]map[string]membership{},
		cards: map[string]project.Card{}, users: map[string]app.UserCopy{}, comments: map[string]bool{},
		processed: map[string]bool{},
	}}
}

// Events returns the events committed so far, in order.
func (st *Store) Events() []eventbus.Envelope {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return slices.Clone(st.s.events)
}

// PutUser stores a user copy directly, for tests and examples that have no event bus.
func (st *Store) PutUser(u app.UserCopy) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.users[u.ID] = u
}

func access(s *state, p project.Project, userID string) project.Access {
	if p.OwnerID() == userID {
		return project.Owner
	}
	if m, ok := s.members[p.ID()][userID]; ok && m.active {
		return project.MemberAccess
	}
	return project.Stranger
}

// Access implements app.Store.
func (st *Store) Access(_ context.Context, projectID, userID string) (project.Project, project.Access, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	p, ok := st.s.projects[projectID]
	if !ok {
		return project.Project{}, project.Stranger, project.ErrProjectNotFound
	}
	return p, access(st.s, p, userID), nil
}

// Card implements app.Store.
func (st *Store) Card(_ context.Context, id string) (project.Card, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, ok := st.s.cards[id]
	if !ok {
		return project.Card{}, project.ErrCardNotFound
	}
	return c, nil
}

func byCreated[T interface {
	CreatedAt() time.Time
	ID() string
}](a, b T) int {
	if c := a.CreatedAt().Compare(b.CreatedAt()); c != 0 {
		return c
	}
	return strings.Compare(a.ID(), b.ID())
}

func page[T any](all []T, offset, limit int) []T {
	if offset >= len(all) {
		return []T{}
	}
	return all[offset:min(len(all), offset+limit)]
}

// ListProjects implements app.Store.
func (st *Store) ListProjects(_ context.Context, userID, title string, offset, limit int) ([]project.Project, int, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	needle := strings.ToLower(title)
	var all []project.Project
	for _, p := range st.s.projects {
		if access(st.s, p, userID) != project.Stranger && strings.Contains(strings.ToLower(p.Title()), needle) {
			all = append(all, p)
		}
	}
	slices.SortFunc(all, byCreated)
	return page(all, offset, limit), len(all), nil
}

// ListMembers implements app.Store.
func (st *Store) ListMembers(_ context.Context, projectID string, offset, limit int) ([]project.Member, int, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var all []project.Member
	for id, m := range st.s.members[projectID] {
		if !m.active {
			continue
		}
		u := st.s.users[id]
		all = append(all, project.Member{UserID: id, Name: u.Name, Email: u.Email, Role: m.role, AddedAt: m.addedAt})
	}
	slices.SortFunc(all, func(a, b project.Member) int {
		if a.Role != b.Role {
			if a.Role == project.RoleOwner {
				return -1
			}
			return 1
		}
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.UserID, b.UserID)
	})
	return page(all, offset, limit), len(all), nil
}

// ListCards implements app.Store.
func (st *Store) ListCards(_ context.Context, f app.CardFilter, limit int) ([]project.Card, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var all []project.Card
	for _, c := range st.s.cards {
		if c.ProjectID() != f.ProjectID || (f.Status != "" && c.Status() != f.Status) {
			continue
		}
		if f.After != nil {
			if d := c.CreatedAt().Compare(f.After.CreatedAt); d < 0 || (d == 0 && c.ID() <= f.After.ID) {
				continue
			}
		}
		all = append(all, c)
	}
	slices.SortFunc(all, byCreated)
	return page(all, 0, limit), nil
}

// Write implements app.Store: fn works on a copy that replaces the state only when fn
// succeeds.
func (st *Store) Write(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	work := st.s.clone()
	if err := fn(ctx, &tx{s: work}); err != nil {
		return err
	}
	st.s = work
	return nil
}

// ApplyUser implements app.Store.
func (st *Store) ApplyUser(_ context.Context, eventID string, u app.UserCopy) (bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.s.processed[eventID] {
		return false, nil
	}
	st.s.processed[eventID] = true
	if old, ok := st.s.users[u.ID]; !ok || old.Version < u.Version {
		st.s.users[u.ID] = u
	}
	return true, nil
}

// ApplyComment implements app.Store.
func (st *Store) ApplyComment(_ context.Context, eventID, commentID, cardID string, live bool) (bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.s.processed[eventID] {
		return false, nil
	}
	st.s.processed[eventID] = true
	was, seen := st.s.comments[commentID]
	delta := 0
	switch {
	case !seen:
		st.s.comments[commentID] = live
		if live {
			delta = 1
		}
	case was && !live:
		st.s.comments[commentID] = false
		delta = -1
	}
	if c, ok := st.s.cards[cardID]; ok && delta != 0 {
		st.s.cards[cardID] = withTotal(c, max(0, c.TotalComment()+delta))
	}
	return true, nil
}

func withTotal(c project.Card, total int) project.Card {
	return project.UnmarshalCardFromDB(c.ID(), c.ProjectID(), c.Title(), c.Description(), c.Status(), c.CreatorID(),
		total, c.CreatedAt(), c.UpdatedAt(), c.Version())
}

// tx is one Write's view of the copied state.
type tx struct{ s *state }

func (t *tx) LockProject(_ context.Context, projectID, userID string, _ bool) (project.Project, project.Access, error) {
	p, ok := t.s.projects[projectID]
	if !ok {
		return project.Project{}, project.Stranger, project.ErrProjectNotFound
	}
	return p, access(t.s, p, userID), nil
}

func (t *tx) LockCard(_ context.Context, projectID, cardID string) (project.Card, error) {
	c, ok := t.s.cards[cardID]
	if !ok || c.ProjectID() != projectID {
		return project.Card{}, project.ErrCardNotFound
	}
	return c, nil
}

func (t *tx) User(_ context.Context, id string) (app.UserCopy, error) {
	u, ok := t.s.users[id]
	if !ok {
		return app.UserCopy{}, project.ErrUnknownUser
	}
	return u, nil
}

func (t *tx) Audience(_ context.Context, projectID string) ([]string, error) {
	var ids []string
	for id, m := range t.s.members[projectID] {
		if m.active && m.role == project.RoleMember {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (t *tx) IsMember(_ context.Context, projectID, userID string) (bool, error) {
	m, ok := t.s.members[projectID][userID]
	return ok && m.active && m.role == project.RoleMember, nil
}

func (t *tx) CountMembers(ctx context.Context, projectID string) (int, error) {
	ids, err := t.Audience(ctx, projectID)
	return len(ids), err
}

func (t *tx) InsertProject(_ context.Context, p project.Project) error {
	t.s.projects[p.ID()] = p
	t.s.members[p.ID()] = map[string]membership{p.OwnerID(): {role: project.RoleOwner, addedAt: p.CreatedAt(), active: true, version: 1}}
	return nil
}

func (t *tx) SaveProject(_ context.Context, p project.Project) error {
	t.s.projects[p.ID()] = p
	return nil
}

func (t *tx) DeleteProject(_ context.Context, projectID string) error {
	delete(t.s.projects, projectID)
	delete(t.s.members, projectID)
	for id, c := range t.s.cards {
		if c.ProjectID() == projectID {
			delete(t.s.cards, id)
		}
	}
	return nil
}

func (t *tx) AddMember(_ context.Context, projectID, userID string, at time.Time) (int64, error) {
	ms := t.s.members[projectID]
	m, ok := ms[userID]
	if ok && m.active {
		return 0, project.ErrAlreadyMember
	}
	m = membership{role: project.RoleMember, addedAt: at, active: true, version: m.version + 1}
	ms[userID] = m
	return m.version, nil
}

func (t *tx) RemoveMember(_ context.Context, projectID, userID string) (int64, error) {
	ms := t.s.members[projectID]
	m, ok := ms[userID]
	if !ok || !m.active || m.role != project.RoleMember {
		return 0, project.ErrMemberNotFound
	}
	m.active = false
	m.version++
	ms[userID] = m
	return m.version, nil
}

func (t *tx) InsertCard(_ context.Context, c project.Card) error {
	t.s.cards[c.ID()] = c
	return nil
}

func (t *tx) SaveCard(_ context.Context, c project.Card) error {
	old, ok := t.s.cards[c.ID()]
	if !ok {
		return project.ErrCardNotFound
	}
	t.s.cards[c.ID()] = withTotal(c, old.TotalComment())
	return nil
}

func (t *tx) DeleteCard(_ context.Context, cardID string) error {
	delete(t.s.cards, cardID)
	return nil
}

func (t *tx) Publish(_ context.Context, envs ...eventbus.Envelope) error {
	t.s.events = append(t.s.events, envs...)
	return nil
}
