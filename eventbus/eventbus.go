package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Consumer group names. Renaming a group makes Redis treat it as a new
// reader that starts from the beginning of every stream, so services must
// use these constants rather than spell names inline.
const (
	GroupAuth    = "auth"
	GroupProject = "project"
	GroupComment = "comment"
	GroupNotif   = "notif"
)

// Event is implemented by every event contract. The name and version are
// explicit constants chosen by the contract, never derived from Go type
// names, so that renaming a Go type cannot silently change what goes on the
// wire.
type Event interface {
	// EventName returns the wire name of the event, such as "newCard".
	EventName() string
	// EventVersion returns the schema version of the payload, starting at 1.
	EventVersion() int
}

// Envelope is the wire form of an event. The metadata lets consumers
// deduplicate (ID), route and decode (Type, Version) and order or audit
// (OccurredAt, AggregateID) without decoding the payload.
type Envelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Version     int             `json:"version"`
	OccurredAt  time.Time       `json:"occurredAt"`
	AggregateID string          `json:"aggregateId"`
	Payload     json.RawMessage `json:"payload"`
}

// NewEnvelope wraps e in an envelope with a fresh UUIDv7 id, so that ids
// sort by creation time, and with at converted to UTC, so that every service
// writes the same representation.
func NewEnvelope(e Event, aggregateID string, at time.Time) (Envelope, error) {
	if e == nil {
		return Envelope{}, errors.New("eventbus: nil event")
	}
	if e.EventName() == "" || e.EventVersion() < 1 {
		return Envelope{}, fmt.Errorf("eventbus: event %T has no name or version", e)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("eventbus: new event id: %w", err)
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return Envelope{}, fmt.Errorf("eventbus: encode %s: %w", e.EventName(), err)
	}
	return Envelope{
		ID:          id.String(),
		Type:        e.EventName(),
		Version:     e.EventVersion(),
		OccurredAt:  at.UTC(),
		AggregateID: aggregateID,
		Payload:     payload,
	}, nil
}

// Message is one delivery of an envelope to a subscriber. Deliveries counts
// how many times the entry was handed out, so a handler can tell a retry
// from a first attempt.
type Message struct {
	// Stream is the backend key of the stream the entry was read from.
	Stream string
	// ID is the entry id within the stream, not the event id.
	ID string
	// Envelope is the decoded event.
	Envelope Envelope
	// Deliveries is 1 on the first delivery and grows with each retry.
	Deliveries int64
}

// Handler processes one message. Returning nil acknowledges the message;
// returning an error retries it with exponential backoff and jitter. Errors
// for which IsTransient is false count toward the subscriber's
// MaxDeliveries, after which the message is dead-lettered; transient ones
// are retried until they stop. A panic is recovered and counts as a
// failure. The handler's context ends after the subscriber's
// HandlerTimeout.
type Handler func(ctx context.Context, m *Message) error

// Publisher appends envelopes to their family streams. It exists as an
// interface so that services and the outbox relay can run against Redis in
// production and an in-memory bus in tests.
type Publisher interface {
	// Publish appends envs in order, each to the stream of its type's
	// family, and returns the stream entry id of each envelope in the same
	// order. After an error some envelopes may have been appended anyway;
	// callers retry the whole batch, which consumers tolerate because they
	// deduplicate by event id.
	Publish(ctx context.Context, envs ...Envelope) (streamIDs []string, err error)
}

// Subscriber delivers the messages of a consumer group to a handler. The two
// ways of stopping differ on purpose: an abort behaves like a crash, which
// tests use to prove that unacknowledged work is redelivered, while Shutdown
// is what a service calls on SIGTERM.
type Subscriber interface {
	// Run blocks, reading and handling messages until Shutdown completes
	// (then it returns nil) or ctx is cancelled. Cancelling ctx aborts: Run
	// stops at once, returning ctx.Err(); the rest of the batch in hand
	// stays pending, and messages already handled may not have been
	// acknowledged yet (acks go out as soon as each handler returns).
	Run(ctx context.Context, h Handler) error
	// Shutdown stops gracefully: the subscriber fetches nothing more,
	// finishes the batch in hand, acknowledges it, leaves messages waiting
	// for a retry pending for other consumers, removes its consumer name if
	// it owns no pending entry, and then Run returns nil.
	// Shutdown waits for that or for ctx to be done. A subscriber that
	// was shut down does not run again: a later Run returns nil at once.
	Shutdown(ctx context.Context) error
}

// DeadLetter is an entry a subscriber gave up on, either because it could
// not be decoded or because its handler failed more than the allowed number
// of times. It is kept, in a stream bounded by the subscriber's
// DeadLetterMaxLen, for an operator to inspect and re-drive (eventctl dlq).
// A dead-letter stream is lost with the rest of Redis; the events it held
// are republished from the outboxes within their retention and, if they
// still fail, dead-lettered again.
type DeadLetter struct {
	// ID is the entry id in the dead-letter stream.
	ID string
	// Stream and EntryID locate the original entry.
	Stream  string
	EntryID string
	// Deliveries is the delivery count when the entry was given up.
	Deliveries int64
	// Error says why the entry was dead-lettered.
	Error string
	// Envelope is the original event, zero when it could not be decoded.
	Envelope Envelope
	// Raw is the original envelope field as stored, kept so that an
	// undecodable entry can still be inspected.
	Raw string
}

// StreamKey returns the key of the stream carrying family, so that every
// backend and tool names streams the same way.
func StreamKey(prefix, family string) string { return prefix + "events:" + family }

// DeadLetterKey returns the key of the dead-letter stream of group. Each
// group has its own, because a poison message for one service may be fine
// for another.
func DeadLetterKey(prefix, group string) string { return prefix + "deadletter:" + group }

// RedriveKey returns the key of the stream through which an operator
// re-drives dead letters into group (eventctl dlq redrive). Every
// subscriber of the group reads it besides its family streams, so a
// re-driven entry reaches that group only, and deletes each entry once it
// is handled.
func RedriveKey(prefix, group string) string { return prefix + "redrive:" + group }
