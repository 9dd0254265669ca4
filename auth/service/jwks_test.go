package service_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/auth/service"
	"github.com/bugtracker/bugtracker/platform/authn"
)

// TestJWKSAndRotation: auth publishes its current and previous public keys without a
// token, signs with the current one only, and keeps accepting tokens of the previous
// key (signed before the rotation) until they expire.
func TestJWKSAndRotation(t *testing.T) {
	previous, previousPEM := mustKey()
	h := startWith(t, nil, func(c *service.Config) { c.JWTPreviousKeys = previousPEM })

	r := h.do(t, "GET", "/api/v1/auth/jwks.json", "", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") == "" {
		t.Fatalf("jwks: %d %v %s", r.status, r.header, r.raw)
	}
	set, err := authn.ParseJWKS([]byte(r.raw))
	if err != nil {
		t.Fatal(err)
	}
	if ids := set.IDs(); len(ids) != 2 || ids[0] != signingKey.ID || ids[1] != previous.ID {
		t.Fatalf("published kids %v, want current %s then previous %s", ids, signingKey.ID, previous.ID)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	_ = json.Unmarshal([]byte(r.raw), &doc)
	for _, k := range doc.Keys {
		if _, private := k["d"]; private {
			t.Fatal("the JWK Set leaks a private key")
		}
	}

	id := h.register(t, "Ann", "ann@example.com", "correct horse")
	// A token the previous key signed before the rotation is still good.
	oldSigner, err := authn.NewSigner(previous, parties, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	oldToken, _, _ := oldSigner.Issue(id, "session-before-rotation", time.Now())
	if h.me(t, oldToken) != 200 {
		t.Fatal("a token of the previous key was refused during the rotation")
	}
	// New tokens carry the current kid and verify against the published set.
	fresh := h.login(t, "ann@example.com", "correct horse").access
	v, _ := authn.NewVerifier(parties, set, authn.NewMemoryRevocations())
	if _, err := v.Verify(t.Context(), fresh); err != nil {
		t.Fatalf("a fresh token does not verify against the published set: %v", err)
	}

	// Once the previous key is dropped from the configuration, its tokens are refused.
	h2 := start(t)
	h2.register(t, "Ann", "ann@example.com", "correct horse")
	if h2.me(t, oldToken) != 401 {
		t.Fatal("a token of a key no longer published was accepted")
	}
}
