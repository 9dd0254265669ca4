// Package app holds the auth service's use cases, one handler per command, and the
// ports they need. It depends on the domain and on event contracts, never on adapters.
package app

import (
	"context"
	"errors"
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
	// List returns the page of users whose name contains nameFilter
	// case-insensitively ("" for all), ordered by createdAt then id, and the number
	// of users matching.
	List(ctx context.Context, nameFilter string, offset, limit int) ([]user.User, int, error)
	// UpdatePassword replaces the user's password hash and spends every outstanding
	// reset token of the user in the same transaction, or returns user.ErrNotFound.
	UpdatePassword(ctx context.Context, id, passwordHash string, at time.Time) error
}

// RefreshSession is one stored refresh token. Only its hash is kept; the family ties
// together every token rotated from one login, and the access token issued with it is
// remembered so that revoking the family can revoke that token too.
type RefreshSession struct {
	ID        string
	FamilyID  string
	UserID    string
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set once the token was rotated; presenting it again is reuse.
	UsedAt *time.Time
	// RevokedAt is set when the family was revoked.
	RevokedAt *time.Time
	// Access is the access token issued together with this refresh token.
	Access AccessToken
}

// AccessToken identifies an issued access token for revocation.
type AccessToken struct {
	ID        string
	ExpiresAt time.Time
}

// ErrSessionNotFound is returned by Sessions for an unknown token hash.
var ErrSessionNotFound = errors.New("refresh session not found")

// Sessions stores refresh tokens.
type Sessions interface {
	// Create stores a new refresh session (a login opens a family).
	Create(ctx context.Context, s RefreshSession) error
	// ByTokenHash finds the session of a refresh token, or ErrSessionNotFound.
	ByTokenHash(ctx context.Context, tokenHash string) (RefreshSession, error)
	// Rotate marks old as used and stores next in one transaction. It reports false,
	// storing nothing, when old was already used or revoked: a concurrent or repeated
	// use of the same token, which callers treat as reuse.
	Rotate(ctx context.Context, oldID string, next RefreshSession, at time.Time) (bool, error)
	// RevokeFamily revokes every token of the family and returns the access tokens
	// issued with them that have not expired yet. It is total: a token that a
	// concurrent Rotate stores is revoked too, or that Rotate reports false.
	RevokeFamily(ctx context.Context, familyID string, at time.Time) ([]AccessToken, error)
	// RevokeUser revokes every family of the user except keepFamily ("" keeps none)
	// and returns their unexpired access tokens; it is total like RevokeFamily.
	RevokeUser(ctx context.Context, userID, keepFamily string, at time.Time) ([]AccessToken, error)
}

// ResetToken is a stored password reset token (only its hash).
type ResetToken struct {
	ID        string
	UserID    string
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ResetTokens stores password reset tokens.
type ResetTokens interface {
	// CreateReset stores a new reset token.
	CreateReset(ctx context.Context, t ResetToken) error
	// FindReset returns the owner of the unexpired, unused token with tokenHash, or
	// user.ErrInvalidResetToken; it changes nothing.
	FindReset(ctx context.Context, tokenHash string, at time.Time) (userID string, err error)
	// Redeem consumes the unexpired, unused token with tokenHash, sets the owner's
	// password hash and spends the owner's other reset tokens, in one transaction,
	// returning the owner's id. Any other token is user.ErrInvalidResetToken and
	// changes nothing.
	Redeem(ctx context.Context, tokenHash, newPasswordHash string, at time.Time) (userID string, err error)
}

// ResetRequest is a stored "forgot password" request waiting to be mailed.
type ResetRequest struct {
	ID          string
	Email       string
	RequestedAt time.Time
	Attempts    int
}

// ResetRequests is the durable queue between the forgot-password answer and the
// worker that mails: a request answered 202 survives a crash.
type ResetRequests interface {
	// EnqueueReset stores a request; it costs the same whether or not the email
	// belongs to an account.
	EnqueueReset(ctx context.Context, r ResetRequest) error
	// ClaimResets leases up to limit due requests to the caller until leaseUntil,
	// counting an attempt on each; another worker cannot claim them meanwhile.
	ClaimResets(ctx context.Context, now, leaseUntil time.Time, limit int) ([]ResetRequest, error)
	// DeleteReset removes a request that is done (mailed, or given up).
	DeleteReset(ctx context.Context, id string) error
}

// Throttle counts attempts in shared storage so that every replica sees them.
type Throttle interface {
	// Reserve atomically counts one attempt against every key, unless one of them
	// already holds limit attempts within its window: then it counts nothing and
	// returns how long the caller must wait. Check and count are one step, so of a
	// burst of simultaneous callers at most limit get a zero wait. A key's window
	// starts at its first attempt.
	Reserve(ctx context.Context, limit int, window time.Duration, keys ...string) (time.Duration, error)
	// Release takes back one attempt from each key (an attempt that turned out not
	// to be a guess: a successful login, or one the server could not evaluate).
	Release(ctx context.Context, keys ...string) error
}

// Limit is one throttling policy: at most Max attempts per key within Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Limits are the throttling policies of the actions a client can repeat to guess a
// secret or to make the server hash passwords.
type Limits struct {
	// Login limits logins per email and per client IP; forgot password shares it.
	Login Limit
	// Register limits registrations per client IP.
	Register Limit
	// Reset limits password resets per client IP.
	Reset Limit
	// ChangePassword limits password changes per user and per client IP.
	ChangePassword Limit
}

// Revoker puts access tokens on the revocation list every service checks.
type Revoker interface {
	Revoke(ctx context.Context, tokenID string, ttl time.Duration) error
}

// PasswordHasher hashes and checks passwords with a slow, salted function. Both
// methods may return ErrHasherBusy when too many hashes already run.
type PasswordHasher interface {
	Hash(password string) (string, error)
	// Verify reports whether password matches hash.
	Verify(password, hash string) (bool, error)
}

// ErrHasherBusy means a password hash could not start within the queue wait because
// the configured number of hashes were running: the request is answered 503 with
// Retry-After rather than queued without bound (each hash holds tens of MiB).
var ErrHasherBusy = errors.New("password hasher busy")

// AccessTokens mints short-lived signed access tokens.
type AccessTokens interface {
	// Issue mints a token for userID in the session (refresh family) sessionID.
	Issue(userID, sessionID string, now time.Time) (token string, issued AccessToken, err error)
	// TTL is the lifetime of issued tokens.
	TTL() time.Duration
}

// Clock tells the time; tests pin it.
type Clock func() time.Time

// IDGenerator returns a new unique, time-ordered id (UUIDv7).
type IDGenerator func() string
