// Package project is the project service's domain: projects, their members and their
// cards, the rules on their fields, and who may do what (Access). It knows nothing of
// SQL, JSON or HTTP.
package project

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Field limits (API.md).
const (
	MaxTitleLen       = 200
	MaxDescriptionLen = 10_000
)

// Sentinel errors the HTTP port maps with errors.Is. Not-found errors also stand for
// "exists but the caller may not see it", so a stranger learns nothing.
var (
	ErrProjectNotFound = errors.New("project not found")
	ErrCardNotFound    = errors.New("card not found")
	ErrMemberNotFound  = errors.New("member not found")
	// ErrForbidden is for a member attempting an owner-only action: the member can
	// see the project, so 403 reveals nothing.
	ErrForbidden = errors.New("only the project owner may do this")
	// ErrAlreadyMember is adding a user who already belongs to the project.
	ErrAlreadyMember = errors.New("user is already a member")
	// ErrUnknownUser is adding a user id the local user copy does not know.
	ErrUnknownUser = errors.New("unknown user")
	// ErrOwnerNotRemovable is kicking the owner, who cannot leave their project.
	ErrOwnerNotRemovable = errors.New("the owner cannot be removed")
	// ErrTooManyMembers is adding a member beyond the per-project bound, which keeps
	// event audiences and notification fan-out bounded.
	ErrTooManyMembers = errors.New("the project has reached its member limit")
)

// Violation names one field and what is wrong with it.
type Violation struct {
	Field   string
	Message string
}

// ValidationError lists every rule the input breaks, so a client can fix all at once.
type ValidationError struct {
	Violations []Violation
}

// Error joins the violations into one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

type violations []Violation

func (v *violations) add(field, msg string) { *v = append(*v, Violation{Field: field, Message: msg}) }

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}

func checkTitle(v *violations, title string) {
	switch n := utf8.RuneCountInString(title); {
	case strings.TrimSpace(title) == "":
		v.add("title", "must not be empty")
	case n > MaxTitleLen:
		v.add("title", fmt.Sprintf("must be at most %d characters", MaxTitleLen))
	case !utf8.ValidString(title):
		v.add("title", "must be valid UTF-8")
	}
}

func checkDescription(v *violations, d string) {
	if utf8.RuneCountInString(d) > MaxDescriptionLen {
		v.add("description", fmt.Sprintf("must be at most %d characters", MaxDescriptionLen))
	} else if !utf8.ValidString(d) {
		v.add("description", "must be valid UTF-8")
	}
}

// Status is where a card stands.
type Status string

// The three statuses of API.md.
const (
	StatusTodo       Status = "todo"
	StatusInProgress Status = "in_progress"
	StatusDone       Status = "done"
)

// ParseStatus accepts exactly the three statuses.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusTodo, StatusInProgress, StatusDone:
		return st, nil
	}
	return "", &ValidationError{Violations: []Violation{{Field: "status", Message: "must be one of todo, in_progress, done"}}}
}

// String returns the wire form.
func (s Status) String() string { return string(s) }

// Role is a user's place in a project.
type Role string

// The two roles of a member list.
const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// String returns the wire form.
func (r Role) String() string { return string(r) }

// Access is what a user is to a project, the input of every authorization decision.
type Access int

// The three kinds of caller.
const (
	Stranger Access = iota
	MemberAccess
	Owner
)

// Action is something a caller wants to do with a project or its cards.
type Action int

// The actions, coarse on purpose: API.md has exactly two levels of permission.
const (
	// ActView covers reading the project, its members and cards.
	ActView Action = iota
	// ActWorkOnCards covers creating, editing and deleting cards.
	ActWorkOnCards
	// ActManage covers editing or deleting the project and adding or kicking members.
	ActManage
)

// Decide returns nil when a caller with access a may perform act, else the error the
// caller gets: strangers never learn the project exists (notFound), members are
// refused owner-only actions (ErrForbidden).
func (a Access) Decide(act Action, notFound error) error {
	switch {
	case a == Stranger:
		return notFound
	case act == ActManage && a != Owner:
		return ErrForbidden
	}
	return nil
}

// Project is a container of cards owned by one user. Version counts its changes (1 on
// creation), the aggregateVersion of its events.
type Project struct {
	id          string
	title       string
	description string
	ownerID     string
	createdAt   time.Time
	updatedAt   time.Time
	version     int64
}

// NewProject validates and builds a new project owned by ownerID, at version 1.
func NewProject(id, title, description, ownerID string, now time.Time) (Project, error) {
	var v violations
	checkTitle(&v, title)
	checkDescription(&v, description)
	if err := v.err(); err != nil {
		return Project{}, err
	}
	if id == "" || ownerID == "" {
		return Project{}, errors.New("project: empty id or owner")
	}
	now = now.UTC()
	return Project{id: id, title: title, description: description, ownerID: ownerID, createdAt: now, updatedAt: now, version: 1}, nil
}

// UnmarshalProjectFromDB rebuilds a stored project without validation; adapters only.
func UnmarshalProjectFromDB(id, title, description, ownerID string, createdAt, updatedAt time.Time, version int64) Project {
	return Project{
		id: id, title: title, description: description, ownerID: ownerID,
		createdAt: createdAt.UTC(), updatedAt: updatedAt.UTC(), version: version,
	}
}

// ID returns the id.
func (p Project) ID() string { return p.id }

// Title returns the title.
func (p Project) Title() string { return p.title }

// Description returns the description.
func (p Project) Description() string { return p.description }

// OwnerID returns the owner's user id.
func (p Project) OwnerID() string { return p.ownerID }

// CreatedAt returns the creation time.
func (p Project) CreatedAt() time.Time { return p.createdAt }

// UpdatedAt returns the time of the last change.
func (p Project) UpdatedAt() time.Time { return p.updatedAt }

// Version returns the aggregate version.
func (p Project) Version() int64 { return p.version }

// Update applies the given fields (nil leaves one as it is). It reports whether
// anything changed; only a change bumps the version and updatedAt.
func (p *Project) Update(title, description *string, now time.Time) (bool, error) {
	var v violations
	if title != nil {
		checkTitle(&v, *title)
	}
	if description != nil {
		checkDescription(&v, *description)
	}
	if err := v.err(); err != nil {
		return false, err
	}
	changed := false
	if title != nil && *title != p.title {
		p.title, changed = *title, true
	}
	if description != nil && *description != p.description {
		p.description, changed = *description, true
	}
	if changed {
		p.updatedAt = now.UTC()
		p.version++
	}
	return changed, nil
}

// Delete returns the version of the deletion (the tombstone's).
func (p *Project) Delete() int64 {
	p.version++
	return p.version
}

// Card is a bug or task of a project. Version counts its changes (1 on creation).
type Card struct {
	id           string
	projectID    string
	title        string
	description  string
	status       Status
	creatorID    string
	totalComment int
	createdAt    time.Time
	updatedAt    time.Time
	version      int64
}

// NewCard validates and builds a card; an empty status means todo.
func NewCard(id, projectID, title, description, status, creatorID string, now time.Time) (Card, error) {
	var v violations
	checkTitle(&v, title)
	checkDescription(&v, description)
	st := StatusTodo
	if status != "" {
		s, err := ParseStatus(status)
		if err != nil {
			v.add("status", "must be one of todo, in_progress, done")
		}
		st = s
	}
	if err := v.err(); err != nil {
		return Card{}, err
	}
	if id == "" || projectID == "" || creatorID == "" {
		return Card{}, errors.New("card: empty id, project or creator")
	}
	now = now.UTC()
	return Card{
		id: id, projectID: projectID, title: title, description: description, status: st,
		creatorID: creatorID, createdAt: now, updatedAt: now, version: 1,
	}, nil
}

// UnmarshalCardFromDB rebuilds a stored card without validation; adapters only.
func UnmarshalCardFromDB(id, projectID, title, description string, status Status, creatorID string,
	totalComment int, createdAt, updatedAt time.Time, version int64,
) Card {
	return Card{
		id: id, projectID: projectID, title: title, description: description, status: status, creatorID: creatorID,
		totalComment: totalComment, createdAt: createdAt.UTC(), updatedAt: updatedAt.UTC(), version: version,
	}
}

// ID returns the id.
func (c Card) ID() string { return c.id }

// ProjectID returns the project's id.
func (c Card) ProjectID() string { return c.projectID }

// Title returns the title.
func (c Card) Title() string { return c.title }

// Description returns the description.
func (c Card) Description() string { return c.description }

// Status returns the status.
func (c Card) Status() Status { return c.status }

// CreatorID returns the creator's user id.
func (c Card) CreatorID() string { return c.creatorID }

// TotalComment returns the number of live comments.
func (c Card) TotalComment() int { return c.totalComment }

// CreatedAt returns the creation time.
func (c Card) CreatedAt() time.Time { return c.createdAt }

// UpdatedAt returns the time of the last change.
func (c Card) UpdatedAt() time.Time { return c.updatedAt }

// Version returns the aggregate version.
func (c Card) Version() int64 { return c.version }

// CardChange says what an update changed, so the caller publishes the right events.
type CardChange struct {
	// Edited is true when the title or the description changed.
	Edited bool
	// StatusChanged is true when the status changed, from From to the card's status.
	StatusChanged bool
	From          Status
}

// Any reports whether anything changed.
func (c CardChange) Any() bool { return c.Edited || c.StatusChanged }

// Update applies the given fields (nil leaves one as it is). A change bumps the
// version once, whatever changed, so events born of one PATCH share it.
func (c *Card) Update(title, description, status *string, now time.Time) (CardChange, error) {
	var v violations
	if title != nil {
		checkTitle(&v, *title)
	}
	if description != nil {
		checkDescription(&v, *description)
	}
	var st Status
	if status != nil {
		s, err := ParseStatus(*status)
		if err != nil {
			v.add("status", "must be one of todo, in_progress, done")
		}
		st = s
	}
	if err := v.err(); err != nil {
		return CardChange{}, err
	}
	var ch CardChange
	if title != nil && *title != c.title {
		c.title, ch.Edited = *title, true
	}
	if description != nil && *description != c.description {
		c.description, ch.Edited = *description, true
	}
	if status != nil && st != c.status {
		ch.StatusChanged, ch.From, c.status = true, c.status, st
	}
	if ch.Any() {
		c.updatedAt = now.UTC()
		c.version++
	}
	return ch, nil
}

// Delete returns the version of the deletion (the tombstone's).
func (c *Card) Delete() int64 {
	c.version++
	return c.version
}

// Member is one user's membership as the member list shows it: name and email come
// from the local user copy.
type Member struct {
	UserID  string
	Name    string
	Email   string
	Role    Role
	AddedAt time.Time
}
