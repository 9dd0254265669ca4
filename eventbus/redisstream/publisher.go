package redisstream

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

// DefaultMaxLen is kept for source compatibility. Streams are no longer
// trimmed by length, which dropped entries no group had consumed; see
// Publisher.Trim.
const DefaultMaxLen = 100000

// EpochGroupPrefix starts the names of the consumer groups that serve as
// stream epochs for loss detection (see the eventbus package
// documentation). Nobody reads through them; trimming and tools ignore
// them.
const EpochGroupPrefix = "outbox-epoch:"

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Prefix is prepended to every key, so several environments can share
	// one Redis.
	Prefix string
	// MaxLen is no longer used: trimming by length dropped unconsumed
	// entries. It is kept so that existing configurations compile; a
	// negative value is still refused.
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
	encoded := make([]string, len(envs))
	for i, env := range envs {
		b, err := json.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("redisstream: encode envelope %s: %w", env.ID, err)
		}
		encoded[i] = string(b)
	}
	return p.PublishEncoded(ctx, envs, encoded)
}

// PublishEncoded implements outbox.EncodedPublisher: it publishes envs as
// Publish does, with encoded[i], the JSON encoding of envs[i] the outbox
// stored, as the entry's envelope, so that the relay does not encode every
// event a second time.
func (p *Publisher) PublishEncoded(ctx context.Context, envs []eventbus.Envelope, encoded []string) ([]string, error) {
	if len(envs) != len(encoded) {
		return nil, fmt.Errorf("redisstream: %d envelopes with %d encodings", len(envs), len(encoded))
	}
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
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: eventbus.StreamKey(p.cfg.Prefix, family),
			Values: consume.EntryValues(env, encoded[i]),
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

// StreamEpochs implements outbox.EpochStore: it lists the epoch groups of
// family's stream and its last generated id, with both empty when the
// stream does not exist.
func (p *Publisher) StreamEpochs(ctx context.Context, family string) ([]string, string, error) {
	key := eventbus.StreamKey(p.cfg.Prefix, family)
	pipe := p.client.Pipeline()
	groups := pipe.XInfoGroups(ctx, key)
	info := pipe.XInfoStream(ctx, key)
	_, _ = pipe.Exec(ctx)
	if err := groups.Err(); err != nil {
		if isNoSuchKey(err) {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("redisstream: groups of %s: %w", key, err)
	}
	var epochs []string
	for _, g := range groups.Val() {
		if strings.HasPrefix(g.Name, EpochGroupPrefix) {
			epochs = append(epochs, g.Name)
		}
	}
	if err := info.Err(); err != nil {
		if isNoSuchKey(err) {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("redisstream: inspect %s: %w", key, err)
	}
	return epochs, cmp.Or(info.Val().LastGeneratedID, "0-0"), nil
}

// NewStreamEpoch implements outbox.EpochStore: it creates a group named
// EpochGroupPrefix + a random token on family's stream, creating the
// stream if it is missing. The group lives and dies with the stream.
func (p *Publisher) NewStreamEpoch(ctx context.Context, family string) (string, error) {
	key := eventbus.StreamKey(p.cfg.Prefix, family)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := EpochGroupPrefix + hex.EncodeToString(b)
	if err := p.client.XGroupCreateMkStream(ctx, key, name, "$").Err(); err != nil {
		return "", fmt.Errorf("redisstream: create epoch on %s: %w", key, err)
	}
	return name, nil
}

// Trim implements outbox.Trimmer. It removes, with XTRIM MINID, the
// entries of family's stream that lie below the oldest entry any consumer
// group has not passed (its lowest pending entry, or the entry after the
// last one delivered to it) and that are older than minAge. A stream
// without consumer groups is not trimmed: nobody has read it yet. Epoch
// groups do not count. Trimming thus never drops an entry a group has not
// acknowledged (TestTrimKeepsUnacknowledgedEntries).
func (p *Publisher) Trim(ctx context.Context, family string, minAge time.Duration) error {
	key := eventbus.StreamKey(p.cfg.Prefix, family)
	groups, err := p.client.XInfoGroups(ctx, key).Result()
	if err != nil {
		if isNoSuchKey(err) {
			return nil
		}
		return fmt.Errorf("redisstream: groups of %s: %w", key, err)
	}
	floor := streamid.ID{MS: uint64(max(time.Now().Add(-minAge).UnixMilli(), 0))}
	readers := 0
	for _, g := range groups {
		if strings.HasPrefix(g.Name, EpochGroupPrefix) {
			continue
		}
		readers++
		pos, err := streamid.Parse(cmp.Or(g.LastDeliveredID, "0-0"))
		if err != nil {
			return err
		}
		pos = streamid.ID{MS: pos.MS, Seq: pos.Seq + 1}
		if g.Pending > 0 {
			pend, err := p.client.XPending(ctx, key, g.Name).Result()
			if err != nil {
				return fmt.Errorf("redisstream: pending of %s on %s: %w", g.Name, key, err)
			}
			if low, err := streamid.Parse(pend.Lower); err == nil && low.Less(pos) {
				pos = low
			}
		}
		if pos.Less(floor) {
			floor = pos
		}
	}
	if readers == 0 || floor == (streamid.ID{}) {
		return nil
	}
	if err := p.client.XTrimMinID(ctx, key, floor.String()).Err(); err != nil {
		return fmt.Errorf("redisstream: trim %s: %w", key, err)
	}
	return nil
}

func isNoSuchKey(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such key") || strings.HasPrefix(err.Error(), "ERR no such"))
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
