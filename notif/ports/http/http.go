// Package http is the notif service's inbound HTTP port.
package http

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/pagination"
	"github.com/bugtracker/bugtracker/platform/problem"
)

// NotificationResponse is the public view of a notification.
type NotificationResponse struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	Type      string    `json:"type"`
	Message   string    `json:"message"`
	ActorID   string    `json:"actorId"`
	ProjectID string    `json:"projectId,omitempty"`
	CardID    string    `json:"cardId,omitempty"`
	CommentID string    `json:"commentId,omitempty"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"createdAt"`
}

// ListMeta is the page meta plus the caller's unread count.
type ListMeta struct {
	pagination.PageMeta
	Unread int `json:"unread"`
}

func toResponse(n notification.Notification) NotificationResponse {
	r := n.Refs()
	return NotificationResponse{
		ID: n.ID(), UserID: n.UserID(), Type: n.Type().String(), Message: n.Message(), ActorID: n.ActorID(),
		ProjectID: r.ProjectID, CardID: r.CardID, CommentID: r.CommentID, Read: n.Read(), CreatedAt: n.CreatedAt(),
	}
}

type markRequest struct {
	Read *bool `json:"read"`
}

// QueryTimeout bounds the time one request may spend in the store. Past it the
// request ends with 503 and Retry-After instead of waiting on: a client (or the
// gateway) gives up on a slow answer anyway, and a request that keeps its queries
// running after that only slows every later one down.
type QueryTimeout time.Duration

// DefaultQueryTimeout is QueryTimeout when the configuration does not set it.
const DefaultQueryTimeout = QueryTimeout(5 * time.Second)

// Handlers serves the notification routes; every one needs a valid access token.
type Handlers struct {
	app      app.Application
	verifier *authn.Verifier
	timeout  time.Duration
}

// NewHandlers returns the handlers.
func NewHandlers(a app.Application, v *authn.Verifier, timeout QueryTimeout) *Handlers {
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	return &Handlers{app: a, verifier: v, timeout: time.Duration(timeout)}
}

// ctx is the request's context with the query deadline.
func (h *Handlers) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), h.timeout)
}

// Register mounts the routes.
func (h *Handlers) Register(r fiber.Router) {
	g := r.Group("/api/v1/notifications", h.verifier.Middleware())
	g.Get("", h.list)
	g.Post("/read-all", h.readAll)
	g.Patch("/:id", h.markRead)
}

func caller(c *fiber.Ctx) string {
	p, _ := authn.PrincipalFrom(c)
	return p.UserID
}

func (h *Handlers) list(c *fiber.Ctx) error {
	page, err := pagination.ParsePage(c)
	if err != nil {
		return err
	}
	var unread *bool
	switch c.Query("unread") {
	case "":
	case "true":
		v := true
		unread = &v
	case "false":
		v := false
		unread = &v
	default:
		return problem.BadRequest(`query parameter "unread" must be true or false`)
	}
	ctx, cancel := h.ctx(c)
	defer cancel()
	res, err := h.app.Notifications.Handle(ctx, app.ListNotifications{
		UserID: caller(c), Unread: unread, Skip: page.Skip(), Limit: page.Limit,
	})
	if err != nil {
		return err
	}
	data := make([]NotificationResponse, len(res.Items))
	for i, n := range res.Items {
		data[i] = toResponse(n)
	}
	return c.JSON(pagination.List[NotificationResponse, ListMeta]{
		Data: data, Meta: ListMeta{PageMeta: page.Meta(res.Total), Unread: res.Unread},
	})
}

func (h *Handlers) markRead(c *fiber.Ctx) error {
	var req markRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Read == nil || !*req.Read {
		return problem.Validation(problem.FieldError{Field: "read", Message: "must be true"})
	}
	ctx, cancel := h.ctx(c)
	defer cancel()
	n, err := h.app.MarkRead.Handle(ctx, caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toResponse(n))
}

func (h *Handlers) readAll(c *fiber.Ctx) error {
	ctx, cancel := h.ctx(c)
	defer cancel()
	if err := h.app.MarkAllRead.Handle(ctx, caller(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// MapError turns notif domain errors into problem details, and a store that did
// not answer within the query deadline into 503 with Retry-After.
func MapError(err error) *problem.Problem {
	switch {
	case errors.Is(err, notification.ErrNotFound):
		return problem.NotFound("notification not found")
	case errors.Is(err, context.DeadlineExceeded):
		p := problem.Unavailable("notifications are slow to answer; try again shortly")
		p.RetryAfter = 1
		return p
	}
	return nil
}
