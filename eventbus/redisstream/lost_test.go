package redisstream_test

import (
	"context"
	"errors"
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

func card(t *testing.T) eventbus.Envelope {
	env, err := contracts.New(contracts.CardCreated{CardID: "c"}, "c", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestLost covers each way a stream can lose an entry the relay published,
// and that trimming by MAXLEN is not mistaken for a loss.
func TestLost(t *testing.T) {
	ctx := context.Background()
	m, client := redistest.Mini(t)
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: "p:", MaxLen: 5})
	if err != nil {
		t.Fatal(err)
	}
	key := eventbus.StreamKey("p:", contracts.FamilyCard)
	publish := func(n int) []string {
		var ids []string
		for range n {
			got, err := pub.Publish(ctx, card(t))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got...)
		}
		return ids
	}
	assertLost := func(what, lastID string, want bool) {
		t.Helper()
		if got, err := pub.Lost(ctx, contracts.FamilyCard, lastID); err != nil || got != want {
			t.Fatalf("%s: Lost = %v, %v; want %v", what, got, err, want)
		}
	}

	assertLost("missing stream", "1-0", true)
	ids := publish(3)
	assertLost("present entry", ids[2], false)
	assertLost("entry newer than the stream (recreated)", "99999999999999-0", true)
	ids = append(ids, publish(10)...)
	assertLost("entry trimmed by MAXLEN", ids[0], false)
	m.Del(key)
	assertLost("deleted stream", ids[12], true)
	m.SetTime(time.Now().Add(time.Second)) // a recreated stream's ids come from a later clock
	newer := publish(1)
	assertLost("stream recreated by a newer publish", ids[12], true)
	assertLost("recreated stream's own entry", newer[0], false)
	m.Del(key)
	if err := client.XGroupCreateMkStream(ctx, key, "notif", "0").Err(); err != nil {
		t.Fatal(err)
	}
	assertLost("stream recreated empty by a consumer group", newer[0], true)

	created, err := pub.MarkAlive(ctx, "auth")
	if err != nil || !created {
		t.Fatalf("first MarkAlive = %v, %v; want true", created, err)
	}
	if created, _ := pub.MarkAlive(ctx, "auth"); created {
		t.Fatal("second MarkAlive created the marker again")
	}
	m.FlushAll()
	if created, _ := pub.MarkAlive(ctx, "auth"); !created {
		t.Fatal("MarkAlive after a flush did not notice the missing marker")
	}
}

// TestUndecodableEntryIsDeadLettered: an entry that is not an envelope goes
// straight to the dead-letter stream, is acknowledged, and never reaches
// the handler.
func TestUndecodableEntryIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	_, client := redistest.Mini(t)
	key := eventbus.StreamKey("p:", contracts.FamilyCard)
	if err := client.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{consume.FieldEnvelope, "not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{Prefix: "p:", Group: "g", Block: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Start(t, ctx, sub, func(context.Context, *eventbus.Message) error {
		return errors.New("handler must not be called")
	})
	var dl []eventbus.DeadLetter
	eventbustest.Eventually(t, "the entry is dead-lettered", func() bool {
		dl, err = redisstream.DeadLetters(ctx, client, "p:", "g", 10)
		return err == nil && len(dl) == 1
	})
	if dl[0].Raw != "not json" || dl[0].Stream != key || dl[0].Error == "" || dl[0].Deliveries != 1 {
		t.Fatalf("dead letter %+v", dl[0])
	}
	eventbustest.Eventually(t, "nothing is pending", func() bool { return redistest.Pending(t, client, "g", key) == 0 })
}

// TestGroupRecreatedAfterStreamLoss: when the stream (and so the group)
// vanishes, the subscriber recreates its group from the start and reads
// what is published afterwards, as the outbox relay republishes. It runs on
// real Redis, whose blocked reads fail differently from miniredis's.
func TestGroupRecreatedAfterStreamLoss(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix, pub := publisher(t, client)
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{Prefix: prefix, Group: "g", Block: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	eventbustest.Start(t, ctx, sub, func(_ context.Context, m *eventbus.Message) error {
		got <- m.Envelope.ID
		return nil
	})
	for i := range 2 {
		env := card(t)
		if _, err := pub.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-got:
			if id != env.ID {
				t.Fatalf("handled %s, want %s", id, env.ID)
			}
		case <-time.After(eventbustest.Timeout):
			t.Fatalf("event %d was not handled", i+1)
		}
		if err := client.Del(ctx, eventbus.StreamKey(prefix, contracts.FamilyCard)).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfigValidation: unusable configurations are refused up front.
func TestConfigValidation(t *testing.T) {
	_, client := redistest.Mini(t)
	for name, cfg := range map[string]redisstream.SubscriberConfig{
		"no group":        {},
		"unknown family":  {Group: "g", Families: []string{"nope"}},
		"negative batch":  {Group: "g", BatchSize: -1},
		"negative idle":   {Group: "g", ClaimMinIdle: -time.Second},
		"sub-millisecond": {Group: "g", Block: time.Microsecond},
	} {
		if _, err := redisstream.NewSubscriber(client, cfg); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
	if _, err := redisstream.NewSubscriber(nil, redisstream.SubscriberConfig{Group: "g"}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{MaxLen: -1}); err == nil {
		t.Error("negative MaxLen accepted")
	}
	if _, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{Group: "g"}); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	if a, b := redisstream.DefaultConsumerName(), redisstream.DefaultConsumerName(); a == b {
		t.Errorf("consumer names %q and %q are not unique", a, b)
	}
}
