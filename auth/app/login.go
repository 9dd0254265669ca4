package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bugtracker/bugtracker/auth/domain/user"
)

// Login asks for tokens in exchange for credentials.
type Login struct {
	Email    string
	Password string
	// ClientIP is the caller's address, for per-IP throttling.
	ClientIP string
}

// Tokens is what a successful login or refresh returns.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	User         user.User
}

// RefreshTTL is how long a refresh token lives unless rotated or revoked first.
type RefreshTTL time.Duration

// tokenPair mints an access token and a refresh token in one session family; login,
// refresh share it.
type tokenPair struct {
	tokens     AccessTokens
	newID      IDGenerator
	refreshTTL time.Duration
}

// issue returns the tokens for u in familyID and the session row that stores the
// refresh token's hash.
func (p tokenPair) issue(u user.User, familyID string, now time.Time) (Tokens, RefreshSession, error) {
	access, issued, err := p.tokens.Issue(u.ID(), familyID, now)
	if err != nil {
		return Tokens{}, RefreshSession{}, err
	}
	refresh, refreshHash, err := newSecret()
	if err != nil {
		return Tokens{}, RefreshSession{}, err
	}
	s := RefreshSession{
		ID: p.newID(), FamilyID: familyID, UserID: u.ID(), TokenHash: refreshHash,
		CreatedAt: now, ExpiresAt: now.Add(p.refreshTTL), Access: issued,
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: p.tokens.TTL(), User: u}, s, nil
}

// LoginHandler checks credentials, throttles guessing, and opens a refresh family.
type LoginHandler struct {
	users     Users
	sessions  Sessions
	hasher    PasswordHasher
	throttle  Throttle
	limit     Limit
	pair      tokenPair
	now       Clock
	dummyHash string
}

// NewLoginHandler wires the use case. It hashes a dummy password once, so that a login
// for an unknown email costs the same as one with a wrong password.
func NewLoginHandler(users Users, sessions Sessions, hasher PasswordHasher, throttle Throttle, limits Limits,
	tokens AccessTokens, now Clock, newID IDGenerator, ttl RefreshTTL,
) (LoginHandler, error) {
	dummy, err := hasher.Hash("dummy password for timing equality")
	if err != nil {
		return LoginHandler{}, fmt.Errorf("login: %w", err)
	}
	return LoginHandler{
		users: users, sessions: sessions, hasher: hasher, throttle: throttle, limit: limits.Login,
		pair: tokenPair{tokens: tokens, newID: newID, refreshTTL: time.Duration(ttl)}, now: now, dummyHash: dummy,
	}, nil
}

// Handle returns tokens, user.ErrInvalidCredentials for a wrong email or password
// alike, or a *user.ThrottledError after too many attempts for the email or the IP.
// The attempt is reserved before the password is checked, so a burst of simultaneous
// guesses gets no more than the limit evaluated (TestConcurrentWrongLoginsAreBounded);
// a successful login gives its reservation back, so only failures use up the budget.
func (h LoginHandler) Handle(ctx context.Context, cmd Login) (Tokens, error) {
	keys := attemptKeys("login", cmd.Email, cmd.ClientIP)
	if err := reserve(ctx, h.throttle, h.limit, keys); err != nil {
		return Tokens{}, err
	}
	u, ok, err := h.check(ctx, cmd)
	if err != nil || ok {
		// Success is no guess, and an attempt the server could not evaluate (busy
		// hasher, database down) must not lock the account out.
		release(ctx, h.throttle, keys)
	}
	if err != nil {
		return Tokens{}, err
	}
	if !ok {
		return Tokens{}, user.ErrInvalidCredentials
	}

	now := h.now()
	tokens, session, err := h.pair.issue(u, h.pair.newID(), now)
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	if err := h.sessions.Create(ctx, session); err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	return tokens, nil
}

// check verifies the credentials; an unknown email costs a dummy hash, so it takes as
// long as a wrong password.
func (h LoginHandler) check(ctx context.Context, cmd Login) (user.User, bool, error) {
	u, err := h.users.ByEmail(ctx, cmd.Email)
	hash := u.PasswordHash()
	switch {
	case errors.Is(err, user.ErrNotFound):
		hash = h.dummyHash
	case err != nil:
		return user.User{}, false, fmt.Errorf("login: %w", err)
	}
	ok, verr := h.hasher.Verify(cmd.Password, hash)
	if verr != nil {
		return user.User{}, false, fmt.Errorf("login: verify: %w", verr)
	}
	return u, err == nil && ok, nil
}

// attemptKeys are the throttle counters of an action: one per email (hashed, so the
// store holds no addresses) and one per client IP.
func attemptKeys(action, email, ip string) []string {
	sum := sha256.Sum256([]byte(user.NormalizeEmail(email)))
	keys := []string{action + ":email:" + hex.EncodeToString(sum[:16])}
	if ip != "" {
		keys = append(keys, action+":ip:"+ip)
	}
	return keys
}

// reserve takes one attempt of limit on every key, or returns a *user.ThrottledError
// when one of them is used up.
func reserve(ctx context.Context, t Throttle, limit Limit, keys []string) error {
	wait, err := t.Reserve(ctx, limit.Max, limit.Window, keys...)
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	if wait > 0 {
		return &user.ThrottledError{RetryAfter: wait}
	}
	return nil
}

// release gives a reservation back. It is best effort: failing to release only
// leaves the attempt counted, which errs on the safe side, so it is only logged.
func release(ctx context.Context, t Throttle, keys []string) {
	if err := t.Release(ctx, keys...); err != nil {
		slog.WarnContext(ctx, "throttle: release attempt", "error", err)
	}
}

// newSecret returns an opaque 256-bit token and the hash under which it is stored, so
// a database leak yields no usable token.
func newSecret() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the stored form of a refresh or reset token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
