// Package eventbus defines the event envelope and the small Publisher and
// Subscriber interfaces the services of the bug tracker talk through.
//
// The design follows three rules so that a write that succeeded is never
// followed by a lost event and no event is applied twice:
//
//   - Producers never publish directly from a request. They store the
//     envelope in an outbox table inside the transaction that changes their
//     state (package outbox), and a relay publishes the committed rows in
//     order. A crash between commit and publish therefore only delays events.
//   - Delivery is at least once. Subscribers acknowledge an entry only after
//     the handler succeeded, stuck entries are claimed by another consumer
//     after an idle time, and poison entries end in a dead-letter stream.
//   - Consumers are idempotent by event id (package inbox), so the
//     duplicates that at-least-once delivery and outbox republishing produce
//     are harmless.
//
// Events travel through Redis Streams (package redisstream). There is one
// stream per event family, named Prefix + "events:" + family, because Redis
// orders entries within a stream only: one stream per family keeps, for
// example, a card's creation before its status changes, while unrelated
// families do not wait on each other. Each service reads through its own
// consumer group, whose name is a constant because renaming a group makes it
// read the whole history again.
//
// Package contracts holds the event types, package memory an in-memory
// backend with the same semantics for unit tests, and package eventbustest
// the contract test suite every backend must pass.
package eventbus
