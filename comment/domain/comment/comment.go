// Package comment holds the comment service's Comment aggregate and the rules on who
// may see, write and delete comments. It knows nothing of HTTP, SQL or JSON.
package comment

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// BodyMaxLen is the longest body API.md allows, in characters.
const BodyMaxLen = 5000

// Sentinel errors callers map to responses with errors.Is.
var (
	// ErrNotFound means no comment (or card) matches, or the caller may not see it:
	// API.md never reveals existence to strangers.
	ErrNotFound = errors.New("not found")
	// ErrForbidden means the caller sees the comment but may not do this to it (a
	// member deleting another member's comment).
	ErrForbidden = errors.New("forbidden")
)

// ValidationError names the field a comment breaks and the rule, so that the HTTP
// port can answer 422 with the field.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return "invalid comment: " + e.Field + " " + e.Message }

// Comment is one remark on a card. Comments are never edited, so the aggregate has
// no setters; it is created and at most deleted.
type Comment struct {
	id        string
	cardID    string
	projectID string
	authorID  string
	body      string
	createdAt time.Time
}

// New validates body and builds a comment. createdAt is kept in UTC to the
// microsecond, the precision every store keeps, so that a comment reads back equal
// and keyset cursors compare exactly what is stored.
func New(id, cardID, projectID, authorID, body string, createdAt time.Time) (Comment, error) {
	switch {
	case strings.TrimSpace(body) == "":
		return Comment{}, &ValidationError{Field: "body", Message: "must not be empty"}
	case !utf8.ValidString(body):
		return Comment{}, &ValidationError{Field: "body", Message: "must be valid UTF-8"}
	case utf8.RuneCountInString(body) > BodyMaxLen:
		return Comment{}, &ValidationError{Field: "body", Message: "must be at most 5000 characters"}
	case strings.ContainsRune(body, 0):
		return Comment{}, &ValidationError{Field: "body", Message: "must not contain NUL characters"}
	}
	if id == "" || cardID == "" || projectID == "" || authorID == "" {
		return Comment{}, errors.New("comment: id, card, project and author are required")
	}
	return Comment{
		id: id, cardID: cardID, projectID: projectID, authorID: authorID, body: body,
		createdAt: createdAt.UTC().Truncate(time.Microsecond),
	}, nil
}

// UnmarshalFromDB rebuilds a stored comment without validation; it is for adapters only.
func UnmarshalFromDB(id, cardID, projectID, authorID, body string, createdAt time.Time) Comment {
	return Comment{id: id, cardID: cardID, projectID: projectID, authorID: authorID, body: body, createdAt: createdAt.UTC()}
}

// ID returns the comment's id.
func (c Comment) ID() string { return c.id }

// CardID returns the card the comment is on.
func (c Comment) CardID() string { return c.cardID }

// ProjectID returns the project of the card.
func (c Comment) ProjectID() string { return c.projectID }

// AuthorID returns who wrote it.
func (c Comment) AuthorID() string { return c.authorID }

// Body returns the text.
func (c Comment) Body() string { return c.body }

// CreatedAt returns when it was written (UTC, microseconds).
func (c Comment) CreatedAt() time.Time { return c.createdAt }

// Role is what a user is to a project: nothing, a member or its owner.
type Role struct{ s string }

// The roles. A stranger is anyone who is neither owner nor live member, including a
// kicked member and anyone asking about a deleted or unknown project.
var (
	Stranger = Role{""}
	Member   = Role{"member"}
	Owner    = Role{"owner"}
)

// String is the role's name ("" for a stranger).
func (r Role) String() string { return r.s }

// CanSee says whether the role may read the project's comments and write new ones;
// a stranger gets ErrNotFound, so that the project's existence stays hidden.
func (r Role) CanSee() error {
	if r == Stranger {
		return ErrNotFound
	}
	return nil
}

// CanDelete says whether a user with role may delete c: its author or the project's
// owner may; another member gets ErrForbidden and a stranger ErrNotFound.
func (r Role) CanDelete(userID string, c Comment) error {
	switch {
	case r == Stranger:
		return ErrNotFound
	case r == Owner || c.authorID == userID:
		return nil
	default:
		return ErrForbidden
	}
}
