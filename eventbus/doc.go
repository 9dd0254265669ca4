// Package eventbus defines the event envelope and the small Publisher and
// Subscriber interfaces the services of the bug tracker talk through.
//
// The design follows four rules so that a write that succeeded is never
// followed by a lost event and no event takes effect twice:
//
//   - Producers never publish directly from a request. They store the
//     envelope in an outbox table inside the transaction that changes their
//     state (package outbox), and a relay publishes the committed rows. A
//     crash between commit and publish therefore only delays events.
//   - Delivery is at least once. Subscribers acknowledge an entry as soon
//     as its handler succeeded, retry a failed one with exponential backoff
//     and jitter, claim entries whose consumer died after an idle time, and
//     move an entry whose handler failed MaxDeliveries times (for reasons
//     other than the infrastructure's, see IsTransient) to a bounded
//     dead-letter stream that the eventctl command lists and re-drives.
//   - Consumers are idempotent by event id (package inbox for SQL, unique
//     indexes for MongoDB), so the duplicates that at-least-once delivery,
//     outbox republishing and an envelope added to the outbox twice produce
//     are harmless.
//   - Order is never relied on, not even within a family: relay replicas
//     publish concurrently, a republished event comes after newer ones and
//     a retried message after its neighbours. Every event about an
//     aggregate carries its aggregateVersion, and local copies apply an
//     event only if it is newer, keeping tombstones (package versioned).
//
// Events travel through Redis Streams (package redisstream). There is one
// stream per event family, named Prefix + "events:" + family, so that a
// consumer reads only the families it needs. Each service reads through
// its own consumer group, whose name is a constant because renaming a
// group makes it read the whole history again.
//
// # Loss detection
//
// Redis runs without persistence, so it may lose a stream (DEL), the whole
// dataset (FLUSHALL) or everything at once (killed and restarted empty),
// possibly while new events are being published and while several relay
// replicas run, some of them restarting. The outbox relay notices every
// such loss by comparing, per family, what its table says was published
// within retention with what the stream still holds:
//
//   - Each stream carries epoch markers: consumer groups named
//     redisstream.EpochGroupPrefix + a random token, which nobody reads. A
//     group lives inside its stream, so it vanishes with the stream in all
//     three kinds of loss, and no new XADD can bring it back.
//   - Before publishing to a family, a relay takes an epoch it has seen on
//     the stream (creating one if there is none), and records it in the
//     outbox row together with the entry id. Because the epoch existed
//     before the entry was appended, an epoch still present on the stream
//     proves the entry was appended to the current incarnation of the
//     stream and is still there (unless every group acknowledged it and it
//     was trimmed, which is harmless).
//   - Every CheckInterval each relay lists the epochs of every family's
//     stream and queues again every published row of that family, created
//     within retention, whose epoch is not among them. Rows are compared
//     one by one, so entries published after the loss (which carry a new
//     epoch, or an old one that is also gone) cannot mask the older ones;
//     a failure on one family does not skip the others; and replicas need
//     no shared marker: whichever relay looks first queues the rows,
//     whichever created the epoch. Concurrent relays may create two epochs
//     for one stream; both count, and the worst a race does is republish
//     rows that were not lost, which consumers skip. The check costs index
//     probes, not a read of every row within retention: it lists the
//     epochs the family's rows were recorded under with a loose scan of
//     the (stream, epoch, published_at) index and re-queues the rows of the lost
//     ones only (TestMaintenanceCostDoesNotGrowWithTheTable).
//   - A stream whose last generated id is below the id recorded by the row
//     of a live epoch marked published last before the check started (a
//     store restored from an older snapshot, where epochs survive but
//     recent entries do not) has its rows queued again as well. A row
//     records the last id its batch appended to the stream, so losing only
//     the end of a batch is caught too
//     (TestRollbackToOlderSnapshotRepublishes,
//     TestRollbackLosingTheEndOfABatchRepublishes).
//
// Retention counts from an event's creation, never from a republication,
// and the inbox keeps its records longer than any event can be
// republished (inbox.MinRetention > outbox.MaxRetention).
//
// The tests that prove it: TestRedisLossUnderLoadAppliedExactlyOnce (1,000
// events, two relays of which one restarts, a stream deleted, the dataset
// flushed, or redis-server killed with SIGKILL and restarted empty at a
// random point while publishing goes on, each kind on one of SQLite,
// MariaDB and PostgreSQL: every event applied exactly once), TestRelayRepublishesLostStreams
// (a new publish after the loss does not mask it),
// TestReplicaStartingAfterFlushRepublishes, TestRetentionCountsFromCreation,
// TestInboxOutlivesOutboxRetention, and TestMutationNoDetectionLosesEvents,
// which proves that the scenario does lose events when detection is off.
// Not covered: a failover to a Redis replica that lags behind keeps the
// epochs but not the newest entries; only the snapshot check above
// catches part of that.
//
// Package contracts holds the event types, package memory an in-memory
// backend with the same semantics for unit tests, and package eventbustest
// the contract test suite every backend must pass.
package eventbus
