package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

// StreamInspector is implemented by publishers that can tell whether
// published entries were lost (redisstream.Publisher, memory.Bus). The
// relay uses it to republish after Redis, which runs without persistence,
// lost data.
type StreamInspector interface {
	// Lost reports whether the entry lastID published to the stream of
	// family is gone for a reason other than normal trimming: the stream
	// does not exist, was recreated, or lacks the entry.
	Lost(ctx context.Context, family, lastID string) (bool, error)
	// MarkAlive sets the producer's marker if it is absent and reports
	// whether it had to. A marker that disappears while the relay runs
	// means the whole store was flushed or restarted.
	MarkAlive(ctx context.Context, producer string) (created bool, err error)
}

// RelayConfig configures a Relay. Zero fields get the defaults named in
// their comments.
type RelayConfig struct {
	// Producer names the service whose outbox this is (e.g. "auth"); it
	// labels logs and metrics and names the marker key.
	Producer string
	// BatchSize is how many rows one Publish call carries; defaults to 100.
	BatchSize int
	// PollInterval is how often the table is polled when Notify is not
	// called; defaults to 200ms.
	PollInterval time.Duration
	// Retention is how long published rows are kept for republishing after
	// a loss; defaults to 72h. Inbox retention must be longer.
	Retention time.Duration
	// CheckInterval is how often loss is checked for and old rows pruned;
	// defaults to 5s.
	CheckInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *RelayConfig) setDefaults() {
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.PollInterval = cmp.Or(c.PollInterval, 200*time.Millisecond)
	c.Retention = cmp.Or(c.Retention, 72*time.Hour)
	c.CheckInterval = cmp.Or(c.CheckInterval, 5*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.Default())
}

// Validate reports a configuration that cannot work.
func (c RelayConfig) Validate() error {
	if c.Producer == "" {
		return errors.New("outbox: Producer is required")
	}
	if c.BatchSize < 1 || c.PollInterval <= 0 || c.Retention <= 0 || c.CheckInterval <= 0 {
		return errors.New("outbox: BatchSize, PollInterval, Retention and CheckInterval must be positive")
	}
	return nil
}

var (
	metricPublished = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_outbox_published_total",
		Help: "Outbox rows published by the relay, republications included.",
	}, []string{"producer"})
	metricLoss = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_outbox_loss_detected_total",
		Help: "Times the relay found a stream (or, with stream \"*\", the whole store) lost and republished it.",
	}, []string{"producer", "stream"})
)

// Relay publishes committed outbox rows in order.
type Relay struct {
	db     *bun.DB
	pub    eventbus.Publisher
	insp   StreamInspector
	cfg    RelayConfig
	log    *slog.Logger
	lock   bool
	wake   chan struct{}
	marked bool
}

// NewRelay returns a relay publishing db's outbox through pub. If pub
// implements StreamInspector, lost streams are republished.
func NewRelay(db *bun.DB, pub eventbus.Publisher, cfg RelayConfig) (*Relay, error) {
	if db == nil || pub == nil {
		return nil, errors.New("outbox: nil db or publisher")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	insp, _ := pub.(StreamInspector)
	name := db.Dialect().Name()
	return &Relay{
		db:   db,
		pub:  pub,
		insp: insp,
		cfg:  cfg,
		log:  cfg.Logger.With("producer", cfg.Producer),
		lock: name == dialect.PG || name == dialect.MySQL,
		wake: make(chan struct{}, 1),
	}, nil
}

// Notify wakes the relay so that a fresh commit is published at once
// rather than after the poll interval. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is cancelled, then returns nil. Errors are
// logged and retried on the next poll, because the relay must outlive
// outages of the database or Redis. Call Run once per Relay; for
// redundancy run relays in several replicas instead.
func (r *Relay) Run(ctx context.Context) error {
	nextCheck := time.Now()
	for ctx.Err() == nil {
		if now := time.Now(); !now.Before(nextCheck) {
			r.maintain(ctx)
			nextCheck = now.Add(r.cfg.CheckInterval)
		}
		n, err := r.publishBatch(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("eventbus: outbox publish failed; will retry", "err", err)
		}
		if err == nil && n == r.cfg.BatchSize {
			continue // more rows are waiting
		}
		t := time.NewTimer(min(r.cfg.PollInterval, time.Until(nextCheck)))
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// publishBatch publishes the oldest unpublished rows and marks them, in one
// transaction. On PostgreSQL and MariaDB the rows are locked with SKIP
// LOCKED so that relay replicas do not publish the same rows; replicas may
// then interleave batches, which reorders only across batches.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	var n int
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []row
		q := tx.NewSelect().Model(&rows).Where("published_at IS NULL").Order("seq").Limit(int64(r.cfg.BatchSize))
		if r.lock {
			q = q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil || len(rows) == 0 {
			return err
		}
		envs := make([]eventbus.Envelope, len(rows))
		for i, o := range rows {
			if err := json.Unmarshal([]byte(o.Envelope), &envs[i]); err != nil {
				return fmt.Errorf("decode outbox row %d: %w", o.Seq, err)
			}
		}
		ids, err := r.pub.Publish(ctx, envs...)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		for i, o := range rows {
			if _, err := tx.NewUpdate().Model((*row)(nil)).
				Set("published_at = ?", now).Set("stream_id = ?", ids[i]).
				Where("seq = ?", o.Seq).Exec(ctx); err != nil {
				return err
			}
		}
		n = len(rows)
		return nil
	})
	if n > 0 {
		metricPublished.WithLabelValues(r.cfg.Producer).Add(float64(n))
	}
	return n, err
}

// maintain detects loss and prunes old rows, logging failures.
func (r *Relay) maintain(ctx context.Context) {
	if err := r.detectLoss(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("eventbus: outbox loss check failed", "err", err)
	}
	cutoff := time.Now().UTC().Add(-r.cfg.Retention)
	if _, err := r.db.NewDelete().Model((*row)(nil)).
		Where("published_at IS NOT NULL").Where("published_at < ?", cutoff).Exec(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("eventbus: outbox prune failed", "err", err)
	}
}

// detectLoss republishes what the store lost. The first marker check only
// sets the marker: its absence at start may just be a first start, and a
// store lost while the relay was down is caught by the per-stream check.
func (r *Relay) detectLoss(ctx context.Context) error {
	if r.insp == nil {
		return nil
	}
	created, err := r.insp.MarkAlive(ctx, r.cfg.Producer)
	if err != nil {
		return err
	}
	wasMarked := r.marked
	r.marked = true
	if created && wasMarked {
		return r.republish(ctx, "", "marker key vanished: the store was flushed or restarted")
	}
	for _, family := range contracts.Families() {
		var last []row
		if err := r.db.NewSelect().Model(&last).Column("stream_id").
			Where("stream = ?", family).Where("published_at IS NOT NULL").
			OrderExpr("seq DESC").Limit(1).Scan(ctx); err != nil {
			return err
		}
		if len(last) == 0 {
			continue
		}
		lost, err := r.insp.Lost(ctx, family, last[0].StreamID)
		if err != nil {
			return err
		}
		if lost {
			if err := r.republish(ctx, family, "the stream lost the last entry published to it"); err != nil {
				return err
			}
		}
	}
	return nil
}

// republish marks the published rows of stream ("" for all) still within
// retention unpublished, so the relay sends them again in seq order.
func (r *Relay) republish(ctx context.Context, stream, why string) error {
	q := r.db.NewUpdate().Model((*row)(nil)).
		Set("published_at = NULL").Set("stream_id = NULL").
		Where("published_at IS NOT NULL").Where("published_at >= ?", time.Now().UTC().Add(-r.cfg.Retention))
	if stream != "" {
		q = q.Where("stream = ?", stream)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return fmt.Errorf("reset published rows: %w", err)
	}
	n, _ := res.RowsAffected()
	label := cmp.Or(stream, "*")
	metricLoss.WithLabelValues(r.cfg.Producer, label).Inc()
	r.log.Warn("eventbus: events lost from the stream store; republishing from the outbox",
		"stream", label, "rows", n, "why", why)
	r.Notify()
	return nil
}
