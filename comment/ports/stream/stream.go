// Package stream is the comment service's inbound event port: it turns the user,
// project and card events into updates of the local copies.
package stream

import (
	"context"
	"log/slog"

	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

// Families are the event families (streams) the comment service reads.
var Families = []string{contracts.FamilyUser, contracts.FamilyProject, contracts.FamilyCard}

// Handler applies events to the comment use cases.
type Handler struct {
	app app.Application
	log *slog.Logger
}

// NewHandler returns the event handler.
func NewHandler(a app.Application, log *slog.Logger) *Handler { return &Handler{app: a, log: log} }

// Handle applies one message, idempotently by event id and only when the event is
// newer than the local copy (see the app handlers). An event of an unknown type or
// version is an error, so it ends in the dead-letter stream instead of being
// silently dropped; known events the service does not need are acknowledged.
func (h *Handler) Handle(ctx context.Context, m *eventbus.Message) error {
	ev, err := contracts.Decode(m.Envelope)
	if err != nil {
		return err
	}
	id := m.Envelope.ID
	switch e := ev.(type) {
	case contracts.UserRegistered:
		return h.app.ApplyUser.Handle(ctx, id, app.UserCopy{ID: e.UserID, Name: e.Name, Version: e.AggregateVersion})
	case contracts.ProjectCreated:
		return h.app.ApplyProject.Handle(ctx, id, app.ProjectCopy{
			ID: e.ProjectID, Title: e.Title, OwnerID: e.OwnerID, Version: e.AggregateVersion,
		})
	case contracts.ProjectUpdated:
		return h.app.ApplyProject.Handle(ctx, id, app.ProjectCopy{
			ID: e.ProjectID, Title: e.Title, OwnerID: e.OwnerID, Version: e.AggregateVersion,
		})
	case contracts.ProjectDeleted:
		return h.app.ApplyProject.Handle(ctx, id, app.ProjectCopy{
			ID: e.ProjectID, Title: e.Title, OwnerID: e.OwnerID, Version: e.AggregateVersion, Deleted: true,
		})
	case contracts.MemberAdded:
		return h.app.ApplyMembership.Handle(ctx, id, app.MemberCopy{
			ProjectID: e.ProjectID, UserID: e.UserID, Version: e.AggregateVersion,
		})
	case contracts.MemberRemoved:
		return h.app.ApplyMembership.Handle(ctx, id, app.MemberCopy{
			ProjectID: e.ProjectID, UserID: e.UserID, Version: e.AggregateVersion, Removed: true,
		})
	case contracts.CardCreated:
		return h.app.ApplyCard.Handle(ctx, id, app.CardCopy{
			ID: e.CardID, ProjectID: e.ProjectID, Title: e.Title, Version: e.AggregateVersion,
		})
	case contracts.CardUpdated:
		return h.app.ApplyCard.Handle(ctx, id, app.CardCopy{
			ID: e.CardID, ProjectID: e.ProjectID, Title: e.Title, Version: e.AggregateVersion,
		})
	case contracts.CardStatusChanged:
		return h.app.ApplyCard.Handle(ctx, id, app.CardCopy{
			ID: e.CardID, ProjectID: e.ProjectID, Title: e.Title, Version: e.AggregateVersion,
		})
	case contracts.CardDeleted:
		return h.app.ApplyCard.Handle(ctx, id, app.CardCopy{
			ID: e.CardID, ProjectID: e.ProjectID, Version: e.AggregateVersion, Deleted: true,
		})
	default:
		h.log.DebugContext(ctx, "event ignored", "type", m.Envelope.Type, "event_id", id)
		return nil
	}
}
