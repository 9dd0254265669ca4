// Package config loads a service's settings from environment variables into a struct
// with documented defaults, and fails at start with a message naming the bad variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/logging"
)

// Validator is implemented by settings structs that check rules beyond parsing, such as
// a secret's minimum length. Load calls it after parsing.
type Validator interface {
	Validate() error
}

// Load fills dst from the environment (tags `env`, `envDefault`, `envPrefix`) and then
// runs its Validate method when it has one. Errors name the environment variable.
func Load(dst any) error {
	if err := env.Parse(dst); err != nil {
		return fmt.Errorf("config: %w", nameVariables(dst, err))
	}
	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// nameVariables rewrites the library's parse errors, which name the Go field, into
// errors that name the environment variable an operator has to fix.
func nameVariables(dst any, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := map[string][]string{}
	collectKeys(reflect.TypeOf(dst), "", keys)
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && len(keys[pe.Name]) > 0 {
			e = fmt.Errorf("%s: invalid value: %w", strings.Join(keys[pe.Name], " or "), pe.Err)
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// collectKeys maps each field name to the variables it is read from, following nested
// structs and their envPrefix tags as the env library does.
func collectKeys(t reflect.Type, prefix string, out map[string][]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			out[f.Name] = append(out[f.Name], prefix+name)
			continue
		}
		collectKeys(f.Type, prefix+f.Tag.Get("envPrefix"), out)
	}
}

// Common holds the settings every service shares.
type Common struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// RedisURL locates the Redis that carries the event streams and revocations.
	RedisURL string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// RedisPrefix namespaces every Redis key, so several deployments or test runs can
	// share one server.
	RedisPrefix string `env:"REDIS_PREFIX" envDefault:"bugtracker:"`
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// JWTSecret is the HS256 key access tokens are signed with; there is no default.
	JWTSecret string `env:"JWT_SECRET,required,notEmpty"`
	// JWTIssuer is the expected `iss` claim.
	JWTIssuer string `env:"JWT_ISSUER" envDefault:"bugtracker-auth"`
	// JWTAudience is the expected `aud` claim.
	JWTAudience string `env:"JWT_AUDIENCE" envDefault:"bugtracker"`
}

// Validate checks the shared settings.
func (c Common) Validate() error {
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if len(c.JWTSecret) < 32 {
		return errors.New("JWT_SECRET: must be at least 32 characters")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("SHUTDOWN_TIMEOUT: must be positive")
	}
	return nil
}

// Level returns the parsed log level (Validate has already checked it).
func (c Common) Level() slog.Level {
	l, _ := logging.ParseLevel(c.LogLevel)
	return l
}

// Grace is how long a graceful stop may take.
func (c Common) Grace() time.Duration { return c.ShutdownTimeout }

// JWTKeys are the signing and verification settings of access tokens.
func (c Common) JWTKeys() authn.Keys {
	return authn.Keys{Secret: c.JWTSecret, Issuer: c.JWTIssuer, Audience: c.JWTAudience}
}
