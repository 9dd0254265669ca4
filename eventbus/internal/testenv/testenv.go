// Package testenv reads the DSNs of the servers integration tests use.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// Lookup returns the environment variable name. When it is unset the test
// is skipped on a laptop but fails in CI (CI set), so that a missing server
// can never silently turn a CI run green.
func Lookup(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set but CI is: integration tests must not be skipped in CI", name)
	}
	t.Skipf("%s is not set", name)
	return ""
}

// RandomName returns prefix followed by random hex digits, for database
// names and key prefixes that do not collide between parallel tests.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
