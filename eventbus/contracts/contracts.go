// Package contracts defines the events the bug tracker's services exchange:
// one Go type per event, named in the past tense, with an explicit wire name
// and version. Consumers decode envelopes with Decode, which looks the type
// up by name and version, so an old consumer rejects a version it does not
// know instead of misreading it; an older version that is still decoded is
// upcast to the current type (see the v1 decoders in init).
//
// Events are grouped into families, and each family travels on its own
// stream (see Family). Consumers never rely on the order of entries, not
// even within one family: relay replicas may publish concurrently and
// retries reorder deliveries. Instead every event about an aggregate (user,
// project, membership, card, comment) carries AggregateVersion, a number
// that grows with each change of that aggregate (1 on creation). A
// consumer's local copy applies an event only when its version is newer
// than the copy's, and a deletion leaves a tombstone holding the deletion's
// version, so a late update cannot bring the aggregate back. Events that
// change an aggregate carry its whole new state (not a diff), so applying
// only the newest is enough.
//
// Who is notified: events that lead to a notification carry an Audience, the
// project's owner and members at the moment of the change, read in the same
// transaction as the change. The notif service applies the recipient rules
// (who of the audience, minus the actor) and writes the message from the
// names the event carries. Computing the audience where the membership is
// authoritative means that a member added after an event never gets it and a
// kicked member stops getting them at once, whatever order the streams are
// read in; a copy of the membership kept by notif could not promise that.
// NotificationRequested remains for notifications that are not tied to a
// project (registration).
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
	TypeUpdateProject    = "updateProject"
	TypeDeleteProject    = "deleteProject"
	TypeMemberAdded      = "memberAdded"
	TypeMemberRemoved    = "memberRemoved"
	TypeNewCard          = "newCard"
	TypeUpdateCard       = "updateCard"
	TypeChangeCardStatus = "changeCardStatus"
	TypeDeleteCard       = "deleteCard"
	TypeNewComment       = "newComment"
	TypeDeleteComment    = "deleteComment"
	TypeNewNotif         = "newNotif"
)

// Event families. Each family is one stream.
const (
	FamilyUser    = "user"
	FamilyProject = "project"
	FamilyCard    = "card"
	FamilyComment = "comment"
	FamilyNotif   = "notif"
)

// Notification kinds, the six types of the notif service.
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
	TypeUpdateProject:    FamilyProject,
	TypeDeleteProject:    FamilyProject,
	TypeMemberAdded:      FamilyProject,
	TypeMemberRemoved:    FamilyProject,
	TypeNewCard:          FamilyCard,
	TypeUpdateCard:       FamilyCard,
	TypeChangeCardStatus: FamilyCard,
	TypeDeleteCard:       FamilyCard,
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

// Aggregated is implemented by every event about an aggregate, so that a
// generic helper can apply the "only if newer, keep tombstones" rule without
// a type switch.
type Aggregated interface {
	eventbus.Event
	// AggregateRef returns the id of the aggregate the event is about and
	// its version after the change.
	AggregateRef() (id string, version int64)
	// Deletes reports whether the event ends the aggregate (a tombstone).
	Deletes() bool
}

// MembershipID is the aggregate id of one user's membership of one project:
// memberAdded and memberRemoved version it, so that a kick and a re-add of
// the same user order correctly whatever the arrival order.
func MembershipID(projectID, userID string) string { return projectID + "/" + userID }

// Audience is who belonged to a project when an event happened: its owner
// and its members (the owner not repeated), read in the change's
// transaction. The project service bounds the number of members, which
// bounds the payload and the notification fan-out.
type Audience struct {
	OwnerID   string   `json:"ownerId"`
	MemberIDs []string `json:"memberIds"`
}

// UserRegistered (newUser v2) is published when an account is created. It
// never carries the password or its hash. Version 1 lacked
// AggregateVersion; it decodes as version 1 (the creation).
type UserRegistered struct {
	UserID           string    `json:"userId"`
	Name             string    `json:"name"`
	Email            string    `json:"email"`
	RegisteredAt     time.Time `json:"registeredAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// ProjectCreated (newProject v2) is published when a project is created;
// its creator is its owner.
type ProjectCreated struct {
	ProjectID        string    `json:"projectId"`
	Title            string    `json:"title"`
	Description      string    `json:"description"`
	OwnerID          string    `json:"ownerId"`
	OwnerName        string    `json:"ownerName"`
	CreatedAt        time.Time `json:"createdAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// ProjectUpdated (updateProject v1) is published when a project's title or
// description changes; it carries the whole new state.
type ProjectUpdated struct {
	ProjectID        string    `json:"projectId"`
	Title            string    `json:"title"`
	Description      string    `json:"description"`
	OwnerID          string    `json:"ownerId"`
	UpdatedBy        string    `json:"updatedBy"`
	UpdatedAt        time.Time `json:"updatedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// ProjectDeleted (deleteProject v2) is published when a project is deleted
// with its cards, members and (in the comment service) comments. The
// audience lets notif tell every member without asking the project service,
// which no longer knows the project.
type ProjectDeleted struct {
	ProjectID        string    `json:"projectId"`
	Title            string    `json:"title"`
	OwnerID          string    `json:"ownerId"`
	DeletedBy        string    `json:"deletedBy"`
	ActorName        string    `json:"actorName"`
	Audience         Audience  `json:"audience"`
	DeletedAt        time.Time `json:"deletedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// MemberAdded (memberAdded v1) is published when the owner adds a member.
// Its aggregate is the membership (MembershipID).
type MemberAdded struct {
	ProjectID        string    `json:"projectId"`
	UserID           string    `json:"userId"`
	Role             string    `json:"role"`
	AddedBy          string    `json:"addedBy"`
	AddedAt          time.Time `json:"addedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// MemberRemoved (memberRemoved v1) is published when the owner kicks a
// member. Its aggregate is the membership (MembershipID); consumers keep a
// tombstone so a late memberAdded of the same membership version or older
// cannot restore access.
type MemberRemoved struct {
	ProjectID        string    `json:"projectId"`
	UserID           string    `json:"userId"`
	RemovedBy        string    `json:"removedBy"`
	RemovedAt        time.Time `json:"removedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// CardCreated (newCard v2) is published when a card is added to a project.
type CardCreated struct {
	CardID           string    `json:"cardId"`
	ProjectID        string    `json:"projectId"`
	Title            string    `json:"title"`
	Description      string    `json:"description"`
	Status           string    `json:"status"`
	CreatorID        string    `json:"creatorId"`
	CreatedAt        time.Time `json:"createdAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
	ProjectTitle     string    `json:"projectTitle"`
	ActorName        string    `json:"actorName"`
	Audience         Audience  `json:"audience"`
}

// CardUpdated (updateCard v2) is published when a card's title or
// description is edited; it carries the full new state so consumers need not
// merge partial updates. A PATCH that changes the status too publishes both
// this and CardStatusChanged with the same AggregateVersion and state.
type CardUpdated struct {
	CardID           string    `json:"cardId"`
	ProjectID        string    `json:"projectId"`
	Title            string    `json:"title"`
	Description      string    `json:"description"`
	Status           string    `json:"status"`
	UpdatedBy        string    `json:"updatedBy"`
	UpdatedAt        time.Time `json:"updatedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// CardStatusChanged (changeCardStatus v2) is published when a card moves
// between statuses. It carries the card's whole new state (Title,
// Description, To) besides the old status, so it can be applied alone.
type CardStatusChanged struct {
	CardID           string    `json:"cardId"`
	ProjectID        string    `json:"projectId"`
	Title            string    `json:"title"`
	Description      string    `json:"description"`
	From             string    `json:"from"`
	To               string    `json:"to"`
	ChangedBy        string    `json:"changedBy"`
	ChangedAt        time.Time `json:"changedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
	ProjectTitle     string    `json:"projectTitle"`
	ActorName        string    `json:"actorName"`
	Audience         Audience  `json:"audience"`
}

// CardDeleted (deleteCard v1) is published when a card is deleted; its
// comments go with it.
type CardDeleted struct {
	CardID           string    `json:"cardId"`
	ProjectID        string    `json:"projectId"`
	DeletedBy        string    `json:"deletedBy"`
	DeletedAt        time.Time `json:"deletedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// CommentCreated (newComment v2) is published when a comment is added to a
// card. Comments are never edited, so its AggregateVersion is 1.
type CommentCreated struct {
	CommentID        string    `json:"commentId"`
	CardID           string    `json:"cardId"`
	ProjectID        string    `json:"projectId"`
	AuthorID         string    `json:"authorId"`
	Body             string    `json:"body"`
	CreatedAt        time.Time `json:"createdAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
	CardTitle        string    `json:"cardTitle"`
	ProjectTitle     string    `json:"projectTitle"`
	ActorName        string    `json:"actorName"`
	Audience         Audience  `json:"audience"`
}

// CommentDeleted (deleteComment v2) is published when a comment is removed
// by its author or the project owner. Its AggregateVersion is 2.
type CommentDeleted struct {
	CommentID        string    `json:"commentId"`
	CardID           string    `json:"cardId"`
	ProjectID        string    `json:"projectId"`
	AuthorID         string    `json:"authorId"`
	DeletedBy        string    `json:"deletedBy"`
	DeletedAt        time.Time `json:"deletedAt"`
	AggregateVersion int64     `json:"aggregateVersion"`
}

// NotificationRequested (newNotif v1) asks the notification service to
// notify users of something that belongs to no project (registration). The
// producing service decides who is notified and why.
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
func (UserRegistered) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (ProjectCreated) EventName() string { return TypeNewProject }

// EventVersion implements eventbus.Event.
func (ProjectCreated) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (ProjectUpdated) EventName() string { return TypeUpdateProject }

// EventVersion implements eventbus.Event.
func (ProjectUpdated) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (ProjectDeleted) EventName() string { return TypeDeleteProject }

// EventVersion implements eventbus.Event.
func (ProjectDeleted) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (MemberAdded) EventName() string { return TypeMemberAdded }

// EventVersion implements eventbus.Event.
func (MemberAdded) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (MemberRemoved) EventName() string { return TypeMemberRemoved }

// EventVersion implements eventbus.Event.
func (MemberRemoved) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CardCreated) EventName() string { return TypeNewCard }

// EventVersion implements eventbus.Event.
func (CardCreated) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (CardUpdated) EventName() string { return TypeUpdateCard }

// EventVersion implements eventbus.Event.
func (CardUpdated) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (CardStatusChanged) EventName() string { return TypeChangeCardStatus }

// EventVersion implements eventbus.Event.
func (CardStatusChanged) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (CardDeleted) EventName() string { return TypeDeleteCard }

// EventVersion implements eventbus.Event.
func (CardDeleted) EventVersion() int { return 1 }

// EventName implements eventbus.Event.
func (CommentCreated) EventName() string { return TypeNewComment }

// EventVersion implements eventbus.Event.
func (CommentCreated) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (CommentDeleted) EventName() string { return TypeDeleteComment }

// EventVersion implements eventbus.Event.
func (CommentDeleted) EventVersion() int { return 2 }

// EventName implements eventbus.Event.
func (NotificationRequested) EventName() string { return TypeNewNotif }

// EventVersion implements eventbus.Event.
func (NotificationRequested) EventVersion() int { return 1 }

// AggregateRef implements Aggregated.
func (e UserRegistered) AggregateRef() (string, int64) { return e.UserID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e ProjectCreated) AggregateRef() (string, int64) { return e.ProjectID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e ProjectUpdated) AggregateRef() (string, int64) { return e.ProjectID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e ProjectDeleted) AggregateRef() (string, int64) { return e.ProjectID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e MemberAdded) AggregateRef() (string, int64) {
	return MembershipID(e.ProjectID, e.UserID), e.AggregateVersion
}

// AggregateRef implements Aggregated.
func (e MemberRemoved) AggregateRef() (string, int64) {
	return MembershipID(e.ProjectID, e.UserID), e.AggregateVersion
}

// AggregateRef implements Aggregated.
func (e CardCreated) AggregateRef() (string, int64) { return e.CardID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e CardUpdated) AggregateRef() (string, int64) { return e.CardID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e CardStatusChanged) AggregateRef() (string, int64) { return e.CardID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e CardDeleted) AggregateRef() (string, int64) { return e.CardID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e CommentCreated) AggregateRef() (string, int64) { return e.CommentID, e.AggregateVersion }

// AggregateRef implements Aggregated.
func (e CommentDeleted) AggregateRef() (string, int64) { return e.CommentID, e.AggregateVersion }

// Deletes implements Aggregated.
func (UserRegistered) Deletes() bool { return false }

// Deletes implements Aggregated.
func (ProjectCreated) Deletes() bool { return false }

// Deletes implements Aggregated.
func (ProjectUpdated) Deletes() bool { return false }

// Deletes implements Aggregated.
func (ProjectDeleted) Deletes() bool { return true }

// Deletes implements Aggregated.
func (MemberAdded) Deletes() bool { return false }

// Deletes implements Aggregated.
func (MemberRemoved) Deletes() bool { return true }

// Deletes implements Aggregated.
func (CardCreated) Deletes() bool { return false }

// Deletes implements Aggregated.
func (CardUpdated) Deletes() bool { return false }

// Deletes implements Aggregated.
func (CardStatusChanged) Deletes() bool { return false }

// Deletes implements Aggregated.
func (CardDeleted) Deletes() bool { return true }

// Deletes implements Aggregated.
func (CommentCreated) Deletes() bool { return false }

// Deletes implements Aggregated.
func (CommentDeleted) Deletes() bool { return true }

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

// registerV1 decodes version 1 of T's event into T and lets fix fill what
// version 1 lacked.
func registerV1[T eventbus.Event](fix func(*T)) {
	var zero T
	registry[key{zero.EventName(), 1}] = func(payload []byte) (eventbus.Event, error) {
		var v T
		if err := json.Unmarshal(payload, &v); err != nil {
			return v, err
		}
		fix(&v)
		return v, nil
	}
}

func init() {
	register[UserRegistered]()
	register[ProjectCreated]()
	register[ProjectUpdated]()
	register[ProjectDeleted]()
	register[MemberAdded]()
	register[MemberRemoved]()
	register[CardCreated]()
	register[CardUpdated]()
	register[CardStatusChanged]()
	register[CardDeleted]()
	register[CommentCreated]()
	register[CommentDeleted]()
	register[NotificationRequested]()

	// Version 1 of newUser was published by auth before aggregate versions
	// existed; a user had no change but its creation, so it is version 1.
	registerV1(func(e *UserRegistered) { e.AggregateVersion = 1 })
	// The other v1 contracts were defined but never published by any
	// service; they decode with the fields they share with v2, creations as
	// version 1 and the rest as version 0 (older than anything held).
	registerV1(func(e *ProjectCreated) { e.AggregateVersion = 1 })
	registerV1(func(e *CardCreated) { e.AggregateVersion = 1 })
	registerV1(func(e *CommentCreated) { e.AggregateVersion = 1 })
	registerV1(func(*ProjectDeleted) {})
	registerV1(func(*CardUpdated) {})
	registerV1(func(*CardStatusChanged) {})
	registerV1(func(*CommentDeleted) {})
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
