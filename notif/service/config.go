// Package service assembles the notif service: configuration, Wire provider sets and
// injectors (production and component-test), and the components main runs.
package service

import (
	"errors"
	"time"

	"github.com/bugtracker/bugtracker/platform/config"
)

// Config is the notif service's configuration, read from the environment.
type Config struct {
	config.Common
	// HTTPAddr is where the service listens.
	HTTPAddr string `env:"NOTIF_HTTP_ADDR" envDefault:":8084"`
	// MongoURI locates MongoDB (or FerretDB).
	MongoURI string `env:"NOTIF_MONGO_URI" envDefault:"mongodb://127.0.0.1:27017/"`
	// MongoDatabase is the database holding the `notif` and `users` collections.
	MongoDatabase string `env:"NOTIF_MONGO_DATABASE" envDefault:"notif"`
	// ConsumerName names this replica in the consumer group; empty means
	// hostname-pid-random, unique per process.
	ConsumerName string `env:"NOTIF_CONSUMER_NAME"`
	// ClaimMinIdle is how long a delivered event may stay unacknowledged before
	// another replica claims it (its consumer is presumed dead).
	ClaimMinIdle time.Duration `env:"EVENTBUS_CLAIM_MIN_IDLE" envDefault:"30s"`
	// MaxDeliveries is how often a failing event is retried before dead-lettering.
	MaxDeliveries int64 `env:"EVENTBUS_MAX_DELIVERIES" envDefault:"5"`
	// MaxRecipients bounds the notifications one event creates; an audience above it
	// is cut (with a warning and the notif_recipients_dropped_total metric). Zero
	// means app.DefaultMaxRecipients.
	MaxRecipients int `env:"NOTIF_MAX_RECIPIENTS" envDefault:"1000"`
	// QueryTimeout bounds the time one HTTP request may spend in MongoDB; past it
	// the answer is 503 with Retry-After. Zero means 5s.
	QueryTimeout time.Duration `env:"NOTIF_QUERY_TIMEOUT" envDefault:"5s"`
}

// Validate checks the settings after parsing.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.MongoDatabase == "" {
		return errors.New("NOTIF_MONGO_DATABASE: must not be empty")
	}
	if c.ClaimMinIdle < 100*time.Millisecond {
		return errors.New("EVENTBUS_CLAIM_MIN_IDLE: must be at least 100ms")
	}
	if c.MaxDeliveries < 1 {
		return errors.New("EVENTBUS_MAX_DELIVERIES: must be at least 1")
	}
	if c.QueryTimeout < 10*time.Millisecond {
		return errors.New("NOTIF_QUERY_TIMEOUT: must be at least 10ms")
	}
	if c.MaxRecipients < 1 || c.MaxRecipients > 100000 {
		return errors.New("NOTIF_MAX_RECIPIENTS: must be between 1 and 100000")
	}
	return nil
}

// LoadConfig reads and validates the configuration.
func LoadConfig() (Config, error) {
	var c Config
	err := config.Load(&c)
	return c, err
}
