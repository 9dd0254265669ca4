package outbox_test

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/internal/dbtest"
	"github.com/bugtracker/bugtracker/eventbus/internal/redistest"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

// lossKinds are the ways a Redis without persistence loses data.
var lossKinds = map[string]func(t *testing.T, srv *redistest.Server, c *redis.Client, prefix string){
	"del-card-stream": func(t *testing.T, _ *redistest.Server, c *redis.Client, prefix string) {
		if err := c.Del(context.Background(), eventbus.StreamKey(prefix, contracts.FamilyCard)).Err(); err != nil {
			t.Error(err)
		}
	},
	"flushall": func(t *testing.T, _ *redistest.Server, c *redis.Client, _ string) {
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Error(err)
		}
	},
	"kill-9-restart-empty": func(_ *testing.T, srv *redistest.Server, _ *redis.Client, _ string) {
		srv.Kill()
		time.Sleep(300 * time.Millisecond) // relays and consumer fail meanwhile
		srv.Start()
	},
}

// TestRedisLossUnderLoadAppliedExactlyOnce is the end-to-end guarantee:
// 1,000 events are committed through the outbox while two relays publish
// them to a redis-server of the test's own and an idempotent consumer
// applies them. At a random point Redis loses data (a stream deleted, the
// dataset flushed, or the server killed with SIGKILL and restarted empty)
// while publishing goes on, and one relay restarts. Afterwards every event
// has taken effect exactly once.
//
// Each kind of loss runs on one database (a kind on every database would
// triple the time for little more coverage: the relay's SQL is the same
// for every kind), so that SQLite, PostgreSQL and MariaDB each get one.
// Set EVENTBUS_LOSS_ALL=1 to run every kind on every database.
func TestRedisLossUnderLoadAppliedExactlyOnce(t *testing.T) {
	open := map[string]func(*testing.T) *bun.DB{
		"del-card-stream": dbtest.SQLite, "flushall": dbtest.MySQL, "kill-9-restart-empty": dbtest.Postgres,
	}
	for name, lose := range lossKinds {
		t.Run(name, func(t *testing.T) {
			if os.Getenv("EVENTBUS_LOSS_ALL") != "" {
				dbtest.Each(t, func(t *testing.T, db *bun.DB) { lossUnderLoad(t, db, lose) })
				return
			}
			t.Parallel()
			lossUnderLoad(t, open[name](t), lose)
		})
	}
}

func lossUnderLoad(t *testing.T, db *bun.DB, lose func(*testing.T, *redistest.Server, *redis.Client, string)) {
	const total = 1000
	ctx := context.Background()
	migrate(t, db)
	dbtest.Migrate(t, db)
	srv := redistest.StartServer(t)
	client := srv.Client()
	prefix := "t:"
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := runRelay(t, db, pub)
	_, stopB := runRelay(t, db, pub)
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "g", Consumer: "c", Block: 100 * time.Millisecond,
		Families: []string{contracts.FamilyCard, contracts.FamilyComment},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Start(t, ctx, sub, dbtest.EffectHandler(inbox.New(db, "g"), func(string, bool) {}))

	envs := events(t, total)
	lossAt := 200 + rand.IntN(600)
	var wg sync.WaitGroup
	for i := 0; i < total; {
		n := min(1+rand.IntN(3), total-i)
		commit(t, db, a, envs[i:i+n]...)
		if i < lossAt && i+n >= lossAt {
			wg.Go(func() {
				lose(t, srv, client, prefix)
				stopB()
				runRelay(t, db, pub) // the replica restarts
			})
		}
		i += n
		if i%20 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Wait()
	for deadline := time.Now().Add(90 * time.Second); len(dbtest.Effects(t, db)) != total; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			var unpublished int
			_ = db.NewSelect().TableExpr("outbox").ColumnExpr("COUNT(*)").Where("published_at IS NULL").Scan(ctx, &unpublished)
			t.Fatalf("after 90s %d of %d events took effect; %d outbox rows unpublished", len(dbtest.Effects(t, db)), total, unpublished)
		}
	}
	eventbustest.EventuallyWithin(t, 30*time.Second, "every outbox row is published", func() bool {
		var unpublished int
		err := db.NewSelect().TableExpr("outbox").ColumnExpr("COUNT(*)").Where("published_at IS NULL").Scan(ctx, &unpublished)
		return err == nil && unpublished == 0
	})
	time.Sleep(300 * time.Millisecond) // let late duplicates arrive
	effects := dbtest.Effects(t, db)
	for _, id := range ids(envs) {
		if effects[id] != 1 {
			t.Fatalf("event %s took effect %d times, want 1", id, effects[id])
		}
	}
}
