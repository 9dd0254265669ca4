// Package inbox makes event consumption idempotent. Delivery is at least
// once (retries, claims after a crash, outbox republishing after Redis lost
// data), so a consumer records each event id it applied in the same
// transaction as the effect; a redelivered event finds its id and is
// skipped.
//
// Inbox retention must exceed the outbox retention plus the longest
// redelivery delay: an event can be republished as long as its outbox row
// exists, and if its inbox record were pruned first it would be applied
// twice. This holds by construction: the outbox republishes only events
// created within outbox.MaxRetention, a record is written after its event
// was created, and Prune never deletes records younger than MinRetention,
// which is longer by a week of redelivery delay
// (TestInboxOutlivesOutboxRetention in package outbox).
package inbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/eventbus/internal/sqlddl"
)

// MinRetention is the least time Prune keeps a record: the outbox's
// maximum retention (72h) plus seven days for entries that wait in a
// stream or a pending list before they are delivered. The outbox package
// cannot be imported here (it imports this one in tests), so its test
// asserts the relation.
const MinRetention = 72*time.Hour + 7*24*time.Hour

var ddl = sqlddl.Statements{
	dialect.PG: {
		`CREATE TABLE IF NOT EXISTS processed_events (
			consumer VARCHAR(100) NOT NULL,
			event_id VARCHAR(64) NOT NULL,
			processed_at TIMESTAMPTZ NOT NULL,
			PRIMARY KEY (consumer, event_id))`,
		`CREATE INDEX IF NOT EXISTS processed_events_at_idx ON processed_events (processed_at)`,
	},
	dialect.MySQL: {
		`CREATE TABLE IF NOT EXISTS processed_events (
			consumer VARCHAR(100) NOT NULL,
			event_id VARCHAR(64) NOT NULL,
			processed_at DATETIME(6) NOT NULL,
			PRIMARY KEY (consumer, event_id))`,
		`CREATE INDEX IF NOT EXISTS processed_events_at_idx ON processed_events (processed_at)`,
	},
	dialect.SQLite: {
		`CREATE TABLE IF NOT EXISTS processed_events (
			consumer TEXT NOT NULL,
			event_id TEXT NOT NULL,
			processed_at TIMESTAMP NOT NULL,
			PRIMARY KEY (consumer, event_id))`,
		`CREATE INDEX IF NOT EXISTS processed_events_at_idx ON processed_events (processed_at)`,
	},
}

// CreateTable creates the processed_events table if it does not exist.
// Services call it from their own migrations.
func CreateTable(ctx context.Context, db bun.IDB) error {
	if err := sqlddl.Exec(ctx, db, ddl); err != nil {
		return fmt.Errorf("inbox: create table: %w", err)
	}
	return nil
}

// Inbox records the events one consumer applied.
type Inbox struct {
	db       *bun.DB
	consumer string
	insert   string
}

// New returns the inbox of consumer (usually the consumer group name) in
// db. Consumers sharing a database need distinct names.
func New(db *bun.DB, consumer string) *Inbox {
	insert := "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
	if db.Dialect().Name() == dialect.MySQL {
		insert = "INSERT IGNORE INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)"
	}
	return &Inbox{db: db, consumer: consumer, insert: insert}
}

// Apply runs fn for eventID at most once. In one transaction it records
// the event, runs fn and commits. If the event was already recorded it
// returns false without running fn; if fn fails nothing is recorded and
// the error is returned, so the message is retried. Concurrent deliveries
// of the same event serialise on the record's primary key.
func (i *Inbox) Apply(ctx context.Context, eventID string, fn func(ctx context.Context, tx bun.Tx) error) (applied bool, err error) {
	if eventID == "" {
		return false, errors.New("inbox: empty event id")
	}
	err = i.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, i.insert, i.consumer, eventID, time.Now().UTC())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if err := fn(ctx, tx); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("inbox: apply %s: %w", eventID, err)
	}
	return applied, nil
}

// Prune deletes this consumer's records older than olderThan, or than
// MinRetention when olderThan is shorter, so that no caller can forget an
// event the outbox may still republish (see the package documentation).
func (i *Inbox) Prune(ctx context.Context, olderThan time.Duration) error {
	olderThan = max(olderThan, MinRetention)
	_, err := i.db.NewDelete().TableExpr("processed_events").
		Where("consumer = ?", i.consumer).
		Where("processed_at < ?", time.Now().UTC().Add(-olderThan)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("inbox: prune: %w", err)
	}
	return nil
}
