package redisstream

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/consume"
)

// SubscriberConfig configures a Subscriber. Zero fields get the defaults
// named in their comments.
type SubscriberConfig struct {
	// Prefix is prepended to every key; it must match the publisher's.
	Prefix string
	// Group is the consumer group, one per service (eventbus.GroupAuth...).
	Group string
	// Consumer names this instance within the group; it must be unique per
	// running instance. Defaults to DefaultConsumerName().
	Consumer string
	// Families lists the streams to read; defaults to all families.
	Families []string
	// BatchSize is the COUNT of each read, per stream; defaults to 64.
	BatchSize int64
	// Block is how long a read waits for new entries; defaults to 1s. It
	// also bounds how long Shutdown waits for a blocked read.
	Block time.Duration
	// ClaimMinIdle is how long an entry may stay pending before it is
	// considered stuck (its consumer died) and is claimed with XAUTOCLAIM;
	// defaults to 30s. It must be at least twice HandlerTimeout, the
	// longest a handler may run, or slow entries would be handled twice.
	ClaimMinIdle time.Duration
	// HandlerTimeout bounds each handler call (its context is cancelled
	// after it); defaults to ClaimMinIdle/3.
	HandlerTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff, with full
	// jitter, between attempts at a failed message, which this consumer
	// retries itself while keeping it pending; default 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// IsTransient tells infrastructure failures, which are retried without
	// counting toward MaxDeliveries, from failures of the message;
	// defaults to eventbus.IsTransient.
	IsTransient func(error) bool
	// DeadLetterMaxLen bounds the dead-letter stream (XADD MAXLEN ~);
	// defaults to 10000.
	DeadLetterMaxLen int64
	// ConsumerIdleDelete is how long a consumer of the group that owns no
	// pending entry may stay idle before any instance removes it; defaults
	// to 24h. Removing a live consumer is harmless: Redis recreates it on
	// its next read.
	ConsumerIdleDelete time.Duration
	// ClaimInterval is how often stuck entries are looked for; defaults
	// to 5s.
	ClaimInterval time.Duration
	// MaxDeliveries is how many counted (non-transient) handler failures
	// an entry gets before it is dead-lettered; defaults to 5. An entry
	// delivered consumer.CrashLoopFactor times as often (its consumers
	// kept dying) is dead-lettered too.
	MaxDeliveries int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// StartID is where a newly created group starts; defaults to "0" so
	// that a new service reads the history. Use "$" to read only new
	// entries.
	StartID string
}

func (c *SubscriberConfig) setDefaults() {
	c.Consumer = cmp.Or(c.Consumer, DefaultConsumerName())
	if len(c.Families) == 0 {
		c.Families = contracts.Families()
	}
	c.BatchSize = cmp.Or(c.BatchSize, 64)
	c.Block = cmp.Or(c.Block, time.Second)
	c.ClaimMinIdle = cmp.Or(c.ClaimMinIdle, 30*time.Second)
	c.ClaimInterval = cmp.Or(c.ClaimInterval, 5*time.Second)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, c.ClaimMinIdle/3)
	c.RetryMin = cmp.Or(c.RetryMin, 100*time.Millisecond)
	c.RetryMax = cmp.Or(c.RetryMax, 10*time.Second)
	c.DeadLetterMaxLen = cmp.Or(c.DeadLetterMaxLen, 10000)
	c.ConsumerIdleDelete = cmp.Or(c.ConsumerIdleDelete, 24*time.Hour)
	c.MaxDeliveries = cmp.Or(c.MaxDeliveries, 5)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.StartID = cmp.Or(c.StartID, "0")
}

// Validate reports a configuration that cannot work.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("group is empty"))
	}
	if c.Consumer == "" {
		errs = append(errs, errors.New("consumer name is empty"))
	}
	for _, f := range c.Families {
		if !slices.Contains(contracts.Families(), f) {
			errs = append(errs, fmt.Errorf("unknown family %q", f))
		}
	}
	if c.BatchSize < 1 || c.MaxDeliveries < 1 {
		errs = append(errs, errors.New("batch size and max deliveries must be positive"))
	}
	if c.Block < time.Millisecond || c.ClaimMinIdle <= 0 || c.ClaimInterval <= 0 {
		errs = append(errs, errors.New("block, claim min idle and claim interval must be positive"))
	}
	if c.HandlerTimeout <= 0 || c.ClaimMinIdle < 2*c.HandlerTimeout {
		errs = append(errs, fmt.Errorf("claim min idle %s must be at least twice the handler timeout %s", c.ClaimMinIdle, c.HandlerTimeout))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.DeadLetterMaxLen < 1 || c.ConsumerIdleDelete <= 0 {
		errs = append(errs, errors.New("retry bounds, dead-letter max length and consumer idle delete must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redisstream: invalid subscriber config: %w", err)
	}
	return nil
}

// DefaultConsumerName returns hostname-pid-random, unique per process
// start, so that a restarted instance does not inherit the pending entries
// of its previous life by name (they are claimed after ClaimMinIdle
// instead).
func DefaultConsumerName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Subscriber reads a consumer group's entries from Redis and hands them to
// a handler; see eventbus.Subscriber for its stop semantics.
type Subscriber struct {
	engine *consume.Engine
}

var _ eventbus.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber reading through client, which it does
// not own. Groups are created when Run starts.
func NewSubscriber(client redis.UniversalClient, cfg SubscriberConfig) (*Subscriber, error) {
	if client == nil {
		return nil, errors.New("redisstream: nil client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &transport{client: client, cfg: cfg, log: cfg.Logger}
	for _, f := range cfg.Families {
		t.keys = append(t.keys, eventbus.StreamKey(cfg.Prefix, f))
	}
	t.redrive = eventbus.RedriveKey(cfg.Prefix, cfg.Group)
	t.keys = append(t.keys, t.redrive)
	return &Subscriber{engine: consume.New(t, consume.Config{
		Group:          cfg.Group,
		Consumer:       cfg.Consumer,
		BatchSize:      cfg.BatchSize,
		Block:          cfg.Block,
		ClaimInterval:  cfg.ClaimInterval,
		ClaimMinIdle:   cfg.ClaimMinIdle,
		MaxDeliveries:  cfg.MaxDeliveries,
		HandlerTimeout: cfg.HandlerTimeout,
		RetryMin:       cfg.RetryMin,
		RetryMax:       cfg.RetryMax,
		IsTransient:    cfg.IsTransient,
		Logger:         cfg.Logger,
	})}, nil
}

// Run implements eventbus.Subscriber.
func (s *Subscriber) Run(ctx context.Context, h eventbus.Handler) error { return s.engine.Run(ctx, h) }

// Shutdown implements eventbus.Subscriber.
func (s *Subscriber) Shutdown(ctx context.Context) error { return s.engine.Shutdown(ctx) }

// DeadLetters returns up to count entries of group's dead-letter stream,
// oldest first, for operators and tests.
func DeadLetters(ctx context.Context, client redis.UniversalClient, prefix, group string, count int64) ([]eventbus.DeadLetter, error) {
	msgs, err := client.XRangeN(ctx, eventbus.DeadLetterKey(prefix, group), "-", "+", count).Result()
	if err != nil {
		return nil, err
	}
	out := make([]eventbus.DeadLetter, len(msgs))
	for i, m := range msgs {
		out[i] = consume.ParseDeadLetter(m.ID, stringFields(m.Values))
	}
	return out, nil
}

// transport is the Redis half of the subscriber loop.
type transport struct {
	client redis.UniversalClient
	cfg    SubscriberConfig
	keys   []string
	log    *slog.Logger
	// redrive is the group's redrive stream, whose entries are deleted
	// once acknowledged.
	redrive string
}

func (t *transport) Setup(ctx context.Context) error { return t.createGroups(ctx, t.cfg.StartID) }

func (t *transport) createGroups(ctx context.Context, start string) error {
	for _, key := range t.keys {
		err := t.client.XGroupCreateMkStream(ctx, key, t.cfg.Group, start).Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("create group %s on %s: %w", t.cfg.Group, key, err)
		}
	}
	return nil
}

// recreateGroups handles NOGROUP: the stream was deleted (Redis restarted
// or someone ran DEL), so the group is recreated from the beginning to read
// what the outbox relay republishes.
func (t *transport) recreateGroups(ctx context.Context) error {
	t.log.Warn("eventbus: consumer group missing, recreating it from the start of the stream", "group", t.cfg.Group)
	return t.createGroups(ctx, "0")
}

// isNoGroup reports a missing group: NOGROUP, or, on Redis 7, UNBLOCKED
// when the stream was deleted while the read was blocked on it.
func isNoGroup(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "NOGROUP") || strings.HasPrefix(err.Error(), "UNBLOCKED"))
}

func (t *transport) Read(ctx context.Context, count int64, wait time.Duration, _ <-chan struct{}) ([]consume.Delivery, error) {
	streams := make([]string, 0, 2*len(t.keys))
	streams = append(streams, t.keys...)
	for range t.keys {
		streams = append(streams, ">")
	}
	res, err := t.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    t.cfg.Group,
		Consumer: t.cfg.Consumer,
		Streams:  streams,
		Count:    count,
		Block:    wait,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case isNoGroup(err):
		return nil, t.recreateGroups(ctx)
	case err != nil:
		return nil, err
	}
	var out []consume.Delivery
	for _, s := range res {
		for _, m := range s.Messages {
			out = append(out, consume.NewDelivery(s.Stream, m.ID, stringFields(m.Values), 1))
		}
	}
	return out, nil
}

func (t *transport) Claim(ctx context.Context, count int64) ([]consume.Delivery, error) {
	var out []consume.Delivery
	for _, key := range t.keys {
		for cursor := "0-0"; int64(len(out)) < count; {
			msgs, next, deleted, err := t.client.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
				Stream:   key,
				Group:    t.cfg.Group,
				Consumer: t.cfg.Consumer,
				MinIdle:  t.cfg.ClaimMinIdle,
				Start:    cursor,
				Count:    count - int64(len(out)),
			}).Result()
			if isNoGroup(err) {
				return out, t.recreateGroups(ctx)
			}
			if err != nil {
				return out, err
			}
			for _, id := range deleted {
				// Trimming never drops pending entries, so this is an XDEL
				// by hand: dead-letter it rather than ack it silently.
				out = append(out, consume.Delivery{
					Message: eventbus.Message{Stream: key, ID: id}, Fields: map[string]string{}, Err: consume.ErrEntryDeleted,
				})
			}
			ds, err := t.withDeliveries(ctx, key, msgs)
			if err != nil {
				return out, err
			}
			out = append(out, ds...)
			if next == "0-0" || next == "" {
				break
			}
			cursor = next
		}
	}
	return out, nil
}

// withDeliveries looks up the delivery counts of freshly claimed messages
// with one pipelined XPENDING per message. A message no longer pending for
// this consumer was taken by another one meanwhile and is left to it.
func (t *transport) withDeliveries(ctx context.Context, key string, msgs []redis.XMessage) ([]consume.Delivery, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	pipe := t.client.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: key, Group: t.cfg.Group, Start: m.ID, End: m.ID, Count: 1, Consumer: t.cfg.Consumer,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("pending entries of %s: %w", key, err)
	}
	out := make([]consume.Delivery, 0, len(msgs))
	for i, m := range msgs {
		if p := cmds[i].Val(); len(p) == 1 {
			out = append(out, consume.NewDelivery(key, m.ID, stringFields(m.Values), p[0].RetryCount))
		}
	}
	return out, nil
}

func (t *transport) Ack(ctx context.Context, ds []consume.Delivery) error {
	byStream := map[string][]string{}
	for _, d := range ds {
		byStream[d.Stream] = append(byStream[d.Stream], d.ID)
	}
	pipe := t.client.Pipeline()
	for key, ids := range byStream {
		pipe.XAck(ctx, key, t.cfg.Group, ids...)
		if key == t.redrive {
			pipe.XDel(ctx, key, ids...)
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

// DeadLetter appends and acknowledges in one pipeline rather than a
// MULTI, because the two keys may live on different cluster slots; a crash
// in between at worst dead-letters the entry twice. The dead-letter stream
// is bounded by DeadLetterMaxLen (TestDeadLetterStreamIsBounded).
func (t *transport) DeadLetter(ctx context.Context, d consume.Delivery, reason string) error {
	key := eventbus.DeadLetterKey(t.cfg.Prefix, t.cfg.Group)
	pipe := t.client.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{
		Stream: key,
		MaxLen: t.cfg.DeadLetterMaxLen,
		Approx: true,
		Values: consume.Values(consume.DeadLetterFields(d, reason)),
	})
	pipe.XAck(ctx, d.Stream, t.cfg.Group, d.ID)
	n := pipe.XLen(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	consume.MetricDeadLetterLength.WithLabelValues(t.cfg.Group).Set(float64(n.Val()))
	return nil
}

// Touch resets the idle time of entries in retry with XCLAIM JUSTID, which
// does not count a delivery. The minimum idle time keeps it from taking
// back an entry another consumer claimed moments ago.
func (t *transport) Touch(ctx context.Context, ds []consume.Delivery) ([]consume.Delivery, error) {
	byStream := map[string][]string{}
	for _, d := range ds {
		byStream[d.Stream] = append(byStream[d.Stream], d.ID)
	}
	pipe := t.client.Pipeline()
	cmds := map[string]*redis.StringSliceCmd{}
	for key, ids := range byStream {
		cmds[key] = pipe.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: key, Group: t.cfg.Group, Consumer: t.cfg.Consumer, MinIdle: t.cfg.ClaimMinIdle / 6, Messages: ids,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	owned := map[string]bool{}
	for key, c := range cmds {
		for _, id := range c.Val() {
			owned[key+" "+id] = true
		}
	}
	var out []consume.Delivery
	for _, d := range ds {
		if owned[d.Stream+" "+d.ID] {
			out = append(out, d)
		}
	}
	return out, nil
}

// Leave deletes this consumer from the group on every stream where it owns
// no pending entry (XGROUP DELCONSUMER would drop them otherwise), and with
// others also the consumers that own none and were idle longer than
// ConsumerIdleDelete.
func (t *transport) Leave(ctx context.Context, others bool) error {
	var errs []error
	for _, key := range t.keys {
		consumers, err := t.client.XInfoConsumers(ctx, key, t.cfg.Group).Result()
		if err != nil {
			if !isNoGroup(err) && !isNoSuchKey(err) {
				errs = append(errs, err)
			}
			continue
		}
		for _, c := range consumers {
			mine := c.Name == t.cfg.Consumer
			if c.Pending > 0 || (!mine && (!others || c.Idle < t.cfg.ConsumerIdleDelete)) || (mine && others) {
				continue
			}
			if err := t.client.XGroupDelConsumer(ctx, key, t.cfg.Group, c.Name).Err(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func stringFields(values map[string]any) map[string]string {
	out := make(map[string]string, len(values))
	for k, v := range values {
		if s, ok := v.(string); ok {
			out[k] = s
		} else {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
