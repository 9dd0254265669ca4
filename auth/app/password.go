package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bugtracker/bugtracker/auth/domain/user"
)

// ChangePassword replaces the caller's password.
type ChangePassword struct {
	UserID          string
	SessionID       string
	CurrentPassword string
	NewPassword     string
	// ClientIP is the caller's address, for per-IP throttling.
	ClientIP string
}

// ChangePasswordHandler checks the current password, stores the new hash and ends
// every other session of the user; the session making the request stays. Attempts
// are throttled per user and per client IP, so a stolen access token does not make
// it an unthrottled oracle for the current password.
type ChangePasswordHandler struct {
	users    Users
	sessions Sessions
	hasher   PasswordHasher
	revoker  Revoker
	throttle Throttle
	limit    Limit
	now      Clock
}

// NewChangePasswordHandler wires the use case.
func NewChangePasswordHandler(users Users, sessions Sessions, hasher PasswordHasher, revoker Revoker, throttle Throttle,
	limits Limits, now Clock,
) ChangePasswordHandler {
	return ChangePasswordHandler{
		users: users, sessions: sessions, hasher: hasher, revoker: revoker, throttle: throttle,
		limit: limits.ChangePassword, now: now,
	}
}

// Handle returns a *user.ValidationError for a bad new password,
// user.ErrInvalidCredentials for a wrong current one and a *user.ThrottledError after
// too many attempts.
func (h ChangePasswordHandler) Handle(ctx context.Context, cmd ChangePassword) error {
	if err := user.ValidatePassword("newPassword", cmd.NewPassword); err != nil {
		return err
	}
	keys := []string{"password:user:" + cmd.UserID}
	if cmd.ClientIP != "" {
		keys = append(keys, "password:ip:"+cmd.ClientIP)
	}
	if err := reserve(ctx, h.throttle, h.limit, keys); err != nil {
		return err
	}
	ok, err := h.change(ctx, cmd)
	if err != nil || ok {
		release(ctx, h.throttle, keys)
	}
	if err != nil {
		return err
	}
	if !ok {
		return user.ErrInvalidCredentials
	}
	return nil
}

// change verifies the current password and, when it matches, stores the new one.
func (h ChangePasswordHandler) change(ctx context.Context, cmd ChangePassword) (bool, error) {
	u, err := h.users.ByID(ctx, cmd.UserID)
	if err != nil {
		return false, fmt.Errorf("change password: %w", err)
	}
	ok, err := h.hasher.Verify(cmd.CurrentPassword, u.PasswordHash())
	if err != nil || !ok {
		return false, wrap("change password", err)
	}
	hash, err := h.hasher.Hash(cmd.NewPassword)
	if err != nil {
		return false, fmt.Errorf("change password: %w", err)
	}
	now := h.now()
	if err := h.users.UpdatePassword(ctx, u.ID(), hash, now); err != nil {
		return false, fmt.Errorf("change password: %w", err)
	}
	return true, endSessions(ctx, h.sessions, h.revoker, u.ID(), cmd.SessionID, now)
}

// wrap prefixes a non-nil error with the use case's name.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// endSessions revokes every refresh family of the user but keep, and their live
// access tokens.
func endSessions(ctx context.Context, sessions Sessions, revoker Revoker, userID, keep string, now time.Time) error {
	live, err := sessions.RevokeUser(ctx, userID, keep, now)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return revokeAccess(ctx, revoker, now, live...)
}

// ForgotPassword asks for a reset token by mail.
type ForgotPassword struct {
	Email    string
	ClientIP string
}

// ResetURL is the page a reset mail links to; the token is appended as ?token=.
type ResetURL string

// Retry policy of the reset mailer: a failed attempt is retried after resetLease, and
// a request is dropped (logged) after resetMaxAttempts.
const (
	resetLease       = 2 * time.Minute
	resetMaxAttempts = 5
	resetPoll        = time.Second
)

// ForgotPasswordHandler stores the request and answers at once; a worker (Run,
// Shutdown) mails in the background. Neither the answer nor its timing says whether
// the email belongs to an account, and a request answered 202 survives a crash.
type ForgotPasswordHandler struct {
	users    Users
	requests ResetRequests
	resets   ResetTokens
	mailer   Mailer
	throttle Throttle
	limit    Limit
	now      Clock
	newID    IDGenerator
	url      ResetURL
	log      *slog.Logger

	wake     chan struct{}
	stopOnce *sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewForgotPasswordHandler wires the use case and its worker.
func NewForgotPasswordHandler(users Users, requests ResetRequests, resets ResetTokens, mailer Mailer, throttle Throttle,
	limits Limits, now Clock, newID IDGenerator, url ResetURL, log *slog.Logger,
) *ForgotPasswordHandler {
	return &ForgotPasswordHandler{
		users: users, requests: requests, resets: resets, mailer: mailer, throttle: throttle, limit: limits.Login,
		now: now, newID: newID,
		url: url, log: log, wake: make(chan struct{}, 1), stopOnce: &sync.Once{}, stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// Handle validates and throttles the request (like login) and stores it.
func (h *ForgotPasswordHandler) Handle(ctx context.Context, cmd ForgotPassword) error {
	if err := user.ValidateEmail(cmd.Email); err != nil {
		return err
	}
	if err := reserve(ctx, h.throttle, h.limit, attemptKeys("forgot", cmd.Email, cmd.ClientIP)); err != nil {
		return err
	}
	r := ResetRequest{ID: h.newID(), Email: user.NormalizeEmail(cmd.Email), RequestedAt: h.now()}
	if err := h.requests.EnqueueReset(ctx, r); err != nil {
		return fmt.Errorf("forgot password: %w", err)
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run mails stored requests until Shutdown or ctx ends; it also picks up requests
// left by a crashed process once their lease runs out.
func (h *ForgotPasswordHandler) Run(ctx context.Context) error {
	defer close(h.done)
	tick := time.NewTicker(resetPoll)
	defer tick.Stop()
	for {
		h.drain(ctx)
		select {
		case <-h.wake:
		case <-tick.C:
		case <-h.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Shutdown stops the worker once the batch in hand is mailed; requests not yet
// claimed stay stored for the next start.
func (h *ForgotPasswordHandler) Shutdown(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain processes due requests in batches until none is left or a stop is asked.
func (h *ForgotPasswordHandler) drain(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case <-h.stop:
			return
		default:
		}
		now := h.now()
		batch, err := h.requests.ClaimResets(ctx, now, now.Add(resetLease), 16)
		if err != nil {
			h.log.ErrorContext(ctx, "password reset: claim requests", "error", err)
			return
		}
		if len(batch) == 0 {
			return
		}
		for _, r := range batch {
			if err := h.process(ctx, r); err != nil {
				h.log.ErrorContext(ctx, "password reset: attempt failed", "error", err, "request_id", r.ID, "attempt", r.Attempts)
				if r.Attempts < resetMaxAttempts {
					continue // retried when the lease runs out
				}
				h.log.ErrorContext(ctx, "password reset: giving up", "request_id", r.ID)
			}
			if err := h.requests.DeleteReset(ctx, r.ID); err != nil {
				h.log.ErrorContext(ctx, "password reset: delete request", "error", err)
			}
		}
	}
}

// process mails a reset token when the email belongs to an account.
func (h *ForgotPasswordHandler) process(ctx context.Context, r ResetRequest) error {
	u, err := h.users.ByEmail(ctx, r.Email)
	if errors.Is(err, user.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up user: %w", err)
	}
	token, hash, err := newSecret()
	if err != nil {
		return err
	}
	now := h.now()
	if err := h.resets.CreateReset(ctx, ResetToken{
		ID: h.newID(), UserID: u.ID(), TokenHash: hash, CreatedAt: now, ExpiresAt: now.Add(user.ResetTokenTTL),
	}); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	if err := h.mailer.Send(ctx, resetMail(u, token, string(h.url))); err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	h.log.InfoContext(ctx, "password reset mailed", "user_id", u.ID())
	return nil
}

func resetMail(u user.User, token, url string) Mail {
	return Mail{
		To:      u.Email(),
		Subject: "Reset your bugtracker password",
		Text: fmt.Sprintf("Hello %s,\n\nsomeone (hopefully you) asked to reset the password of your bugtracker account.\n"+
			"The token below works once, for %d minutes:\n\ntoken: %s\n\nor open %s?token=%s\n\n"+
			"If you did not ask for this, ignore this mail: your password stays as it is.\n",
			u.Name(), int(user.ResetTokenTTL.Minutes()), token, url, token),
	}
}

// ResetPassword sets a new password with a mailed token.
type ResetPassword struct {
	Token       string
	NewPassword string
	// ClientIP is the caller's address, for per-IP throttling.
	ClientIP string
}

// ResetPasswordHandler redeems a reset token and ends every session of the user.
type ResetPasswordHandler struct {
	resets   ResetTokens
	sessions Sessions
	hasher   PasswordHasher
	revoker  Revoker
	throttle Throttle
	limit    Limit
	now      Clock
}

// NewResetPasswordHandler wires the use case.
func NewResetPasswordHandler(resets ResetTokens, sessions Sessions, hasher PasswordHasher, revoker Revoker,
	throttle Throttle, limits Limits, now Clock,
) ResetPasswordHandler {
	return ResetPasswordHandler{
		resets: resets, sessions: sessions, hasher: hasher, revoker: revoker, throttle: throttle,
		limit: limits.Reset, now: now,
	}
}

// Handle returns a *user.ValidationError for a bad new password,
// user.ErrInvalidResetToken for an unknown, used or expired token and a
// *user.ThrottledError after too many attempts from the client's IP. The new password
// is hashed only once the token checked out, so bogus tokens cost no hash.
func (h ResetPasswordHandler) Handle(ctx context.Context, cmd ResetPassword) error {
	if err := user.ValidatePassword("newPassword", cmd.NewPassword); err != nil {
		return err
	}
	if cmd.ClientIP != "" {
		if err := reserve(ctx, h.throttle, h.limit, []string{"reset:ip:" + cmd.ClientIP}); err != nil {
			return err
		}
	}
	if cmd.Token == "" {
		return user.ErrInvalidResetToken
	}
	now := h.now()
	tokenHash := HashToken(cmd.Token)
	if _, err := h.resets.FindReset(ctx, tokenHash, now); err != nil {
		return err
	}
	hash, err := h.hasher.Hash(cmd.NewPassword)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	// Redeem checks the token again, atomically: a concurrent reset may have used it.
	userID, err := h.resets.Redeem(ctx, tokenHash, hash, h.now())
	if err != nil {
		return err
	}
	return endSessions(ctx, h.sessions, h.revoker, userID, "", now)
}
