// Package sqlstore is the SQL (bun) half of package versioned: it records,
// per consumer, the aggregateVersion and tombstone of every aggregate a
// consumer's local copies hold, in the table aggregate_versions, and
// decides in one atomic statement whether an event is newer
// (TestAdvanceConcurrentVersions, TestAdvanceOutOfOrderAndTombstones).
package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/sqlddl"
	"github.com/bugtracker/bugtracker/eventbus/versioned"
)

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
		return fmt.Errorf("sqlstore: create table: %w", err)
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
		return false, errors.New("sqlstore: empty aggregate id or version below 1")
	}
	res, err := tx.ExecContext(ctx, s.upsert, s.consumer, aggregateID, version, deletes)
	if err != nil {
		return false, fmt.Errorf("sqlstore: advance %s to %d: %w", aggregateID, version, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: advance %s to %d: %w", aggregateID, version, err)
	}
	return n > 0, nil
}

// AdvanceEvent is Advance for a decoded event.
func (s *Store) AdvanceEvent(ctx context.Context, tx bun.IDB, ev contracts.Aggregated) (bool, error) {
	id, version, deletes := versioned.Of(ev)
	return s.Advance(ctx, tx, id, version, deletes)
}
