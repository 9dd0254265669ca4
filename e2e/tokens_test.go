package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/platform/authn"
)

// hs256 builds an HS256 token by hand with the given kid, as an attacker would.
func hs256(t *testing.T, secret []byte, kid, sub string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now()
	unsigned := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + enc(map[string]any{
		"sub": sub, "jti": "forged", "iss": "bugtracker-auth", "aud": "bugtracker", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestOnlyAuthCanMintTokens: notif learns auth's public key from the JWK Set through
// JWT_JWKS_URL and accepts auth's tokens; a token signed by any other Ed25519 key, or
// an HS256 token made with any secret (the public key itself included), is refused by
// auth and by notif alike.
func TestOnlyAuthCanMintTokens(t *testing.T) {
	s := startSystem(t)
	// From auth itself, where notif fetches it (the gateway's route to it is the
	// gateway's business).
	resp, err := http.Get(s.auth + "/api/v1/auth/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	set, err := authn.ParseJWKS(raw)
	if resp.StatusCode != 200 || err != nil || len(set.IDs()) != 1 {
		t.Fatalf("jwks: %d %v %s", resp.StatusCode, err, raw)
	}
	kid := set.IDs()[0]
	pub, _ := set.PublicKey(t.Context(), kid)

	reg := s.call(t, "POST", "/api/v1/auth/register", "", `{"name":"Ann","email":"ann@example.com","password":"correct horse battery"}`)
	id, _ := reg.body["id"].(string)
	login := s.call(t, "POST", "/api/v1/auth/login", "", `{"email":"ann@example.com","password":"correct horse battery"}`)
	good, _ := login.body["accessToken"].(string)
	if header, _, _ := strings.Cut(good, "."); !strings.Contains(mustDecode(t, header), `"alg":"EdDSA"`) {
		t.Fatalf("access token header %s", mustDecode(t, header))
	}
	for _, path := range []string{"/api/v1/auth/me", "/api/v1/notifications"} {
		if r := s.call(t, "GET", path, good, ""); r.status != 200 {
			t.Fatalf("auth's own token on %s: %d %s", path, r.status, r.raw)
		}
	}

	stranger, err := authn.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	strangerSigner, _ := authn.NewSigner(stranger, authn.Parties{Issuer: "bugtracker-auth", Audience: "bugtracker"}, time.Minute)
	foreign, _, _ := strangerSigner.Issue(id, "forged-session", time.Now())
	forged := map[string]string{
		"key not in the set":        foreign,
		"HS256 with a secret":       hs256(t, []byte("e2e-any-secret-0123456789abcdef0123"), kid, id),
		"HS256 with the public key": hs256(t, pub, kid, id),
	}
	for name, tok := range forged {
		for _, path := range []string{"/api/v1/auth/me", "/api/v1/notifications"} {
			if r := s.call(t, "GET", path, tok, ""); r.status != 401 {
				t.Errorf("%s on %s: %d, want 401", name, path, r.status)
			}
		}
	}
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(fmt.Errorf("decode %q: %w", s, err))
	}
	return string(b)
}
