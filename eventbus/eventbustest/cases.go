package eventbustest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
)

// testPublishConsume: messages are handled in publish order within each
// family, acknowledged, and not delivered again to a later consumer.
func testPublishConsume(t *testing.T, b Backend) {
	envs := events(t, 10)
	publish(t, b, envs[:4]...)
	publish(t, b, envs[4:]...)
	var rec recorder
	sub := b.NewSubscriber(t, "g", "c1", fast)
	done := Start(t, context.Background(), sub, rec.handler("c1", nil))
	Eventually(t, "all messages are handled", func() bool { return len(rec.successes("")) >= len(envs) })
	stop(t, sub, done)
	assertSameOrderPerFamily(t, envs, rec.successes(""))
	if n := b.Pending(t, "g"); n != 0 {
		t.Fatalf("%d entries pending after a graceful stop, want 0", n)
	}

	sentinel := events(t, 1)
	publish(t, b, sentinel...)
	sub2 := b.NewSubscriber(t, "g", "c2", fast)
	Start(t, context.Background(), sub2, rec.handler("c2", nil))
	Eventually(t, "the sentinel is handled", func() bool { return len(rec.successes("c2")) > 0 })
	if got := rec.successes("c2"); !slices.Equal(got, ids(sentinel)) {
		t.Fatalf("second consumer handled %v, want only the sentinel %v", got, ids(sentinel))
	}
}

// testShareWork: two consumers of one group split the messages, and each
// message is handled exactly once overall.
func testShareWork(t *testing.T, b Backend) {
	envs := events(t, 30)
	publish(t, b, envs...)
	var rec recorder
	o := slow
	o.BatchSize = 2
	// Each consumer holds its first message until the other has started
	// one, which proves both get work whichever starts reading first.
	var started [2]atomic.Bool
	holdUntilOther := func(me int) func(*eventbus.Message) error {
		return func(*eventbus.Message) error {
			started[me].Store(true)
			for deadline := time.Now().Add(Timeout); !started[1-me].Load(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					return errors.New("the other consumer got no message while this one was busy")
				}
			}
			return nil
		}
	}
	sub1 := b.NewSubscriber(t, "g", "c1", o)
	sub2 := b.NewSubscriber(t, "g", "c2", o)
	done1 := Start(t, context.Background(), sub1, rec.handler("c1", holdUntilOther(0)))
	done2 := Start(t, context.Background(), sub2, rec.handler("c2", holdUntilOther(1)))
	Eventually(t, "all messages are handled", func() bool { return len(rec.successes("")) >= len(envs) })
	stop(t, sub1, done1)
	stop(t, sub2, done2)
	got := rec.successes("")
	slices.Sort(got)
	want := ids(envs)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("handled %d messages %v, want each of %d exactly once", len(got), got, len(want))
	}
	if len(rec.successes("c1")) == 0 || len(rec.successes("c2")) == 0 {
		t.Fatalf("c1 handled %d, c2 handled %d: work was not shared", len(rec.successes("c1")), len(rec.successes("c2")))
	}
	assertNoPending(t, b, "g")
}

// testFanOut: each group receives every message.
func testFanOut(t *testing.T, b Backend) {
	envs := events(t, 10)
	publish(t, b, envs...)
	var rec recorder
	for _, g := range []string{"g1", "g2"} {
		Start(t, context.Background(), b.NewSubscriber(t, g, "c", slow), rec.handler(g, nil))
	}
	Eventually(t, "both groups handle everything", func() bool {
		return len(rec.successes("g1")) >= len(envs) && len(rec.successes("g2")) >= len(envs)
	})
	assertSameOrderPerFamily(t, envs, rec.successes("g1"))
	assertSameOrderPerFamily(t, envs, rec.successes("g2"))
}

// testRetry: a message whose handler fails stays pending, is claimed again
// after ClaimMinIdle with a higher delivery count, and is acknowledged once
// the handler succeeds.
func testRetry(t *testing.T, b Backend) {
	envs := events(t, 3)
	flaky := envs[1].ID
	publish(t, b, envs...)
	var rec recorder
	var failures atomic.Int32
	failTwice := func(m *eventbus.Message) error {
		if m.Envelope.ID == flaky && failures.Add(1) <= 2 {
			return errHandler
		}
		return nil
	}
	Start(t, context.Background(), b.NewSubscriber(t, "g", "c", fast), rec.handler("c", failTwice))
	Eventually(t, "the flaky message succeeds", func() bool { return slices.Contains(rec.successes(""), flaky) })
	assertNoPending(t, b, "g")
	var deliveries []int64
	for _, a := range rec.attempts(flaky) {
		deliveries = append(deliveries, a.deliveries)
	}
	if !slices.Equal(deliveries, []int64{1, 2, 3}) {
		t.Fatalf("flaky message deliveries %v, want [1 2 3]", deliveries)
	}
	if dl := b.DeadLetters(t, "g"); len(dl) != 0 {
		t.Fatalf("dead letters %v, want none", dl)
	}
}

// testDeadLetter: a message that always fails is handled MaxDeliveries
// times (retried with backoff), then moved to the dead-letter stream,
// acknowledged, and never handled again; the other messages are
// unaffected.
func testDeadLetter(t *testing.T, b Backend) {
	envs := events(t, 3)
	poison := envs[1].ID
	publish(t, b, envs...)
	var rec recorder
	alwaysFail := func(m *eventbus.Message) error {
		if m.Envelope.ID == poison {
			return errHandler
		}
		return nil
	}
	Start(t, context.Background(), b.NewSubscriber(t, "g", "c", fast), rec.handler("c", alwaysFail))
	Eventually(t, "the poison message is dead-lettered", func() bool { return len(b.DeadLetters(t, "g")) > 0 })
	assertNoPending(t, b, "g")
	dl := b.DeadLetters(t, "g")
	if len(dl) != 1 || dl[0].Envelope.ID != poison || dl[0].Stream == "" || dl[0].EntryID == "" ||
		dl[0].Error == "" || dl[0].Deliveries != fast.MaxDeliveries {
		t.Fatalf("dead letters %+v, want one for %s after %d deliveries", dl, poison, fast.MaxDeliveries)
	}

	sentinel := events(t, 1)
	publish(t, b, sentinel...)
	Eventually(t, "a later message is handled", func() bool { return slices.Contains(rec.successes(""), sentinel[0].ID) })
	if n := len(rec.attempts(poison)); int64(n) != fast.MaxDeliveries {
		t.Fatalf("poison message handled %d times, want %d", n, fast.MaxDeliveries)
	}
	if got := len(rec.successes("")); got != len(envs) {
		t.Fatalf("%d successes, want %d", got, len(envs))
	}
}

// testAbort: cancelling Run's context mid-batch stops at once; the rest of
// the batch stays pending (messages already handled may have been
// acknowledged, since acks go out as soon as each handler returns), so
// another consumer of the group claims it and every message is handled.
func testAbort(t *testing.T, b Backend) {
	envs := cardEvents(t, 6)
	publish(t, b, envs...)
	var rec recorder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	crashAfterTwo := func(*eventbus.Message) error {
		if len(rec.successes("a")) == 1 { // this is the second message
			cancel()
		}
		return nil
	}
	doneA := Start(t, ctx, b.NewSubscriber(t, "g", "a", fast), rec.handler("a", crashAfterTwo))
	if err := Wait(t, doneA); err == nil {
		t.Fatal("aborted Run returned nil, want the context error")
	}
	if got := rec.successes("a"); len(got) != 2 {
		t.Fatalf("aborted consumer handled %d messages, want 2", len(got))
	}
	pending := b.Pending(t, "g")
	if pending < int64(len(envs))-2 {
		t.Fatalf("%d entries pending after the abort, want at least the %d unhandled", pending, len(envs)-2)
	}

	Start(t, context.Background(), b.NewSubscriber(t, "g", "b", fast), rec.handler("b", nil))
	Eventually(t, "b handles what a left pending", func() bool { return int64(len(rec.successes("b"))) >= pending })
	if got := rec.successes("b"); !slices.Equal(got, ids(envs)[len(envs)-int(pending):]) {
		t.Fatalf("b handled %v, want the last %d of %v", got, pending, ids(envs))
	}
	for _, c := range rec.attempts("") {
		if c.consumer == "b" && c.deliveries < 2 {
			t.Fatalf("b got %s as delivery %d, want a redelivery", c.eventID, c.deliveries)
		}
	}
	assertNoPending(t, b, "g")
}

// testShutdown: Shutdown requested mid-batch lets the batch finish and be
// acknowledged, then Run returns nil and nothing more is fetched.
func testShutdown(t *testing.T, b Backend) {
	envs := cardEvents(t, 6)
	publish(t, b, envs...)
	var rec recorder
	sub := b.NewSubscriber(t, "g", "a", slow)
	shutdown := make(chan error, 1)
	stopAfterTwo := func(*eventbus.Message) error {
		if len(rec.successes("a")) == 1 {
			go func() { shutdown <- sub.Shutdown(context.Background()) }()
		}
		return nil
	}
	done := Start(t, context.Background(), sub, rec.handler("a", stopAfterTwo))
	if err := Wait(t, done); err != nil {
		t.Fatalf("Run after Shutdown returned %v, want nil", err)
	}
	if err := Wait(t, shutdown); err != nil {
		t.Fatalf("Shutdown returned %v", err)
	}
	if got := rec.successes("a"); !slices.Equal(got, ids(envs)) {
		t.Fatalf("handled %v, want the whole batch %v", got, ids(envs))
	}
	if n := b.Pending(t, "g"); n != 0 {
		t.Fatalf("%d entries pending after Shutdown, want 0", n)
	}

	later := cardEvents(t, 1)
	publish(t, b, later...)
	Start(t, context.Background(), b.NewSubscriber(t, "g", "b", slow), rec.handler("b", nil))
	Eventually(t, "a new consumer handles the later message", func() bool { return len(rec.successes("b")) > 0 })
	if got := rec.successes("b"); !slices.Equal(got, ids(later)) {
		t.Fatalf("new consumer handled %v, want only %v", got, ids(later))
	}
	if n := len(rec.successes("a")); n != len(envs) {
		t.Fatalf("stopped consumer handled %d messages, want %d", n, len(envs))
	}
}

// testPanic: a handler that panics on one message does not kill the
// subscriber; the panic counts as a failure, so the message is retried and
// then dead-lettered with the panic as reason, and the others are handled.
func testPanic(t *testing.T, b Backend) {
	envs := events(t, 3)
	bad := envs[1].ID
	publish(t, b, envs...)
	var rec recorder
	var panics atomic.Int32
	h := rec.handler("c", nil)
	Start(t, context.Background(), b.NewSubscriber(t, "g", "c", fast), func(ctx context.Context, m *eventbus.Message) error {
		if m.Envelope.ID == bad {
			panics.Add(1)
			panic("handler bug")
		}
		return h(ctx, m)
	})
	Eventually(t, "the panicking message is dead-lettered", func() bool { return len(b.DeadLetters(t, "g")) == 1 })
	if dl := b.DeadLetters(t, "g")[0]; dl.Envelope.ID != bad || !strings.Contains(dl.Error, "panic") {
		t.Fatalf("dead letter %+v, want %s with the panic as reason", dl, bad)
	}
	if n := panics.Load(); int64(n) != fast.MaxDeliveries {
		t.Fatalf("handler panicked %d times, want %d (a panic counts as one failure)", n, fast.MaxDeliveries)
	}
	Eventually(t, "the other messages are handled", func() bool { return len(rec.successes("")) == 2 })
	assertNoPending(t, b, "g")
}

// testTransient: failures that are the infrastructure's (here wrapped with
// eventbus.Transient, as a database outage is recognised) are retried with
// backoff beyond MaxDeliveries and never dead-lettered; the message is
// handled once the outage ends.
func testTransient(t *testing.T, b Backend) {
	envs := events(t, 1)
	publish(t, b, envs...)
	var rec recorder
	var calls atomic.Int64
	outage := 3*fast.MaxDeliveries + 1
	h := rec.handler("c", func(*eventbus.Message) error {
		if calls.Add(1) <= outage {
			return eventbus.Transient(errors.New("database unreachable"))
		}
		return nil
	})
	Start(t, context.Background(), b.NewSubscriber(t, "g", "c", fast), h)
	Eventually(t, "the message is handled after the outage", func() bool { return len(rec.successes("")) == 1 })
	if dl := b.DeadLetters(t, "g"); len(dl) != 0 {
		t.Fatalf("an outage dead-lettered %+v", dl)
	}
	assertNoPending(t, b, "g")
}

// testAckEach: each message is acknowledged as soon as its handler
// returned, not at the end of its batch: while the last message of a batch
// is being handled, the earlier ones are no longer pending.
func testAckEach(t *testing.T, b Backend) {
	envs := cardEvents(t, 3)
	publish(t, b, envs...)
	release := make(chan struct{})
	reached := make(chan struct{})
	Start(t, context.Background(), b.NewSubscriber(t, "g", "c", slow), func(_ context.Context, m *eventbus.Message) error {
		if m.Envelope.ID == envs[2].ID {
			close(reached)
			<-release
		}
		return nil
	})
	select {
	case <-reached:
	case <-time.After(Timeout):
		t.Fatal("the last message was not handled")
	}
	Eventually(t, "the first two messages are acknowledged while the third is handled", func() bool { return b.Pending(t, "g") == 1 })
	close(release)
	assertNoPending(t, b, "g")
}

// testRetriesBounded: while every message fails transiently (an outage),
// the consumer stops fetching once it holds four batches for retry, so it
// never pulls the whole stream into memory; after the outage everything
// is handled.
func testRetriesBounded(t *testing.T, b Backend) {
	o := slow
	o.BatchSize = 2
	envs := cardEvents(t, 30)
	publish(t, b, envs...)
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	seen := map[string]bool{}
	ok := map[string]bool{}
	Start(t, context.Background(), b.NewSubscriber(t, "g", "c", o), func(_ context.Context, m *eventbus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Envelope.ID] = true
		if down.Load() {
			return eventbus.Transient(errors.New("database unreachable"))
		}
		ok[m.Envelope.ID] = true
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	fetched := len(seen)
	mu.Unlock()
	if fetched > 4*int(o.BatchSize)+int(o.BatchSize) {
		t.Fatalf("the consumer fetched %d messages during the outage, want at most about %d", fetched, 4*o.BatchSize)
	}
	down.Store(false)
	Eventually(t, "every message is handled after the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) == len(envs)
	})
}
