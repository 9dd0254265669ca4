package config

import (
	"errors"
	"strings"
	"testing"
	"time"
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

const secret = "0123456789abcdef0123456789abcdef"

func TestLoadDefaults(t *testing.T) {
	t.Setenv("JWT_SECRET", secret)
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
		{"missing secret", "JWT_SECRET", "", "JWT_SECRET"},
		{"short secret", "JWT_SECRET", "short", "JWT_SECRET"},
		{"not a number", "TEST_PORT", "eighty", "TEST_PORT"},
		{"bad duration", "TEST_TIMEOUT", "soon", "TEST_TIMEOUT"},
		{"negative port", "TEST_PORT", "-1", "TEST_PORT"},
		{"bad level", "LOG_LEVEL", "loud", "LOG_LEVEL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JWT_SECRET", secret)
			t.Setenv(tc.key, tc.value)
			var c testConfig
			err := Load(&c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error naming %s, got %v", tc.want, err)
			}
		})
	}
}
