package app

import (
	"context"

	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// CreateProject asks for a new project owned by the caller.
type CreateProject struct {
	CallerID    string
	Title       string
	Description string
}

// CreateProjectHandler creates projects; the creator becomes the owner.
type CreateProjectHandler struct{ d Deps }

// NewCreateProjectHandler wires the use case.
func NewCreateProjectHandler(d Deps) CreateProjectHandler { return CreateProjectHandler{d: d} }

// Handle validates, stores the project with its owner membership and publishes
// newProject, in one transaction.
func (h CreateProjectHandler) Handle(ctx context.Context, cmd CreateProject) (project.Project, error) {
	now := h.d.now()
	p, err := project.NewProject(h.d.NewID(), cmd.Title, cmd.Description, cmd.CallerID, now)
	if err != nil {
		return project.Project{}, err
	}
	err = h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		if err := tx.InsertProject(ctx, p); err != nil {
			return err
		}
		name, err := actorName(ctx, tx, cmd.CallerID)
		if err != nil {
			return err
		}
		return publish(ctx, tx, now, aggregateEvent{contracts.ProjectCreated{
			ProjectID: p.ID(), Title: p.Title(), Description: p.Description(), OwnerID: p.OwnerID(),
			OwnerName: name, CreatedAt: p.CreatedAt(), AggregateVersion: p.Version(),
		}, p.ID()})
	})
	return p, err
}

// ListProjects asks for a page of the projects the caller owns or belongs to.
type ListProjects struct {
	CallerID string
	Title    string
	Offset   int
	Limit    int
}

// ListProjectsHandler serves the caller's project list.
type ListProjectsHandler struct{ d Deps }

// NewListProjectsHandler wires the query.
func NewListProjectsHandler(d Deps) ListProjectsHandler { return ListProjectsHandler{d: d} }

// Handle returns the page and the number of matching projects.
func (h ListProjectsHandler) Handle(ctx context.Context, q ListProjects) ([]project.Project, int, error) {
	return h.d.Store.ListProjects(ctx, q.CallerID, q.Title, q.Offset, q.Limit)
}

// GetProjectHandler returns one project to its owner and members.
type GetProjectHandler struct {
	d      Deps
	policy Policy
}

// NewGetProjectHandler wires the query.
func NewGetProjectHandler(d Deps, p Policy) GetProjectHandler {
	return GetProjectHandler{d: d, policy: p}
}

// Handle returns the project, or ErrProjectNotFound to anyone else.
func (h GetProjectHandler) Handle(ctx context.Context, callerID, projectID string) (project.Project, error) {
	return h.policy.Authorize(ctx, projectID, callerID, project.ActView, project.ErrProjectNotFound)
}

// UpdateProject asks to change a project's title or description (nil: unchanged).
type UpdateProject struct {
	CallerID    string
	ProjectID   string
	Title       *string
	Description *string
}

// UpdateProjectHandler edits projects; owner only.
type UpdateProjectHandler struct {
	d      Deps
	policy Policy
}

// NewUpdateProjectHandler wires the use case.
func NewUpdateProjectHandler(d Deps, p Policy) UpdateProjectHandler {
	return UpdateProjectHandler{d: d, policy: p}
}

// Handle applies the change and publishes updateProject when something changed.
func (h UpdateProjectHandler) Handle(ctx context.Context, cmd UpdateProject) (project.Project, error) {
	var out project.Project
	err := h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		p, err := h.policy.AuthorizeTx(ctx, tx, cmd.ProjectID, cmd.CallerID, project.ActManage, project.ErrProjectNotFound)
		if err != nil {
			return err
		}
		now := h.d.now()
		changed, err := p.Update(cmd.Title, cmd.Description, now)
		if err != nil {
			return err
		}
		out = p
		if !changed {
			return nil
		}
		if err := tx.SaveProject(ctx, p); err != nil {
			return err
		}
		return publish(ctx, tx, now, aggregateEvent{contracts.ProjectUpdated{
			ProjectID: p.ID(), Title: p.Title(), Description: p.Description(), OwnerID: p.OwnerID(),
			UpdatedBy: cmd.CallerID, UpdatedAt: p.UpdatedAt(), AggregateVersion: p.Version(),
		}, p.ID()})
	})
	return out, err
}

// DeleteProjectHandler deletes projects with their cards and members; owner only.
type DeleteProjectHandler struct {
	d      Deps
	policy Policy
}

// NewDeleteProjectHandler wires the use case.
func NewDeleteProjectHandler(d Deps, p Policy) DeleteProjectHandler {
	return DeleteProjectHandler{d: d, policy: p}
}

// Handle deletes everything of the project in one transaction and publishes
// deleteProject with the audience read before the deletion.
func (h DeleteProjectHandler) Handle(ctx context.Context, callerID, projectID string) error {
	return h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		p, err := h.policy.AuthorizeTx(ctx, tx, projectID, callerID, project.ActManage, project.ErrProjectNotFound)
		if err != nil {
			return err
		}
		aud, err := audience(ctx, tx, p)
		if err != nil {
			return err
		}
		name, err := actorName(ctx, tx, callerID)
		if err != nil {
			return err
		}
		if err := tx.DeleteProject(ctx, projectID); err != nil {
			return err
		}
		now := h.d.now()
		return publish(ctx, tx, now, aggregateEvent{contracts.ProjectDeleted{
			ProjectID: p.ID(), Title: p.Title(), OwnerID: p.OwnerID(), DeletedBy: callerID, ActorName: name,
			Audience: aud, DeletedAt: now, AggregateVersion: p.Delete(),
		}, p.ID()})
	})
}
