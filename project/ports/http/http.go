// Package http is the project service's inbound HTTP port: Fiber handlers, request and
// response DTOs, and the mapping of domain errors to problem details. Handlers parse
// and answer; every decision is the application layer's.
package http

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/pagination"
	"github.com/bugtracker/bugtracker/platform/problem"
	"github.com/bugtracker/bugtracker/project/app"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// ProjectResponse is the public view of a project.
type ProjectResponse struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	OwnerID     string    `json:"ownerId"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// MemberResponse is the public view of a membership.
type MemberResponse struct {
	UserID  string    `json:"userId"`
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Role    string    `json:"role"`
	AddedAt time.Time `json:"addedAt"`
}

// CardResponse is the public view of a card.
type CardResponse struct {
	ID           string    `json:"id"`
	ProjectID    string    `json:"projectId"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	Status       string    `json:"status"`
	CreatorID    string    `json:"creatorId"`
	TotalComment int       `json:"totalComment"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

func toProject(p project.Project) ProjectResponse {
	return ProjectResponse{
		ID: p.ID(), Title: p.Title(), Description: p.Description(), OwnerID: p.OwnerID(),
		CreatedAt: p.CreatedAt(), UpdatedAt: p.UpdatedAt(),
	}
}

func toMember(m project.Member) MemberResponse {
	return MemberResponse{UserID: m.UserID, Name: m.Name, Email: m.Email, Role: m.Role.String(), AddedAt: m.AddedAt}
}

func toCard(c project.Card) CardResponse {
	return CardResponse{
		ID: c.ID(), ProjectID: c.ProjectID(), Title: c.Title(), Description: c.Description(), Status: c.Status().String(),
		CreatorID: c.CreatorID(), TotalComment: c.TotalComment(), CreatedAt: c.CreatedAt(), UpdatedAt: c.UpdatedAt(),
	}
}

// Pointers tell a field that was sent from one that was not: a PATCH changes only the
// fields it names, and a POST without a required field is a 422, not an empty value.
type projectRequest struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
}

type memberRequest struct {
	UserID *string `json:"userId"`
}

type cardRequest struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	Status      *string `json:"status"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Handlers serves the project, member and card routes; every one needs a valid
// access token.
type Handlers struct {
	app      app.Application
	verifier *authn.Verifier
	cursors  *pagination.Cursors
}

// NewHandlers returns the handlers.
func NewHandlers(a app.Application, v *authn.Verifier, c *pagination.Cursors) *Handlers {
	return &Handlers{app: a, verifier: v, cursors: c}
}

// Register mounts the routes.
func (h *Handlers) Register(r fiber.Router) {
	api := r.Group("/api/v1", h.verifier.Middleware())
	api.Post("/projects", h.createProject)
	api.Get("/projects", h.listProjects)
	api.Get("/projects/:id", h.getProject)
	api.Patch("/projects/:id", h.updateProject)
	api.Delete("/projects/:id", h.deleteProject)
	api.Post("/projects/:id/members", h.addMember)
	api.Get("/projects/:id/members", h.listMembers)
	api.Delete("/projects/:id/members/:userId", h.removeMember)
	api.Post("/projects/:id/cards", h.createCard)
	api.Get("/projects/:id/cards", h.listCards)
	api.Get("/cards/:id", h.getCard)
	api.Patch("/cards/:id", h.updateCard)
	api.Delete("/cards/:id", h.deleteCard)
}

func caller(c *fiber.Ctx) string {
	p, _ := authn.PrincipalFrom(c)
	return p.UserID
}

func (h *Handlers) createProject(c *fiber.Ctx) error {
	var req projectRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	p, err := h.app.CreateProject.Handle(c.UserContext(), app.CreateProject{
		CallerID: caller(c), Title: deref(req.Title), Description: deref(req.Description),
	})
	if err != nil {
		return err
	}
	c.Location("/api/v1/projects/" + p.ID())
	return c.Status(fiber.StatusCreated).JSON(toProject(p))
}

func (h *Handlers) listProjects(c *fiber.Ctx) error {
	off, err := pagination.ParseOffset(c)
	if err != nil {
		return err
	}
	ps, total, err := h.app.ListProjects.Handle(c.UserContext(), app.ListProjects{
		CallerID: caller(c), Title: c.Query("title"), Offset: off.Offset, Limit: off.Limit,
	})
	if err != nil {
		return err
	}
	data := make([]ProjectResponse, len(ps))
	for i, p := range ps {
		data[i] = toProject(p)
	}
	return c.JSON(pagination.List[ProjectResponse, pagination.OffsetMeta]{Data: data, Meta: off.Meta(total)})
}

func (h *Handlers) getProject(c *fiber.Ctx) error {
	p, err := h.app.GetProject.Handle(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toProject(p))
}

func (h *Handlers) updateProject(c *fiber.Ctx) error {
	var req projectRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	p, err := h.app.UpdateProject.Handle(c.UserContext(), app.UpdateProject{
		CallerID: caller(c), ProjectID: c.Params("id"), Title: req.Title, Description: req.Description,
	})
	if err != nil {
		return err
	}
	return c.JSON(toProject(p))
}

func (h *Handlers) deleteProject(c *fiber.Ctx) error {
	if err := h.app.DeleteProject.Handle(c.UserContext(), caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handlers) addMember(c *fiber.Ctx) error {
	var req memberRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if deref(req.UserID) == "" {
		return problem.Validation(problem.FieldError{Field: "userId", Message: "must not be empty"})
	}
	m, err := h.app.AddMember.Handle(c.UserContext(), app.AddMember{
		CallerID: caller(c), ProjectID: c.Params("id"), UserID: *req.UserID,
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toMember(m))
}

func (h *Handlers) listMembers(c *fiber.Ctx) error {
	off, err := pagination.ParseOffset(c)
	if err != nil {
		return err
	}
	ms, total, err := h.app.ListMembers.Handle(c.UserContext(), app.ListMembers{
		CallerID: caller(c), ProjectID: c.Params("id"), Offset: off.Offset, Limit: off.Limit,
	})
	if err != nil {
		return err
	}
	data := make([]MemberResponse, len(ms))
	for i, m := range ms {
		data[i] = toMember(m)
	}
	return c.JSON(pagination.List[MemberResponse, pagination.OffsetMeta]{Data: data, Meta: off.Meta(total)})
}

func (h *Handlers) removeMember(c *fiber.Ctx) error {
	if err := h.app.RemoveMember.Handle(c.UserContext(), caller(c), c.Params("id"), c.Params("userId")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handlers) createCard(c *fiber.Ctx) error {
	var req cardRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	card, err := h.app.CreateCard.Handle(c.UserContext(), app.CreateCard{
		CallerID: caller(c), ProjectID: c.Params("id"), Title: deref(req.Title), Description: deref(req.Description),
		Status: deref(req.Status),
	})
	if err != nil {
		return err
	}
	c.Location("/api/v1/cards/" + card.ID())
	return c.Status(fiber.StatusCreated).JSON(toCard(card))
}

// cursorScope binds a cursor to its project and status filter, so it cannot be
// replayed on another list.
func cursorScope(projectID string, status project.Status) string {
	return "cards:" + projectID + ":" + status.String()
}

func (h *Handlers) listCards(c *fiber.Ctx) error {
	limit, err := pagination.ParseLimit(c)
	if err != nil {
		return err
	}
	f := app.CardFilter{ProjectID: c.Params("id")}
	if s := c.Query("status"); s != "" {
		st, err := project.ParseStatus(s)
		if err != nil {
			return problem.BadRequest(`query parameter "status" must be one of todo, in_progress, done`)
		}
		f.Status = st
	}
	scope := cursorScope(f.ProjectID, f.Status)
	if raw := c.Query("cursor"); raw != "" {
		var pos app.CardPosition
		if err := h.cursors.Decode(raw, scope, &pos); err != nil {
			return err
		}
		f.After = &pos
	}
	page, err := h.app.ListCards.Handle(c.UserContext(), app.ListCards{CallerID: caller(c), Filter: f, Limit: limit})
	if err != nil {
		return err
	}
	meta := pagination.CursorMeta{Limit: limit}
	if page.Next != nil {
		next, err := h.cursors.Encode(scope, page.Next)
		if err != nil {
			return err
		}
		meta.NextCursor = &next
	}
	data := make([]CardResponse, len(page.Cards))
	for i, card := range page.Cards {
		data[i] = toCard(card)
	}
	return c.JSON(pagination.List[CardResponse, pagination.CursorMeta]{Data: data, Meta: meta})
}

func (h *Handlers) getCard(c *fiber.Ctx) error {
	card, err := h.app.GetCard.Handle(c.UserContext(), caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toCard(card))
}

func (h *Handlers) updateCard(c *fiber.Ctx) error {
	var req cardRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	card, err := h.app.UpdateCard.Handle(c.UserContext(), app.UpdateCard{
		CallerID: caller(c), CardID: c.Params("id"), Title: req.Title, Description: req.Description, Status: req.Status,
	})
	if err != nil {
		return err
	}
	return c.JSON(toCard(card))
}

func (h *Handlers) deleteCard(c *fiber.Ctx) error {
	if err := h.app.DeleteCard.Handle(c.UserContext(), caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// MapError turns project domain errors into problem details.
func MapError(err error) *problem.Problem {
	var ve *project.ValidationError
	if errors.As(err, &ve) {
		fields := make([]problem.FieldError, len(ve.Violations))
		for i, v := range ve.Violations {
			fields[i] = problem.FieldError{Field: v.Field, Message: v.Message}
		}
		return problem.Validation(fields...)
	}
	for _, m := range errorTable {
		if errors.Is(err, m.err) {
			return m.problem()
		}
	}
	return nil
}

// errorTable maps each sentinel to its problem; built once.
var errorTable = []struct {
	err     error
	problem func() *problem.Problem
}{
	{project.ErrProjectNotFound, func() *problem.Problem { return problem.NotFound("project not found") }},
	{project.ErrCardNotFound, func() *problem.Problem { return problem.NotFound("card not found") }},
	{project.ErrMemberNotFound, func() *problem.Problem { return problem.NotFound("member not found") }},
	{project.ErrForbidden, func() *problem.Problem { return problem.Forbidden("only the project owner may do this") }},
	{project.ErrAlreadyMember, func() *problem.Problem { return problem.Conflict("the user is already a member of the project") }},
	{project.ErrUnknownUser, func() *problem.Problem {
		return problem.Validation(problem.FieldError{Field: "userId", Message: "no such user"})
	}},
	{project.ErrOwnerNotRemovable, func() *problem.Problem {
		return problem.Validation(problem.FieldError{Field: "userId", Message: "the owner cannot be removed from the project"})
	}},
	{project.ErrTooManyMembers, func() *problem.Problem {
		return problem.Validation(problem.FieldError{Field: "userId", Message: "the project has reached its member limit"})
	}},
}
