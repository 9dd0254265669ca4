package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestKeyIDIsTheRFC7638Thumbprint checks the kid against RFC 8037 appendix A.3.
func TestKeyIDIsTheRFC7638Thumbprint(t *testing.T) {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if got := KeyID(ed25519.PublicKey(x)); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("thumbprint %q", got)
	}
}

func TestPEMAndJWKSRoundTrip(t *testing.T) {
	k := mustKey()
	pemBytes, err := MarshalPrivateKeyPEM(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKeyPEM(pemBytes)
	if err != nil || back.ID != k.ID || !back.Private.Equal(k.Private) {
		t.Fatalf("PEM round trip: %v", err)
	}
	pubs, err := ParsePublicKeysPEM(append(pemBytes, pemBytes...))
	if err != nil || len(pubs) != 2 || !pubs[0].Equal(k.Public()) {
		t.Fatalf("public keys from private PEM blocks: %v %v", pubs, err)
	}
	if _, err := ParsePrivateKeyPEM([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Fatal("garbage PEM accepted")
	}

	old := mustKey()
	set := mustSet(k.Public(), old.Public())
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	_ = json.Unmarshal(raw, &doc)
	if len(doc.Keys) != 2 || doc.Keys[0]["kid"] != k.ID || doc.Keys[0]["kty"] != "OKP" || doc.Keys[0]["crv"] != "Ed25519" ||
		doc.Keys[0]["alg"] != "EdDSA" || doc.Keys[0]["use"] != "sig" || doc.Keys[0]["d"] != "" {
		t.Fatalf("JWK Set %s", raw)
	}
	parsed, err := ParseJWKS(raw)
	if err != nil || strings.Join(parsed.IDs(), ",") != k.ID+","+old.ID {
		t.Fatalf("parse back: %v %v", parsed.IDs(), err)
	}
	for name, bad := range map[string]string{
		"not json":       `{`,
		"no usable key":  `{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}`,
		"short x":        `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
		"kid mismatch":   `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"mine"}]}`,
		"encryption key": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}]}`,
	} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRotationKeepsOldTokensUntilTheirKeyIsRemoved: auth signs with the new key and
// still publishes the previous one, so tokens signed before the rotation stay valid
// until they expire; once the previous key leaves the set, its tokens are refused,
// even those the verifier had cached.
func TestRotationKeepsOldTokensUntilTheirKeyIsRemoved(t *testing.T) {
	ctx := context.Background()
	old, current := mustKey(), mustKey()
	oldToken, _, _ := newSigner(t, old, time.Minute).Issue("u1", "s1", time.Now())

	var keys atomic.Pointer[KeySet]
	before := mustSet(old.Public())
	keys.Store(&before)
	v := newVerifier(t, sourceFunc(func(ctx context.Context, kid string) (ed25519.PublicKey, error) {
		return keys.Load().PublicKey(ctx, kid)
	}), NewMemoryRevocations())
	if _, err := v.Verify(ctx, oldToken); err != nil {
		t.Fatal(err)
	}

	rotated := mustSet(current.Public(), old.Public())
	keys.Store(&rotated)
	newToken, _, _ := newSigner(t, current, time.Minute).Issue("u2", "s2", time.Now())
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("%s token refused during the rotation: %v", name, err)
		}
	}

	after := mustSet(current.Public())
	keys.Store(&after)
	if _, err := v.Verify(ctx, oldToken); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token of a removed key accepted: %v", err)
	}
	if _, err := v.Verify(ctx, newToken); err != nil {
		t.Fatal(err)
	}
}

type sourceFunc func(ctx context.Context, kid string) (ed25519.PublicKey, error)

func (f sourceFunc) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	return f(ctx, kid)
}

// jwksServer serves a swappable key set and counts its requests.
type jwksServer struct {
	mu   sync.Mutex
	set  KeySet
	down bool
	hits atomic.Int32
	url  string
}

func startJWKS(t *testing.T, set KeySet) *jwksServer {
	s := &jwksServer{set: set}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(s.set)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *jwksServer) swap(set KeySet, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set, s.down = set, down
}

// TestRemoteKeys: the JWK Set is fetched once and cached; an unknown kid triggers a
// refetch at most once per minimum interval however many tokens carry one; a key
// rotated in is learned by that refetch; while auth is down the known keys keep
// working.
func TestRemoteKeys(t *testing.T) {
	ctx := context.Background()
	old, current := mustKey(), mustKey()
	srv := startJWKS(t, mustSet(old.Public()))
	remote := NewRemoteKeys(srv.url + "/api/v1/auth/jwks.json")
	now := time.Now()
	var clockMu sync.Mutex
	remote.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	v := newVerifier(t, remote, NewMemoryRevocations())

	oldToken, _, _ := newSigner(t, old, 10*time.Minute).Issue("u1", "s1", time.Now())
	for range 5 {
		if _, err := v.Verify(ctx, oldToken); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for one key", n)
	}

	// 50 tokens with invented kids, signed by keys auth never published.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			k := mustKey()
			tok, _, _ := newSigner(t, k, time.Minute).Issue("u", "s", time.Now())
			if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("token by an unpublished key: %v", err)
			}
		})
	}
	wg.Wait()
	if n := srv.hits.Load(); n > 2 {
		t.Fatalf("%d fetches: unknown kids must not make the verifier hammer auth", n)
	}

	// Rotation: the new key is learned once the minimum interval has passed.
	srv.swap(mustSet(current.Public(), old.Public()), false)
	advance(DefaultJWKSMinInterval + time.Second)
	newToken, _, _ := newSigner(t, current, 10*time.Minute).Issue("u2", "s2", time.Now())
	if _, err := v.Verify(ctx, newToken); err != nil {
		t.Fatalf("rotated-in key not learned: %v", err)
	}
	if _, err := v.Verify(ctx, oldToken); err != nil {
		t.Fatalf("previous key dropped during the rotation: %v", err)
	}

	// Auth down: known keys keep working, even past the refresh age.
	srv.swap(KeySet{}, true)
	advance(DefaultJWKSMaxAge + time.Second)
	if _, err := v.Verify(ctx, newToken); err != nil {
		t.Fatalf("known key refused while auth is down: %v", err)
	}

	// Auth back with the old key removed: after the refresh age, old tokens die.
	srv.swap(mustSet(current.Public()), false)
	advance(DefaultJWKSMaxAge + time.Second)
	if _, err := v.Verify(ctx, newToken); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, oldToken); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a removed key accepted: %v", err)
	}
}

// TestRemoteKeysBeforeFirstFetch: with auth unreachable and nothing cached, a token
// cannot be checked; that is an outage (5xx), not the client's fault.
func TestRemoteKeysBeforeFirstFetch(t *testing.T) {
	srv := startJWKS(t, mustSet(testKey.Public()))
	srv.swap(KeySet{}, true)
	remote := NewRemoteKeys(srv.url)
	now := time.Now()
	remote.now = func() time.Time { return now }
	v := newVerifier(t, remote, NewMemoryRevocations())
	tok := sign(t, jwt.SigningMethodEdDSA, testKey.Private, validClaims())
	_, err := v.Verify(context.Background(), tok)
	if err == nil || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("want an outage error, got %v", err)
	}
	// Auth comes back: after a failure the next fetch waits a second, not the
	// minimum interval.
	srv.swap(mustSet(testKey.Public()), false)
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("refetched at once after a failure")
	}
	now = now.Add(jwksRetryInterval + time.Millisecond)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("not retried a second after the failure: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}
