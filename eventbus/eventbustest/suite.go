// Package eventbustest is the contract test suite of eventbus.Publisher
// and eventbus.Subscriber. Every backend (memory, miniredis, real Redis)
// runs the same RunSuite, so they cannot drift apart in the semantics
// services rely on: publish order for a lone consumer without failures
// (an observation, not a guarantee: see package eventbus), work sharing
// within a group,
// fan-out across groups, retry after a failure, dead-lettering, abort
// without acknowledgement, and graceful shutdown.
package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

// Timeout bounds every wait of the suite. It is generous because the
// suite asserts behaviour, not speed.
const Timeout = 10 * time.Second

// Options are the subscriber settings a case needs; backends map them to
// their own configuration.
type Options struct {
	BatchSize     int64
	ClaimMinIdle  time.Duration
	ClaimInterval time.Duration
	MaxDeliveries int64
	// RetryMin and RetryMax bound the backoff between attempts.
	RetryMin, RetryMax time.Duration
}

// Backend is a fresh, isolated bus for one test.
type Backend interface {
	// Publisher returns the backend's publisher.
	Publisher() eventbus.Publisher
	// NewSubscriber returns a subscriber of group reading every family.
	NewSubscriber(t *testing.T, group, consumer string, o Options) eventbus.Subscriber
	// DeadLetters returns the dead-letter entries of group.
	DeadLetters(t *testing.T, group string) []eventbus.DeadLetter
	// Pending returns how many entries group delivered but not
	// acknowledged.
	Pending(t *testing.T, group string) int64
}

// RunSuite runs every case against backends made by newBackend, one per
// case, in parallel.
func RunSuite(t *testing.T, newBackend func(t *testing.T) Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"PublishConsumeInOrderAndAck", testPublishConsume},
		{"ConsumersOfOneGroupShareWork", testShareWork},
		{"EveryGroupGetsEveryMessage", testFanOut},
		{"FailedHandlerIsRetried", testRetry},
		{"AlwaysFailingHandlerEndsInDeadLetter", testDeadLetter},
		{"AbortLeavesBatchUnackedForOthers", testAbort},
		{"ShutdownFinishesAndAcksBatch", testShutdown},
		{"PanickingHandlerIsRecovered", testPanic},
		{"TransientFailuresAreNotDeadLettered", testTransient},
		{"AckedAsSoonAsHandled", testAckEach},
		{"RetriesInHandAreBounded", testRetriesBounded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newBackend(t))
		})
	}
}

var (
	// fast claims stuck entries quickly, for cases about retries.
	fast = Options{BatchSize: 10, ClaimMinIdle: 150 * time.Millisecond, ClaimInterval: 30 * time.Millisecond, MaxDeliveries: 3, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	// slow never claims within a case, for cases where a claim would be a
	// duplicate.
	slow = Options{BatchSize: 10, ClaimMinIdle: time.Minute, ClaimInterval: time.Minute, MaxDeliveries: 3, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}
)

// events returns n envelopes alternating between the card and comment
// families, so that ordering is checked per family across two streams.
func events(t *testing.T, n int) []eventbus.Envelope {
	out := make([]eventbus.Envelope, n)
	for i := range out {
		var ev eventbus.Event = contracts.CardCreated{CardID: fmt.Sprint("card-", i), Title: fmt.Sprint(i)}
		if i%2 == 1 {
			ev = contracts.CommentCreated{CommentID: fmt.Sprint("comment-", i), Body: fmt.Sprint(i)}
		}
		env, err := contracts.New(ev, fmt.Sprint("agg-", i), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = env
	}
	return out
}

// cardEvents returns n envelopes of one family, which Redis returns in a
// single batch.
func cardEvents(t *testing.T, n int) []eventbus.Envelope {
	out := make([]eventbus.Envelope, n)
	for i := range out {
		env, err := contracts.New(contracts.CardCreated{CardID: fmt.Sprint("card-", i)}, "p", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = env
	}
	return out
}

func publish(t *testing.T, b Backend, envs ...eventbus.Envelope) {
	ids, err := b.Publisher().Publish(context.Background(), envs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(envs) || slices.Contains(ids, "") {
		t.Fatalf("Publish returned ids %v for %d envelopes", ids, len(envs))
	}
}

// delivery is one handler call as seen by a recorder.
type delivery struct {
	consumer   string
	eventID    string
	deliveries int64
	ok         bool
}

// recorder records handler calls from any number of subscribers.
type recorder struct {
	mu    sync.Mutex
	calls []delivery
}

// handler returns a handler for consumer that records each call and
// returns fail's verdict, if fail is not nil.
func (r *recorder) handler(consumer string, fail func(m *eventbus.Message) error) eventbus.Handler {
	return func(ctx context.Context, m *eventbus.Message) error {
		var err error
		if fail != nil {
			err = fail(m)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls = append(r.calls, delivery{consumer, m.Envelope.ID, m.Deliveries, err == nil})
		return err
	}
}

// successes returns the ids handled successfully, in order, by consumer
// (all consumers if "").
func (r *recorder) successes(consumer string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if c.ok && (consumer == "" || c.consumer == consumer) {
			out = append(out, c.eventID)
		}
	}
	return out
}

// attempts returns the calls for one event (all events if "").
func (r *recorder) attempts(eventID string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, c := range r.calls {
		if eventID == "" || c.eventID == eventID {
			out = append(out, c)
		}
	}
	return out
}

// Start runs sub in the background and returns the channel Run's result
// arrives on. When the test ends the subscriber is shut down, so a test
// need not stop what it started.
func Start(t *testing.T, ctx context.Context, sub eventbus.Subscriber, h eventbus.Handler) <-chan error {
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx, h) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := sub.Shutdown(sctx); err != nil {
			t.Errorf("cleanup Shutdown: %v", err)
		}
	})
	return done
}

// stop shuts sub down gracefully and checks that Run returned nil.
func stop(t *testing.T, sub eventbus.Subscriber, done <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := sub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := Wait(t, done); err != nil {
		t.Fatalf("Run after Shutdown returned %v, want nil", err)
	}
}

// Wait returns the result of a Run started by Start, failing the test if
// it does not arrive within Timeout.
func Wait(t *testing.T, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-time.After(Timeout):
		t.Fatal("Run did not return")
		return nil
	}
}

// Eventually polls cond until it holds, failing the test if Timeout
// passes first. Tests wait this way instead of sleeping, so they assert
// behaviour rather than speed.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Timeout, what, cond)
}

// EventuallyWithin is Eventually with its own time limit, for scenarios
// (a Redis restart under load) that take longer than Timeout.
func EventuallyWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ids(envs []eventbus.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

// perFamily splits ids by the family of the envelopes they belong to.
func perFamily(envs []eventbus.Envelope, got []string) map[string][]string {
	family := map[string]string{}
	for _, e := range envs {
		family[e.ID] = contracts.Family(e.Type)
	}
	out := map[string][]string{}
	for _, id := range got {
		out[family[id]] = append(out[family[id]], id)
	}
	return out
}

func assertSameOrderPerFamily(t *testing.T, envs []eventbus.Envelope, got []string) {
	t.Helper()
	want, have := perFamily(envs, ids(envs)), perFamily(envs, got)
	for f, w := range want {
		if !slices.Equal(have[f], w) {
			t.Fatalf("family %s handled %v, want %v", f, have[f], w)
		}
	}
	if len(got) != len(envs) {
		t.Fatalf("handled %d messages, want %d", len(got), len(envs))
	}
}

func assertNoPending(t *testing.T, b Backend, group string) { //nolint:unparam // every case names the group it asserts on
	t.Helper()
	Eventually(t, "no entry of "+group+" is pending", func() bool { return b.Pending(t, group) == 0 })
}

var errHandler = errors.New("handler failure injected by the test")
