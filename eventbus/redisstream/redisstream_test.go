package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/internal/redistest"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

type backend struct {
	client redis.UniversalClient
	prefix string
	pub    *redisstream.Publisher
}

func newBackend(t *testing.T, client redis.UniversalClient) eventbustest.Backend {
	prefix, pub := publisher(t, client)
	return backend{client, prefix, pub}
}

// publisher returns a publisher on client under a key prefix of its own.
func publisher(t *testing.T, client redis.UniversalClient) (string, *redisstream.Publisher) {
	prefix := redistest.Prefix(t, client)
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return prefix, pub
}

func (b backend) Publisher() eventbus.Publisher { return b.pub }

func (b backend) NewSubscriber(t *testing.T, group, consumer string, o eventbustest.Options) eventbus.Subscriber {
	sub, err := redisstream.NewSubscriber(b.client, redisstream.SubscriberConfig{
		Prefix:        b.prefix,
		Group:         group,
		Consumer:      consumer,
		BatchSize:     o.BatchSize,
		Block:         100 * time.Millisecond,
		ClaimMinIdle:  o.ClaimMinIdle,
		ClaimInterval: o.ClaimInterval,
		MaxDeliveries: o.MaxDeliveries,
		RetryMin:      o.RetryMin,
		RetryMax:      o.RetryMax,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func (b backend) DeadLetters(t *testing.T, group string) []eventbus.DeadLetter {
	dl, err := redisstream.DeadLetters(context.Background(), b.client, b.prefix, group, 100)
	if err != nil {
		t.Fatal(err)
	}
	return dl
}

func (b backend) Pending(t *testing.T, group string) int64 {
	var keys []string
	for _, f := range contracts.Families() {
		keys = append(keys, eventbus.StreamKey(b.prefix, f))
	}
	return redistest.Pending(t, b.client, group, keys...)
}

func TestSuiteMiniredis(t *testing.T) {
	eventbustest.RunSuite(t, func(t *testing.T) eventbustest.Backend {
		_, client := redistest.Mini(t)
		return newBackend(t, client)
	})
}

func TestSuiteRedis(t *testing.T) {
	client := redistest.Real(t)
	eventbustest.RunSuite(t, func(t *testing.T) eventbustest.Backend { return newBackend(t, client) })
}
