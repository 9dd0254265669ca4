// Package service assembles the auth service: configuration, the Wire provider sets
// and injectors (production and component-test), and the components main runs.
package service

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/bugtracker/bugtracker/auth/adapters/argon2"
	"github.com/bugtracker/bugtracker/auth/adapters/hashlimit"
	"github.com/bugtracker/bugtracker/auth/adapters/mail"
	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/platform/authn"
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
	// Hash bounds how many password hashes run at once (memory: argon2 takes
	// AUTH_ARGON2_MEMORY_KIB per hash).
	Hash hashlimit.Config `envPrefix:"AUTH_HASH_"`
	// Throttle sets the attempt limits of login, forgot, register, reset and change
	// password.
	Throttle ThrottleConfig `envPrefix:"AUTH_THROTTLE_"`
	// JWTPrivateKey is the PEM (PKCS #8) Ed25519 key access tokens are signed with,
	// read from the file AUTH_JWT_PRIVATE_KEY_FILE names (`openssl genpkey -algorithm
	// ed25519`); its RFC 7638 thumbprint is the tokens' kid.
	JWTPrivateKey string `env:"AUTH_JWT_PRIVATE_KEY_FILE,file"`
	// JWTPreviousKeys holds the keys of earlier rotations (PEM PUBLIC KEY or PRIVATE
	// KEY blocks), read from AUTH_JWT_PREVIOUS_KEYS_FILE: still published in the JWK
	// Set and accepted, never used to sign. Keep a key here for at least
	// AUTH_ACCESS_TOKEN_TTL after it stopped signing.
	JWTPreviousKeys string `env:"AUTH_JWT_PREVIOUS_KEYS_FILE,file"`
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

// ThrottleConfig holds the attempt limits; every limit counts within Window.
type ThrottleConfig struct {
	// Window is the length of every throttle window.
	Window time.Duration `env:"WINDOW" envDefault:"15m"`
	// LoginMax limits logins (and forgot-password requests) per email and per IP.
	LoginMax int `env:"LOGIN_MAX" envDefault:"10"`
	// RegisterMax limits registrations per client IP.
	RegisterMax int `env:"REGISTER_MAX" envDefault:"20"`
	// ResetMax limits password resets per client IP.
	ResetMax int `env:"RESET_MAX" envDefault:"10"`
	// PasswordMax limits password changes per user and per client IP.
	PasswordMax int `env:"PASSWORD_MAX" envDefault:"10"`
}

// Limits turns the settings into the use cases' policies; a zero field (a Config
// built in a test rather than parsed) takes its default.
func (t ThrottleConfig) Limits() app.Limits {
	window := cmp.Or(t.Window, 15*time.Minute)
	l := func(n, def int) app.Limit { return app.Limit{Max: cmp.Or(n, def), Window: window} }
	return app.Limits{Login: l(t.LoginMax, 10), Register: l(t.RegisterMax, 20), Reset: l(t.ResetMax, 10), ChangePassword: l(t.PasswordMax, 10)}
}

// Validate refuses limits that would throttle nothing or everything.
func (t ThrottleConfig) Validate() error {
	if t.Window <= 0 || t.LoginMax < 1 || t.RegisterMax < 1 || t.ResetMax < 1 || t.PasswordMax < 1 {
		return errors.New("AUTH_THROTTLE_*: the window must be positive and every limit at least 1")
	}
	return nil
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
	if _, err := c.KeyRing(); err != nil {
		return err
	}
	if c.SMTP.Host != "" {
		if err := c.SMTP.Validate(); err != nil {
			return err
		}
	}
	if err := c.Hash.Validate(); err != nil {
		return err
	}
	if err := c.Throttle.Validate(); err != nil {
		return err
	}
	return c.Argon2.Validate()
}

// KeyRing is the signing key and the published key set: the current key first,
// then the previous ones.
func (c Config) KeyRing() (KeyRing, error) {
	if c.JWTPrivateKey == "" {
		return KeyRing{}, errors.New("AUTH_JWT_PRIVATE_KEY_FILE: required (a PEM Ed25519 private key: openssl genpkey -algorithm ed25519)")
	}
	key, err := authn.ParsePrivateKeyPEM([]byte(c.JWTPrivateKey))
	if err != nil {
		return KeyRing{}, fmt.Errorf("AUTH_JWT_PRIVATE_KEY_FILE: %w", err)
	}
	previous, err := authn.ParsePublicKeysPEM([]byte(c.JWTPreviousKeys))
	if err != nil {
		return KeyRing{}, fmt.Errorf("AUTH_JWT_PREVIOUS_KEYS_FILE: %w", err)
	}
	set, err := authn.NewKeySet(append([]ed25519.PublicKey{key.Public()}, previous...)...)
	if err != nil {
		return KeyRing{}, fmt.Errorf("AUTH_JWT_PREVIOUS_KEYS_FILE: %w", err)
	}
	return KeyRing{Signing: key, Published: set}, nil
}

// KeyRing is auth's signing key and the public keys it publishes and accepts.
type KeyRing struct {
	Signing   authn.SigningKey
	Published authn.KeySet
}

// LoadConfig reads and validates the configuration.
func LoadConfig() (Config, error) {
	var c Config
	err := config.Load(&c)
	return c, err
}
