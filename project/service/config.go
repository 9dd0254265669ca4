// Package service assembles the project service: configuration, the Wire provider
// sets and injectors (production and component-test), and the components main runs.
package service

import (
	"errors"
	"time"

	"github.com/bugtracker/bugtracker/platform/config"
	"github.com/bugtracker/bugtracker/platform/database"
)

// Config is the project service's configuration, read from the environment.
type Config struct {
	config.Common
	// HTTPAddr is where the service listens.
	HTTPAddr string `env:"PROJECT_HTTP_ADDR" envDefault:":8082"`
	// DatabaseURL is mysql://... (MariaDB) in production, or sqlite://path for a
	// single-process setup.
	DatabaseURL string        `env:"PROJECT_DATABASE_URL" envDefault:"sqlite://./data/project.db"`
	Pool        database.Pool `envPrefix:"PROJECT_"`
	// CursorSecret signs the opaque card-list cursors; every replica needs the same.
	CursorSecret string `env:"CURSOR_SECRET,required,notEmpty"`
	// MaxMembers bounds the members of one project (the owner not counted), which
	// bounds event audiences and notification fan-out.
	MaxMembers int `env:"PROJECT_MAX_MEMBERS" envDefault:"500"`
	// ConsumerName names this replica in the consumer group; empty means
	// hostname-pid-random, unique per process.
	ConsumerName string `env:"PROJECT_CONSUMER_NAME"`
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
	if _, err := database.KindOf(c.DatabaseURL); err != nil {
		return errors.New("PROJECT_DATABASE_URL: " + err.Error())
	}
	if len(c.CursorSecret) < 32 {
		return errors.New("CURSOR_SECRET: must be at least 32 characters")
	}
	if c.MaxMembers < 1 || c.MaxMembers > 10_000 {
		return errors.New("PROJECT_MAX_MEMBERS: must be from 1 to 10000")
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
