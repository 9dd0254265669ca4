// Package app holds the auth service's use cases, one handler per command, and the
// ports they need. It depends on the domain and on event contracts, never on adapters.
package app

import (
	"context"
	"time"

	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
)

// Users stores accounts.
type Users interface {
	// Add stores u and the events announcing it in one transaction, so no committed
	// user lacks its events (transactional outbox). A clashing email is
	// user.ErrEmailTaken.
	Add(ctx context.Context, u user.User, events ...eventbus.Envelope) error
	// ByEmail finds the user whose email matches case-insensitively, or
	// user.ErrNotFound.
	ByEmail(ctx context.Context, email string) (user.User, error)
	// ByID finds a user by id, or user.ErrNotFound.
	ByID(ctx context.Context, id string) (user.User, error)
}

// RefreshSession is one stored refresh token. Only its hash is kept; the family ties
// together every token rotated from one login.
type RefreshSession struct {
	ID        string
	FamilyID  string
	UserID    string
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Sessions stores refresh tokens.
type Sessions interface {
	// Create stores a new refresh session.
	Create(ctx context.Context, s RefreshSession) error
}

// PasswordHasher hashes and checks passwords with a slow, salted function.
type PasswordHasher interface {
	Hash(password string) (string, error)
	// Verify reports whether password matches hash.
	Verify(password, hash string) (bool, error)
}

// AccessTokens mints short-lived signed access tokens.
type AccessTokens interface {
	Issue(userID string, now time.Time) (token string, expiresIn time.Duration, err error)
}

// Clock tells the time; tests pin it.
type Clock func() time.Time

// IDGenerator returns a new unique, time-ordered id (UUIDv7).
type IDGenerator func() string
