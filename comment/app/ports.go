package app

import (
	"context"
	"errors"
	"time"

	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/eventbus"
)

// ErrNoCopy is returned by the Tx lookups of local copies when the service has not
// received the aggregate yet (or never will). A tombstone is not ErrNoCopy: it is a
// copy with Deleted set.
var ErrNoCopy = errors.New("no local copy")

// UserCopy is the local copy of a user, fed by newUser; it gives comments' events
// their author's name.
type UserCopy struct {
	ID      string
	Name    string
	Version int64
}

// ProjectCopy is the local copy of a project, fed by newProject, updateProject and
// deleteProject. Deleted marks a tombstone: Version is then the deletion's version,
// so no older event can bring the project back.
type ProjectCopy struct {
	ID      string
	Title   string
	OwnerID string
	Version int64
	Deleted bool
}

// MemberCopy is the local copy of one membership (contracts.MembershipID), fed by
// memberAdded and memberRemoved. Removed marks a tombstone of a kick.
type MemberCopy struct {
	ProjectID string
	UserID    string
	Version   int64
	Removed   bool
}

// CardCopy is the local copy of a card, fed by newCard, updateCard, changeCardStatus
// and deleteCard. Deleted marks a tombstone.
type CardCopy struct {
	ID        string
	ProjectID string
	Title     string
	Version   int64
	Deleted   bool
}

// CardAccess is a card's copy together with the copies that decide what a user is
// to its project, read at once.
type CardAccess struct {
	Card CardCopy
	// Project is the card's project; ProjectFound is false when its copy has not
	// arrived.
	Project      ProjectCopy
	ProjectFound bool
	// Member is the user's membership of the project; MemberFound is false when
	// there is none.
	Member      MemberCopy
	MemberFound bool
}

// Position is a place in a card's comment list, ordered by (CreatedAt, ID): the
// keyset of the cursor pagination.
type Position struct {
	CreatedAt time.Time
	ID        string
}

// Store is the comment service's persistence port. Every use case runs inside one of
// its transactions, so that checks and the writes they permit happen atomically and
// events commit with the state they describe (transactional outbox).
type Store interface {
	// Update runs fn in one read-write transaction and commits when fn returns nil;
	// events given to Tx.Publish commit with it. An adapter may run fn again after a
	// deadlock, so fn must not have effects outside tx.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// View runs fn for reads only; it may not be a transaction, and Lock reads do not
	// lock.
	View(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// ApplyEvent runs fn in one transaction at most once per eventID (an inbox record
	// written in the same transaction). It reports whether fn ran and committed; a
	// redelivered event returns false without running fn.
	ApplyEvent(ctx context.Context, eventID string, fn func(ctx context.Context, tx Tx) error) (applied bool, err error)
}

// Lock says whether a read inside Update must keep other transactions from changing
// the row until commit: Share for a row a check depends on (a card, its project, a
// membership), Exclusive for a row about to change.
type Lock int

// The lock modes of Tx reads.
const (
	NoLock Lock = iota
	Share
	Exclusive
)

// Tx is what a use case may read and write in one Store transaction.
type Tx interface {
	// User returns the user copy, or ErrNoCopy.
	User(ctx context.Context, id string) (UserCopy, error)
	// Project returns the project copy (possibly a tombstone), or ErrNoCopy.
	Project(ctx context.Context, id string, lock Lock) (ProjectCopy, error)
	// Member returns the membership copy (possibly a tombstone), or ErrNoCopy.
	Member(ctx context.Context, projectID, userID string, lock Lock) (MemberCopy, error)
	// MemberIDs returns the users whose membership of the project is live, sorted.
	MemberIDs(ctx context.Context, projectID string) ([]string, error)
	// Card returns the card copy (possibly a tombstone), or ErrNoCopy.
	Card(ctx context.Context, id string, lock Lock) (CardCopy, error)
	// CardAccess returns the card copy with its project's copy and userID's
	// membership in one read (every row under lock), or ErrNoCopy without a card.
	CardAccess(ctx context.Context, cardID, userID string, lock Lock) (CardAccess, error)

	// SaveUser, SaveProject, SaveMember and SaveCard insert or replace a copy.
	SaveUser(ctx context.Context, u UserCopy) error
	SaveProject(ctx context.Context, p ProjectCopy) error
	SaveMember(ctx context.Context, m MemberCopy) error
	SaveCard(ctx context.Context, c CardCopy) error

	// AddComment inserts a comment.
	AddComment(ctx context.Context, c comment.Comment) error
	// Comment returns a comment, or comment.ErrNotFound.
	Comment(ctx context.Context, id string, lock Lock) (comment.Comment, error)
	// Comments returns up to limit comments of the card after the position (from
	// the start when after is nil), oldest first by (createdAt, id).
	Comments(ctx context.Context, cardID string, after *Position, limit int) ([]comment.Comment, error)
	// RemoveComment deletes a comment and reports whether it was there, so that of
	// two concurrent deletions only one publishes deleteComment.
	RemoveComment(ctx context.Context, id string) (bool, error)
	// RemoveCardComments deletes every comment of a card and returns how many.
	RemoveCardComments(ctx context.Context, cardID string) (int, error)
	// RemoveProjectComments deletes every comment of a project and returns how many.
	RemoveProjectComments(ctx context.Context, projectID string) (int, error)

	// Publish stores events in the outbox; they are published after the commit.
	Publish(ctx context.Context, envs ...eventbus.Envelope) error
}

// Clock returns the current time.
type Clock func() time.Time

// IDGenerator returns a new unique id (UUIDv7, so ids grow with time).
type IDGenerator func() string
