// Package testenv gives tests the real servers named by environment variables:
// a test skips when its variable is unset on a laptop, and fails in CI (CI set).
package testenv

import (
	"os"
	"testing"
)

// Require returns the value of the environment variable key, skipping the test when it
// is unset outside CI and failing it inside CI.
func Require(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s must be set in CI", key)
		}
		t.Skipf("%s not set", key)
	}
	return v
}
