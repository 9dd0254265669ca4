package memory

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/consume"
)

// SubscriberConfig mirrors redisstream.SubscriberConfig without the
// Redis-only fields. Zero fields get the same defaults, except that
// ClaimMinIdle and ClaimInterval default to values suited to tests.
type SubscriberConfig struct {
	// Group is the consumer group; required.
	Group string
	// Consumer names the instance within the group; required.
	Consumer string
	// Families lists the streams to read; defaults to all families.
	Families []string
	// BatchSize is the number of entries read at once per stream;
	// defaults to 64.
	BatchSize int64
	// ClaimMinIdle is how long an entry stays pending before another read
	// may claim it; defaults to 200ms.
	ClaimMinIdle time.Duration
	// ClaimInterval is how often stuck entries are looked for; defaults
	// to 50ms.
	ClaimInterval time.Duration
	// MaxDeliveries is how many counted handler failures an entry gets
	// before it is dead-lettered; defaults to 5.
	MaxDeliveries int64
	// HandlerTimeout bounds each handler call; defaults to ClaimMinIdle/3.
	HandlerTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts at a
	// failed message; default 10ms and 100ms, suited to tests.
	RetryMin, RetryMax time.Duration
	// IsTransient classifies handler errors; defaults to
	// eventbus.IsTransient.
	IsTransient func(error) bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// StartID is "0" (default: read the history) or "$" (only new entries).
	StartID string
}

func (c *SubscriberConfig) setDefaults() {
	if len(c.Families) == 0 {
		c.Families = contracts.Families()
	}
	c.BatchSize = cmp.Or(c.BatchSize, 64)
	c.ClaimMinIdle = cmp.Or(c.ClaimMinIdle, 200*time.Millisecond)
	c.ClaimInterval = cmp.Or(c.ClaimInterval, 50*time.Millisecond)
	c.MaxDeliveries = cmp.Or(c.MaxDeliveries, 5)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, c.ClaimMinIdle/3)
	c.RetryMin = cmp.Or(c.RetryMin, 10*time.Millisecond)
	c.RetryMax = cmp.Or(c.RetryMax, 100*time.Millisecond)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.StartID = cmp.Or(c.StartID, "0")
}

// Validate reports a configuration that cannot work.
func (c SubscriberConfig) Validate() error {
	switch {
	case c.Group == "" || c.Consumer == "":
		return errors.New("memory: Group and Consumer are required")
	case c.BatchSize < 1 || c.MaxDeliveries < 1 || c.ClaimMinIdle <= 0 || c.ClaimInterval <= 0:
		return errors.New("memory: BatchSize, MaxDeliveries, ClaimMinIdle and ClaimInterval must be positive")
	case c.HandlerTimeout <= 0 || c.ClaimMinIdle < 2*c.HandlerTimeout || c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("memory: ClaimMinIdle must be at least twice HandlerTimeout, and retry bounds positive")
	case c.StartID != "0" && c.StartID != "$":
		return errors.New(`memory: StartID must be "0" or "$"`)
	}
	for _, f := range c.Families {
		if !slices.Contains(contracts.Families(), f) {
			return errors.New("memory: unknown family " + f)
		}
	}
	return nil
}

// Subscriber reads a consumer group of a Bus; see eventbus.Subscriber for
// its stop semantics.
type Subscriber struct {
	engine *consume.Engine
}

var _ eventbus.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber of b. Groups are created when Run
// starts.
func (b *Bus) NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &transport{bus: b, cfg: cfg}
	for _, f := range cfg.Families {
		t.keys = append(t.keys, eventbus.StreamKey("", f))
	}
	return &Subscriber{engine: consume.New(t, consume.Config{
		Group:          cfg.Group,
		Consumer:       cfg.Consumer,
		BatchSize:      cfg.BatchSize,
		Block:          time.Second,
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

// transport is the in-memory half of the subscriber loop.
type transport struct {
	bus  *Bus
	cfg  SubscriberConfig
	keys []string
}

func (t *transport) Setup(context.Context) error {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	for _, key := range t.keys {
		t.group(key, t.cfg.StartID)
	}
	return nil
}

// group returns the group of key, creating stream and group (from start)
// like XGROUP CREATE MKSTREAM. bus.mu must be held.
func (t *transport) group(key, start string) *group {
	s := t.bus.stream(key)
	g, ok := s.groups[t.cfg.Group]
	if !ok {
		g = &group{pending: map[string]*pending{}}
		if start == "$" {
			g.next = len(s.entries)
		}
		s.groups[t.cfg.Group] = g
	}
	return g
}

func (t *transport) Read(ctx context.Context, count int64, wait time.Duration, stop <-chan struct{}) ([]consume.Delivery, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		out, wake := t.readNew(count)
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-wake:
		case <-timer.C:
			return nil, nil
		case <-stop:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readNew delivers up to count new entries per stream. A group that
// vanished with its stream is recreated from the start, as the Redis
// transport does on NOGROUP.
func (t *transport) readNew(count int64) ([]consume.Delivery, <-chan struct{}) {
	b := t.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	var out []consume.Delivery
	for _, key := range t.keys {
		s, g := b.streams[key], t.group(key, "0")
		for n := int64(0); n < count && g.next < len(s.entries); n++ {
			g.pending[s.entries[g.next].id.String()] = &pending{index: g.next, consumer: t.cfg.Consumer, deliveries: 1, delivered: now}
			out = append(out, t.delivery(key, s, g.next, 1))
			g.next++
		}
	}
	return out, b.wake
}

func (t *transport) delivery(key string, s *stream, index int, deliveries int64) consume.Delivery {
	e := s.entries[index]
	return consume.NewDelivery(key, e.id.String(), e.fields, deliveries)
}

func (t *transport) Claim(_ context.Context, count int64) ([]consume.Delivery, error) {
	b := t.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	var out []consume.Delivery
	for _, key := range t.keys {
		s, ok := b.streams[key]
		if !ok {
			continue
		}
		g, ok := s.groups[t.cfg.Group]
		if !ok {
			continue
		}
		var stuck []*pending
		for _, p := range g.pending {
			if now.Sub(p.delivered) >= t.cfg.ClaimMinIdle {
				stuck = append(stuck, p)
			}
		}
		slices.SortFunc(stuck, func(a, b *pending) int { return cmp.Compare(a.index, b.index) })
		for _, p := range stuck[:max(0, min(len(stuck), int(count)-len(out)))] {
			p.consumer, p.delivered = t.cfg.Consumer, now
			p.deliveries++
			out = append(out, t.delivery(key, s, p.index, p.deliveries))
		}
	}
	return out, nil
}

func (t *transport) Ack(_ context.Context, ds []consume.Delivery) error {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	t.ack(ds...)
	return nil
}

// ack removes ds from the group's pending entries. bus.mu must be held.
func (t *transport) ack(ds ...consume.Delivery) {
	for _, d := range ds {
		if s, ok := t.bus.streams[d.Stream]; ok {
			if g, ok := s.groups[t.cfg.Group]; ok {
				delete(g.pending, d.ID)
			}
		}
	}
}

func (t *transport) DeadLetter(_ context.Context, d consume.Delivery, reason string) error {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	t.bus.add(eventbus.DeadLetterKey("", t.cfg.Group), consume.DeadLetterFields(d, reason))
	t.ack(d)
	return nil
}

// Touch resets the idle time of entries this consumer still owns and
// returns them, like XCLAIM JUSTID.
func (t *transport) Touch(_ context.Context, ds []consume.Delivery) ([]consume.Delivery, error) {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	var out []consume.Delivery
	now := time.Now()
	for _, d := range ds {
		if s, ok := t.bus.streams[d.Stream]; ok {
			if g, ok := s.groups[t.cfg.Group]; ok {
				if p, ok := g.pending[d.ID]; ok && p.consumer == t.cfg.Consumer {
					p.delivered = now
					out = append(out, d)
				}
			}
		}
	}
	return out, nil
}

// Leave is a no-op: the memory bus keeps no consumer names.
func (t *transport) Leave(context.Context, bool) error { return nil }
