package outbox

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/backoff"
	"github.com/bugtracker/bugtracker/eventbus/internal/streamid"
)

// MaxRetention is the longest Retention a relay accepts. The inbox keeps
// its records at least inbox.MinRetention, which is longer by a margin for
// redelivery delays, so an event can never be republished after the
// consumers forgot they applied it (TestInboxOutlivesOutboxRetention).
const MaxRetention = 72 * time.Hour

// StreamInspector is the loss check of earlier releases, kept so that code
// implementing or calling it still compiles. The relay no longer uses it:
// it could be fooled by new entries and by replicas (see EpochStore).
type StreamInspector interface {
	// Lost reports whether the entry lastID published to the stream of
	// family is gone.
	Lost(ctx context.Context, family, lastID string) (bool, error)
	// MarkAlive sets the producer's marker if it is absent and reports
	// whether it had to.
	MarkAlive(ctx context.Context, producer string) (created bool, err error)
}

// EpochStore is implemented by publishers whose store can lose entries
// (redisstream.Publisher, memory.Bus). An epoch is a marker that lives
// inside a stream (a consumer group nobody reads) and therefore dies with
// it, whether the stream is deleted, the store flushed or restarted empty;
// new entries never bring it back. See the eventbus package documentation.
type EpochStore interface {
	// StreamEpochs returns the epoch markers on the stream of family and
	// the stream's last generated entry id; no epochs and an empty id
	// when the stream does not exist.
	StreamEpochs(ctx context.Context, family string) (epochs []string, lastID string, err error)
	// NewStreamEpoch adds a fresh epoch marker to the stream of family,
	// creating the stream if needed, and returns it.
	NewStreamEpoch(ctx context.Context, family string) (string, error)
}

// EncodedPublisher is implemented by publishers that can append envelopes
// with the JSON encoding the outbox stored for them (redisstream.Publisher),
// so that the relay does not encode every event again: with it, decoding
// the row (to quarantine what cannot be published) is the relay's only
// JSON work per event.
type EncodedPublisher interface {
	// PublishEncoded publishes envs as Publish does, encoded[i] being the
	// JSON encoding of envs[i].
	PublishEncoded(ctx context.Context, envs []eventbus.Envelope, encoded []string) ([]string, error)
}

// Trimmer is implemented by publishers that trim their streams themselves,
// by MINID below the oldest entry some consumer group has not
// acknowledged; the relay calls it every CheckInterval.
type Trimmer interface {
	// Trim removes the entries of family's stream that every consumer
	// group acknowledged and that are older than minAge.
	Trim(ctx context.Context, family string, minAge time.Duration) error
}

// RelayConfig configures a Relay. Zero fields get the defaults named in
// their comments.
type RelayConfig struct {
	// Producer names the service whose outbox this is (e.g. "auth"); it
	// labels logs and metrics.
	Producer string
	// BatchSize is how many rows one Publish call carries; defaults to 100.
	BatchSize int
	// PollInterval is how often the table is polled when Notify is not
	// called; defaults to 200ms.
	PollInterval time.Duration
	// Retention is how long after its creation an event is kept for
	// republishing after a loss; defaults to and may not exceed
	// MaxRetention.
	Retention time.Duration
	// CheckInterval is how often loss is checked for, streams trimmed and
	// old rows pruned; defaults to 5s.
	CheckInterval time.Duration
	// LeaseTTL is how long a batch stays leased to the relay publishing
	// it; a relay that dies mid-publish leaves it to the others after
	// that. Defaults to 30s.
	LeaseTTL time.Duration
	// PublishTimeout bounds one Publish call, so a hung Redis cannot
	// outlast the lease; defaults to LeaseTTL/3.
	PublishTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff (with full
	// jitter) after a failed publish; default 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// TrimMinAge keeps stream entries at least this long even when every
	// group acknowledged them, so a new consumer group can still read the
	// recent history; defaults to 90 days (the API's retention age).
	TrimMinAge time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *RelayConfig) setDefaults() {
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.PollInterval = cmp.Or(c.PollInterval, 200*time.Millisecond)
	c.Retention = cmp.Or(c.Retention, MaxRetention)
	c.CheckInterval = cmp.Or(c.CheckInterval, 5*time.Second)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, 30*time.Second)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, c.LeaseTTL/3)
	c.RetryMin = cmp.Or(c.RetryMin, 100*time.Millisecond)
	c.RetryMax = cmp.Or(c.RetryMax, 10*time.Second)
	c.TrimMinAge = cmp.Or(c.TrimMinAge, 90*24*time.Hour)
	c.Logger = cmp.Or(c.Logger, slog.Default())
}

// Validate reports a configuration that cannot work.
func (c RelayConfig) Validate() error {
	if c.Producer == "" {
		return errors.New("outbox: Producer is required")
	}
	if c.BatchSize < 1 || c.PollInterval <= 0 || c.Retention <= 0 || c.CheckInterval <= 0 ||
		c.LeaseTTL <= 0 || c.PublishTimeout <= 0 || c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.TrimMinAge <= 0 {
		return errors.New("outbox: BatchSize, PollInterval, Retention, CheckInterval, LeaseTTL, PublishTimeout, RetryMin, RetryMax and TrimMinAge must be positive")
	}
	if c.Retention > MaxRetention {
		return fmt.Errorf("outbox: Retention %s exceeds %s, beyond which the inbox may forget applied events", c.Retention, MaxRetention)
	}
	if c.PublishTimeout >= c.LeaseTTL {
		return errors.New("outbox: PublishTimeout must be shorter than LeaseTTL")
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
		Help: "Times the relay found rows whose stream lost them and queued them for republishing.",
	}, []string{"producer", "stream"})
	metricQuarantined = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_outbox_quarantined_total",
		Help: "Outbox rows the relay could not publish and set aside (see eventctl outbox list).",
	}, []string{"producer"})
	metricPublishErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_outbox_publish_errors_total",
		Help: "Failed relay rounds (database or Redis errors); they are retried with backoff.",
	}, []string{"producer"})
)

// Relay publishes committed outbox rows. Run it in every replica of a
// service: replicas lease disjoint batches.
type Relay struct {
	db     *bun.DB
	pub    eventbus.Publisher
	epochs EpochStore
	trim   Trimmer
	cfg    RelayConfig
	log    *slog.Logger
	mysql  bool
	id     string
	leases atomic.Int64
	wake   chan struct{}

	// marking delivers the result of the mark of the batch published last,
	// which runs while the next batch is leased and published; nil when no
	// mark is in flight. Only Run's goroutine uses it.
	marking chan error
	// current holds, per family, an epoch seen on the stream before the
	// rows being published were appended; only Run's goroutine uses it.
	current map[string]string
	// detect is switched off only by the mutation test, which proves that
	// the loss tests fail without detection.
	detect bool
}

// NewRelay returns a relay publishing db's outbox through pub. If pub
// implements EpochStore, lost entries are republished; if it implements
// Trimmer, streams are trimmed.
func NewRelay(db *bun.DB, pub eventbus.Publisher, cfg RelayConfig) (*Relay, error) {
	if db == nil || pub == nil {
		return nil, errors.New("outbox: nil db or publisher")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	epochs, _ := pub.(EpochStore)
	trim, _ := pub.(Trimmer)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Relay{
		db:      db,
		pub:     pub,
		epochs:  epochs,
		trim:    trim,
		cfg:     cfg,
		log:     cfg.Logger.With("producer", cfg.Producer),
		mysql:   db.Dialect().Name() == dialect.MySQL,
		id:      hex.EncodeToString(b),
		wake:    make(chan struct{}, 1),
		current: map[string]string{},
		detect:  true,
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
// logged and retried with exponential backoff and jitter, because the
// relay must outlive outages of the database or Redis
// (TestRelayBacksOffOnErrors). Call Run once per Relay; for redundancy run
// relays in several replicas instead.
func (r *Relay) Run(ctx context.Context) error {
	for err := CreateTable(ctx, r.db); err != nil; err = CreateTable(ctx, r.db) {
		r.log.Warn("eventbus: outbox schema check failed; will retry", "err", err)
		if !sleep(ctx, r.cfg.RetryMax) {
			return nil
		}
	}
	nextCheck := time.Now()
	failures := 0
	for ctx.Err() == nil {
		if !time.Now().Before(nextCheck) {
			r.maintain(ctx)
			// Counted from the end of the round: a round that takes longer
			// than CheckInterval (a loaded database, many families) would
			// otherwise be followed by another at once, and the relay
			// would publish one batch per round.
			nextCheck = time.Now().Add(r.cfg.CheckInterval)
		}
		n, err := r.publishBatch(ctx)
		if err == nil && n < r.cfg.BatchSize {
			// The relay goes idle: the last mark completes first, so that
			// a failed one is retried now rather than after the next batch.
			err = r.awaitMark()
		}
		if err != nil && ctx.Err() == nil {
			failures++
			metricPublishErrors.WithLabelValues(r.cfg.Producer).Inc()
			d := Backoff(failures, r.cfg.RetryMin, r.cfg.RetryMax)
			r.log.Warn("eventbus: outbox publish failed; will retry", "err", err, "retry_in", d)
			sleep(ctx, d)
			continue
		}
		failures = 0
		if n == r.cfg.BatchSize {
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
	if err := r.awaitMark(); err != nil {
		r.log.Warn("eventbus: outbox mark failed at shutdown; the batch will be published again", "err", err)
	}
	return nil
}

// awaitMark waits for the mark in flight, if any, and returns its error.
func (r *Relay) awaitMark() error {
	if r.marking == nil {
		return nil
	}
	err := <-r.marking
	r.marking = nil
	return err
}

// startMark marks a published batch in the background, after the mark of
// the batch before it completed, and returns that earlier mark's error. A
// batch costs a lease, a publish and a mark, each a wait on a server; the
// mark, a third of the time, now overlaps the next lease and publish
// instead of delaying them. At most one mark is in flight, so a relay
// holds at most two batches. The mark outlives a cancelled ctx (bounded
// by the lease), so that stopping the relay does not leave a published
// batch to be published again.
func (r *Relay) startMark(ctx context.Context, owner string, rows []row, ids []string, epochs map[string]string) error {
	prev := r.awaitMark()
	done := make(chan error, 1)
	r.marking = done
	go func() {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.LeaseTTL)
		defer cancel()
		err := r.markPublished(mctx, owner, rows, ids, epochs)
		if err == nil {
			metricPublished.WithLabelValues(r.cfg.Producer).Add(float64(len(rows)))
		}
		done <- err
	}()
	return prev
}

// Backoff returns the wait before retry number attempt (1 for the first):
// a random duration between minD and minD*2^(attempt-1), capped at maxD
// ("full jitter"), so that replicas failing together do not retry
// together (TestRelayBacksOffOnErrors).
func Backoff(attempt int, minD, maxD time.Duration) time.Duration {
	return backoff.Full(attempt, minD, maxD)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// publishBatch leases the oldest publishable rows, publishes them outside
// any transaction and starts marking them published (see startMark). Rows that cannot be published
// are quarantined instead of failing the batch.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	owner := fmt.Sprintf("%s-%d", r.id, r.leases.Add(1))
	rows, err := r.lease(ctx, owner)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	envs := make([]eventbus.Envelope, 0, len(rows))
	encoded := make([]string, 0, len(rows))
	good := make([]row, 0, len(rows))
	for _, o := range rows {
		var env eventbus.Envelope
		reason := ""
		switch err := json.Unmarshal([]byte(o.Envelope), &env); {
		case err != nil:
			reason = "envelope does not decode: " + err.Error()
		case contracts.Family(env.Type) == "":
			reason = fmt.Sprintf("event type %q is unknown to this release", env.Type)
		case contracts.Family(env.Type) != o.Stream:
			reason = fmt.Sprintf("event type %q does not belong to family %q", env.Type, o.Stream)
		}
		if reason != "" {
			if err := r.quarantine(ctx, o, reason); err != nil {
				return 0, err
			}
			continue
		}
		envs = append(envs, env)
		encoded = append(encoded, o.Envelope)
		good = append(good, o)
	}
	if len(good) == 0 {
		return len(rows), nil
	}
	epochs := map[string]string{}
	for _, o := range good {
		if _, ok := epochs[o.Stream]; ok {
			continue
		}
		e, err := r.epochFor(ctx, o.Stream)
		if err != nil {
			return 0, errors.Join(err, r.release(ctx, owner))
		}
		epochs[o.Stream] = e
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	var ids []string
	if ep, ok := r.pub.(EncodedPublisher); ok {
		ids, err = ep.PublishEncoded(pctx, envs, encoded)
	} else {
		ids, err = r.pub.Publish(pctx, envs...)
	}
	cancel()
	if err != nil {
		return 0, errors.Join(err, r.release(ctx, owner))
	}
	if err := r.startMark(ctx, owner, good, ids, epochs); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// lease marks up to BatchSize publishable rows as leased to owner and
// returns them in seq order. It is one statement on PostgreSQL and SQLite
// and one short transaction on MariaDB (which cannot limit a subquery of
// an UPDATE); SKIP LOCKED keeps concurrent relays off each other's rows
// and the lease condition makes the claim atomic (TestLeaseIsExclusive).
func (r *Relay) lease(ctx context.Context, owner string) ([]row, error) {
	now := time.Now().UTC()
	until := now.Add(r.cfg.LeaseTTL)
	var rows []row
	var err error
	switch {
	case r.db.Dialect().Name() == dialect.PG:
		rows, err = r.leasePG(ctx, owner, now, until)
	case r.mysql:
		rows, err = r.leaseMySQL(ctx, owner, now, until)
	default:
		sub := r.db.NewSelect().Model((*row)(nil)).Column("seq").
			Where("published_at IS NULL").Where("quarantined_at IS NULL").
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("lease_until IS NULL").WhereOr("lease_until < ?", now)
			}).Order("seq").Limit(int64(r.cfg.BatchSize))
		err = r.db.NewUpdate().Model(&rows).
			Set("lease_until = ?", until).Set("lease_owner = ?", owner).
			Where("seq IN (?)", sub).Returning("*").Scan(ctx)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lease rows: %w", err)
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.Seq, b.Seq) })
	return rows, nil
}

// leasePGQuery is the lease on PostgreSQL: a constant statement with
// parameters, prepared once per connection, where bun's text (with the
// owner and times written into it) was a new statement at every lease,
// which pgx prepared in an extra round trip. It returns only the columns
// the relay publishes.
const leasePGQuery = `UPDATE outbox SET lease_until = $1, lease_owner = $2 WHERE seq IN (
	SELECT seq FROM outbox WHERE published_at IS NULL AND quarantined_at IS NULL
		AND (lease_until IS NULL OR lease_until < $3)
	ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED)
	RETURNING seq, event_id, type, stream, envelope`

// leasePG runs leasePGQuery in a transaction with leaseSettingsPG.
func (r *Relay) leasePG(ctx context.Context, owner string, now, until time.Time) ([]row, error) {
	var rows []row
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rows = rows[:0] // a retried transaction starts over
		if _, err := tx.ExecContext(ctx, leaseSettingsPG); err != nil {
			return err
		}
		rs, err := tx.Tx.QueryContext(ctx, leasePGQuery, until, owner, now, r.cfg.BatchSize)
		if err != nil {
			return err
		}
		defer func() { _ = rs.Close() }()
		for rs.Next() {
			var o row
			if err := rs.Scan(&o.Seq, &o.EventID, &o.Type, &o.Stream, &o.Envelope); err != nil {
				return err
			}
			rows = append(rows, o)
		}
		return rs.Err()
	})
	return rows, err
}

// leaseMySQL locks the rows with SKIP LOCKED, then leases them, in one
// READ COMMITTED transaction.
func (r *Relay) leaseMySQL(ctx context.Context, owner string, now, until time.Time) ([]row, error) {
	var rows []row
	err := r.db.RunInTx(ctx, readCommitted, func(ctx context.Context, tx bun.Tx) error {
		rows = rows[:0]
		if err := tx.NewSelect().Model(&rows).
			Where("published_at IS NULL").Where("quarantined_at IS NULL").
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("lease_until IS NULL").WhereOr("lease_until < ?", now)
			}).Order("seq").Limit(int64(r.cfg.BatchSize)).For("UPDATE SKIP LOCKED").Scan(ctx); err != nil || len(rows) == 0 {
			return err
		}
		seqs := make([]int64, len(rows))
		for i, o := range rows {
			seqs[i] = o.Seq
		}
		_, err := tx.NewUpdate().Model((*row)(nil)).
			Set("lease_until = ?", until).Set("lease_owner = ?", owner).
			Where("seq IN (?)", bun.List(seqs)).Exec(ctx)
		return err
	})
	return rows, err
}

// release gives a failed batch back at once rather than after LeaseTTL.
func (r *Relay) release(ctx context.Context, owner string) error {
	err := r.write(ctx, func(ctx context.Context, db bun.IDB) error {
		_, err := db.NewUpdate().Model((*row)(nil)).
			Set("lease_until = NULL").Set("lease_owner = NULL").
			Where("lease_owner = ?", owner).Where("published_at IS NULL").Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// markPublished records a published batch in one statement: its time,
// and per family the epoch and the last entry id the batch appended there
// (the rollback check compares it with the stream's last generated id).
// The values are per family, not per row, and the rows are found by their
// lease owner within the batch's seq range: a statement with a value per
// row (a CASE of BatchSize branches, evaluated for every row) cost several
// times the update itself. Rows whose lease another relay took over
// meanwhile keep that relay's result, which only means a duplicate the
// consumers skip.
func (r *Relay) markPublished(ctx context.Context, owner string, rows []row, ids []string, epochs map[string]string) error {
	if len(ids) != len(rows) {
		return fmt.Errorf("publisher returned %d ids for %d events", len(ids), len(rows))
	}
	// An id that does not parse as a stream id (from a publisher other
	// than Redis) is kept only when the family has no other, since the
	// rollback check does not take it as evidence of a loss either.
	last := map[string]string{}
	lastParsed := map[string]streamid.ID{}
	for i, o := range rows {
		id, err := streamid.Parse(ids[i])
		if err != nil {
			if _, ok := last[o.Stream]; !ok {
				last[o.Stream] = ids[i]
			}
			continue
		}
		if prev, ok := lastParsed[o.Stream]; !ok || prev.Less(id) {
			lastParsed[o.Stream], last[o.Stream] = id, ids[i]
		}
	}
	var b strings.Builder
	args := make([]any, 0, 4*len(epochs)+4)
	b.WriteString("UPDATE outbox SET published_at = ?, lease_until = NULL, lease_owner = NULL, stream_id = CASE stream")
	args = append(args, time.Now().UTC())
	for f, id := range last {
		b.WriteString(" WHEN ? THEN ?")
		args = append(args, f, id)
	}
	b.WriteString(" END, epoch = CASE stream")
	for f, e := range epochs {
		b.WriteString(" WHEN ? THEN ?")
		args = append(args, f, e)
	}
	b.WriteString(" END WHERE lease_owner = ? AND seq BETWEEN ? AND ?")
	lo, hi := rows[0].Seq, rows[0].Seq
	for _, o := range rows {
		lo, hi = min(lo, o.Seq), max(hi, o.Seq)
	}
	args = append(args, owner, lo, hi)
	var err error
	if r.mysql {
		err = r.write(ctx, func(ctx context.Context, db bun.IDB) error {
			_, err := db.ExecContext(ctx, b.String(), args...)
			return err
		})
	} else {
		if r.db.Dialect().Name() == dialect.PG {
			b.WriteString(" AND " + asyncCommitPG)
		}
		_, err = r.db.ExecContext(ctx, b.String(), args...)
	}
	if err != nil {
		return fmt.Errorf("mark %d rows published: %w", len(rows), err)
	}
	return nil
}

// quarantine sets a row aside so that the rows after it are published.
func (r *Relay) quarantine(ctx context.Context, o row, reason string) error {
	if err := r.write(ctx, func(ctx context.Context, db bun.IDB) error {
		_, err := db.NewUpdate().Model((*row)(nil)).
			Set("quarantined_at = ?", time.Now().UTC()).Set("quarantine_reason = ?", reason).
			Set("lease_until = NULL").Set("lease_owner = NULL").
			Where("seq = ?", o.Seq).Exec(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("quarantine row %d: %w", o.Seq, err)
	}
	metricQuarantined.WithLabelValues(r.cfg.Producer).Inc()
	r.log.Error("eventbus: outbox row cannot be published; quarantined (eventctl outbox list / requeue)",
		"seq", o.Seq, "event_id", o.EventID, "type", o.Type, "reason", reason)
	return nil
}

// epochFor returns an epoch of family's stream to record with rows about
// to be published there, checking the stream first when the relay has
// none yet.
func (r *Relay) epochFor(ctx context.Context, family string) (string, error) {
	if r.epochs == nil {
		return "", nil
	}
	if e, ok := r.current[family]; ok {
		return e, nil
	}
	if err := r.checkFamily(ctx, family); err != nil {
		return "", err
	}
	return r.current[family], nil
}

// maintain detects loss, trims streams and prunes old rows, logging
// failures. A failure for one family does not stop the others.
func (r *Relay) maintain(ctx context.Context) {
	if r.epochs != nil && r.detect {
		for _, f := range contracts.Families() {
			if err := r.checkFamily(ctx, f); err != nil && ctx.Err() == nil {
				r.log.Warn("eventbus: outbox loss check failed", "stream", f, "err", err)
			}
		}
	}
	if r.trim != nil {
		for _, f := range contracts.Families() {
			if err := r.trim.Trim(ctx, f, r.cfg.TrimMinAge); err != nil && ctx.Err() == nil {
				r.log.Warn("eventbus: trimming stream failed", "stream", f, "err", err)
			}
		}
	}
	if err := r.prune(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("eventbus: outbox prune failed", "err", err)
	}
}

// prune deletes the published rows created before retention. Rows are
// numbered in about the order they were created, so the first row still
// within retention bounds the primary-key range to look at: the cost is
// that of the rows pruned (and of the old ones kept, pending or
// quarantined), not of the table.
func (r *Relay) prune(ctx context.Context) error {
	cutoff := time.Now().UTC().Add(-r.cfg.Retention)
	var bound []int64
	if err := r.db.NewSelect().Model((*row)(nil)).ColumnExpr("seq").
		Where("created_at >= ?", cutoff).Order("seq").Limit(1).Scan(ctx, &bound); err != nil {
		return err
	}
	return r.write(ctx, func(ctx context.Context, db bun.IDB) error {
		q := db.NewDelete().Model((*row)(nil)).Where("published_at IS NOT NULL").Where("created_at < ?", cutoff)
		if len(bound) > 0 {
			// An old row numbered above the bound (its transaction
			// committed after younger ones) waits for a later round.
			q = q.Where("seq < ?", bound[0])
		}
		_, err := q.Exec(ctx)
		return err
	})
}

// checkFamily compares what the outbox says was published to family's
// stream with what the stream holds. Rows recorded under an epoch that is
// no longer on the stream (or under none, from an earlier release) were
// appended to a stream that has since been lost, so they are queued again;
// so are rows the stream cannot hold because their id lies beyond its last
// generated id (a store restored from an older snapshot). A stream without
// an epoch gets one before the reset, so that a loss during the
// republication is noticed too.
func (r *Relay) checkFamily(ctx context.Context, family string) error {
	started := time.Now().UTC()
	epochs, lastID, err := r.epochs.StreamEpochs(ctx, family)
	if err != nil {
		return err
	}
	if len(epochs) == 0 {
		e, err := r.epochs.NewStreamEpoch(ctx, family)
		if err != nil {
			return err
		}
		epochs = []string{e}
	}
	slices.Sort(epochs)
	cur, had := r.current[family]
	if !had || !slices.Contains(epochs, cur) {
		r.current[family] = epochs[0]
	}
	if !r.detect {
		return nil
	}
	cutoff := time.Now().UTC().Add(-r.cfg.Retention)
	used, err := r.usedEpochs(ctx, family)
	if err != nil {
		return fmt.Errorf("list epochs of %s: %w", family, err)
	}
	var n int64
	for _, e := range used {
		if e.Valid && slices.Contains(epochs, e.String) {
			continue
		}
		err = r.write(ctx, func(ctx context.Context, db bun.IDB) error {
			q := db.NewUpdate().Model((*row)(nil)).
				Set("published_at = NULL").Set("stream_id = NULL").Set("epoch = NULL").
				Where("stream = ?", family).Where("published_at IS NOT NULL").Where("created_at >= ?", cutoff)
			if e.Valid {
				q = q.Where("epoch = ?", e.String)
			} else {
				q = q.Where("epoch IS NULL")
			}
			res, err := q.Exec(ctx)
			if err == nil {
				m, _ := res.RowsAffected()
				n += m
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("queue lost rows of %s: %w", family, err)
		}
	}
	if n == 0 {
		n, err = r.checkRollback(ctx, family, lastID, epochs, started, cutoff)
		if err != nil {
			return err
		}
	}
	if n > 0 {
		metricLoss.WithLabelValues(r.cfg.Producer, family).Inc()
		r.log.Warn("eventbus: events lost from the stream store; republishing from the outbox",
			"stream", family, "rows", n)
		r.Notify()
	}
	return nil
}

// usedEpochs lists the distinct epochs (NULL included) of family's
// published rows with a loose scan of the (stream, epoch, published_at)
// index, which holds only published rows on PostgreSQL and SQLite, so
// every statement names published_at IS NOT NULL: one probe
// per epoch, each with constant bounds, which every database answers from
// the index alone (MariaDB does not for a correlated bound, so the loop is
// here rather than in a recursive query). Epochs are few: a stream gets a
// new one only after a loss.
func (r *Relay) usedEpochs(ctx context.Context, family string) ([]sql.NullString, error) {
	var out []sql.NullString
	var hasNull int
	if err := r.db.NewRaw("SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE stream = ? AND epoch IS NULL AND published_at IS NOT NULL LIMIT 1) AS x", family).Scan(ctx, &hasNull); err != nil {
		return nil, err
	}
	if hasNull > 0 {
		out = append(out, sql.NullString{})
	}
	// The first probe includes the empty epoch, which a relay whose
	// publisher keeps no epochs records.
	// The first row in index order rather than MIN(epoch): MariaDB, whose
	// index holds every row, reads the first entry of the range for MIN
	// only when no other column is tested, and read every published row.
	query := "SELECT (SELECT epoch FROM outbox WHERE stream = ? AND published_at IS NOT NULL AND epoch >= ? ORDER BY epoch LIMIT 1)"
	var after string
	for {
		var e sql.NullString
		if err := r.db.NewRaw(query, family, after).Scan(ctx, &e); err != nil {
			return nil, err
		}
		if !e.Valid {
			return out, nil
		}
		out = append(out, e)
		query, after = "SELECT (SELECT epoch FROM outbox WHERE stream = ? AND published_at IS NOT NULL AND epoch > ? ORDER BY epoch LIMIT 1)", e.String
	}
}

// checkRollback queues the family's rows again when the row of a live
// epoch marked published last before the check started records an id
// beyond the stream's last generated id, which only a store restored from
// an older snapshot shows. Publication order, not seq order: a re-queued or
// long-leased row is published after rows numbered above it, and carries
// the newest id (TestRollbackToOlderSnapshotRepublishes). Each row records
// the last id its batch appended to the family, so a snapshot that lost
// only the end of a batch is caught whichever row of the batch is read
// (TestRollbackLosingTheEndOfABatchRepublishes).
// Rows marked later may carry ids the stream generated after lastID was
// read, so they are left out (with a second of margin for clock skew
// between replicas).
func (r *Relay) checkRollback(ctx context.Context, family, lastID string, epochs []string, started, cutoff time.Time) (int64, error) {
	if lastID == "" {
		return 0, nil
	}
	last, err := streamid.Parse(lastID)
	if err != nil {
		return 0, err
	}
	rolledBack := false
	for _, e := range epochs {
		var newest []row
		if err := r.db.NewSelect().Model(&newest).Column("stream_id").
			Where("stream = ?", family).Where("epoch = ?", e).Where("published_at IS NOT NULL").
			Where("published_at < ?", started.Add(-time.Second)).Where("stream_id IS NOT NULL").
			Order("published_at DESC").Limit(1).Scan(ctx); err != nil {
			return 0, err
		}
		if len(newest) == 0 {
			continue
		}
		if id, err := streamid.Parse(newest[0].StreamID); err == nil && last.Less(id) {
			rolledBack = true // an id we cannot parse is not evidence of a loss
		}
	}
	if !rolledBack {
		return 0, nil
	}
	var n int64
	err = r.write(ctx, func(ctx context.Context, db bun.IDB) error {
		res, err := db.NewUpdate().Model((*row)(nil)).
			Set("published_at = NULL").Set("stream_id = NULL").Set("epoch = NULL").
			Where("stream = ?", family).Where("published_at IS NOT NULL").Where("created_at >= ?", cutoff).Exec(ctx)
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue rolled-back rows of %s: %w", family, err)
	}
	return n, nil
}

// leaseSettingsPG is set for the lease's transaction on PostgreSQL, in the
// one round trip of a simple-protocol statement: a commit that does not
// wait for the flush (a lost lease only expires), and no bitmap scans. The
// partial index of pending rows keeps an entry for every row marked
// published until VACUUM removes it, and the planner, which estimates the
// index at a few rows, chose a bitmap scan for the lease: it visits the
// heap for every such dead entry on every lease and never marks them dead
// (measured: 50,100 entries and 5,568 heap pages for 100 pending rows, 4 to
// 15 ms per lease, the relay's largest cost in make bench-events). A plain
// index scan in seq order marks the dead entries it passes, so later
// leases skip them without touching the heap (0.9 ms for the same lease).
const leaseSettingsPG = "SET LOCAL synchronous_commit TO OFF; SET LOCAL enable_bitmapscan TO OFF"

// asyncCommitPG is a condition that holds for every row and makes the one
// PostgreSQL statement it is part of commit without waiting for the flush,
// as write's SET LOCAL does, but in one round trip instead of four (BEGIN,
// SET, the statement, COMMIT): the setting lasts until the statement's
// implicit transaction commits. The relay's mark uses it (the lease needs
// a setting before planning, see leaseSettingsPG). A statement that matches no row
// never evaluates it, and then has nothing to flush.
const asyncCommitPG = "set_config('synchronous_commit', 'off', true) IS NOT NULL"

// readCommitted is the isolation of the relay's writes on MariaDB: under
// its default REPEATABLE READ the relay's range updates take gap locks
// that deadlock with the services' outbox inserts.
var readCommitted = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// write runs fn on the database: inside a READ COMMITTED transaction on
// MariaDB (see readCommitted); on PostgreSQL inside a transaction that
// does not wait for its commit to be flushed, because losing a lease or a
// published mark in a database crash only republishes rows, which
// consumers skip, and waiting for the flush would add two disk syncs to
// every event's latency; directly on SQLite.
func (r *Relay) write(ctx context.Context, fn func(ctx context.Context, db bun.IDB) error) error {
	switch {
	case r.mysql:
		return r.db.RunInTx(ctx, readCommitted, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
	case r.db.Dialect().Name() == dialect.PG:
		return r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO OFF"); err != nil {
				return err
			}
			return fn(ctx, tx)
		})
	default:
		return fn(ctx, r.db)
	}
}
