package app

import (
	"context"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// UserCopy is the project service's local copy of a user, fed by newUser events;
// Version is the user's aggregateVersion, so an older event never overwrites a newer
// copy.
type UserCopy struct {
	ID      string
	Name    string
	Email   string
	Version int64
}

// CardPosition is a keyset position in a card list: the list continues after the
// card created at CreatedAt with id ID, so inserts and deletes between pages shift
// nothing.
type CardPosition struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

// CardFilter selects the cards of one project, optionally of one status, after a
// position.
type CardFilter struct {
	ProjectID string
	// Status, when not empty, keeps only cards with that status.
	Status project.Status
	// After, when set, keeps only cards after it in (createdAt, id) order.
	After *CardPosition
}

// Store is the persistence port of the project service. Reads run on their own;
// every change runs in Write, one transaction holding the state change and its
// events (the outbox), so a change is never committed without its events.
type Store interface {
	// Access returns the project and what userID is to it (owner, member or
	// stranger); project.ErrProjectNotFound when there is no such project.
	Access(ctx context.Context, projectID, userID string) (project.Project, project.Access, error)
	// Card returns a card; project.ErrCardNotFound when there is none.
	Card(ctx context.Context, id string) (project.Card, error)
	// ListProjects pages the projects userID owns or is a member of, in createdAt,
	// id order, whose title contains title case-insensitively (with % and _ literal),
	// and returns the number of matching projects.
	ListProjects(ctx context.Context, userID, title string, offset, limit int) ([]project.Project, int, error)
	// ListMembers pages the project's members, owner first, then by addedAt and
	// userId, with name and email from the local user copies, and their number.
	ListMembers(ctx context.Context, projectID string, offset, limit int) ([]project.Member, int, error)
	// ListCards returns up to limit cards matching f in createdAt, id order.
	ListCards(ctx context.Context, f CardFilter, limit int) ([]project.Card, error)
	// Write runs fn in one transaction and commits it when fn returns nil.
	Write(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// ApplyUser stores u unless the copy already holds its version or a newer one,
	// at most once per eventID (false when the event was already applied).
	ApplyUser(ctx context.Context, eventID string, u UserCopy) (bool, error)
	// ApplyComment records that comment commentID of card cardID is live (newComment)
	// or deleted (deleteComment), at most once per eventID, and keeps the card's
	// totalComment equal to its live comments in the same transaction: a deletion
	// seen before its creation leaves a tombstone the creation then respects, and
	// the count never goes negative.
	ApplyComment(ctx context.Context, eventID, commentID, cardID string, live bool) (bool, error)
}

// Tx is one transaction of Store.Write. Lock methods lock rows until the commit, so
// a check made through Tx still holds when the change is written: callers lock the
// project before its cards, always in that order.
type Tx interface {
	// LockProject returns the project and userID's access to it, locking the
	// project row: exclusively for changes of the project or its members, shared
	// for card changes (which may run side by side, but not beside a kick or a
	// deletion of the project).
	LockProject(ctx context.Context, projectID, userID string, exclusive bool) (project.Project, project.Access, error)
	// LockCard returns a card of the project and locks it.
	LockCard(ctx context.Context, projectID, cardID string) (project.Card, error)
	// User returns the local copy of a user; project.ErrUnknownUser when none.
	User(ctx context.Context, id string) (UserCopy, error)
	// Audience returns the member ids of a project (the owner excluded) in
	// userId order.
	Audience(ctx context.Context, projectID string) ([]string, error)
	// IsMember reports whether userID currently belongs to the project as a member.
	IsMember(ctx context.Context, projectID, userID string) (bool, error)
	// CountMembers returns the number of members, the owner excluded.
	CountMembers(ctx context.Context, projectID string) (int, error)
	// InsertProject stores a new project and its owner's membership.
	InsertProject(ctx context.Context, p project.Project) error
	// SaveProject stores a changed project.
	SaveProject(ctx context.Context, p project.Project) error
	// DeleteProject removes the project, its memberships and its cards.
	DeleteProject(ctx context.Context, projectID string) error
	// AddMember makes userID a member and returns the membership's new version
	// (one more than its last, so a re-add after a kick orders after the kick);
	// project.ErrAlreadyMember when it already is one.
	AddMember(ctx context.Context, projectID, userID string, at time.Time) (int64, error)
	// RemoveMember ends userID's membership and returns the membership's new
	// version; project.ErrMemberNotFound when the user is not a member.
	RemoveMember(ctx context.Context, projectID, userID string) (int64, error)
	// InsertCard stores a new card.
	InsertCard(ctx context.Context, c project.Card) error
	// SaveCard stores a changed card (totalComment is the store's, never written).
	SaveCard(ctx context.Context, c project.Card) error
	// DeleteCard removes a card.
	DeleteCard(ctx context.Context, cardID string) error
	// Publish adds events to the outbox of this transaction.
	Publish(ctx context.Context, envs ...eventbus.Envelope) error
}

// Clock returns the current time.
type Clock func() time.Time

// IDGenerator returns a new unique id (UUIDv7).
type IDGenerator func() string

// MaxMembers bounds the members of one project (the owner not counted).
type MaxMembers int
