package app

import (
	"context"
	"fmt"

	"github.com/bugtracker/bugtracker/auth/domain/user"
)

// GetUserHandler returns one user (GET /users/{id} and /auth/me).
type GetUserHandler struct{ users Users }

// NewGetUserHandler wires the query.
func NewGetUserHandler(users Users) GetUserHandler { return GetUserHandler{users: users} }

// Handle returns the user or user.ErrNotFound.
func (h GetUserHandler) Handle(ctx context.Context, id string) (user.User, error) {
	return h.users.ByID(ctx, id)
}

// ListUsers asks for a page of users.
type ListUsers struct {
	Name   string
	Offset int
	Limit  int
}

// ListUsersHandler serves the user directory.
type ListUsersHandler struct{ users Users }

// NewListUsersHandler wires the query.
func NewListUsersHandler(users Users) ListUsersHandler { return ListUsersHandler{users: users} }

// Handle returns the page and the number of matching users.
func (h ListUsersHandler) Handle(ctx context.Context, q ListUsers) ([]user.User, int, error) {
	us, total, err := h.users.List(ctx, q.Name, q.Offset, q.Limit)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return us, total, nil
}
