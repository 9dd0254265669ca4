package redisstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/consume"
	"github.com/bugtracker/bugtracker/eventbus/internal/streamid"
)

// DefaultMaxLen bounds each stream. Consumers that fall further behind than
// this lose entries, so it is sized for days of traffic, not minutes.
const DefaultMaxLen = 100000

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Prefix is prepended to every key, so several environments can share
	// one Redis.
	Prefix string
	// MaxLen is the approximate length streams are trimmed to (XADD MAXLEN
	// ~), DefaultMaxLen when zero.
	MaxLen int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *PublisherConfig) setDefaults() {
	c.MaxLen = cmp.Or(c.MaxLen, DefaultMaxLen)
	c.Logger = cmp.Or(c.Logger, slog.Default())
}

// Validate reports a configuration that cannot work.
func (c PublisherConfig) Validate() error {
	if c.MaxLen < 0 {
		return fmt.Errorf("redisstream: MaxLen %d is negative", c.MaxLen)
	}
	return nil
}

// Publisher appends envelopes to their family streams.
type Publisher struct {
	client redis.UniversalClient
	cfg    PublisherConfig
}

var _ eventbus.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher writing through client, which it does
// not own.
func NewPublisher(client redis.UniversalClient, cfg PublisherConfig) (*Publisher, error) {
	if client == nil {
		return nil, errors.New("redisstream: nil client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{client: client, cfg: cfg}, nil
}

// Publish implements eventbus.Publisher with all XADDs pipelined in one
// round trip. The pipeline is not a transaction (streams may live on
// different cluster slots), so after an error some envelopes may have been
// appended; callers retry the whole batch and consumers deduplicate.
func (p *Publisher) Publish(ctx context.Context, envs ...eventbus.Envelope) ([]string, error) {
	if len(envs) == 0 {
		return nil, nil
	}
	pipe := p.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(envs))
	for i, env := range envs {
		family := contracts.Family(env.Type)
		if family == "" {
			return nil, fmt.Errorf("redisstream: event %s has unknown type %q", env.ID, env.Type)
		}
		fields, err := consume.EntryFields(env)
		if err != nil {
			return nil, err
		}
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: eventbus.StreamKey(p.cfg.Prefix, family),
			MaxLen: p.cfg.MaxLen,
			Approx: true,
			Values: consume.Values(fields),
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisstream: publish %d events: %w", len(envs), err)
	}
	ids := make([]string, len(cmds))
	for i, c := range cmds {
		ids[i] = c.Val()
	}
	return ids, nil
}

// Lost reports whether the entry lastID, which this publisher appended to
// the stream of family earlier, is gone for a reason other than trimming:
// the stream does not exist, its last generated id is lower than lastID (it
// was recreated), or lastID should lie within the stream but is missing. An
// entry older than the first one of a stream that reached MaxLen counts as
// trimmed, not lost. The outbox relay republishes a lost stream.
func (p *Publisher) Lost(ctx context.Context, family, lastID string) (bool, error) {
	key := eventbus.StreamKey(p.cfg.Prefix, family)
	last, err := streamid.Parse(lastID)
	if err != nil {
		return false, err
	}
	info, err := p.client.XInfoStream(ctx, key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return p.lost(key, "stream does not exist"), nil
		}
		return false, fmt.Errorf("redisstream: inspect %s: %w", key, err)
	}
	// A stream created empty (a consumer's XGROUP CREATE MKSTREAM after the loss) has
	// last-generated-id 0-0 on Redis; miniredis reports it as "".
	gen, err := streamid.Parse(cmp.Or(info.LastGeneratedID, "0-0"))
	if err != nil {
		return false, err
	}
	if gen.Less(last) {
		return p.lost(key, "stream was recreated"), nil
	}
	pipe := p.client.Pipeline()
	exact := pipe.XRangeN(ctx, key, lastID, lastID, 1)
	first := pipe.XRangeN(ctx, key, "-", "+", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("redisstream: inspect %s: %w", key, err)
	}
	if len(exact.Val()) == 1 {
		return false, nil
	}
	if len(first.Val()) == 0 {
		return p.lost(key, "stream is empty"), nil
	}
	firstID, err := streamid.Parse(first.Val()[0].ID)
	if err != nil {
		return false, err
	}
	if last.Less(firstID) && info.Length >= p.cfg.MaxLen {
		return false, nil // trimmed by MAXLEN
	}
	return p.lost(key, "entry is missing"), nil
}

// lost logs why a stream counts as lost and reports true.
func (p *Publisher) lost(key, why string) bool {
	p.cfg.Logger.Debug("eventbus: stream lost data", "stream", key, "why", why)
	return true
}

// MarkAlive sets the marker key Prefix + "outbox:alive:" + producer if it
// is absent and reports whether it had to create it. Redis runs without
// persistence, so a marker that disappears while the producer is running
// means Redis was flushed or restarted and every stream may have lost data.
func (p *Publisher) MarkAlive(ctx context.Context, producer string) (created bool, err error) {
	key := p.cfg.Prefix + "outbox:alive:" + producer
	created, err = p.client.SetNX(ctx, key, time.Now().UTC().Format(time.RFC3339), 0).Result()
	if err != nil {
		return false, fmt.Errorf("redisstream: set %s: %w", key, err)
	}
	return created, nil
}
