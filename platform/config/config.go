// Package config loads a service's settings from environment variables into a struct
// with documented defaults, and fails at start with a message naming the bad variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
	// JWTJWKSURL is where auth serves its JWK Set (the public keys of access
	// tokens), fetched on first need, on an unknown kid (at most every 10 s) and every
	// 5 minutes. Services other than auth set it or JWTPublicKeys.
	JWTJWKSURL string `env:"JWT_JWKS_URL"`
	// JWTPublicKeys is a JWK Set (the JSON auth serves at /api/v1/auth/jwks.json),
	// read from the file JWT_PUBLIC_KEYS_FILE names; it wins over JWT_JWKS_URL.
	JWTPublicKeys string `env:"JWT_PUBLIC_KEYS_FILE,file"`
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
	if c.JWTPublicKeys != "" {
		if _, err := authn.ParseJWKS([]byte(c.JWTPublicKeys)); err != nil {
			return fmt.Errorf("JWT_PUBLIC_KEYS_FILE: %w", err)
		}
	}
	if c.JWTJWKSURL != "" {
		if u, err := url.Parse(c.JWTJWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("JWT_JWKS_URL: must be an http(s) URL")
		}
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

// JWTParties are the issuer and audience of access tokens.
func (c Common) JWTParties() authn.Parties {
	return authn.Parties{Issuer: c.JWTIssuer, Audience: c.JWTAudience}
}

// JWTKeySource is where the verifier finds the public keys of access tokens: the
// JWK Set file when one is configured, else auth's JWKS URL. Auth itself uses its
// own keys and needs neither.
func (c Common) JWTKeySource() (authn.KeySource, error) {
	switch {
	case c.JWTPublicKeys != "":
		return authn.ParseJWKS([]byte(c.JWTPublicKeys))
	case c.JWTJWKSURL != "":
		return authn.NewRemoteKeys(c.JWTJWKSURL), nil
	}
	return nil, errors.New("config: JWT_JWKS_URL or JWT_PUBLIC_KEYS_FILE is required to verify access tokens")
}
