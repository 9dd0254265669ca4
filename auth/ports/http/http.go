// Package http is the auth service's inbound HTTP port: Fiber handlers, request and
// response DTOs, and the mapping of domain errors to problem details.
package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/pagination"
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

type refreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

type changePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

type forgotRequest struct {
	Email string `json:"email"`
}

type resetRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"newPassword"`
}

// Handlers serves the auth routes.
type Handlers struct {
	app      app.Application
	verifier *authn.Verifier
	jwks     []byte
}

// NewHandlers returns the handlers for the use cases; verifier guards the routes
// that need an access token, and keys is the JWK Set served to the other services.
func NewHandlers(a app.Application, verifier *authn.Verifier, keys authn.KeySet) (*Handlers, error) {
	jwks, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	return &Handlers{app: a, verifier: verifier, jwks: jwks}, nil
}

// Register mounts the routes on the app.
func (h *Handlers) Register(r fiber.Router) {
	auth := h.verifier.Middleware()
	r.Post("/api/v1/auth/register", h.register)
	r.Post("/api/v1/auth/login", h.login)
	r.Post("/api/v1/auth/refresh", h.refresh)
	r.Post("/api/v1/auth/logout", auth, h.logout)
	r.Get("/api/v1/auth/me", auth, h.me)
	r.Post("/api/v1/auth/password", auth, h.changePassword)
	r.Post("/api/v1/auth/password/forgot", h.forgot)
	r.Post("/api/v1/auth/password/reset", h.reset)
	r.Get("/api/v1/users", auth, h.listUsers)
	r.Get("/api/v1/users/:id", auth, h.getUser)
	r.Get("/api/v1/auth/jwks.json", h.keys)
}

// keys serves the public keys of access tokens (RFC 7517 JWK Set). Verifiers cache
// it and refetch on an unknown kid, so a short max-age costs little and lets a
// rotation spread quickly.
func (h *Handlers) keys(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(h.jwks)
}

func (h *Handlers) register(c *fiber.Ctx) error {
	var req registerRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	u, err := h.app.Register.Handle(c.UserContext(), app.Register{
		Name: req.Name, Email: req.Email, Password: req.Password, ClientIP: httpserver.ClientIP(c),
	})
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
	t, err := h.app.Login.Handle(c.UserContext(), app.Login{Email: req.Email, Password: req.Password, ClientIP: httpserver.ClientIP(c)})
	if err != nil {
		return err
	}
	return sendTokens(c, t)
}

func sendTokens(c *fiber.Ctx, t app.Tokens) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(TokensResponse{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer",
		ExpiresIn: int(t.ExpiresIn / time.Second), User: toUserResponse(t.User),
	})
}

func (h *Handlers) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return problem.Validation(problem.FieldError{Field: "refreshToken", Message: "must not be empty"})
	}
	t, err := h.app.Refresh.Handle(c.UserContext(), app.Refresh(req))
	if err != nil {
		return err
	}
	return sendTokens(c, t)
}

func (h *Handlers) logout(c *fiber.Ctx) error {
	var req refreshRequest
	if len(bytes.TrimSpace(c.Body())) > 0 { // the body is optional
		if err := httpserver.DecodeJSON(c, &req); err != nil {
			return err
		}
	}
	p, _ := authn.PrincipalFrom(c)
	err := h.app.Logout.Handle(c.UserContext(), app.Logout{
		UserID: p.UserID, SessionID: p.SessionID, RefreshToken: req.RefreshToken,
		AccessToken: app.AccessToken{ID: p.TokenID, ExpiresAt: p.ExpiresAt},
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handlers) me(c *fiber.Ctx) error {
	p, _ := authn.PrincipalFrom(c)
	u, err := h.app.GetUser.Handle(c.UserContext(), p.UserID)
	if errors.Is(err, user.ErrNotFound) {
		// A valid token of a user that no longer exists authenticates nobody.
		return problem.Unauthorized("a valid bearer access token is required")
	}
	if err != nil {
		return err
	}
	return c.JSON(toUserResponse(u))
}

func (h *Handlers) changePassword(c *fiber.Ctx) error {
	var req changePasswordRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	p, _ := authn.PrincipalFrom(c)
	err := h.app.ChangePassword.Handle(c.UserContext(), app.ChangePassword{
		UserID: p.UserID, SessionID: p.SessionID, CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword,
		ClientIP: httpserver.ClientIP(c),
	})
	if errors.Is(err, user.ErrInvalidCredentials) {
		return problem.Unauthorized("the current password is wrong")
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handlers) forgot(c *fiber.Ctx) error {
	var req forgotRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := h.app.ForgotPassword.Handle(c.UserContext(), app.ForgotPassword{Email: req.Email, ClientIP: httpserver.ClientIP(c)}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusAccepted)
}

func (h *Handlers) reset(c *fiber.Ctx) error {
	var req resetRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := h.app.ResetPassword.Handle(c.UserContext(), app.ResetPassword{
		Token: req.Token, NewPassword: req.NewPassword, ClientIP: httpserver.ClientIP(c),
	}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// UserListResponse is an offset page of users.
type UserListResponse = pagination.List[UserResponse, pagination.OffsetMeta]

func (h *Handlers) listUsers(c *fiber.Ctx) error {
	page, err := pagination.ParseOffset(c)
	if err != nil {
		return err
	}
	name := c.Query("name")
	if utf8.RuneCountInString(name) > user.NameMaxLen {
		return problem.BadRequest(`query parameter "name" must be at most 100 characters`)
	}
	us, total, err := h.app.ListUsers.Handle(c.UserContext(), app.ListUsers{Name: name, Offset: page.Offset, Limit: page.Limit})
	if err != nil {
		return err
	}
	data := make([]UserResponse, len(us))
	for i, u := range us {
		data[i] = toUserResponse(u)
	}
	return c.JSON(UserListResponse{Data: data, Meta: page.Meta(total)})
}

func (h *Handlers) getUser(c *fiber.Ctx) error {
	u, err := h.app.GetUser.Handle(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toUserResponse(u))
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
	case errors.Is(err, user.ErrInvalidRefreshToken):
		return problem.Unauthorized("the refresh token is invalid, expired or revoked")
	case errors.Is(err, user.ErrInvalidResetToken):
		return problem.BadRequest("the reset token is invalid, used or expired")
	case errors.Is(err, app.ErrHasherBusy):
		p := problem.Unavailable("too many password checks are running; retry shortly")
		p.RetryAfter = 1
		return p
	}
	var te *user.ThrottledError
	if errors.As(err, &te) {
		return problem.TooManyRequests("too many attempts; retry later", int(math.Ceil(te.RetryAfter.Seconds())))
	}
	return nil
}
