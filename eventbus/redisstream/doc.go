// Package redisstream implements eventbus.Publisher and eventbus.Subscriber
// on Redis Streams with go-redis v9.
//
// Each event family has one stream, Prefix + "events:" + family. Streams
// are trimmed by the outbox relay through Publisher.Trim, by MINID below
// the oldest entry a consumer group has not acknowledged, never by length.
// Each service reads through its own consumer group; the instances of a
// service share the group under distinct consumer names, so Redis splits
// the entries between them, and neighbouring entries are handled in
// parallel by different instances: order is not preserved.
//
// Delivery is at least once. An entry is acknowledged as soon as its
// handler succeeded (the acks are pipelined with the next reads). A failed
// entry is retried by the same consumer with exponential backoff and
// jitter while it stays pending (its idle time refreshed so nobody claims
// it); an entry whose consumer died is claimed with XAUTOCLAIM once it has
// been idle for ClaimMinIdle. After MaxDeliveries failures that are not
// transient (see eventbus.IsTransient) it is copied to Prefix +
// "deadletter:" + group, a stream bounded by DeadLetterMaxLen, and
// acknowledged, so one poison message cannot block a service forever.
//
// Redis runs without persistence in this project, so streams can vanish. A
// subscriber that finds its group gone recreates it from the start of the
// stream, and the Publisher keeps the epoch markers through which the
// outbox relay notices the loss and republishes from its table (see
// "Loss detection" in package eventbus).
//
// The package takes a redis.UniversalClient and never opens one itself, so
// the caller decides between a single node, Sentinel or Cluster.
package redisstream
