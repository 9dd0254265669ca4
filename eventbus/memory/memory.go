// Package memory is an in-memory event bus with the semantics of package
// redisstream: one stream per family, consumer groups, per-consumer pending
// entries with delivery counts and idle times, claiming after an idle time,
// dead-lettering, and abort versus graceful shutdown. Subscribers run the
// same loop as the Redis adapter, so a service's unit tests exercise the
// behaviour it gets in production without a Redis server.
//
// Stream keys are eventbus.StreamKey("", family) and dead-letter keys
// eventbus.DeadLetterKey("", group). Inspection helpers (Stream,
// DeadLetters, Pending) and fault injection (DeleteStream, Flush) exist for
// tests.
package memory

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/consume"
	"github.com/bugtracker/bugtracker/eventbus/internal/streamid"
)

// Bus holds streams and groups in memory. It is safe for concurrent use.
type Bus struct {
	mu      sync.Mutex
	streams map[string]*stream
	markers map[string]bool
	epochs  int
	// wake is closed and replaced whenever entries are added or streams
	// vanish, to wake blocked readers.
	wake chan struct{}
}

type entry struct {
	id     streamid.ID
	fields map[string]string
}

type stream struct {
	entries []entry
	last    streamid.ID
	groups  map[string]*group
}

type group struct {
	next    int // index of the first entry not yet delivered
	pending map[string]*pending
}

type pending struct {
	index      int
	consumer   string
	deliveries int64
	delivered  time.Time
}

var _ eventbus.Publisher = (*Bus)(nil)

// New returns an empty bus.
func New() *Bus {
	return &Bus{streams: map[string]*stream{}, markers: map[string]bool{}, wake: make(chan struct{})}
}

// Publish implements eventbus.Publisher. Unlike Redis it is atomic.
func (b *Bus) Publish(_ context.Context, envs ...eventbus.Envelope) ([]string, error) {
	keys := make([]string, len(envs))
	fields := make([]map[string]string, len(envs))
	for i, env := range envs {
		family := contracts.Family(env.Type)
		if family == "" {
			return nil, fmt.Errorf("memory: event %s has unknown type %q", env.ID, env.Type)
		}
		f, err := consume.EntryFields(env)
		if err != nil {
			return nil, err
		}
		keys[i], fields[i] = eventbus.StreamKey("", family), f
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, len(envs))
	for i := range envs {
		ids[i] = b.add(keys[i], fields[i])
	}
	return ids, nil
}

// add appends an entry like XADD * and wakes readers. b.mu must be held.
func (b *Bus) add(key string, fields map[string]string) string {
	s := b.stream(key)
	s.last = s.last.Next(uint64(time.Now().UnixMilli()))
	s.entries = append(s.entries, entry{id: s.last, fields: fields})
	b.broadcast()
	return s.last.String()
}

// stream returns the stream at key, creating it. b.mu must be held.
func (b *Bus) stream(key string) *stream {
	s, ok := b.streams[key]
	if !ok {
		s = &stream{groups: map[string]*group{}}
		b.streams[key] = s
	}
	return s
}

func (b *Bus) broadcast() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// Lost reports whether lastID is no longer in the stream of family. The
// memory bus never trims, so any absence is a loss; this lets outbox tests
// run against the bus.
func (b *Bus) Lost(_ context.Context, family, lastID string) (bool, error) {
	id, err := streamid.Parse(lastID)
	if err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.streams[eventbus.StreamKey("", family)]
	if !ok {
		return true, nil
	}
	_, found := s.find(id)
	return !found, nil
}

// StreamEpochs implements outbox.EpochStore like the Redis publisher: the
// epochs are groups named redisstream.EpochGroupPrefix + token, which
// vanish with DeleteStream and Flush.
func (b *Bus) StreamEpochs(_ context.Context, family string) ([]string, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.streams[eventbus.StreamKey("", family)]
	if !ok {
		return nil, "", nil
	}
	var out []string
	for name := range s.groups {
		if strings.HasPrefix(name, epochPrefix) {
			out = append(out, name)
		}
	}
	return out, s.last.String(), nil
}

// NewStreamEpoch implements outbox.EpochStore.
func (b *Bus) NewStreamEpoch(_ context.Context, family string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stream(eventbus.StreamKey("", family))
	b.epochs++
	name := fmt.Sprintf("%s%d", epochPrefix, b.epochs)
	s.groups[name] = &group{next: len(s.entries), pending: map[string]*pending{}}
	return name, nil
}

// epochPrefix equals redisstream.EpochGroupPrefix, which this package
// cannot import.
const epochPrefix = "outbox-epoch:"

// MarkAlive sets the producer's marker if absent and reports whether it
// created it, like the Redis publisher; Flush removes the markers.
func (b *Bus) MarkAlive(_ context.Context, producer string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	created := !b.markers[producer]
	b.markers[producer] = true
	return created, nil
}

func (s *stream) find(id streamid.ID) (int, bool) {
	for i, e := range s.entries {
		if e.id == id {
			return i, true
		}
	}
	return 0, false
}

// Stream returns the entries of a family's stream in order, decoded, for
// assertions in tests. Deliveries is zero.
func (b *Bus) Stream(family string) []eventbus.Message {
	key := eventbus.StreamKey("", family)
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.streams[key]
	if !ok {
		return nil
	}
	out := make([]eventbus.Message, len(s.entries))
	for i, e := range s.entries {
		out[i] = consume.NewDelivery(key, e.id.String(), e.fields, 0).Message
	}
	return out
}

// DeadLetters returns the dead-letter entries of group, oldest first.
func (b *Bus) DeadLetters(group string) []eventbus.DeadLetter {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.streams[eventbus.DeadLetterKey("", group)]
	if !ok {
		return nil
	}
	out := make([]eventbus.DeadLetter, len(s.entries))
	for i, e := range s.entries {
		out[i] = consume.ParseDeadLetter(e.id.String(), e.fields)
	}
	return out
}

// Pending returns how many entries group has delivered but not
// acknowledged, over all streams.
func (b *Bus) Pending(group string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.streams {
		if g, ok := s.groups[group]; ok {
			n += len(g.pending)
		}
	}
	return n
}

// DeleteStream drops a family's stream with its groups, like DEL, to test
// recovery from stream loss.
func (b *Bus) DeleteStream(family string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.streams, eventbus.StreamKey("", family))
	b.broadcast()
}

// Flush drops everything, like a restart of a Redis without persistence.
func (b *Bus) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.streams)
	clear(b.markers)
	b.broadcast()
}
