// Package stream is the project service's inbound event port: it turns messages from
// the Redis streams into use-case calls.
package stream

import (
	"context"
	"log/slog"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/project/app"
)

// Families are the event families (streams) the project service reads: users for the
// local copies, comments for totalComment.
var Families = []string{contracts.FamilyUser, contracts.FamilyComment}

// Handler applies events to the project use cases.
type Handler struct {
	app app.Application
	log *slog.Logger
}

// NewHandler returns the event handler.
func NewHandler(a app.Application, log *slog.Logger) *Handler { return &Handler{app: a, log: log} }

// Handle applies one message. An event of an unknown type or version is an error, so
// it ends in the dead-letter stream instead of being silently dropped; events of known
// types the service does not need are acknowledged and ignored.
func (h *Handler) Handle(ctx context.Context, m *eventbus.Message) error {
	ev, err := contracts.Decode(m.Envelope)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case contracts.UserRegistered:
		return h.app.RecordUser.Handle(ctx, m.Envelope.ID, app.UserCopy{
			ID: e.UserID, Name: e.Name, Email: e.Email, Version: e.AggregateVersion,
		})
	case contracts.CommentCreated:
		return h.app.RecordComment.Handle(ctx, app.RecordComment{
			EventID: m.Envelope.ID, CommentID: e.CommentID, CardID: e.CardID, Live: true,
		})
	case contracts.CommentDeleted:
		return h.app.RecordComment.Handle(ctx, app.RecordComment{
			EventID: m.Envelope.ID, CommentID: e.CommentID, CardID: e.CardID, Live: false,
		})
	default:
		h.log.DebugContext(ctx, "event ignored", "type", m.Envelope.Type, "event_id", m.Envelope.ID)
		return nil
	}
}
