package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/auth/domain/user"
)

// Login asks for tokens in exchange for credentials.
type Login struct {
	Email    string
	Password string
}

// Tokens is what a successful login returns.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	User         user.User
}

// LoginHandler checks credentials and opens a refresh-token family.
type LoginHandler struct {
	users      Users
	sessions   Sessions
	hasher     PasswordHasher
	tokens     AccessTokens
	now        Clock
	newID      IDGenerator
	refreshTTL time.Duration
	dummyHash  string
}

// RefreshTTL is how long a refresh token lives unless rotated or revoked first.
type RefreshTTL time.Duration

// NewLoginHandler wires the use case. It hashes a dummy password once, so that a login
// for an unknown email costs the same as one with a wrong password.
func NewLoginHandler(users Users, sessions Sessions, hasher PasswordHasher, tokens AccessTokens,
	now Clock, newID IDGenerator, ttl RefreshTTL,
) (LoginHandler, error) {
	dummy, err := hasher.Hash("dummy password for timing equality")
	if err != nil {
		return LoginHandler{}, fmt.Errorf("login: %w", err)
	}
	return LoginHandler{
		users: users, sessions: sessions, hasher: hasher, tokens: tokens,
		now: now, newID: newID, refreshTTL: time.Duration(ttl), dummyHash: dummy,
	}, nil
}

// Handle returns tokens, or user.ErrInvalidCredentials for a wrong email or password
// alike.
func (h LoginHandler) Handle(ctx context.Context, cmd Login) (Tokens, error) {
	u, err := h.users.ByEmail(ctx, cmd.Email)
	hash := u.PasswordHash()
	switch {
	case errors.Is(err, user.ErrNotFound):
		hash = h.dummyHash
	case err != nil:
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	ok, verr := h.hasher.Verify(cmd.Password, hash)
	if verr != nil {
		return Tokens{}, fmt.Errorf("login: verify: %w", verr)
	}
	if err != nil || !ok {
		return Tokens{}, user.ErrInvalidCredentials
	}

	now := h.now()
	access, expiresIn, err := h.tokens.Issue(u.ID(), now)
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	refresh, refreshHash, err := newRefreshToken()
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	family := h.newID()
	if err := h.sessions.Create(ctx, RefreshSession{
		ID: family, FamilyID: family, UserID: u.ID(), TokenHash: refreshHash,
		CreatedAt: now, ExpiresAt: now.Add(h.refreshTTL),
	}); err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: expiresIn, User: u}, nil
}

// newRefreshToken returns an opaque 256-bit token and the hash under which it is
// stored, so a database leak yields no usable token.
func newRefreshToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("refresh token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashRefreshToken(token), nil
}

// HashRefreshToken is the stored form of a refresh token.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
