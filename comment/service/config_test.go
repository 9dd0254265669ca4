package service_test

import (
	"strings"
	"testing"

	"github.com/bugtracker/bugtracker/comment/service"
)

func TestConfigNamesTheBadVariable(t *testing.T) {
	base := map[string]string{
		"JWT_SECRET":    "config-test-secret-0123456789abcdef",
		"CURSOR_SECRET": "config-test-cursor-0123456789abcdef",
	}
	cfg := func(t *testing.T, extra map[string]string) error {
		t.Helper()
		for k, v := range base {
			t.Setenv(k, v)
		}
		for k, v := range extra {
			t.Setenv(k, v)
		}
		_, err := service.LoadConfig()
		return err
	}
	if err := cfg(t, nil); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for variable, value := range map[string]string{
		"CURSOR_SECRET":           "short",
		"COMMENT_DATABASE_URL":    "postgres://x@y/z",
		"EVENTBUS_CLAIM_MIN_IDLE": "1ms",
		"EVENTBUS_MAX_DELIVERIES": "0",
	} {
		t.Run(variable, func(t *testing.T) {
			err := cfg(t, map[string]string{variable: value})
			if err == nil || !strings.Contains(err.Error(), variable) {
				t.Errorf("%s=%s: %v", variable, value, err)
			}
		})
	}
}
