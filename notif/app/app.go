// Package app holds the notif service's use cases: applying events from the streams
// (local user copies, notifications) and listing a user's notifications.
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

// Notify asks for one notification per recipient.
type Notify struct {
	EventID    string
	Recipients []string
	Type       string
	Message    string
	ActorID    string
	Refs       notification.Refs
	At         time.Time
}

// NotifyHandler applies newNotif events.
type NotifyHandler struct {
	store Notifications
	newID IDGenerator
}

// NewNotifyHandler wires the use case.
func NewNotifyHandler(store Notifications, newID IDGenerator) NotifyHandler {
	return NotifyHandler{store: store, newID: newID}
}

// Handle stores a notification for each distinct recipient, exactly once per event.
func (h NotifyHandler) Handle(ctx context.Context, cmd Notify) error {
	typ, err := notification.ParseType(cmd.Type)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	ns := make([]notification.Notification, 0, len(cmd.Recipients))
	for _, r := range cmd.Recipients {
		if seen[r] {
			continue
		}
		seen[r] = true
		n, err := notification.New(h.newID(), r, typ, cmd.Message, cmd.ActorID, cmd.Refs, cmd.At)
		if err != nil {
			return err
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return nil
	}
	return h.store.AddForEvent(ctx, cmd.EventID, ns)
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
