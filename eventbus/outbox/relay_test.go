package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/internal/dbtest"
	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

// hungPublisher blocks every Publish until released, like a Redis that
// accepts connections and never answers.
type hungPublisher struct {
	calls   atomic.Int64
	release chan struct{}
	inner   eventbus.Publisher
}

func (p *hungPublisher) Publish(ctx context.Context, envs ...eventbus.Envelope) ([]string, error) {
	p.calls.Add(1)
	select {
	case <-p.release:
		return p.inner.Publish(ctx, envs...)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestRelayHoldsNoLockDuringPublish is defect 5: while Publish hangs, the
// rows being published and the table stay writable. Before the fix the
// relay held its transaction (the only SQLite connection; the rows' FOR
// UPDATE locks elsewhere) across the Redis call, so these writes timed out.
func TestRelayHoldsNoLockDuringPublish(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		migrate(t, db)
		pub := &hungPublisher{release: make(chan struct{}), inner: memory.New()}
		r := startRelay(t, db, pub)
		envs := events(t, 3)
		commit(t, db, r, envs...)
		eventbustest.Eventually(t, "the relay is inside Publish", func() bool { return pub.calls.Load() > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := db.NewUpdate().TableExpr("outbox").Set("envelope = envelope").Where("event_id = ?", envs[0].ID).Exec(ctx); err != nil {
			t.Fatalf("updating a row under publication: %v", err)
		}
		if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return outbox.Add(ctx, tx, events(t, 1)...)
		}); err != nil {
			t.Fatalf("an unrelated outbox write: %v", err)
		}
		close(pub.release)
	})
}

// insertRaw stores a row as a buggy or newer release might have written it.
func insertRaw(t *testing.T, db *bun.DB, eventID, typ, stream, envelope string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(),
		"INSERT INTO outbox (event_id, type, stream, envelope, created_at) VALUES (?, ?, ?, ?, ?)",
		eventID, typ, stream, envelope, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
}

// TestRelayQuarantinesUnpublishableRows is defect 4: an undecodable row and
// a row of a type this release does not know come first, yet every later
// row is published; the two are listed as quarantined with their reason,
// and a re-queued row that is fixed gets published.
func TestRelayQuarantinesUnpublishableRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		migrate(t, db)
		bus := memory.New()
		insertRaw(t, db, "garbage", contracts.TypeNewCard, contracts.FamilyCard, "{not json")
		future := `{"id":"future","type":"cardArchived","version":1,"aggregateId":"c","payload":{}}`
		insertRaw(t, db, "future", "cardArchived", contracts.FamilyCard, future)
		r := startRelay(t, db, bus)
		envs := events(t, 25)
		commit(t, db, r, envs...)
		eventbustest.Eventually(t, "every valid row is published", func() bool { return holdsAll(bus, envs) })
		q, err := outbox.ListQuarantined(ctx, db, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != 2 || q[0].EventID != "garbage" || !strings.Contains(q[0].Reason, "decode") ||
			q[1].EventID != "future" || !strings.Contains(q[1].Reason, "unknown") {
			t.Fatalf("quarantined rows %+v", q)
		}
		good, err := contracts.New(contracts.CardCreated{CardID: "fixed"}, "fixed", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		good.ID = "garbage"
		b, _ := jsonMarshal(good)
		if _, err := db.NewUpdate().TableExpr("outbox").Set("envelope = ?", b).Where("seq = ?", q[0].Seq).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := outbox.Requeue(ctx, db, q[0].Seq); err != nil || n != 1 {
			t.Fatalf("Requeue = %d, %v", n, err)
		}
		r.Notify()
		eventbustest.Eventually(t, "the fixed row is published", func() bool { return holdsAll(bus, []eventbus.Envelope{good}) })
		if q, _ := outbox.ListQuarantined(ctx, db, 10); len(q) != 1 || q[0].EventID != "future" {
			t.Fatalf("after requeue the quarantine holds %+v, want only the future row", q)
		}
	})
}

// TestRetentionCountsFromCreation is defect 3: a row republished recently
// but created beyond retention is pruned, and is not republished when its
// stream is lost; a row created within retention is republished.
func TestRetentionCountsFromCreation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		migrate(t, db)
		bus := memory.New()
		envs := events(t, 2) // a card and a comment
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return outbox.Add(ctx, tx, envs...) })
		if err != nil {
			t.Fatal(err)
		}
		// The card row is old and was republished a minute ago under an
		// epoch that is gone; the comment row is recent, same epoch.
		now := time.Now().UTC()
		set := func(id string, created time.Time) {
			if _, err := db.NewUpdate().TableExpr("outbox").
				Set("created_at = ?", created).Set("published_at = ?", now.Add(-time.Minute)).
				Set("stream_id = ?", "1-1").Set("epoch = ?", "gone").Where("event_id = ?", id).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		set(envs[0].ID, now.Add(-outbox.MaxRetention-time.Hour))
		set(envs[1].ID, now.Add(-outbox.MaxRetention+time.Hour))
		startRelay(t, db, bus)
		eventbustest.Eventually(t, "the recent row is republished", func() bool {
			return holdsAll(bus, envs[1:])
		})
		eventbustest.Eventually(t, "the old row is pruned", func() bool {
			n, err := db.NewSelect().TableExpr("outbox").Where("event_id = ?", envs[0].ID).Count(ctx)
			return err == nil && n == 0
		})
		if len(bus.Stream(contracts.FamilyCard)) != 0 {
			t.Fatal("a row beyond retention was republished")
		}
	})
}

// TestInboxOutlivesOutboxRetention: by construction the inbox keeps a
// record longer than the outbox can republish its event, even when a
// caller asks to prune sooner, so a republished event is never applied
// twice.
func TestInboxOutlivesOutboxRetention(t *testing.T) {
	if inbox.MinRetention <= outbox.MaxRetention {
		t.Fatalf("inbox.MinRetention %s must exceed outbox.MaxRetention %s", inbox.MinRetention, outbox.MaxRetention)
	}
	if _, err := outbox.NewRelay(dbtest.SQLite(t), memory.New(), outbox.RelayConfig{Producer: "p", Retention: outbox.MaxRetention + time.Hour}); err == nil {
		t.Fatal("a relay accepted a retention beyond MaxRetention")
	}
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		dbtest.Migrate(t, db)
		in := inbox.New(db, "g")
		if _, err := in.Apply(ctx, "e", func(context.Context, bun.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		// Applied just after creation, republished at the last moment.
		if _, err := db.NewUpdate().TableExpr("processed_events").
			Set("processed_at = ?", time.Now().UTC().Add(-outbox.MaxRetention)).Where("event_id = ?", "e").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.Prune(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		applied, err := in.Apply(ctx, "e", func(context.Context, bun.Tx) error { return nil })
		if err != nil || applied {
			t.Fatalf("the republished event was applied again (%v, %v): its record was pruned too early", applied, err)
		}
	})
}

// TestLeaseIsExclusive: relays leasing concurrently never get the same
// row while its lease runs (the check-then-act of the lease, on every
// database).
func TestLeaseIsExclusive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		migrate(t, db)
		const total = 300
		envs := events(t, total)
		if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return outbox.Add(ctx, tx, envs...) }); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		owners := map[int64]string{}
		var wg sync.WaitGroup
		var failures atomic.Int64
		for w := range 6 {
			r, err := outbox.NewRelay(db, memory.New(), outbox.RelayConfig{Producer: "p", BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for i := 0; i < total; i++ { // bounded: a broken lease returns the same rows forever
					owner := fmt.Sprintf("w%d-%d", w, i)
					seqs, err := outbox.Lease(ctx, r, owner)
					if err != nil {
						failures.Add(1) // lock timeouts under contention are retried
						if failures.Load() > 100 {
							return
						}
						continue
					}
					if len(seqs) == 0 {
						return
					}
					mu.Lock()
					for _, s := range seqs {
						if prev, dup := owners[s]; dup {
							t.Errorf("row %d leased to %s and %s", s, prev, owner)
						}
						owners[s] = owner
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(owners) != total {
			t.Fatalf("%d rows leased, want %d (%d lease errors)", len(owners), total, failures.Load())
		}
	})
}

// failingPublisher fails every call and records when.
type failingPublisher struct {
	mu    sync.Mutex
	calls []time.Time
}

func (p *failingPublisher) Publish(context.Context, ...eventbus.Envelope) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, time.Now())
	return nil, errors.New("redis is down")
}

// TestRelayBacksOffOnErrors is defect 11: failed publishes are retried
// with a growing, jittered delay rather than every poll interval, and the
// rows stay unpublished for the next attempt.
func TestRelayBacksOffOnErrors(t *testing.T) {
	for attempt := 1; attempt < 12; attempt++ {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := outbox.Backoff(attempt, 10*time.Millisecond, time.Second)
			if d < 10*time.Millisecond || d > time.Second {
				t.Fatalf("Backoff(%d) = %s, outside [10ms, 1s]", attempt, d)
			}
			seen[d] = true
		}
		if attempt > 1 && len(seen) < 10 {
			t.Fatalf("Backoff(%d) took only %d distinct values in 50 draws: no jitter", attempt, len(seen))
		}
	}
	db := dbtest.SQLite(t)
	migrate(t, db)
	pub := &failingPublisher{}
	r, err := outbox.NewRelay(db, pub, outbox.RelayConfig{
		Producer: "p", PollInterval: 5 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	commit(t, db, r, events(t, 1)...)
	_ = r.Run(ctx)
	pub.mu.Lock()
	defer pub.mu.Unlock()
	// A fixed 5ms retry would make about 300 calls; doubling delays with
	// full jitter make a few dozen at most.
	if n := len(pub.calls); n < 3 || n > 60 {
		t.Fatalf("%d publish attempts in 1.5s, want between 3 and 60", n)
	}
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
