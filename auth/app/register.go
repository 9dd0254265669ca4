package app

import (
	"context"
	"fmt"

	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

// Register asks for a new account.
type Register struct {
	Name     string
	Email    string
	Password string
	// ClientIP is the caller's address, for per-IP throttling.
	ClientIP string
}

// RegisterHandler creates accounts and announces them with newUser (for the other
// services' local user copies) and newNotif (the welcome notification).
// Registrations are throttled per client IP: each costs a password hash, and a
// duplicate answers 409, which tells whether an email has an account.
type RegisterHandler struct {
	users    Users
	hasher   PasswordHasher
	throttle Throttle
	limit    Limit
	now      Clock
	newID    IDGenerator
}

// NewRegisterHandler wires the use case.
func NewRegisterHandler(users Users, hasher PasswordHasher, throttle Throttle, limits Limits, now Clock, newID IDGenerator) RegisterHandler {
	return RegisterHandler{users: users, hasher: hasher, throttle: throttle, limit: limits.Register, now: now, newID: newID}
}

// Handle validates, hashes the password and stores the user with its events.
func (h RegisterHandler) Handle(ctx context.Context, cmd Register) (user.User, error) {
	if err := user.ValidateRegistration(cmd.Name, cmd.Email, cmd.Password); err != nil {
		return user.User{}, err
	}
	if cmd.ClientIP != "" {
		if err := reserve(ctx, h.throttle, h.limit, []string{"register:ip:" + cmd.ClientIP}); err != nil {
			return user.User{}, err
		}
	}
	hash, err := h.hasher.Hash(cmd.Password)
	if err != nil {
		return user.User{}, fmt.Errorf("register: hash password: %w", err)
	}
	u, err := user.NewUser(h.newID(), cmd.Name, cmd.Email, hash, h.now())
	if err != nil {
		return user.User{}, err
	}
	events, err := registrationEvents(u)
	if err != nil {
		return user.User{}, err
	}
	if err := h.users.Add(ctx, u, events...); err != nil {
		return user.User{}, fmt.Errorf("register: %w", err)
	}
	return u, nil
}

func registrationEvents(u user.User) ([]eventbus.Envelope, error) {
	registered, err := contracts.New(contracts.UserRegistered{
		UserID: u.ID(), Name: u.Name(), Email: u.Email(), RegisteredAt: u.CreatedAt(), AggregateVersion: 1,
	}, u.ID(), u.CreatedAt())
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	welcome, err := contracts.New(contracts.NotificationRequested{
		RecipientIDs: []string{u.ID()},
		Kind:         contracts.KindRegistration,
		Message:      fmt.Sprintf("Welcome to bugtracker, %s!", u.Name()),
		ActorID:      u.ID(),
	}, u.ID(), u.CreatedAt())
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return []eventbus.Envelope{registered, welcome}, nil
}
