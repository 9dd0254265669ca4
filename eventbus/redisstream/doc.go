// Package redisstream implements eventbus.Publisher and eventbus.Subscriber
// on Redis Streams with go-redis v9.
//
// Each event family has one stream, Prefix + "events:" + family, trimmed
// approximately to MaxLen entries on every XADD. Each service reads through
// its own consumer group; the instances of a service share the group under
// distinct consumer names, so Redis splits the entries between them.
//
// Delivery is at least once. An entry is acknowledged only after its
// handler succeeded; an entry whose handler failed, or whose consumer died,
// stays pending and is claimed with XAUTOCLAIM once it has been idle for
// ClaimMinIdle. After MaxDeliveries failed deliveries it is copied to
// Prefix + "deadletter:" + group and acknowledged, so one poison message
// cannot block a service forever.
//
// Redis runs without persistence in this project, so streams can vanish. A
// subscriber that finds its group gone recreates it from the start of the
// stream, and the Publisher reports lost streams to the outbox relay (see
// Publisher.Lost), which republishes from its table.
//
// The package takes a redis.UniversalClient and never opens one itself, so
// the caller decides between a single node, Sentinel or Cluster.
package redisstream
