package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/internal/dbtest"
	"github.com/bugtracker/bugtracker/eventbus/internal/redistest"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

// TestApplyAtMostOnce: an event id is applied once per consumer, a failed
// fn records nothing, and Prune forgets old records.
func TestApplyAtMostOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		dbtest.Migrate(t, db)
		if err := inbox.CreateTable(ctx, db); err != nil {
			t.Fatalf("CreateTable is not idempotent: %v", err)
		}
		in := inbox.New(db, "g")
		effect := func(id string) func(context.Context, bun.Tx) error {
			return func(ctx context.Context, tx bun.Tx) error { return dbtest.AddEffect(ctx, tx, id) }
		}
		mustApply := func(in *inbox.Inbox, id string, want bool) {
			t.Helper()
			applied, err := in.Apply(ctx, id, effect(id))
			if err != nil || applied != want {
				t.Fatalf("Apply(%s) = %v, %v; want %v, nil", id, applied, err, want)
			}
		}
		mustApply(in, "e1", true)
		mustApply(in, "e1", false)
		boom := errors.New("boom")
		if applied, err := in.Apply(ctx, "e2", func(ctx context.Context, tx bun.Tx) error {
			if err := dbtest.AddEffect(ctx, tx, "e2"); err != nil {
				return err
			}
			return boom
		}); applied || !errors.Is(err, boom) {
			t.Fatalf("failing Apply = %v, %v; want false, boom", applied, err)
		}
		mustApply(in, "e2", true)
		mustApply(inbox.New(db, "other"), "e1", true)
		if got := dbtest.Effects(t, db); got["e1"] != 2 || got["e2"] != 1 {
			t.Fatalf("effects %v, want e1 twice (two consumers) and e2 once", got)
		}
		if err := in.Prune(ctx, inbox.MinRetention); err != nil {
			t.Fatal(err)
		}
		mustApply(in, "e1", false)
		if _, err := db.NewUpdate().TableExpr("processed_events").
			Set("processed_at = ?", time.Now().UTC().Add(-inbox.MinRetention-time.Hour)).Where("event_id = ?", "e1").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.Prune(ctx, -time.Hour); err != nil {
			t.Fatal(err)
		}
		mustApply(in, "e1", true)
	})
}

// TestKillConsumerMidBatch is the crash scenario: consumer A applies the
// first message of its batch (committed) and then dies without acking;
// consumer B claims the whole batch, the inbox skips the event A applied,
// and every event takes effect exactly once with nothing left pending.
func TestKillConsumerMidBatch(t *testing.T) {
	client := redistest.Real(t)
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		dbtest.Migrate(t, db)
		prefix := redistest.Prefix(t, client)
		pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		envs := make([]eventbus.Envelope, n)
		for i := range envs {
			if envs[i], err = contracts.New(contracts.CardCreated{CardID: "c"}, "c", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pub.Publish(ctx, envs...); err != nil {
			t.Fatal(err)
		}
		newSub := func(consumer string) eventbus.Subscriber {
			sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
				Prefix: prefix, Group: "g", Consumer: consumer, Families: []string{contracts.FamilyCard},
				BatchSize: 16, Block: 100 * time.Millisecond,
				ClaimMinIdle: 200 * time.Millisecond, ClaimInterval: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			return sub
		}
		in := inbox.New(db, "g")
		var mu sync.Mutex
		applied := map[string][]bool{}
		seen := func(id string, ok bool) {
			mu.Lock()
			defer mu.Unlock()
			applied[id] = append(applied[id], ok)
		}

		ctxA, crash := context.WithCancel(ctx)
		defer crash()
		handleA := dbtest.EffectHandler(in, seen)
		doneA := eventbustest.Start(t, ctxA, newSub("a"), func(ctx context.Context, m *eventbus.Message) error {
			err := handleA(ctx, m)
			crash()
			return err
		})
		if err := eventbustest.Wait(t, doneA); !errors.Is(err, context.Canceled) {
			t.Fatalf("crashed Run returned %v, want context.Canceled", err)
		}
		key := eventbus.StreamKey(prefix, contracts.FamilyCard)
		if got := dbtest.Effects(t, db); len(got) != 1 || got[envs[0].ID] != 1 {
			t.Fatalf("effects after the crash %v, want only the first event", got)
		}
		if p := redistest.Pending(t, client, "g", key); p != n {
			t.Fatalf("%d entries pending after the crash, want %d", p, n)
		}

		eventbustest.Start(t, ctx, newSub("b"), dbtest.EffectHandler(in, seen))
		eventbustest.Eventually(t, "b applies every event and acks", func() bool {
			return len(dbtest.Effects(t, db)) == n && redistest.Pending(t, client, "g", key) == 0
		})
		for id, c := range dbtest.Effects(t, db) {
			if c != 1 {
				t.Fatalf("event %s applied %d times", id, c)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if first := applied[envs[0].ID]; len(first) != 2 || !first[0] || first[1] {
			t.Fatalf("first event applications %v, want [true false]: B must skip it through the inbox", first)
		}
	})
}
