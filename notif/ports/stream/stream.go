// Package stream is the notif service's inbound event port: it turns messages from the
// Redis streams into use-case calls.
//
// notif reads the user, notif, project, card and comment families. Project, card and
// comment events carry their audience (owner and members at the time of the change)
// and the names a message needs, so notif addresses and words their notifications
// itself and keeps no copy of projects or memberships.
package stream

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
)

// Families are the event families (streams) the notif service reads.
var Families = []string{
	contracts.FamilyUser, contracts.FamilyNotif,
	contracts.FamilyProject, contracts.FamilyCard, contracts.FamilyComment,
}

var (
	metricDelivered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "notif_notifications_delivered_total",
		Help: "Notifications handed to the store, by type (a redelivered event counts again; the store keeps one per event and recipient).",
	}, []string{"type"})
	metricDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "notif_recipients_dropped_total",
		Help: "Recipients left out because an event's audience exceeded NOTIF_MAX_RECIPIENTS, by type.",
	}, []string{"type"})
)

// Handler applies events to the notif use cases.
type Handler struct {
	app app.Application
	log *slog.Logger
}

// NewHandler returns the event handler.
func NewHandler(a app.Application, log *slog.Logger) *Handler { return &Handler{app: a, log: log} }

// Handle applies one message. An event of an unknown type or version is an error, so
// it ends in the dead-letter stream instead of being silently dropped; events of known
// types the service does not need are acknowledged and ignored. Applying a message
// twice (a redelivery, or a replay after Redis lost its streams) stores nothing new:
// notifications are unique per (event id, recipient), see the contract test
// "idempotent per event and recipient".
func (h *Handler) Handle(ctx context.Context, m *eventbus.Message) error {
	ev, err := contracts.Decode(m.Envelope)
	if err != nil {
		return err
	}
	env := m.Envelope
	switch e := ev.(type) {
	case contracts.UserRegistered:
		return h.app.RecordUser.Handle(ctx, app.UserCopy{ID: e.UserID, Name: e.Name, Email: e.Email, RegisteredAt: e.RegisteredAt, Version: e.AggregateVersion})
	case contracts.NotificationRequested:
		d, err := h.app.Notify.Handle(ctx, app.Notify{
			EventID: env.ID, Recipients: e.RecipientIDs, Type: e.Kind, Message: e.Message, ActorID: e.ActorID,
			Refs: notification.Refs{ProjectID: e.ProjectID, CardID: e.CardID, CommentID: e.CommentID},
			At:   env.OccurredAt,
		})
		return h.report(ctx, env, e.Kind, d, err)
	case contracts.ProjectCreated:
		// A new project has no members yet: its owner, who created it, is the audience.
		return h.notifyProject(ctx, env, app.NotifyAudience{
			Type: notification.ProjectCreated, ActorID: e.OwnerID,
			Audience: notification.Audience{OwnerID: e.OwnerID},
			Subject:  notification.Subject{ActorName: e.OwnerName, ProjectTitle: e.Title},
			Refs:     notification.Refs{ProjectID: e.ProjectID},
		})
	case contracts.ProjectDeleted:
		return h.notifyProject(ctx, env, app.NotifyAudience{
			Type: notification.ProjectDeleted, ActorID: e.DeletedBy, Audience: audience(e.Audience),
			Subject: notification.Subject{ActorName: e.ActorName, ProjectTitle: e.Title},
			Refs:    notification.Refs{ProjectID: e.ProjectID},
		})
	case contracts.CardCreated:
		return h.notifyProject(ctx, env, app.NotifyAudience{
			Type: notification.CardCreated, ActorID: e.CreatorID, Audience: audience(e.Audience),
			Subject: notification.Subject{ActorName: e.ActorName, ProjectTitle: e.ProjectTitle, CardTitle: e.Title},
			Refs:    notification.Refs{ProjectID: e.ProjectID, CardID: e.CardID},
		})
	case contracts.CardStatusChanged:
		if e.From == e.To { // nothing moved: nothing to tell
			return nil
		}
		return h.notifyProject(ctx, env, app.NotifyAudience{
			Type: notification.CardStatusChanged, ActorID: e.ChangedBy, Audience: audience(e.Audience),
			Subject: notification.Subject{ActorName: e.ActorName, ProjectTitle: e.ProjectTitle, CardTitle: e.Title, Status: e.To},
			Refs:    notification.Refs{ProjectID: e.ProjectID, CardID: e.CardID},
		})
	case contracts.CommentCreated:
		return h.notifyProject(ctx, env, app.NotifyAudience{
			Type: notification.CommentCreated, ActorID: e.AuthorID, Audience: audience(e.Audience),
			Subject: notification.Subject{ActorName: e.ActorName, ProjectTitle: e.ProjectTitle, CardTitle: e.CardTitle, Comment: e.Body},
			Refs:    notification.Refs{ProjectID: e.ProjectID, CardID: e.CardID, CommentID: e.CommentID},
		})
	default:
		h.log.DebugContext(ctx, "event ignored", "type", env.Type, "event_id", env.ID)
		return nil
	}
}

// notifyProject fills in what every audience notification takes from the
// envelope: the event id (the idempotency key) and the time it happened.
func (h *Handler) notifyProject(ctx context.Context, env eventbus.Envelope, cmd app.NotifyAudience) error {
	cmd.EventID, cmd.At = env.ID, env.OccurredAt
	d, err := h.app.NotifyProject.Handle(ctx, cmd)
	return h.report(ctx, env, cmd.Type.String(), d, err)
}

// report counts a delivery and warns when recipients were dropped, which means a
// producer published an audience above its own member limit.
func (h *Handler) report(ctx context.Context, env eventbus.Envelope, typ string, d app.Delivery, err error) error {
	if err != nil {
		return err
	}
	metricDelivered.WithLabelValues(typ).Add(float64(d.Recipients))
	if d.Dropped > 0 {
		metricDropped.WithLabelValues(typ).Add(float64(d.Dropped))
		h.log.WarnContext(ctx, "event audience above the recipient limit; the rest were not notified",
			"event_id", env.ID, "type", env.Type, "notified", d.Recipients, "dropped", d.Dropped)
	}
	return nil
}

func audience(a contracts.Audience) notification.Audience {
	return notification.Audience{OwnerID: a.OwnerID, MemberIDs: a.MemberIDs}
}
