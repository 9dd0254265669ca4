package servicetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/config"
)

// Tokens stands in for auth in a component test: it signs access tokens with a fresh
// Ed25519 key, and Common is the configuration under which a service verifies
// them (the key's JWK Set, as JWT_PUBLIC_KEYS_FILE would hold it, with auth's issuer
// and audience).
type Tokens struct {
	Signer *authn.Signer
	// Keys is the public half, for a test that builds its own verifier.
	Keys    authn.KeySet
	Parties authn.Parties
	Common  config.Common
}

// NewTokens returns a signer of one-minute tokens and the matching configuration.
func NewTokens(t testing.TB) Tokens {
	t.Helper()
	key, err := authn.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	set, err := authn.NewKeySet(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	parties := authn.Parties{Issuer: "bugtracker-auth", Audience: "bugtracker"}
	signer, err := authn.NewSigner(key, parties, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return Tokens{
		Signer: signer, Keys: set, Parties: parties,
		Common: config.Common{JWTPublicKeys: string(jwks), JWTIssuer: parties.Issuer, JWTAudience: parties.Audience},
	}
}

// Token issues an access token for userID in the session "session-"+userID.
func (k Tokens) Token(t testing.TB, userID string) string {
	t.Helper()
	tok, _, err := k.Signer.Issue(userID, "session-"+userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
