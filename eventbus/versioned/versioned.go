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
// SQL consumers call sqlstore.Store.Advance (package versioned/sqlstore,
// on bun) in the transaction of their effect: one atomic upsert decides and
// records the new version, so concurrent deliveries of different versions
// cannot both win (TestAdvanceConcurrentVersions on PostgreSQL, MariaDB and
// SQLite). MongoDB consumers put MongoFilter in an upsert of their copy;
// see its documentation. This package has no database dependency, so a
// MongoDB service does not pull in bun.
package versioned

import "github.com/bugtracker/bugtracker/eventbus/contracts"

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

// Field names MongoFilter expects in a copy's document.
const (
	MongoVersionField = "aggregateVersion"
	MongoDeletedField = "deleted"
)

// MongoFilter returns the filter of an upsert (ReplaceOne or UpdateOne
// with upsert) that writes the copy with _id id at version only if it is
// newer: it matches the document only when it is no tombstone and holds
// an older version (or none, as copies written before versions existed). When the stored copy is newer or a tombstone, nothing
// matches, the upsert tries to insert a second document with the same _id
// and fails with a duplicate key error, which the caller treats as "stale,
// skip" (mongo.IsDuplicateKeyError). The document written must set
// MongoVersionField to version (and MongoDeletedField to true for a
// deletion). It is a plain map so that this module needs no MongoDB
// driver.
func MongoFilter(id string, version int64) map[string]any {
	return map[string]any{
		"_id":             id,
		MongoDeletedField: map[string]any{"$ne": true},
		"$or": []any{
			map[string]any{MongoVersionField: map[string]any{"$lt": version}},
			map[string]any{MongoVersionField: map[string]any{"$exists": false}},
		},
	}
}
