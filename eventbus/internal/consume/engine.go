package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
)

// Transport is the backend-specific half of a subscriber.
type Transport interface {
	// Setup creates the consumer groups, as XGROUP CREATE MKSTREAM does.
	Setup(ctx context.Context) error
	// Read returns up to count new entries per stream, waiting at most wait
	// for one to arrive. A backend that can should also return early when
	// stop is closed. A missing group is recreated from the start of its
	// stream, because the stream was lost and is being republished.
	Read(ctx context.Context, count int64, wait time.Duration, stop <-chan struct{}) ([]Delivery, error)
	// Claim takes over up to count entries that have been pending longer
	// than the claim idle time, from any consumer of the group, and reports
	// their delivery counts including this delivery.
	Claim(ctx context.Context, count int64) ([]Delivery, error)
	// Ack acknowledges ds in one round trip.
	Ack(ctx context.Context, ds []Delivery) error
	// DeadLetter copies d to the group's dead-letter stream and
	// acknowledges it.
	DeadLetter(ctx context.Context, d Delivery, reason string) error
}

// Config tunes the loop; backends validate and default it.
type Config struct {
	Group         string
	Consumer      string
	BatchSize     int64
	Block         time.Duration
	ClaimInterval time.Duration
	MaxDeliveries int64
	Logger        *slog.Logger
}

// Engine is the subscriber loop: it reads or claims a batch, hands its
// messages to the handler one by one, and acknowledges the successful ones
// together after the batch, unless the run was aborted meanwhile.
type Engine struct {
	t   Transport
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	stop    chan struct{}
	stopped bool
	done    chan struct{}
}

// New returns an engine reading through t.
func New(t Transport, cfg Config) *Engine {
	return &Engine{
		t:    t,
		cfg:  cfg,
		log:  cfg.Logger.With("group", cfg.Group, "consumer", cfg.Consumer),
		stop: make(chan struct{}),
	}
}

// Run implements eventbus.Subscriber.
func (e *Engine) Run(ctx context.Context, h eventbus.Handler) error {
	if h == nil {
		return errors.New("eventbus: nil handler")
	}
	done, err := e.begin()
	if err != nil || done == nil {
		return err
	}
	defer e.end()
	// The groups are created before the first read; failures (the store is
	// still starting) are retried rather than returned, like read errors.
	for err := e.t.Setup(ctx); err != nil; err = e.t.Setup(ctx) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.log.Warn("eventbus: creating consumer groups failed; will retry", "err", err)
		e.pause(ctx, e.cfg.Block)
		if e.stopping() {
			return nil
		}
	}
	nextClaim := time.Now()
	for {
		if e.stopping() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []Delivery
		if now := time.Now(); !now.Before(nextClaim) {
			batch, err = e.t.Claim(ctx, e.cfg.BatchSize)
			nextClaim = now.Add(e.cfg.ClaimInterval)
			if int64(len(batch)) >= e.cfg.BatchSize {
				nextClaim = now // more may be waiting
			}
			e.countClaimed(batch)
		} else {
			wait := max(min(time.Until(nextClaim), e.cfg.Block), time.Millisecond)
			batch, err = e.t.Read(ctx, e.cfg.BatchSize, wait, e.stop)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.log.Warn("eventbus: fetching messages failed", "err", err)
			e.pause(ctx, e.cfg.Block)
			continue
		}
		if !e.handle(ctx, h, batch) {
			return ctx.Err()
		}
	}
}

// Shutdown implements eventbus.Subscriber. After it, Run returns nil
// without reading.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.stopped {
		e.stopped = true
		close(e.stop)
	}
	done := e.done
	e.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// begin marks the engine running; it returns a nil channel when Shutdown
// already happened, so Run can return at once.
func (e *Engine) begin() (chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done != nil {
		return nil, errors.New("eventbus: subscriber is already running")
	}
	if e.stopped {
		return nil, nil
	}
	e.done = make(chan struct{})
	return e.done, nil
}

func (e *Engine) end() {
	e.mu.Lock()
	defer e.mu.Unlock()
	close(e.done)
	e.done = nil
}

func (e *Engine) stopping() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

func (e *Engine) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-e.stop:
	case <-t.C:
	}
}

// handle processes a batch in order and reports false if the run was
// aborted, in which case nothing of the batch is acknowledged: the entries
// stay pending exactly as after a crash.
func (e *Engine) handle(ctx context.Context, h eventbus.Handler, batch []Delivery) bool {
	acks := make([]Delivery, 0, len(batch))
	for _, d := range batch {
		if ctx.Err() != nil {
			return false
		}
		switch {
		case d.Err != nil:
			e.deadLetter(ctx, d, d.Err.Error())
		case d.Deliveries > e.cfg.MaxDeliveries:
			e.deadLetter(ctx, d, fmt.Sprintf("handler failed on %d deliveries", d.Deliveries-1))
		case e.call(ctx, h, d):
			acks = append(acks, d)
		}
	}
	if ctx.Err() != nil {
		return false
	}
	if len(acks) > 0 {
		if err := e.t.Ack(ctx, acks); err != nil {
			e.log.Error("eventbus: acknowledging batch failed; it will be redelivered", "count", len(acks), "err", err)
		}
	}
	return true
}

func (e *Engine) call(ctx context.Context, h eventbus.Handler, d Delivery) bool {
	m := d.Message
	start := time.Now()
	err := h(ctx, &m)
	metricHandleDuration.WithLabelValues(e.cfg.Group, d.Stream).Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() == nil {
			metricFailures.WithLabelValues(e.cfg.Group, d.Stream).Inc()
			e.log.Warn("eventbus: handler failed; message stays pending", logAttrs(d, "err", err)...)
		}
		return false
	}
	metricHandled.WithLabelValues(e.cfg.Group, d.Stream).Inc()
	return true
}

func (e *Engine) deadLetter(ctx context.Context, d Delivery, reason string) {
	if err := e.t.DeadLetter(ctx, d, reason); err != nil {
		e.log.Error("eventbus: dead-lettering failed; will retry", logAttrs(d, "reason", reason, "err", err)...)
		return
	}
	metricDeadLettered.WithLabelValues(e.cfg.Group, d.Stream).Inc()
	e.log.Error("eventbus: message dead-lettered", logAttrs(d, "reason", reason)...)
}

func (e *Engine) countClaimed(batch []Delivery) {
	for _, d := range batch {
		metricClaimed.WithLabelValues(e.cfg.Group, d.Stream).Inc()
	}
}

func logAttrs(d Delivery, extra ...any) []any {
	return append([]any{
		"event_id", d.Envelope.ID, "type", d.Envelope.Type, "stream", d.Stream,
		"entry_id", d.ID, "deliveries", d.Deliveries,
	}, extra...)
}
