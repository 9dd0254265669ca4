// Package http is the auth service's inbound HTTP port: Fiber handlers, request and
// response DTOs, and the mapping of domain errors to problem details.
package http

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/problem"
)

// UserResponse is the public view of a user: never a password or hash.
type UserResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
}

func toUserResponse(u user.User) UserResponse {
	return UserResponse{ID: u.ID(), Name: u.Name(), Email: u.Email(), CreatedAt: u.CreatedAt()}
}

// TokensResponse is the body of a successful login or refresh.
type TokensResponse struct {
	AccessToken  string       `json:"accessToken"`
	RefreshToken string       `json:"refreshToken"`
	TokenType    string       `json:"tokenType"`
	ExpiresIn    int          `json:"expiresIn"`
	User         UserResponse `json:"user"`
}

type registerRequest struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Handlers serves the auth routes.
type Handlers struct {
	app app.Application
}

// NewHandlers returns the handlers for the use cases.
func NewHandlers(a app.Application) *Handlers { return &Handlers{app: a} }

// Register mounts the routes on the app.
func (h *Handlers) Register(r fiber.Router) {
	r.Post("/api/v1/auth/register", h.register)
	r.Post("/api/v1/auth/login", h.login)
}

func (h *Handlers) register(c *fiber.Ctx) error {
	var req registerRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	u, err := h.app.Register.Handle(c.UserContext(), app.Register(req))
	if err != nil {
		return err
	}
	c.Location("/api/v1/users/" + u.ID())
	return c.Status(fiber.StatusCreated).JSON(toUserResponse(u))
}

func (h *Handlers) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	t, err := h.app.Login.Handle(c.UserContext(), app.Login(req))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(TokensResponse{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer",
		ExpiresIn: int(t.ExpiresIn / time.Second), User: toUserResponse(t.User),
	})
}

// MapError turns auth domain errors into problem details.
func MapError(err error) *problem.Problem {
	var ve *user.ValidationError
	switch {
	case errors.As(err, &ve):
		fields := make([]problem.FieldError, len(ve.Violations))
		for i, v := range ve.Violations {
			fields[i] = problem.FieldError{Field: v.Field, Message: v.Message}
		}
		return problem.Validation(fields...)
	case errors.Is(err, user.ErrEmailTaken):
		return problem.Conflict("an account with this email already exists")
	case errors.Is(err, user.ErrInvalidCredentials):
		return problem.Unauthorized("invalid email or password")
	case errors.Is(err, user.ErrNotFound):
		return problem.NotFound("user not found")
	}
	return nil
}
