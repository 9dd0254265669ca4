package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/auth/domain/user"
)

// revokeAccess puts each still-valid access token on the revocation list for the rest
// of its life.
func revokeAccess(ctx context.Context, r Revoker, now time.Time, tokens ...AccessToken) error {
	for _, t := range tokens {
		if t.ID == "" {
			continue
		}
		if err := r.Revoke(ctx, t.ID, t.ExpiresAt.Sub(now)); err != nil {
			return fmt.Errorf("revoke access token: %w", err)
		}
	}
	return nil
}

// Refresh exchanges a refresh token for a new pair.
type Refresh struct {
	RefreshToken string
}

// RefreshHandler rotates refresh tokens: each is good for one use. Presenting a used
// one again means it was stolen or replayed, so its whole family is revoked, access
// tokens included (RFC 9700 section 4.14).
type RefreshHandler struct {
	users    Users
	sessions Sessions
	revoker  Revoker
	pair     tokenPair
	now      Clock
}

// NewRefreshHandler wires the use case.
func NewRefreshHandler(users Users, sessions Sessions, revoker Revoker, tokens AccessTokens, now Clock, newID IDGenerator, ttl RefreshTTL) RefreshHandler {
	return RefreshHandler{
		users: users, sessions: sessions, revoker: revoker, now: now,
		pair: tokenPair{tokens: tokens, newID: newID, refreshTTL: time.Duration(ttl)},
	}
}

// Handle returns the new pair or user.ErrInvalidRefreshToken.
func (h RefreshHandler) Handle(ctx context.Context, cmd Refresh) (Tokens, error) {
	now := h.now()
	s, err := h.sessions.ByTokenHash(ctx, HashToken(cmd.RefreshToken))
	if errors.Is(err, ErrSessionNotFound) {
		return Tokens{}, user.ErrInvalidRefreshToken
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if s.RevokedAt != nil || !now.Before(s.ExpiresAt) {
		return Tokens{}, user.ErrInvalidRefreshToken
	}
	if s.UsedAt != nil {
		return Tokens{}, h.reuse(ctx, s.FamilyID, now)
	}
	u, err := h.users.ByID(ctx, s.UserID)
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	tokens, next, err := h.pair.issue(u, s.FamilyID, now)
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	rotated, err := h.sessions.Rotate(ctx, s.ID, next, now)
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if !rotated { // another request used the same token first
		return Tokens{}, h.reuse(ctx, s.FamilyID, now)
	}
	return tokens, nil
}

func (h RefreshHandler) reuse(ctx context.Context, familyID string, now time.Time) error {
	live, err := h.sessions.RevokeFamily(ctx, familyID, now)
	if err != nil {
		return fmt.Errorf("refresh: revoke reused family: %w", err)
	}
	if err := revokeAccess(ctx, h.revoker, now, live...); err != nil {
		return err
	}
	return user.ErrInvalidRefreshToken
}

// Logout ends the caller's session.
type Logout struct {
	UserID string
	// SessionID and AccessToken identify the token the request was made with.
	SessionID   string
	AccessToken AccessToken
	// RefreshToken, when given, names a session to end as well; it must be the
	// caller's own.
	RefreshToken string
}

// LogoutHandler revokes the caller's access token and refresh family.
type LogoutHandler struct {
	sessions Sessions
	revoker  Revoker
	now      Clock
}

// NewLogoutHandler wires the use case.
func NewLogoutHandler(sessions Sessions, revoker Revoker, now Clock) LogoutHandler {
	return LogoutHandler{sessions: sessions, revoker: revoker, now: now}
}

// Handle revokes; logging out twice is not an error.
func (h LogoutHandler) Handle(ctx context.Context, cmd Logout) error {
	now := h.now()
	families := []string{cmd.SessionID}
	if cmd.RefreshToken != "" {
		s, err := h.sessions.ByTokenHash(ctx, HashToken(cmd.RefreshToken))
		switch {
		case err == nil && s.UserID == cmd.UserID:
			families = append(families, s.FamilyID)
		case err != nil && !errors.Is(err, ErrSessionNotFound):
			return fmt.Errorf("logout: %w", err)
		}
	}
	live := []AccessToken{cmd.AccessToken}
	for _, f := range families {
		if f == "" {
			continue
		}
		tokens, err := h.sessions.RevokeFamily(ctx, f, now)
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		live = append(live, tokens...)
	}
	return revokeAccess(ctx, h.revoker, now, live...)
}
