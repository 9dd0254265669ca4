package config

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/platform/authn"
)

type testConfig struct {
	Common
	Port    int           `env:"TEST_PORT" envDefault:"8081"`
	Timeout time.Duration `env:"TEST_TIMEOUT" envDefault:"1s"`
}

func (c testConfig) Validate() error {
	if c.Port <= 0 {
		return errors.New("TEST_PORT: must be positive")
	}
	return c.Common.Validate()
}

func TestLoadDefaults(t *testing.T) {
	var c testConfig
	if err := Load(&c); err != nil {
		t.Fatal(err)
	}
	if c.Port != 8081 || c.Timeout != time.Second || c.LogLevel != "info" || c.RedisPrefix != "bugtracker:" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name, key, value, want string
	}{
		{"JWKS URL not http", "JWT_JWKS_URL", "ftp://auth/jwks.json", "JWT_JWKS_URL"},
		{"missing key file", "JWT_PUBLIC_KEYS_FILE", "/nonexistent/jwks.json", "JWT_PUBLIC_KEYS_FILE"},
		{"bad key file", "JWT_PUBLIC_KEYS_FILE", writeFile(t, `{"keys":[]}`), "JWT_PUBLIC_KEYS_FILE"},
		{"not a number", "TEST_PORT", "eighty", "TEST_PORT"},
		{"bad duration", "TEST_TIMEOUT", "soon", "TEST_TIMEOUT"},
		{"negative port", "TEST_PORT", "-1", "TEST_PORT"},
		{"bad level", "LOG_LEVEL", "loud", "LOG_LEVEL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			var c testConfig
			err := Load(&c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error naming %s, got %v", tc.want, err)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKeySource: a JWK Set file wins over the URL; with neither there is no source,
// so a verifying service refuses to start rather than accept nothing or anything.
func TestKeySource(t *testing.T) {
	k, err := authn.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	set, _ := authn.NewKeySet(k.Public())
	raw, _ := json.Marshal(set)
	t.Setenv("JWT_PUBLIC_KEYS_FILE", writeFile(t, string(raw)))
	t.Setenv("JWT_JWKS_URL", "http://auth:8081/api/v1/auth/jwks.json")
	var c testConfig
	if err := Load(&c); err != nil {
		t.Fatal(err)
	}
	src, err := c.JWTKeySource()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.PublicKey(context.Background(), k.ID); err != nil {
		t.Fatalf("key from the file: %v", err)
	}
	c.JWTPublicKeys = ""
	if src, err := c.JWTKeySource(); err != nil {
		t.Fatal(err)
	} else if _, ok := src.(*authn.RemoteKeys); !ok {
		t.Fatalf("URL source %T", src)
	}
	c.JWTJWKSURL = ""
	if _, err := c.JWTKeySource(); err == nil || !strings.Contains(err.Error(), "JWT_JWKS_URL") {
		t.Fatalf("no source: %v", err)
	}
}
