package user

import (
	"errors"
	"fmt"
	"time"
)

// Credential errors. Each says only what a client may learn.
var (
	// ErrInvalidRefreshToken covers unknown, expired, revoked and reused refresh tokens.
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrInvalidResetToken covers unknown, expired and already used reset tokens.
	ErrInvalidResetToken = errors.New("invalid or expired reset token")
)

// ThrottledError says that too many attempts were made and when to try again.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many attempts; retry after %s", e.RetryAfter.Round(time.Second))
}

// ResetTokenTTL is how long a password reset token stays valid.
const ResetTokenTTL = 30 * time.Minute
