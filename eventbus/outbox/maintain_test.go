package outbox_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/internal/dbtest"
	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

// queryLog records the statements a bun.DB runs.
type queryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (l *queryLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, e.Query)
}

// rowsVisited sums, over the plan nodes reading outbox, the rows they
// returned and the rows their filters discarded, as EXPLAIN ANALYZE
// reports them.
func rowsVisited(node map[string]any) float64 {
	n := 0.0
	if node["Relation Name"] == "outbox" {
		loops, _ := node["Actual Loops"].(float64)
		rows, _ := node["Actual Rows"].(float64)
		removed, _ := node["Rows Removed by Filter"].(float64)
		n += (rows + removed) * max(loops, 1)
	}
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				n += rowsVisited(m)
			}
		}
	}
	return n
}

// TestMaintenanceCostDoesNotGrowWithTheTable: the loss check, rollback
// check and prune that every relay runs every CheckInterval read index
// entries of the epochs and of the rows they prune, not every row within
// retention. Before, the loss check and the prune each read every row of
// the table (about 150 ms each at 500,000 rows), every 5 s, in every
// replica. Measured with EXPLAIN ANALYZE of every statement a maintenance
// round runs, on PostgreSQL with 20,000 published rows beside a backlog,
// a lost epoch and rows to prune.
func TestMaintenanceCostDoesNotGrowWithTheTable(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	migrate(t, db)
	bus := memory.New()
	r, stop := runRelay(t, db, bus)
	envs := events(t, 200)
	commit(t, db, r, envs...)
	waitPublished(t, bus, envs)
	stop()
	// 20,000 more rows as the relay publishes them: under the epoch of the
	// live stream, created within retention.
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (event_id, type, stream, envelope, created_at, published_at, stream_id, epoch)
		SELECT 'filler-' || i, type, stream, envelope, created_at, published_at, stream_id, epoch
		FROM generate_series(1, 20000) AS i, (SELECT * FROM outbox ORDER BY seq LIMIT 1) AS o`); err != nil {
		t.Fatal(err)
	}
	// Published a while ago, as most rows within retention are.
	if _, err := db.ExecContext(ctx, "UPDATE outbox SET published_at = published_at - INTERVAL '10 minutes', created_at = created_at - INTERVAL '10 minutes'"); err != nil {
		t.Fatal(err)
	}
	// A backlog of 1,500 pending rows, 300 rows published under an epoch that
	// is gone (re-queued by the round) and 300 rows past retention (pruned).
	for _, q := range []string{
		`INSERT INTO outbox (event_id, type, stream, envelope, created_at)
			SELECT 'pending-' || i, type, stream, envelope, now() FROM generate_series(1, 1500) AS i, (SELECT * FROM outbox ORDER BY seq LIMIT 1) AS o`,
		`INSERT INTO outbox (event_id, type, stream, envelope, created_at, published_at, stream_id, epoch)
			SELECT 'lost-' || i, type, stream, envelope, created_at, published_at, stream_id, 'epoch-that-is-gone'
			FROM generate_series(1, 300) AS i, (SELECT * FROM outbox ORDER BY seq LIMIT 1) AS o`,
		// Numbered below the others, as the oldest rows are.
		`INSERT INTO outbox (seq, event_id, type, stream, envelope, created_at, published_at, stream_id, epoch)
			SELECT -i, 'old-' || i, type, stream, envelope, now() - INTERVAL '2 hours', now() - INTERVAL '2 hours', stream_id, epoch
			FROM generate_series(1, 300) AS i, (SELECT * FROM outbox ORDER BY seq LIMIT 1) AS o`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE outbox"); err != nil {
		t.Fatal(err)
	}
	log := &queryLog{}
	r2, err := outbox.NewRelay(db.WithQueryHook(log), bus, outbox.RelayConfig{Producer: "p", Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	outbox.Maintain(ctx, r2)
	var lost, old int
	if err := db.NewRaw("SELECT COUNT(*) FILTER (WHERE event_id LIKE 'lost-%' AND published_at IS NULL), COUNT(*) FILTER (WHERE event_id LIKE 'old-%') FROM outbox").Scan(ctx, &lost, &old); err != nil {
		t.Fatal(err)
	}
	if lost != 300 || old != 0 {
		t.Fatalf("after the round %d of 300 rows of the lost epoch are queued again and %d of 300 old rows are left", lost, old)
	}
	log.mu.Lock()
	queries := append([]string(nil), log.queries...)
	log.mu.Unlock()
	checked := 0
	for _, q := range queries {
		if !strings.Contains(q, "outbox") || strings.HasPrefix(q, "SET ") || strings.HasPrefix(q, "BEGIN") || strings.HasPrefix(q, "COMMIT") {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var raw string
		err = tx.QueryRowContext(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q).Scan(&raw)
		_ = tx.Rollback()
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		var plans []struct {
			Plan map[string]any `json:"Plan"`
		}
		if err := json.Unmarshal([]byte(raw), &plans); err != nil {
			t.Fatal(err)
		}
		checked++
		if n := rowsVisited(plans[0].Plan); n > 1000 {
			t.Errorf("a maintenance statement visits %.0f outbox rows of 22,300:\n%s", n, q)
		}
	}
	if checked < 5 {
		t.Fatalf("only %d maintenance statements seen: %q", checked, queries)
	}
}

// rolledBackBus is a memory bus whose streams, once lastID is set, report
// it as their last generated id, as a Redis restored from an older
// snapshot does: its epochs survived, its newer entries did not.
type rolledBackBus struct {
	*memory.Bus
	lastID atomic.Pointer[string]
}

func (b *rolledBackBus) StreamEpochs(ctx context.Context, family string) ([]string, string, error) {
	epochs, last, err := b.Bus.StreamEpochs(ctx, family)
	if id := b.lastID.Load(); id != nil && last != "" {
		last = *id
	}
	return epochs, last, err
}

// TestRollbackToOlderSnapshotRepublishes: rows whose stream ids lie beyond
// the stream's last generated id are queued again although their epoch is
// still on the stream. The snapshot here holds every card but the one
// published last, which is the oldest row (it was queued again, as
// eventctl outbox requeue or an expired lease does): the check must go by
// publication, not by row number.
//
// The test waits for the relay's marks in the table, not for the entries
// on the bus: the relay appends an entry before it marks its row, and
// under load the gap is long enough for a read of the row to find no
// stream id yet (an empty last id then disables the check) or for the
// re-queueing to be overwritten by the pending mark.
func TestRollbackToOlderSnapshotRepublishes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		migrate(t, db)
		bus := &rolledBackBus{Bus: memory.New()}
		r := startRelay(t, db, bus)
		envs := events(t, 6)
		commit(t, db, r, envs...)
		cards := func() int { return len(bus.Stream(contracts.FamilyCard)) }
		marked := func() int { return markedCards(t, db) }
		eventbustest.Eventually(t, "the relay published and marked 3 cards", func() bool { return cards() == 3 && marked() == 3 })
		var newest struct {
			Seq      int64  `bun:"seq"`
			StreamID string `bun:"stream_id"`
		}
		if err := db.NewRaw("SELECT seq, stream_id FROM outbox WHERE stream = ? ORDER BY seq DESC LIMIT 1", contracts.FamilyCard).Scan(ctx, &newest); err != nil {
			t.Fatal(err)
		}
		if newest.StreamID == "" {
			t.Fatal("the newest card row has no stream id although it is marked")
		}
		var oldest int64
		if err := db.NewRaw("SELECT MIN(seq) FROM outbox WHERE stream = ?", contracts.FamilyCard).Scan(ctx, &oldest); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "UPDATE outbox SET published_at = NULL, stream_id = NULL, epoch = NULL WHERE seq = ?", oldest); err != nil {
			t.Fatal(err)
		}
		r.Notify()
		eventbustest.Eventually(t, "the oldest card published and marked again", func() bool {
			return cards() == 4 && marked() == 3
		})
		time.Sleep(1100 * time.Millisecond) // the check leaves out rows marked in the last second
		bus.lastID.Store(&newest.StreamID)
		eventbustest.Eventually(t, "every card published again after the rollback", func() bool { return cards() >= 7 })
	})
}

// TestRollbackLosingTheEndOfABatchRepublishes: a snapshot that holds the
// first cards of a batch but not its last one is caught, although every
// row of the batch was marked at the same time and the check reads only
// one of them.
func TestRollbackLosingTheEndOfABatchRepublishes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		migrate(t, db)
		bus := &rolledBackBus{Bus: memory.New()}
		r := startRelay(t, db, bus)
		commit(t, db, r, events(t, 6)...) // one batch: 3 cards, 3 comments
		cards := func() int { return len(bus.Stream(contracts.FamilyCard)) }
		eventbustest.Eventually(t, "the relay published and marked 3 cards", func() bool {
			return cards() == 3 && markedCards(t, db) == 3
		})
		kept := bus.Stream(contracts.FamilyCard)[1].ID
		time.Sleep(1100 * time.Millisecond) // the check leaves out rows marked in the last second
		bus.lastID.Store(&kept)
		eventbustest.Eventually(t, "every card published again after the rollback", func() bool { return cards() >= 6 })
	})
}

// markedCards counts the card rows the relay marked published.
func markedCards(t *testing.T, db *bun.DB) int {
	var n int
	if err := db.NewRaw("SELECT COUNT(*) FROM outbox WHERE stream = ? AND stream_id IS NOT NULL", contracts.FamilyCard).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRowsOfAnEarlierReleaseAreChecked: a row an earlier release marked
// published without an epoch cannot be proven to be on its stream, so the
// loss check queues it again.
func TestRowsOfAnEarlierReleaseAreChecked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		migrate(t, db)
		env := events(t, 1)[0]
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if _, err := db.ExecContext(context.Background(),
			"INSERT INTO outbox (event_id, type, stream, envelope, created_at, published_at, stream_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
			env.ID, env.Type, contracts.Family(env.Type), string(raw), now, now, "1-0"); err != nil {
			t.Fatal(err)
		}
		bus := memory.New()
		startRelay(t, db, bus)
		waitPublished(t, bus, []eventbus.Envelope{env})
	})
}
