// Package stream is the notif service's inbound event port: it turns messages from the
// Redis streams into use-case calls.
package stream

import (
	"context"
	"log/slog"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
)

// Families are the event families (streams) the notif service reads.
var Families = []string{contracts.Family(contracts.TypeNewUser), contracts.Family(contracts.TypeNewNotif)}

// Handler applies events to the notif use cases.
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
		return h.app.RecordUser.Handle(ctx, app.UserCopy{ID: e.UserID, Name: e.Name, Email: e.Email, RegisteredAt: e.RegisteredAt, Version: e.AggregateVersion})
	case contracts.NotificationRequested:
		return h.app.Notify.Handle(ctx, app.Notify{
			EventID: m.Envelope.ID, Recipients: e.RecipientIDs, Type: e.Kind, Message: e.Message, ActorID: e.ActorID,
			Refs: notification.Refs{ProjectID: e.ProjectID, CardID: e.CardID, CommentID: e.CommentID},
			At:   m.Envelope.OccurredAt,
		})
	default:
		h.log.DebugContext(ctx, "event ignored", "type", m.Envelope.Type, "event_id", m.Envelope.ID)
		return nil
	}
}
