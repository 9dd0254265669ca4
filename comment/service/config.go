// Package service assembles the comment service: configuration, Wire provider sets
// and injectors (production and component-test), and the components main runs.
package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/platform/config"
	"github.com/bugtracker/bugtracker/platform/database"
)

// Config is the comment service's configuration, read from the environment.
type Config struct {
	config.Common
	// HTTPAddr is where the service listens.
	HTTPAddr string `env:"COMMENT_HTTP_ADDR" envDefault:":8083"`
	// DatabaseURL is mysql://... (MariaDB), or sqlite://path for a single process.
	DatabaseURL string        `env:"COMMENT_DATABASE_URL" envDefault:"sqlite://./data/comment.db"`
	Pool        database.Pool `envPrefix:"COMMENT_"`
	// CursorSecret keys the HMAC of list cursors (shared with the project service's
	// variable). Replicas behind one gateway must share it, or a cursor from one is
	// refused by another; `make run` generates one.
	CursorSecret string `env:"CURSOR_SECRET,required,notEmpty"`
	// InboxRetention is how long consumed event ids are remembered for
	// deduplication; it must be at least inbox.MinRetention (240h: the producers'
	// outbox retention of 72h plus a week of redelivery delay), which Prune keeps
	// anyway.
	InboxRetention time.Duration `env:"COMMENT_INBOX_RETENTION" envDefault:"240h"`
	// ConsumerName names this replica in the consumer group; empty means
	// hostname-pid-random, unique per process.
	ConsumerName string `env:"COMMENT_CONSUMER_NAME"`
	// ClaimMinIdle is how long a delivered event may stay unacknowledged before
	// another replica claims it (its consumer is presumed dead).
	ClaimMinIdle time.Duration `env:"EVENTBUS_CLAIM_MIN_IDLE" envDefault:"30s"`
	// MaxDeliveries is how often a failing event is retried before dead-lettering.
	MaxDeliveries int64 `env:"EVENTBUS_MAX_DELIVERIES" envDefault:"5"`
}

// Validate checks the settings after parsing.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	kind, err := database.KindOf(c.DatabaseURL)
	if err != nil {
		return errors.New("COMMENT_DATABASE_URL: " + err.Error())
	}
	if kind != database.MySQL && kind != database.SQLite {
		// The locking reads are written for MariaDB and SQLite, the two stores tested.
		return errors.New("COMMENT_DATABASE_URL: must be mysql:// (MariaDB) or sqlite://")
	}
	if len(c.CursorSecret) < 32 {
		return errors.New("CURSOR_SECRET: must be at least 32 characters")
	}
	if c.InboxRetention < inbox.MinRetention {
		return fmt.Errorf("COMMENT_INBOX_RETENTION: must be at least %s (the outbox keeps events 72h)", inbox.MinRetention)
	}
	if c.ClaimMinIdle < 100*time.Millisecond {
		return errors.New("EVENTBUS_CLAIM_MIN_IDLE: must be at least 100ms")
	}
	if c.MaxDeliveries < 1 {
		return errors.New("EVENTBUS_MAX_DELIVERIES: must be at least 1")
	}
	return nil
}

// LoadConfig reads and validates the configuration.
func LoadConfig() (Config, error) {
	var c Config
	err := config.Load(&c)
	return c, err
}
