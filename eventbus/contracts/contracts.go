// Package contracts defines the events the bug tracker's services exchange:
// one Go type per event, named in the past tense, with an explicit wire name
// and version. Consumers decode envelopes with Decode, which looks the type
// up by name and version, so an old consumer rejects a version it does not
// know instead of misreading it.
//
// Events are grouped into families, and each family travels on its own
// stream (see Family). The family of an event type must never change:
// moving a type to another stream would break the ordering consumers rely
// on.
package contracts

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
)

// Event type names, exactly as they appear in Envelope.Type.
const (
	TypeNewUser          = "newUser"
	TypeNewProject       = "newProject"
	TypeDeleteProject    = "deleteProject"
	TypeNewCard          = "newCard"
	TypeUpdateCard       = "updateCard"
	TypeChangeCardStatus = "changeCardStatus"
	TypeNewComment       = "newComment"
	TypeDeleteComment    = "deleteComment"
	TypeNewNotif         = "newNotif"
)

// Event families. Each family is one stream, which preserves the order of
// the events of a family.
const (
	FamilyUser    = "user"
	FamilyProject = "project"
	FamilyCard    = "card"
	FamilyComment = "comment"
	FamilyNotif   = "notif"
)

// Notification kinds carried by NotificationRequested, so the notification
// service can pick a template without parsing the message.
const (
	KindRegistration      = "registration"
	KindProjectCreated    = "project_created"
	KindProjectDeleted    = "project_deleted"
	KindCardCreated       = "card_created"
	KindCardStatusChanged = "card_status_changed"
	KindCommentCreated    = "comment_created"
)

// ErrUnknownEvent is wrapped by Decode when no contract is registered for an
// envelope's type and version, so consumers can dead-letter or skip it.
var ErrUnknownEvent = errors.New("contracts: unknown event")

var families = map[string]string{
	TypeNewUser:          FamilyUser,
	TypeNewProject:       FamilyProject,
	TypeDeleteProject:    FamilyProject,
	TypeNewCard:          FamilyCard,
	TypeUpdateCard:       FamilyCard,
	TypeChangeCardStatus: FamilyCard,
	TypeNewComment:       FamilyComment,
	TypeDeleteComment:    FamilyComment,
	TypeNewNotif:         FamilyNotif,
}

// Family returns the family, and so the stream, of an event type, or "" for
// an unknown type. Publishers refuse envelopes whose type has no family.
func Family(eventType string) string { return families[eventType] }

// Families returns every family, so that a subscriber can read all streams.
func Families() []string {
	return []string{FamilyUser, FamilyProject, FamilyCard, FamilyComment, FamilyNotif}
}

// UserRegistered is published when an account is created. It never carries
// the password or its hash.
type UserRegistered struct {
	UserID       string    `json:"userId"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	RegisteredAt time.Time `json:"registeredAt"`
}

// ProjectCreated is published when a project is created.
type ProjectCreated struct {
	ProjectID   string    `json:"projectId"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	OwnerID     string    `json:"ownerId"`
	CreatedAt   time.Time `json:"createdAt"`
}

// ProjectDeleted is published when a project is deleted. It lists the
// members so consumers can notify them and drop their copies without asking
// the project service, which no longer knows the project.
type ProjectDeleted struct {
	ProjectID string    `json:"projectId"`
	OwnerID   string    `json:"ownerId"`
	DeletedBy string    `json:"deletedBy"`
	MemberIDs []string  `json:"memberIds"`
	DeletedAt time.Time `json:"deletedAt"`
}

// CardCreated is published when a card is added to a project.
type CardCreated struct {
	CardID      string    `json:"cardId"`
	ProjectID   string    `json:"projectId"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Status      string    `json:"status"`
	CreatorID   string    `json:"creatorId"`
	CreatedAt   time.Time `json:"createdAt"`
}

// CardUpdated is published when a card's fields are edited; it carries the
// full new state so consumers need not merge partial updates.
type CardUpdated struct {
	CardID      string    `json:"cardId"`
	ProjectID   string    `json:"projectId"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Status      string    `json:"status"`
	UpdatedBy   string    `json:"updatedBy"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// CardStatusChanged is published when a card moves between statuses; it is
// separate from CardUpdated because notifications react to it.
type CardStatusChanged struct {
	CardID    string    `json:"cardId"`
	ProjectID string    `json:"projectId"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	ChangedBy string    `json:"changedBy"`
	ChangedAt time.Time `json:"changedAt"`
}

// CommentCreated is published when a comment is added to a card.
type CommentCreated struct {
	CommentID string    `json:"commentId"`
	CardID    string    `json:"cardId"`
	ProjectID string    `json:"projectId"`
	AuthorID  string    `json:"authorId"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"createdAt"`
}

// CommentDeleted is published when a comment is removed.
type CommentDeleted struct {
	CommentID string    `json:"commentId"`
	CardID    string    `json:"cardId"`
	ProjectID string    `json:"projectId"`
	DeletedBy string    `json:"deletedBy"`
	DeletedAt time.Time `json:"deletedAt"`
}

// NotificationRequested asks the notification service to notify users. The
// producing service decides who is notified and why, so the notification
// service needs no knowledge of projects or cards.
type NotificationRequested struct {
	RecipientIDs []string `json:"recipientIds"`
	Kind         string   `json:"kind"`
	Message      string   `json:"message"`
	ActorID      string   `json:"actorId"`
	ProjectID    string   `json:"projectId,omitempty"`
	CardID       string   `json:"cardId,omitempty"`
	CommentID    string   `json:"commentId,omitempty"`
}

// EventName implements eventbus.Event.
func (UserRegistered) EventName() string { return TypeNewUser }

// EventVersion implements eventbus.Event.
func (UserRegistered) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (ProjectCreated) EventName() string { return TypeNewProject }

// EventVersion implements eventbus.Event.
func (ProjectCreated) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (ProjectDeleted) EventName() string { return TypeDeleteProject }

// EventVersion implements eventbus.Event.
func (ProjectDeleted) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CardCreated) EventName() string { return TypeNewCard }

// EventVersion implements eventbus.Event.
func (CardCreated) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CardUpdated) EventName() string { return TypeUpdateCard }

// EventVersion implements eventbus.Event.
func (CardUpdated) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CardStatusChanged) EventName() string { return TypeChangeCardStatus }

// EventVersion implements eventbus.Event.
func (CardStatusChanged) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CommentCreated) EventName() string { return TypeNewComment }

// EventVersion implements eventbus.Event.
func (CommentCreated) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CommentDeleted) EventName() string { return TypeDeleteComment }

// EventVersion implements eventbus.Event.
func (CommentDeleted) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (NotificationRequested) EventName() string { return TypeNewNotif }

// EventVersion implements eventbus.Event.
func (NotificationRequested) EventVersion() int { return 1 }

type key struct {
	name    string
	version int
}

type decoder func(payload []byte) (eventbus.Event, error)

var registry = map[key]decoder{}

// register adds the decoder of T under T's own name and version, so the
// registry cannot disagree with the contract.
func register[T eventbus.Event]() {
	var zero T
	registry[key{zero.EventName(), zero.EventVersion()}] = func(payload []byte) (eventbus.Event, error) {
		var v T
		err := json.Unmarshal(payload, &v)
		return v, err
	}
}

func init() {
	register[UserRegistered]()
	register[ProjectCreated]()
	register[ProjectDeleted]()
	register[CardCreated]()
	register[CardUpdated]()
	register[CardStatusChanged]()
	register[CommentCreated]()
	register[CommentDeleted]()
	register[NotificationRequested]()
}

// Decode returns the contract value (not a pointer) carried by env, for use
// in a type switch. An unregistered type or version yields an error wrapping
// ErrUnknownEvent.
func Decode(env eventbus.Envelope) (eventbus.Event, error) {
	dec, ok := registry[key{env.Type, env.Version}]
	if !ok {
		return nil, fmt.Errorf("%w: %s v%d", ErrUnknownEvent, env.Type, env.Version)
	}
	ev, err := dec(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("contracts: decode %s v%d (event %s): %w", env.Type, env.Version, env.ID, err)
	}
	return ev, nil
}

// New is eventbus.NewEnvelope, offered here so that producers need only
// import contracts.
func New(e eventbus.Event, aggregateID string, at time.Time) (eventbus.Envelope, error) {
	return eventbus.NewEnvelope(e, aggregateID, at)
}
