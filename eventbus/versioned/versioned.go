// Package versioned makes "apply an event only if it is newer than the
// local copy, and keep tombstones" easy for SQL (bun) and MongoDB
// consumers, because events arrive in any order (see package eventbus).
//
// Every event about an aggregate carries its aggregateVersion
// (contracts.Aggregated). A consumer's copy remembers the version it holds
// and whether the aggregate was deleted; an event is applied when the copy
// does not exist yet, or exists, is not a tombstone and holds an older
// version. A deletion leaves a tombstone with its version, so a late
// update cannot bring the aggregate back.
//
// SQL consumers call Store.Advance in the transaction of their effect: one
// atomic upsert decides and records the new version, so concurrent
// deliveries of different versions cannot both win
// (TestAdvanceConcurrentVersions on PostgreSQL, MariaDB and SQLite).
// MongoDB consumers put MongoFilter in an upsert of their copy; see its
// documentation.
package versioned

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/sqlddl"
)

// Held is what a local copy holds about an aggregate.
type Held struct {
	// Exists is false when the copy has never seen the aggregate.
	Exists bool
	// Version is the aggregateVersion of the copy.
	Version int64
	// Deleted marks a tombstone.
	Deleted bool
}

// Newer reports whether an event with version should be applied over
// held: the rule every consumer follows.
func Newer(held Held, version int64) bool {
	return !held.Exists || (!held.Deleted && version > held.Version)
}

// Of returns what the rule needs from a decoded event.
func Of(ev contracts.Aggregated) (id string, version int64, deletes bool) {
	id, version = ev.AggregateRef()
	return id, version, ev.Deletes()
}

var ddl = sqlddl.Statements{
	dialect.PG: {`CREATE TABLE IF NOT EXISTS aggregate_versions (
		consumer VARCHAR(100) NOT NULL,
		aggregate_id VARCHAR(200) NOT NULL,
		version BIGINT NOT NULL,
		deleted BOOLEAN NOT NULL,
		PRIMARY KEY (consumer, aggregate_id))`},
	dialect.MySQL: {`CREATE TABLE IF NOT EXISTS aggregate_versions (
		consumer VARCHAR(100) NOT NULL,
		aggregate_id VARCHAR(200) NOT NULL,
		version BIGINT NOT NULL,
		deleted BOOLEAN NOT NULL,
		PRIMARY KEY (consumer, aggregate_id))`},
	dialect.SQLite: {`CREATE TABLE IF NOT EXISTS aggregate_versions (
		consumer TEXT NOT NULL,
		aggregate_id TEXT NOT NULL,
		version INTEGER NOT NULL,
		deleted BOOLEAN NOT NULL,
		PRIMARY KEY (consumer, aggregate_id))`},
}

// CreateTable creates the aggregate_versions table if it does not exist.
// Services call it from their own migrations.
func CreateTable(ctx context.Context, db bun.IDB) error {
	if err := sqlddl.Exec(ctx, db, ddl); err != nil {
		return fmt.Errorf("versioned: create table: %w", err)
	}
	return nil
}

// Store records, per consumer, the version and tombstone of every
// aggregate its copies hold.
type Store struct {
	consumer string
	upsert   string
}

// New returns the store of consumer (usually the consumer group name) for
// db's dialect. Consumers sharing a database need distinct names.
func New(db *bun.DB, consumer string) *Store {
	// PostgreSQL and SQLite: the conflict update runs only when the
	// stored row is no tombstone and older; rows affected says whether
	// the event won.
	upsert := `INSERT INTO aggregate_versions AS v (consumer, aggregate_id, version, deleted) VALUES (?, ?, ?, ?)
		ON CONFLICT (consumer, aggregate_id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted
		WHERE NOT v.deleted AND excluded.version > v.version`
	if db.Dialect().Name() == dialect.MySQL {
		// MariaDB has no conditional conflict update: the assignments keep
		// the old values unless the event wins (version is assigned first,
		// so deleted changes only when version just became the event's),
		// and an unchanged row counts as 0 rows affected. One statement
		// takes the row's exclusive lock at once, so concurrent deliveries
		// cannot deadlock the way INSERT IGNORE then UPDATE would.
		upsert = `INSERT INTO aggregate_versions (consumer, aggregate_id, version, deleted) VALUES (?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE
			version = IF(NOT deleted AND VALUES(version) > version, VALUES(version), version),
			deleted = IF(NOT deleted AND version = VALUES(version), VALUES(deleted), deleted)`
	}
	return &Store{consumer: consumer, upsert: upsert}
}

// Advance records that the copy of aggregateID moves to version (a
// tombstone if deletes) and reports whether the event is newer than what
// the copy held, that is whether the caller must apply it. Call it in the
// transaction that applies the effect, so that both commit or neither.
func (s *Store) Advance(ctx context.Context, tx bun.IDB, aggregateID string, version int64, deletes bool) (bool, error) {
	if aggregateID == "" || version < 1 {
		return false, errors.New("versioned: empty aggregate id or version below 1")
	}
	res, err := tx.ExecContext(ctx, s.upsert, s.consumer, aggregateID, version, deletes)
	if err != nil {
		return false, fmt.Errorf("versioned: advance %s to %d: %w", aggregateID, version, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("versioned: advance %s to %d: %w", aggregateID, version, err)
	}
	return n > 0, nil
}

// AdvanceEvent is Advance for a decoded event.
func (s *Store) AdvanceEvent(ctx context.Context, tx bun.IDB, ev contracts.Aggregated) (bool, error) {
	id, version, deletes := Of(ev)
	return s.Advance(ctx, tx, id, version, deletes)
}

// Field names MongoFilter expects in a copy's document.
const (
	MongoVersionField = "aggregateVersion"
	MongoDeletedField = "deleted"
)

// MongoFilter returns the filter of an upsert (ReplaceOne or UpdateOne
// with upsert) that writes the copy with _id id at version only if it is
// newer: it matches the document only when it is no tombstone and holds
// an older version. When the stored copy is newer or a tombstone, nothing
// matches, the upsert tries to insert a second document with the same _id
// and fails with a duplicate key error, which the caller treats as "stale,
// skip" (mongo.IsDuplicateKeyError). The document written must set
// MongoVersionField to version (and MongoDeletedField to true for a
// deletion). It is a plain map so that this module needs no MongoDB
// driver.
func MongoFilter(id string, version int64) map[string]any {
	return map[string]any{
		"_id":             id,
		MongoVersionField: map[string]any{"$lt": version},
		MongoDeletedField: map[string]any{"$ne": true},
	}
}
