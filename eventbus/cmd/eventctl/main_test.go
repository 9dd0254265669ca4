package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/internal/redistest"
	"github.com/bugtracker/bugtracker/eventbus/internal/testenv"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

func ctl(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if got := run(context.Background(), args, &out, &errOut); got != want {
		t.Fatalf("eventctl %v exited %d, want %d; stderr: %s", args, got, want, errOut.String())
	}
	return out.String() + errOut.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	if out := ctl(t, 0, "--help"); !strings.Contains(out, "dlq redrive") || !strings.Contains(out, "outbox requeue") {
		t.Fatalf("help: %s", out)
	}
	ctl(t, 2, "dlq", "list")                                      // no group
	ctl(t, 2, "nope", "x")                                        // unknown command
	ctl(t, 2, "outbox", "list")                                   // no database
	ctl(t, 2, "dlq", "list", "--group", "g", "--count", "100000") // unbounded listing refused
}

// TestDeadLetterListShowRedriveDrop: two events fail until they are
// dead-lettered; the tool lists and shows them, re-drives one into the
// group (whose handler now succeeds, so it is handled and leaves the
// redrive stream) and drops the other.
func TestDeadLetterListShowRedriveDrop(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix := redistest.Prefix(t, client)
	url := testenv.Lookup(t, "REDIS_URL")
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var envs []eventbus.Envelope
	for i := range 2 {
		env, err := contracts.New(contracts.CardCreated{CardID: string(rune('a' + i))}, "c", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	if _, err := pub.Publish(ctx, envs...); err != nil {
		t.Fatal(err)
	}
	var healthy atomic.Bool
	handled := make(chan string, 10)
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "g", Families: []string{contracts.FamilyCard}, Block: 50 * time.Millisecond,
		MaxDeliveries: 2, RetryMin: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Start(t, ctx, sub, func(_ context.Context, m *eventbus.Message) error {
		if !healthy.Load() {
			return errors.New("bug")
		}
		handled <- m.Envelope.ID
		return nil
	})
	var dls []eventbus.DeadLetter
	eventbustest.Eventually(t, "both events are dead-lettered", func() bool {
		dls, _ = redisstream.DeadLetters(ctx, client, prefix, "g", 10)
		return len(dls) == 2
	})
	base := []string{"--redis", url, "--prefix", prefix, "--group", "g"}
	list := ctl(t, 0, append([]string{"dlq", "list"}, base...)...)
	for _, e := range envs {
		if !strings.Contains(list, e.ID) {
			t.Fatalf("list lacks %s:\n%s", e.ID, list)
		}
	}
	if show := ctl(t, 0, append([]string{"dlq", "show", dls[0].ID}, base...)...); !strings.Contains(show, dls[0].Envelope.ID) || !strings.Contains(show, "bug") {
		t.Fatalf("show: %s", show)
	}
	healthy.Store(true)
	ctl(t, 0, append([]string{"dlq", "redrive", dls[0].ID}, base...)...)
	select {
	case id := <-handled:
		if id != dls[0].Envelope.ID {
			t.Fatalf("handled %s, want the re-driven %s", id, dls[0].Envelope.ID)
		}
	case <-time.After(eventbustest.Timeout):
		t.Fatal("the re-driven event was not handled")
	}
	eventbustest.Eventually(t, "the redrive stream is emptied", func() bool {
		return client.XLen(ctx, eventbus.RedriveKey(prefix, "g")).Val() == 0
	})
	ctl(t, 0, append([]string{"dlq", "drop", "--all"}, base...)...)
	if n := client.XLen(ctx, eventbus.DeadLetterKey(prefix, "g")).Val(); n != 0 {
		t.Fatalf("%d dead letters left after drop --all", n)
	}
	ctl(t, 1, append([]string{"dlq", "show", dls[1].ID}, base...)...)
}

// TestOutboxListRequeue: a quarantined row is listed and re-queued.
func TestOutboxListRequeue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "o.db")
	db, err := openDB("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if err := outbox.CreateTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO outbox (event_id, type, stream, envelope, created_at, quarantined_at, quarantine_reason)
		VALUES ('e1', 'cardArchived', 'card', '{}', ?, ?, 'event type "cardArchived" is unknown')`, time.Now().UTC(), time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if out := ctl(t, 0, "outbox", "list", "--db", "sqlite:"+path); !strings.Contains(out, "e1") || !strings.Contains(out, "unknown") {
		t.Fatalf("list: %s", out)
	}
	if out := ctl(t, 0, "outbox", "requeue", "--all", "--db", "sqlite:"+path); !strings.Contains(out, "re-queued 1") {
		t.Fatalf("requeue: %s", out)
	}
	if q, err := outbox.ListQuarantined(ctx, db, 10); err != nil || len(q) != 0 {
		t.Fatalf("still quarantined: %v, %v", q, err)
	}
}
