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
}

// ChangePasswordHandler checks the current password, stores the new hash and ends
// every other session of the user; the session making the request stays.
type ChangePasswordHandler struct {
	users    Users
	sessions Sessions
	hasher   PasswordHasher
	revoker  Revoker
	now      Clock
}

// NewChangePasswordHandler wires the use case.
func NewChangePasswordHandler(users Users, sessions Sessions, hasher PasswordHasher, revoker Revoker, now Clock) ChangePasswordHandler {
	return ChangePasswordHandler{users: users, sessions: sessions, hasher: hasher, revoker: revoker, now: now}
}

// Handle returns a *user.ValidationError for a bad new password and
// user.ErrInvalidCredentials for a wrong current one.
func (h ChangePasswordHandler) Handle(ctx context.Context, cmd ChangePassword) error {
	if err := user.ValidatePassword("newPassword", cmd.NewPassword); err != nil {
		return err
	}
	u, err := h.users.ByID(ctx, cmd.UserID)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	ok, err := h.hasher.Verify(cmd.CurrentPassword, u.PasswordHash())
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if !ok {
		return user.ErrInvalidCredentials
	}
	hash, err := h.hasher.Hash(cmd.NewPassword)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if err := h.users.UpdatePassword(ctx, u.ID(), hash); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return endSessions(ctx, h.sessions, h.revoker, u.ID(), cmd.SessionID, h.now())
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

// ErrBusy means the reset mail queue is full; the client should retry later.
var ErrBusy = errors.New("password reset queue is full")

// ForgotPasswordHandler answers at once and mails in the background: the answer and
// its timing are the same whether or not the email belongs to an account. It is also
// the worker that does the mailing (Run, Shutdown).
type ForgotPasswordHandler struct {
	users    Users
	resets   ResetTokens
	mailer   Mailer
	throttle Throttle
	now      Clock
	newID    IDGenerator
	url      ResetURL
	log      *slog.Logger

	queue    chan string
	stopOnce *sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewForgotPasswordHandler wires the use case with a queue of 1024 pending requests.
func NewForgotPasswordHandler(users Users, resets ResetTokens, mailer Mailer, throttle Throttle, now Clock,
	newID IDGenerator, url ResetURL, log *slog.Logger,
) *ForgotPasswordHandler {
	return &ForgotPasswordHandler{
		users: users, resets: resets, mailer: mailer, throttle: throttle, now: now, newID: newID, url: url, log: log,
		queue: make(chan string, 1024), stopOnce: &sync.Once{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Handle validates and throttles the request (like login) and queues it.
func (h *ForgotPasswordHandler) Handle(ctx context.Context, cmd ForgotPassword) error {
	if err := user.ValidateEmail(cmd.Email); err != nil {
		return err
	}
	keys := attemptKeys("forgot", cmd.Email, cmd.ClientIP)
	if err := checkThrottle(ctx, h.throttle, keys); err != nil {
		return err
	}
	if err := h.throttle.Hit(ctx, user.AttemptsWindow, keys...); err != nil {
		return fmt.Errorf("forgot password: %w", err)
	}
	select {
	case h.queue <- cmd.Email:
		return nil
	default:
		return ErrBusy
	}
}

// Run mails queued requests until Shutdown (after draining the queue) or ctx ends.
func (h *ForgotPasswordHandler) Run(ctx context.Context) error {
	defer close(h.done)
	for {
		select {
		case email := <-h.queue:
			h.process(ctx, email)
		case <-h.stop:
			for {
				select {
				case email := <-h.queue:
					h.process(ctx, email)
				default:
					return nil
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Shutdown stops taking work and waits until the queued requests are mailed.
func (h *ForgotPasswordHandler) Shutdown(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *ForgotPasswordHandler) process(ctx context.Context, email string) {
	u, err := h.users.ByEmail(ctx, email)
	if errors.Is(err, user.ErrNotFound) {
		return
	}
	if err != nil {
		h.log.ErrorContext(ctx, "password reset: look up user", "error", err)
		return
	}
	token, hash, err := newSecret()
	if err != nil {
		h.log.ErrorContext(ctx, "password reset: token", "error", err)
		return
	}
	now := h.now()
	if err := h.resets.CreateReset(ctx, ResetToken{
		ID: h.newID(), UserID: u.ID(), TokenHash: hash, CreatedAt: now, ExpiresAt: now.Add(user.ResetTokenTTL),
	}); err != nil {
		h.log.ErrorContext(ctx, "password reset: store token", "error", err)
		return
	}
	if err := h.mailer.Send(ctx, resetMail(u, token, string(h.url))); err != nil {
		h.log.ErrorContext(ctx, "password reset: send mail", "error", err, "user_id", u.ID())
		return
	}
	h.log.InfoContext(ctx, "password reset mailed", "user_id", u.ID())
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
}

// ResetPasswordHandler redeems a reset token and ends every session of the user.
type ResetPasswordHandler struct {
	resets   ResetTokens
	sessions Sessions
	hasher   PasswordHasher
	revoker  Revoker
	now      Clock
}

// NewResetPasswordHandler wires the use case.
func NewResetPasswordHandler(resets ResetTokens, sessions Sessions, hasher PasswordHasher, revoker Revoker, now Clock) ResetPasswordHandler {
	return ResetPasswordHandler{resets: resets, sessions: sessions, hasher: hasher, revoker: revoker, now: now}
}

// Handle returns a *user.ValidationError for a bad new password and
// user.ErrInvalidResetToken for an unknown, used or expired token.
func (h ResetPasswordHandler) Handle(ctx context.Context, cmd ResetPassword) error {
	if err := user.ValidatePassword("newPassword", cmd.NewPassword); err != nil {
		return err
	}
	if cmd.Token == "" {
		return user.ErrInvalidResetToken
	}
	hash, err := h.hasher.Hash(cmd.NewPassword)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	now := h.now()
	userID, err := h.resets.Redeem(ctx, HashToken(cmd.Token), hash, now)
	if err != nil {
		return err
	}
	return endSessions(ctx, h.sessions, h.revoker, userID, "", now)
}
