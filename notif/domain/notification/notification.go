// Package notification holds the notif service's Notification aggregate: who is told
// what, about which project, card or comment, and whether they have read it.
package notification

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the kind of a notification; only the values below exist.
type Type struct{ s string }

// The notification types of API.md.
var (
	Registration      = Type{"registration"}
	ProjectCreated    = Type{"project_created"}
	ProjectDeleted    = Type{"project_deleted"}
	CardCreated       = Type{"card_created"}
	CardStatusChanged = Type{"card_status_changed"}
	CommentCreated    = Type{"comment_created"}
)

var types = []Type{Registration, ProjectCreated, ProjectDeleted, CardCreated, CardStatusChanged, CommentCreated}

// ParseType returns the Type named s, or an error for any other string.
func ParseType(s string) (Type, error) {
	for _, t := range types {
		if t.s == s {
			return t, nil
		}
	}
	return Type{}, fmt.Errorf("notification: unknown type %q", s)
}

// String is the type's wire name.
func (t Type) String() string { return t.s }

// IsZero reports whether t was never set.
func (t Type) IsZero() bool { return t.s == "" }

// ErrNotFound means no notification of the caller matches.
var ErrNotFound = errors.New("notification not found")

// Refs are the optional subjects a notification points at.
type Refs struct {
	ProjectID string
	CardID    string
	CommentID string
}

// Notification tells one user about one event.
type Notification struct {
	id        string
	userID    string
	typ       Type
	message   string
	actorID   string
	refs      Refs
	read      bool
	createdAt time.Time
}

// MaxMessageLen bounds the stored message, in characters (runes): the longest
// message Message writes is about 620.
const MaxMessageLen = 1000

// New validates and builds an unread notification.
func New(id, userID string, typ Type, message, actorID string, refs Refs, createdAt time.Time) (Notification, error) {
	var problems []string
	if id == "" {
		problems = append(problems, "id is empty")
	}
	if userID == "" {
		problems = append(problems, "recipient is empty")
	}
	if typ.IsZero() {
		problems = append(problems, "type is not set")
	}
	if strings.TrimSpace(message) == "" || utf8.RuneCountInString(message) > MaxMessageLen {
		problems = append(problems, "message must be 1 to 1000 characters")
	}
	if len(problems) > 0 {
		return Notification{}, fmt.Errorf("notification: %s", strings.Join(problems, "; "))
	}
	return Notification{
		id: id, userID: userID, typ: typ, message: message, actorID: actorID, refs: refs,
		createdAt: createdAt.UTC().Truncate(time.Millisecond),
	}, nil
}

// UnmarshalFromDB rebuilds a stored notification; adapters only.
func UnmarshalFromDB(id, userID string, typ Type, message, actorID string, refs Refs, read bool, createdAt time.Time) Notification {
	return Notification{id: id, userID: userID, typ: typ, message: message, actorID: actorID, refs: refs, read: read, createdAt: createdAt.UTC()}
}

// MarkRead returns the notification marked read.
func (n Notification) MarkRead() Notification {
	n.read = true
	return n
}

// ID is the notification's opaque id.
func (n Notification) ID() string { return n.id }

// UserID is the recipient.
func (n Notification) UserID() string { return n.userID }

// Type is the kind of event told.
func (n Notification) Type() Type { return n.typ }

// Message is the human-readable text.
func (n Notification) Message() string { return n.message }

// ActorID is the user who caused the event.
func (n Notification) ActorID() string { return n.actorID }

// Refs are the project, card and comment concerned, where any.
func (n Notification) Refs() Refs { return n.refs }

// Read reports whether the recipient has read it.
func (n Notification) Read() bool { return n.read }

// CreatedAt is when the event happened (UTC, millisecond precision as MongoDB keeps).
func (n Notification) CreatedAt() time.Time { return n.createdAt }
