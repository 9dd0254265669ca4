// Package http is the comment service's inbound HTTP port: Fiber handlers, request and
// response DTOs, and the mapping of domain errors to problem details.
package http

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/pagination"
	"github.com/bugtracker/bugtracker/platform/problem"
)

// CommentResponse is the public view of a comment (API.md).
type CommentResponse struct {
	ID        string    `json:"id"`
	CardID    string    `json:"cardId"`
	ProjectID string    `json:"projectId"`
	AuthorID  string    `json:"authorId"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"createdAt"`
}

func toResponse(c comment.Comment) CommentResponse {
	return CommentResponse{
		ID: c.ID(), CardID: c.CardID(), ProjectID: c.ProjectID(), AuthorID: c.AuthorID(),
		Body: c.Body(), CreatedAt: c.CreatedAt(),
	}
}

type createRequest struct {
	Body string `json:"body"`
}

// cursorPosition is what a cursor carries: the keyset of the last comment served.
// The time is in Unix microseconds, the precision comments are stored with, so the
// position round-trips exactly.
type cursorPosition struct {
	CreatedAt int64  `json:"t"`
	ID        string `json:"i"`
}

// Handlers serves the comment routes; every one needs a valid access token.
type Handlers struct {
	app      app.Application
	verifier *authn.Verifier
	cursors  *pagination.Cursors
}

// NewHandlers returns the handlers; cursors signs the list cursors.
func NewHandlers(a app.Application, v *authn.Verifier, cursors *pagination.Cursors) *Handlers {
	return &Handlers{app: a, verifier: v, cursors: cursors}
}

// Register mounts the routes.
func (h *Handlers) Register(r fiber.Router) {
	auth := h.verifier.Middleware()
	r.Post("/api/v1/cards/:id/comments", auth, h.create)
	r.Get("/api/v1/cards/:id/comments", auth, h.list)
	r.Get("/api/v1/comments/:id", auth, h.get)
	r.Delete("/api/v1/comments/:id", auth, h.delete)
}

func caller(c *fiber.Ctx) string {
	p, _ := authn.PrincipalFrom(c)
	return p.UserID
}

func (h *Handlers) create(c *fiber.Ctx) error {
	var req createRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	cm, err := h.app.CreateComment.Handle(c.UserContext(), app.CreateComment{
		CallerID: caller(c), CardID: c.Params("id"), Body: req.Body,
	})
	if err != nil {
		return err
	}
	c.Location("/api/v1/comments/" + cm.ID())
	return c.Status(fiber.StatusCreated).JSON(toResponse(cm))
}

// cursorScope binds a cursor to one card's list, so that it cannot be replayed on
// another card.
func cursorScope(cardID string) string { return "comments:" + cardID }

func (h *Handlers) list(c *fiber.Ctx) error {
	limit, err := pagination.ParseLimit(c)
	if err != nil {
		return err
	}
	cardID := c.Params("id")
	var after *app.Position
	if raw := c.Query("cursor"); raw != "" {
		var pos cursorPosition
		if err := h.cursors.Decode(raw, cursorScope(cardID), &pos); err != nil {
			return err
		}
		after = &app.Position{CreatedAt: time.UnixMicro(pos.CreatedAt).UTC(), ID: pos.ID}
	}
	page, err := h.app.ListComments.Handle(c.UserContext(), app.ListComments{
		CallerID: caller(c), CardID: cardID, After: after, Limit: limit,
	})
	if err != nil {
		return err
	}
	data := make([]CommentResponse, len(page.Items))
	for i, cm := range page.Items {
		data[i] = toResponse(cm)
	}
	meta := pagination.CursorMeta{Limit: limit}
	if page.Next != nil {
		next, err := h.cursors.Encode(cursorScope(cardID), cursorPosition{CreatedAt: page.Next.CreatedAt.UnixMicro(), ID: page.Next.ID})
		if err != nil {
			return err
		}
		meta.NextCursor = &next
	}
	return c.JSON(pagination.List[CommentResponse, pagination.CursorMeta]{Data: data, Meta: meta})
}

func (h *Handlers) get(c *fiber.Ctx) error {
	cm, err := h.app.GetComment.Handle(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toResponse(cm))
}

func (h *Handlers) delete(c *fiber.Ctx) error {
	if err := h.app.DeleteComment.Handle(c.UserContext(), caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// MapError turns comment domain errors into problem details; anything else is the
// shared handler's 500, which reveals nothing.
func MapError(err error) *problem.Problem {
	var ve *comment.ValidationError
	switch {
	case errors.As(err, &ve):
		return problem.Validation(problem.FieldError{Field: ve.Field, Message: ve.Message})
	case errors.Is(err, comment.ErrNotFound):
		return problem.NotFound("not found")
	case errors.Is(err, comment.ErrForbidden):
		return problem.Forbidden("only the comment's author or the project's owner may delete it")
	}
	return nil
}
