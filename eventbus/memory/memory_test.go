package memory_test

import (
	"testing"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/eventbustest"
	"github.com/bugtracker/bugtracker/eventbus/memory"
)

type backend struct{ bus *memory.Bus }

func (b backend) Publisher() eventbus.Publisher { return b.bus }

func (b backend) NewSubscriber(t *testing.T, group, consumer string, o eventbustest.Options) eventbus.Subscriber {
	sub, err := b.bus.NewSubscriber(memory.SubscriberConfig{
		Group:         group,
		Consumer:      consumer,
		BatchSize:     o.BatchSize,
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

func (b backend) DeadLetters(_ *testing.T, group string) []eventbus.DeadLetter {
	return b.bus.DeadLetters(group)
}

func (b backend) Pending(_ *testing.T, group string) int64 { return int64(b.bus.Pending(group)) }

func TestSuite(t *testing.T) {
	eventbustest.RunSuite(t, func(*testing.T) eventbustest.Backend { return backend{memory.New()} })
}
