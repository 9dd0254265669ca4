// Package app holds the notif service's use cases: applying events from the streams
// (local user copies, notifications) and listing a user's notifications.
//
// Who is notified of a project, card or comment event is computed here from the
// audience the event carries (the project's owner and members read in the
// producer's transaction), with the rules of the notification domain; notif keeps
// no membership copy. So a member added after an event never gets it, a kicked
// member gets none of the later ones, and a deleted project's members all get
// project_deleted, whatever order the streams deliver in.
package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/notif/domain/notification"
)

// UserCopy is the notif service's local copy of a registered user.
type UserCopy struct {
	ID           string
	Name         string
	Email        string
	RegisteredAt time.Time
	// Version is the user's aggregateVersion in the event the copy comes
	// from; a copy is replaced only by a newer one, because events arrive
	// in any order.
	Version int64
}

// Users keeps the local user copies fed by newUser events.
type Users interface {
	// Upsert stores the copy unless the one held is as new or newer
	// (eventbus/versioned); applying the same event twice, or an old one
	// late, is harmless.
	Upsert(ctx context.Context, u UserCopy) error
}

// Filter narrows a user's notification list.
type Filter struct {
	UserID string
	// Unread, when set, keeps only unread (true) or only read (false) notifications.
	Unread *bool
}

// Notifications stores notifications.
type Notifications interface {
	// AddForEvent stores ns, all born of the event eventID. It is idempotent: a
	// notification already stored for (eventID, recipient) is left as it is.
	AddForEvent(ctx context.Context, eventID string, ns []notification.Notification) error
	// List returns the page of f's notifications, newest first (createdAt, then id),
	// the number matching f, and the number of the user's unread notifications.
	List(ctx context.Context, f Filter, skip, limit int) (items []notification.Notification, total, unread int, err error)
	// MarkRead marks the user's notification id read and returns it; another user's
	// or a missing one is notification.ErrNotFound.
	MarkRead(ctx context.Context, userID, id string) (notification.Notification, error)
	// MarkAllRead marks every notification of the user read.
	MarkAllRead(ctx context.Context, userID string) error
}

// IDGenerator returns a new unique id (UUIDv7).
type IDGenerator func() string

// Application gathers the use cases.
type Application struct {
	RecordUser    RecordUserHandler
	Notify        NotifyHandler
	NotifyProject NotifyAudienceHandler
	Notifications ListNotificationsHandler
	MarkRead      MarkReadHandler
	MarkAllRead   MarkAllReadHandler
}

// RecordUserHandler applies newUser events to the local user copies.
type RecordUserHandler struct{ users Users }

// NewRecordUserHandler wires the use case.
func NewRecordUserHandler(users Users) RecordUserHandler { return RecordUserHandler{users: users} }

// Handle stores the copy.
func (h RecordUserHandler) Handle(ctx context.Context, u UserCopy) error {
	if u.ID == "" {
		return fmt.Errorf("record user: empty id")
	}
	return h.users.Upsert(ctx, u)
}

// MaxRecipients bounds the notifications one event may create. The project
// service bounds a project's members, and so the audiences it publishes; this
// second bound keeps a malformed or hostile event from making notif write
// without limit.
type MaxRecipients int

// DefaultMaxRecipients is MaxRecipients when the configuration does not set it:
// far above any member limit the project service enforces.
const DefaultMaxRecipients MaxRecipients = 1000

// Delivery reports what one event led to: the notifications handed to the
// store (already stored ones of a redelivered event included) and the
// recipients dropped because the event exceeded MaxRecipients.
type Delivery struct {
	Recipients int
	Dropped    int
}

// Notify asks for one notification per recipient (newNotif: registration).
type Notify struct {
	EventID    string
	Recipients []string
	Type       string
	Message    string
	ActorID    string
	Refs       notification.Refs
	At         time.Time
}

// NotifyHandler applies newNotif events, whose producer chose the recipients
// and wrote the message.
type NotifyHandler struct {
	store Notifications
	newID IDGenerator
	max   MaxRecipients
}

// NewNotifyHandler wires the use case.
func NewNotifyHandler(store Notifications, newID IDGenerator, maxRecipients MaxRecipients) NotifyHandler {
	return NotifyHandler{store: store, newID: newID, max: maxRecipients}
}

// Handle stores a notification for each distinct recipient, exactly once per
// event and recipient (the store's unique (event, recipient) key).
func (h NotifyHandler) Handle(ctx context.Context, cmd Notify) (Delivery, error) {
	typ, err := notification.ParseType(cmd.Type)
	if err != nil {
		return Delivery{}, err
	}
	return deliver(ctx, h.store, h.max, cmd.EventID, dedupe(cmd.Recipients), func(r string) (notification.Notification, error) {
		return notification.New(h.newID(), r, typ, cmd.Message, cmd.ActorID, cmd.Refs, cmd.At)
	})
}

// NotifyAudience asks for the notifications of one project, card or comment
// event: the domain's rules pick the recipients from the event's audience and
// write the message from the names it carries.
type NotifyAudience struct {
	EventID  string
	Type     notification.Type
	ActorID  string
	Audience notification.Audience
	Subject  notification.Subject
	Refs     notification.Refs
	At       time.Time
}

// NotifyAudienceHandler applies project, card and comment events.
type NotifyAudienceHandler struct {
	store Notifications
	newID IDGenerator
	max   MaxRecipients
}

// NewNotifyAudienceHandler wires the use case.
func NewNotifyAudienceHandler(store Notifications, newID IDGenerator, maxRecipients MaxRecipients) NotifyAudienceHandler {
	return NotifyAudienceHandler{store: store, newID: newID, max: maxRecipients}
}

// Handle stores one notification per recipient of the event, exactly once per
// event and recipient, so a redelivered event changes nothing.
func (h NotifyAudienceHandler) Handle(ctx context.Context, cmd NotifyAudience) (Delivery, error) {
	recipients, err := notification.Recipients(cmd.Type, cmd.Audience, cmd.ActorID)
	if err != nil {
		return Delivery{}, err
	}
	msg, err := notification.Message(cmd.Type, cmd.Subject)
	if err != nil {
		return Delivery{}, err
	}
	return deliver(ctx, h.store, h.max, cmd.EventID, recipients, func(r string) (notification.Notification, error) {
		return notification.New(h.newID(), r, cmd.Type, msg, cmd.ActorID, cmd.Refs, cmd.At)
	})
}

// deliver builds the notifications of distinct recipients, keeping the first
// max of them, and stores them in one call.
func deliver(ctx context.Context, store Notifications, maxRecipients MaxRecipients, eventID string,
	recipients []string, build func(recipient string) (notification.Notification, error),
) (Delivery, error) {
	if eventID == "" {
		return Delivery{}, fmt.Errorf("notify: empty event id")
	}
	var d Delivery
	if limit := max(int(maxRecipients), 1); len(recipients) > limit {
		d.Dropped = len(recipients) - limit
		recipients = recipients[:limit]
	}
	ns := make([]notification.Notification, 0, len(recipients))
	for _, r := range recipients {
		n, err := build(r)
		if err != nil {
			return Delivery{}, err
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return d, nil
	}
	if err := store.AddForEvent(ctx, eventID, ns); err != nil {
		return Delivery{}, err
	}
	d.Recipients = len(ns)
	return d, nil
}

// dedupe drops empty and repeated ids, keeping the first occurrence's place.
func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// ListNotifications asks for a page of the caller's notifications.
type ListNotifications struct {
	UserID string
	Unread *bool
	Skip   int
	Limit  int
}

// NotificationPage is one page plus the counts the list meta needs.
type NotificationPage struct {
	Items  []notification.Notification
	Total  int
	Unread int
}

// ListNotificationsHandler serves the caller's list; a user only ever sees their own.
type ListNotificationsHandler struct{ store Notifications }

// NewListNotificationsHandler wires the query.
func NewListNotificationsHandler(store Notifications) ListNotificationsHandler {
	return ListNotificationsHandler{store: store}
}

// Handle returns the page.
func (h ListNotificationsHandler) Handle(ctx context.Context, q ListNotifications) (NotificationPage, error) {
	items, total, unread, err := h.store.List(ctx, Filter{UserID: q.UserID, Unread: q.Unread}, q.Skip, q.Limit)
	if err != nil {
		return NotificationPage{}, fmt.Errorf("list notifications: %w", err)
	}
	return NotificationPage{Items: items, Total: total, Unread: unread}, nil
}

// MarkReadHandler marks one of the caller's notifications read.
type MarkReadHandler struct{ store Notifications }

// NewMarkReadHandler wires the use case.
func NewMarkReadHandler(store Notifications) MarkReadHandler { return MarkReadHandler{store: store} }

// Handle marks it read; marking a read notification again changes nothing.
func (h MarkReadHandler) Handle(ctx context.Context, userID, id string) (notification.Notification, error) {
	return h.store.MarkRead(ctx, userID, id)
}

// MarkAllReadHandler marks every notification of the caller read.
type MarkAllReadHandler struct{ store Notifications }

// NewMarkAllReadHandler wires the use case.
func NewMarkAllReadHandler(store Notifications) MarkAllReadHandler {
	return MarkAllReadHandler{store: store}
}

// Handle marks them read.
func (h MarkAllReadHandler) Handle(ctx context.Context, userID string) error {
	return h.store.MarkAllRead(ctx, userID)
}
