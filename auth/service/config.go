// Package service assembles the auth service: configuration, the Wire provider sets
// and injectors (production and component-test), and the components main runs.
package service

import (
	"errors"
	"time"

	"github.com/bugtracker/bugtracker/auth/adapters/argon2"
	"github.com/bugtracker/bugtracker/auth/adapters/mail"
	"github.com/bugtracker/bugtracker/platform/config"
	"github.com/bugtracker/bugtracker/platform/database"
)

// Config is the auth service's configuration, read from the environment.
type Config struct {
	config.Common
	// HTTPAddr is where the service listens.
	HTTPAddr string `env:"AUTH_HTTP_ADDR" envDefault:":8081"`
	// DatabaseURL is postgres://..., or sqlite://path for a single-process setup.
	DatabaseURL string        `env:"AUTH_DATABASE_URL" envDefault:"sqlite://./data/auth.db"`
	Pool        database.Pool `envPrefix:"AUTH_"`
	Argon2      argon2.Params `envPrefix:"AUTH_ARGON2_"`
	// AccessTokenTTL is the lifetime of access tokens.
	AccessTokenTTL time.Duration `env:"AUTH_ACCESS_TOKEN_TTL" envDefault:"15m"`
	// RefreshTokenTTL is the lifetime of refresh tokens.
	RefreshTokenTTL time.Duration `env:"AUTH_REFRESH_TOKEN_TTL" envDefault:"720h"`
	// TrustedProxies are the addresses or CIDRs (the gateway) whose
	// X-Forwarded-For names the client, for per-IP throttling.
	TrustedProxies []string `env:"AUTH_TRUSTED_PROXIES" envDefault:"127.0.0.1,::1" envSeparator:","`
	// ResetURL is the page password reset mails link to (?token= is appended).
	ResetURL string `env:"AUTH_RESET_URL" envDefault:"http://127.0.0.1:8080/reset-password"`
	// SMTP sends mail when AUTH_SMTP_HOST is set.
	SMTP mail.SMTPConfig
	// MailDir receives mails as .eml files when AUTH_SMTP_HOST is empty (make run).
	MailDir string `env:"AUTH_MAIL_DIR" envDefault:"./data/mail"`
}

// Validate checks the settings after parsing.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if _, err := database.KindOf(c.DatabaseURL); err != nil {
		return errors.New("AUTH_DATABASE_URL: " + err.Error())
	}
	if c.AccessTokenTTL < time.Minute || c.RefreshTokenTTL < c.AccessTokenTTL {
		return errors.New("AUTH_ACCESS_TOKEN_TTL/AUTH_REFRESH_TOKEN_TTL: access must be >= 1m and refresh >= access")
	}
	if c.SMTP.Host != "" {
		if err := c.SMTP.Validate(); err != nil {
			return err
		}
	}
	return c.Argon2.Validate()
}

// LoadConfig reads and validates the configuration.
func LoadConfig() (Config, error) {
	var c Config
	err := config.Load(&c)
	return c, err
}
