package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/internal/backoff"
)

// ErrEntryDeleted is the Err of a delivery whose entry was deleted from
// its stream while it was pending (XAUTOCLAIM reports its id only). It is
// dead-lettered so an operator sees it, never acknowledged silently.
var ErrEntryDeleted = errors.New("entry was deleted from the stream before it was acknowledged")

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
	// Touch resets the idle time of entries this consumer is retrying, so
	// that no other consumer claims them meanwhile, and returns those it
	// still owns.
	Touch(ctx context.Context, ds []Delivery) ([]Delivery, error)
	// DeadLetter copies d to the group's dead-letter stream (bounded) and
	// acknowledges it.
	DeadLetter(ctx context.Context, d Delivery, reason string) error
	// Leave removes this consumer from the group if it owns no pending
	// entry, so names of stopped instances do not pile up, and removes
	// other consumers that own none and have been idle for long.
	Leave(ctx context.Context, others bool) error
}

// Config tunes the loop; backends validate and default it.
type Config struct {
	Group         string
	Consumer      string
	BatchSize     int64
	Block         time.Duration
	ClaimInterval time.Duration
	ClaimMinIdle  time.Duration
	MaxDeliveries int64
	// HandlerTimeout bounds each handler call.
	HandlerTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts at a failed
	// message.
	RetryMin, RetryMax time.Duration
	// IsTransient classifies handler errors; eventbus.IsTransient when nil.
	IsTransient func(error) bool
	Logger      *slog.Logger
}

// MaxRetriesInHand is how many failed messages a consumer keeps for local
// retries before it stops fetching new ones.
func MaxRetriesInHand(batchSize int64) int { return int(4 * batchSize) }

// CrashLoopFactor times MaxDeliveries is how many deliveries (claims after
// a consumer died included) an entry may get before it is dead-lettered
// even though no failure was counted: a message that kills its consumer
// every time must not loop forever.
const CrashLoopFactor = 4

// Engine is the subscriber loop: it reads or claims a batch, hands its
// messages to the handler one by one, acknowledges each as soon as its
// handler returned (through a background acker that pipelines the acks
// with the next reads), and retries failed messages locally with
// exponential backoff and jitter.
type Engine struct {
	t   Transport
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	stop    chan struct{}
	stopped bool
	done    chan struct{}

	// retries are failed messages waiting for their next attempt; only
	// Run's goroutine touches them.
	retries []*retry
	claims  int
}

type retry struct {
	d        Delivery
	due      time.Time
	failures int64 // counted (non-transient) failures
	attempts int   // all failed attempts, for the backoff
	touched  time.Time
}

// New returns an engine reading through t.
func New(t Transport, cfg Config) *Engine {
	if cfg.IsTransient == nil {
		cfg.IsTransient = eventbus.IsTransient
	}
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
	acks := newAcker(e, ctx)
	go acks.run()
	defer acks.close()
	nextClaim := time.Now()
	fetchFailures := 0
	for {
		if e.stopping() {
			acks.flushNow()
			e.leave(ctx)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		e.retryDue(ctx, h, acks)
		e.touchRetries(ctx)
		if len(e.retries) >= MaxRetriesInHand(e.cfg.BatchSize) {
			// During an outage every message fails: stop fetching until
			// the retries in hand succeed, rather than pull the whole
			// stream into memory (suite case RetriesInHandAreBounded, run by TestSuiteRedis, TestSuiteMiniredis and the memory suite).
			e.pause(ctx, max(e.untilRetry(), time.Millisecond))
			continue
		}
		var batch []Delivery
		if now := time.Now(); !now.Before(nextClaim) {
			batch, err = e.t.Claim(ctx, e.cfg.BatchSize)
			nextClaim = now.Add(e.cfg.ClaimInterval)
			if int64(len(batch)) >= e.cfg.BatchSize {
				nextClaim = now // more may be waiting
			}
			e.countClaimed(batch)
			if e.claims++; e.claims%100 == 0 {
				if err := e.t.Leave(ctx, true); err != nil && ctx.Err() == nil {
					e.log.Debug("eventbus: removing idle consumers failed", "err", err)
				}
			}
		} else {
			wait := max(min(time.Until(nextClaim), e.cfg.Block, e.untilRetry()), time.Millisecond)
			batch, err = e.t.Read(ctx, e.cfg.BatchSize, wait, e.stop)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fetchFailures++
			d := backoff.Full(fetchFailures, e.cfg.RetryMin, e.cfg.Block)
			e.log.Warn("eventbus: fetching messages failed", "err", err, "retry_in", d)
			e.pause(ctx, d)
			continue
		}
		fetchFailures = 0
		if !e.handle(ctx, h, batch, acks) {
			return ctx.Err()
		}
	}
}

// leave removes the consumer's name after a clean shutdown, if it owns no
// pending entries (retries in hand stay pending for other consumers).
func (e *Engine) leave(ctx context.Context) {
	if len(e.retries) > 0 {
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := e.t.Leave(lctx, false); err != nil {
		e.log.Warn("eventbus: removing the consumer from its group failed", "err", err)
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

// handle processes a batch and reports false if the run was aborted, in
// which case the rest of the batch is left pending exactly as after a
// crash. Messages handled before the abort may or may not have been
// acknowledged; their redelivery is deduplicated by the consumers.
func (e *Engine) handle(ctx context.Context, h eventbus.Handler, batch []Delivery, acks *acker) bool {
	for _, d := range batch {
		if ctx.Err() != nil {
			return false
		}
		switch {
		case d.Err != nil:
			e.deadLetter(ctx, d, d.Err.Error())
		case d.Deliveries > CrashLoopFactor*e.cfg.MaxDeliveries:
			e.deadLetter(ctx, d, fmt.Sprintf("delivered %d times without success (its consumers kept dying)", d.Deliveries-1))
		default:
			e.attempt(ctx, h, &retry{d: d, touched: time.Now()}, acks)
		}
	}
	return ctx.Err() == nil
}

// attempt runs the handler once for r and then acknowledges, schedules a
// retry or dead-letters.
func (e *Engine) attempt(ctx context.Context, h eventbus.Handler, r *retry, acks *acker) {
	err := e.call(ctx, h, r.d)
	if err == nil {
		acks.add(r.d)
		return
	}
	if ctx.Err() != nil {
		return
	}
	r.attempts++
	transient := e.cfg.IsTransient(err)
	if !transient {
		r.failures++
	}
	if r.failures >= e.cfg.MaxDeliveries {
		e.deadLetter(ctx, r.d, fmt.Sprintf("handler failed %d times: %v", r.failures, err))
		return
	}
	wait := backoff.Full(r.attempts, e.cfg.RetryMin, e.cfg.RetryMax)
	r.due = time.Now().Add(wait)
	r.d.Deliveries++
	e.retries = append(e.retries, r)
	metricFailures.WithLabelValues(e.cfg.Group, r.d.Stream).Inc()
	e.log.Warn("eventbus: handler failed; will retry", logAttrs(r.d, "err", err, "transient", transient,
		"failures", r.failures, "retry_in", wait)...)
}

// retryDue runs the retries whose time has come.
func (e *Engine) retryDue(ctx context.Context, h eventbus.Handler, acks *acker) {
	if len(e.retries) == 0 {
		return
	}
	now := time.Now()
	var due []*retry
	kept := e.retries[:0]
	for _, r := range e.retries {
		if !r.due.After(now) {
			due = append(due, r)
		} else {
			kept = append(kept, r)
		}
	}
	e.retries = kept
	for _, r := range due {
		if ctx.Err() != nil || e.stopping() {
			e.retries = append(e.retries, r) // still pending; claimed by others later
			continue
		}
		e.attempt(ctx, h, r, acks)
	}
}

// untilRetry is how long until the next retry is due.
func (e *Engine) untilRetry() time.Duration {
	d := time.Hour
	for _, r := range e.retries {
		d = min(d, time.Until(r.due))
	}
	return d
}

// touchRetries keeps the entries being retried owned by this consumer: it
// resets their idle time well before ClaimMinIdle, and forgets those that
// another consumer claimed anyway.
func (e *Engine) touchRetries(ctx context.Context) {
	var ds []Delivery
	for _, r := range e.retries {
		if time.Since(r.touched) >= e.cfg.ClaimMinIdle/3 {
			ds = append(ds, r.d)
			r.touched = time.Now()
		}
	}
	if len(ds) == 0 {
		return
	}
	owned, err := e.t.Touch(ctx, ds)
	if err != nil {
		e.log.Warn("eventbus: refreshing messages in retry failed", "err", err)
		return
	}
	keep := map[string]bool{}
	for _, d := range owned {
		keep[d.Stream+" "+d.ID] = true
	}
	touched := map[string]bool{}
	for _, d := range ds {
		touched[d.Stream+" "+d.ID] = true
	}
	kept := e.retries[:0]
	for _, r := range e.retries {
		if k := r.d.Stream + " " + r.d.ID; !touched[k] || keep[k] {
			kept = append(kept, r)
		}
	}
	e.retries = kept
}

// call runs the handler with the handler timeout, turning a panic into an
// error so that one bad message cannot kill the process with a batch
// unacknowledged (suite case PanickingHandlerIsRecovered, run by TestSuiteRedis, TestSuiteMiniredis and the memory suite).
func (e *Engine) call(ctx context.Context, h eventbus.Handler, d Delivery) (err error) {
	m := d.Message
	start := time.Now()
	hctx, cancel := context.WithTimeout(ctx, e.cfg.HandlerTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			metricPanics.WithLabelValues(e.cfg.Group, d.Stream).Inc()
			e.log.Error("eventbus: handler panicked", logAttrs(d, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))...)
			err = eventbus.Permanent(fmt.Errorf("handler panicked: %v", p))
		}
		metricHandleDuration.WithLabelValues(e.cfg.Group, d.Stream).Observe(time.Since(start).Seconds())
	}()
	if err := h(hctx, &m); err != nil {
		return err
	}
	metricHandled.WithLabelValues(e.cfg.Group, d.Stream).Inc()
	return nil
}

func (e *Engine) deadLetter(ctx context.Context, d Delivery, reason string) {
	if err := e.t.DeadLetter(ctx, d, reason); err != nil {
		e.log.Error("eventbus: dead-lettering failed; will retry", logAttrs(d, "reason", reason, "err", err)...)
		return
	}
	metricDeadLettered.WithLabelValues(e.cfg.Group, d.Stream).Inc()
	e.log.Error("eventbus: message dead-lettered", logAttrs(d, "reason", reason, "envelope", d.Fields[FieldEnvelope])...)
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

// acker acknowledges handled messages in the background: each ack is sent
// as soon as the previous round trip returned, together with whatever was
// handled meanwhile, so acks never wait for the end of a batch
// (suite case AckedAsSoonAsHandled, run by TestSuiteRedis, TestSuiteMiniredis and the memory suite) and never cost the loop a round trip.
type acker struct {
	e     *Engine
	ctx   context.Context //nolint:containedctx // the acker lives exactly as long as one Run
	ch    chan Delivery
	flush chan chan struct{}
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newAcker(e *Engine, ctx context.Context) *acker { //nolint:revive // ctx second reads better here
	a := &acker{e: e, ctx: ctx, ch: make(chan Delivery, 4096), flush: make(chan chan struct{}), quit: make(chan struct{})}
	a.wg.Add(1)
	return a
}

// add queues d for acknowledgement; after an abort it drops it, the
// entry stays pending like after a crash.
func (a *acker) add(d Delivery) {
	select {
	case a.ch <- d:
	case <-a.ctx.Done():
	case <-a.quit:
	}
}

func (a *acker) run() {
	ctx := a.ctx
	defer a.wg.Done()
	for {
		var first Delivery
		select {
		case first = <-a.ch:
		case done := <-a.flush:
			a.drain(ctx, nil)
			close(done)
			continue
		case <-ctx.Done():
			return
		case <-a.quit:
			return
		}
		a.drain(ctx, []Delivery{first})
	}
}

// drain sends batch plus everything queued in one Ack.
func (a *acker) drain(ctx context.Context, batch []Delivery) {
	for {
		select {
		case d := <-a.ch:
			batch = append(batch, d)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 || ctx.Err() != nil {
		return
	}
	if err := a.e.t.Ack(ctx, batch); err != nil && ctx.Err() == nil {
		a.e.log.Error("eventbus: acknowledging failed; the messages will be redelivered", "count", len(batch), "err", err)
	}
}

// flush waits until everything added so far is acknowledged.
func (a *acker) flushNow() {
	done := make(chan struct{})
	select {
	case a.flush <- done:
		<-done
	case <-a.quit:
	}
}

func (a *acker) close() {
	close(a.quit)
	a.wg.Wait()
}
