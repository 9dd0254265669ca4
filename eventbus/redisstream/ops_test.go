package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/internal/consume"
	"github.com/bugtracker/bugtracker/eventbus/internal/redistest"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

// TestTrimKeepsUnacknowledgedEntries is defect 8: trimming removes only
// entries every group has acknowledged. Group g1 read ten entries and
// acknowledged five, g2 read and acknowledged all ten, and an epoch group
// sits at the start (and does not count): after Trim the stream starts at
// the sixth entry, the first g1 still owes.
func TestTrimKeepsUnacknowledgedEntries(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix, pub := publisher(t, client)
	key := eventbus.StreamKey(prefix, contracts.FamilyCard)
	var ids []string
	for range 10 {
		got, err := pub.Publish(ctx, card(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	read := func(group string, n int64, ack int) {
		if err := client.XGroupCreate(ctx, key, group, "0").Err(); err != nil {
			t.Fatal(err)
		}
		msgs, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{key, ">"}, Count: n}).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs[0].Messages[:ack] {
			client.XAck(ctx, key, group, m.ID)
		}
	}
	read("g1", 10, 5)
	read("g2", 10, 10)
	if err := client.XGroupCreate(ctx, key, redisstream.EpochGroupPrefix+"x", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Trim(ctx, contracts.FamilyCard, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	first, err := client.XRangeN(ctx, key, "-", "+", 1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := client.XLen(ctx, key).Val(); n != 5 || first[0].ID != ids[5] {
		t.Fatalf("after Trim the stream holds %d entries from %s, want 5 from %s", n, first[0].ID, ids[5])
	}
	// With a minimum age nothing recent goes.
	read("g3", 10, 5)
	client.XGroupDestroy(ctx, key, "g2")
	client.XGroupDestroy(ctx, key, "g1")
	if err := pub.Trim(ctx, contracts.FamilyCard, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := client.XLen(ctx, key).Val(); n != 5 {
		t.Fatalf("Trim with a minimum age of an hour left %d entries, want 5", n)
	}
}

// TestDeletedPendingEntryIsDeadLettered: an entry deleted by hand while
// pending is reported by XAUTOCLAIM as deleted; it is dead-lettered (so an
// operator sees it) rather than acknowledged silently.
func TestDeletedPendingEntryIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix := redistest.Prefix(t, client)
	key := eventbus.StreamKey(prefix, contracts.FamilyCard)
	id := client.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"envelope", "{}"}}).Val()
	client.XGroupCreate(ctx, key, "g", "0")
	client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{key, ">"}})
	client.XDel(ctx, key, id)
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "g", Consumer: "c", Families: []string{contracts.FamilyCard},
		Block: 50 * time.Millisecond, ClaimMinIdle: 100 * time.Millisecond, ClaimInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Start(t, ctx, sub, func(context.Context, *eventbus.Message) error { return nil })
	var dl []eventbus.DeadLetter
	eventbustest.Eventually(t, "the deleted entry is dead-lettered", func() bool {
		dl, _ = redisstream.DeadLetters(ctx, client, prefix, "g", 10)
		return len(dl) == 1
	})
	if dl[0].EntryID != id || dl[0].Error != consume.ErrEntryDeleted.Error() {
		t.Fatalf("dead letter %+v", dl[0])
	}
}

// TestDeadLetterStreamIsBounded: the dead-letter stream is trimmed to
// about DeadLetterMaxLen entries (Redis trims whole nodes of 100), and its
// length is exported as a gauge.
func TestDeadLetterStreamIsBounded(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix := redistest.Prefix(t, client)
	key := eventbus.StreamKey(prefix, contracts.FamilyCard)
	pipe := client.Pipeline()
	for range 600 {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"envelope", "not json"}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "g", Consumer: "c", Families: []string{contracts.FamilyCard},
		Block: 50 * time.Millisecond, DeadLetterMaxLen: 10, BatchSize: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Start(t, ctx, sub, func(context.Context, *eventbus.Message) error { return nil })
	eventbustest.Eventually(t, "every entry is dead-lettered", func() bool { return redistest.Pending(t, client, "g", key) == 0 && groupDone(ctx, client, key) })
	if n := client.XLen(ctx, eventbus.DeadLetterKey(prefix, "g")).Val(); n > 210 {
		t.Fatalf("the dead-letter stream holds %d entries, want about 10 (at most 210)", n)
	}
}

func groupDone(ctx context.Context, c *redis.Client, key string) bool {
	groups, err := c.XInfoGroups(ctx, key).Result()
	return err == nil && len(groups) == 1 && groups[0].Lag == 0
}

// TestConsumerRemovedOnShutdown is defect 11: after a clean shutdown the
// consumer's name is gone from its group, so names of past instances do
// not pile up.
func TestConsumerRemovedOnShutdown(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix := redistest.Prefix(t, client)
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "g", Consumer: "leaving", Families: []string{contracts.FamilyCard}, Block: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	key := eventbus.StreamKey(prefix, contracts.FamilyCard)
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, card(t)); err != nil { // a consumer exists once it read an entry
		t.Fatal(err)
	}
	done := eventbustest.Start(t, ctx, sub, func(context.Context, *eventbus.Message) error { return nil })
	eventbustest.Eventually(t, "the consumer appears in its group", func() bool {
		cs, err := client.XInfoConsumers(ctx, key, "g").Result()
		return err == nil && len(cs) == 1 && cs[0].Pending == 0
	})
	if err := sub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eventbustest.Wait(t, done); err != nil {
		t.Fatal(err)
	}
	if cs, err := client.XInfoConsumers(ctx, key, "g").Result(); err != nil || len(cs) != 0 {
		t.Fatalf("consumers after shutdown %+v, %v; want none", cs, err)
	}
}

// TestIsTransient: infrastructure errors are told from message errors.
func TestIsTransient(t *testing.T) {
	for err, want := range map[error]bool{
		errors.New("invalid payload"):                                 false,
		eventbus.Transient(errors.New("x")):                           true,
		eventbus.Permanent(context.DeadlineExceeded):                  false,
		fmt.Errorf("find: %w", context.DeadlineExceeded):              true,
		&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}:         true,
		errors.New("server selection error: context deadline"):        true,
		fmt.Errorf("wrapped: %w", eventbus.Transient(errors.New(""))): true,
	} {
		if got := eventbus.IsTransient(err); got != want {
			t.Errorf("IsTransient(%v) = %v, want %v", err, got, want)
		}
	}
}
