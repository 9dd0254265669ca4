package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/platform/testenv"
)

var (
	parties = Parties{Issuer: "bugtracker-auth", Audience: "bugtracker"}
	testKey = mustKey()
	keySet  = mustSet(testKey.Public())
)

func mustKey() SigningKey {
	k, err := GenerateSigningKey()
	if err != nil {
		panic(err)
	}
	return k
}

func mustSet(keys ...ed25519.PublicKey) KeySet {
	s, err := NewKeySet(keys...)
	if err != nil {
		panic(err)
	}
	return s
}

func newSigner(t testing.TB, key SigningKey, ttl time.Duration) *Signer {
	t.Helper()
	s, err := NewSigner(key, parties, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t testing.TB, keys KeySource, revs RevocationChecker) *Verifier {
	t.Helper()
	v, err := NewVerifier(parties, keys, revs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.RegisteredClaims) string {
	t.Helper()
	return signKid(t, method, key, testKey.ID, claims)
}

// signKid signs claims with the given kid header ("" for none).
func signKid(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.RegisteredClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.RegisteredClaims {
	now := time.Now()
	return jwt.RegisteredClaims{
		Subject: "u1", ID: "jti-1", Issuer: parties.Issuer, Audience: jwt.ClaimStrings{parties.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
	}
}

func TestVerifierRejectsBadTokens(t *testing.T) {
	revs := NewMemoryRevocations()
	v := newVerifier(t, keySet, revs)
	signer := newSigner(t, testKey, 15*time.Minute)
	good, p, err := signer.Issue("u1", "s1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(context.Background(), good)
	if err != nil || got.UserID != "u1" || got.TokenID != p.TokenID || got.SessionID != "s1" {
		t.Fatalf("good token refused: %+v %v", got, err)
	}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	stranger := mustKey()
	mutate := func(f func(*jwt.RegisteredClaims)) string {
		c := validClaims()
		f(&c)
		return sign(t, jwt.SigningMethodEdDSA, testKey.Private, c)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims())
	cases := map[string]string{
		"alg none": none,
		// HS256 made with any secret, including the public key itself (the classic
		// algorithm confusion), a guessable one, and the old dev secret's shape.
		"HS256 with the public key": sign(t, jwt.SigningMethodHS256, []byte(testKey.Public()), validClaims()),
		"HS256 with a secret":       sign(t, jwt.SigningMethodHS256, []byte("0123456789abcdef0123456789abcdef"), validClaims()),
		"HS256 without kid":         signKid(t, jwt.SigningMethodHS256, []byte("secret"), "", validClaims()),
		"HS512":                     sign(t, jwt.SigningMethodHS512, []byte("0123456789abcdef0123456789abcdef"), validClaims()),
		"RS256":                     sign(t, jwt.SigningMethodRS256, rsaKey, validClaims()),
		"key not in the set":        signKid(t, jwt.SigningMethodEdDSA, stranger.Private, stranger.ID, validClaims()),
		"stranger's key, our kid":   sign(t, jwt.SigningMethodEdDSA, stranger.Private, validClaims()),
		"no kid":                    signKid(t, jwt.SigningMethodEdDSA, testKey.Private, "", validClaims()),
		"tampered payload":          good[:len(good)-10] + "AAAAAAAAAA",
		"expired":                   mutate(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Second)) }),
		"no expiry":                 mutate(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }),
		"wrong issuer":              mutate(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" }),
		"wrong audience":            mutate(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} }),
		"no subject":                mutate(func(c *jwt.RegisteredClaims) { c.Subject = "" }),
		"no jti":                    mutate(func(c *jwt.RegisteredClaims) { c.ID = "" }),
		"garbage":                   "not.a.token",
	}
	for name, tok := range cases {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: want ErrInvalidToken, got %v", name, err)
		}
	}

	if err := revs.Revoke(context.Background(), p.TokenID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), good); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked token accepted: %v", err)
	}
}

// TestMiddlewareKeepsUsersApart alternates two users' tokens through a Fiber app:
// fasthttp reuses header buffers, so anything cached from a request must be copied.
func TestMiddlewareKeepsUsersApart(t *testing.T) {
	v := newVerifier(t, keySet, NewMemoryRevocations())
	signer := newSigner(t, testKey, time.Minute)
	app := fiber.New()
	app.Get("/me", v.Middleware(), func(c *fiber.Ctx) error {
		p, _ := PrincipalFrom(c)
		return c.SendString(p.UserID)
	})
	tokens := map[string]string{}
	for _, u := range []string{"ann", "bob"} {
		tokens[u], _, _ = signer.Issue(u, "s-"+u, time.Now())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	for i := range 20 {
		u := []string{"ann", "bob"}[i%2]
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/me", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[u])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != u {
			t.Fatalf("request %d with %s's token authenticated %q", i, u, body)
		}
	}
}

func TestMiddleware(t *testing.T) {
	v := newVerifier(t, keySet, NewMemoryRevocations())
	signer := newSigner(t, testKey, time.Minute)
	tok, _, _ := signer.Issue("u42", "s42", time.Now())
	app := fiber.New()
	app.Get("/me", v.Middleware(), func(c *fiber.Ctx) error {
		p, _ := PrincipalFrom(c)
		return c.SendString(p.UserID)
	})
	for header, want := range map[string]int{
		"":                    401,
		"Bearer":              401,
		"Basic " + tok:        401,
		"Bearer " + tok:       200,
		"bearer " + tok:       200,
		"Bearer " + tok + "x": 401,
	} {
		req := httptest.NewRequest(http.MethodGet, "/me", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if want == 200 && string(body) != "u42" {
			t.Fatalf("principal not stored: %q", body)
		}
		if (resp.StatusCode == 200) != (want == 200) {
			t.Fatalf("%q: status %d, want %d", header, resp.StatusCode, want)
		}
	}
}

// revocationBackends are every adapter of the revocation ports; the same contract runs
// against each.
func revocationBackends() map[string]func(t *testing.T) Revocations {
	return map[string]func(t *testing.T) Revocations{
		"memory": func(*testing.T) Revocations {
			return NewMemoryRevocations()
		},
		"miniredis": func(t *testing.T) Revocations {
			mr := miniredis.RunT(t)
			return NewRedisRevocations(redis.NewClient(&redis.Options{Addr: mr.Addr()}), "t:")
		},
		"redis": func(t *testing.T) Revocations {
			opt, err := redis.ParseURL(testenv.Require(t, "REDIS_URL"))
			if err != nil {
				t.Fatal(err)
			}
			client := redis.NewClient(opt)
			t.Cleanup(func() { _ = client.Close() })
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			return NewRedisRevocations(client, "test:"+hex.EncodeToString(b)+":")
		},
	}
}

func TestRevocationContract(t *testing.T) {
	for name, newBackend := range revocationBackends() {
		t.Run(name, func(t *testing.T) {
			r := newBackend(t)
			ctx := context.Background()
			if revoked, err := r.IsRevoked(ctx, "a"); err != nil || revoked {
				t.Fatalf("fresh id revoked: %v %v", revoked, err)
			}
			if err := r.Revoke(ctx, "b", time.Minute); err != nil {
				t.Fatal(err)
			}
			if revoked, err := r.IsRevoked(ctx, "b"); err != nil || !revoked {
				t.Fatalf("revoked id not seen: %v %v", revoked, err)
			}
			if revoked, _ := r.IsRevoked(ctx, "a"); revoked {
				t.Fatal("revoking b revoked a")
			}
		})
	}
}

// TestRedisRevocationSeenByOtherInstanceWithinOneSecond shows the cache bound: a second
// service instance that already cached "not revoked" refuses the token within 1 s.
func TestRedisRevocationSeenByOtherInstanceWithinOneSecond(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	a, b := NewRedisRevocations(client, "x:"), NewRedisRevocations(client, "x:")
	ctx := context.Background()
	if revoked, _ := b.IsRevoked(ctx, "j"); revoked {
		t.Fatal("not revoked yet")
	}
	if err := a.Revoke(ctx, "j", time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(MaxCacheAge + 500*time.Millisecond)
	for {
		if revoked, _ := b.IsRevoked(ctx, "j"); revoked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("other instance still accepts the revoked token after the cache bound")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCachedTokenStillExpiresAndRevokes: the verified-token cache never outlives the
// token or hides a revocation.
func TestCachedTokenStillExpiresAndRevokes(t *testing.T) {
	revs := NewMemoryRevocations()
	v := newVerifier(t, keySet, revs)
	signer := newSigner(t, testKey, time.Minute)
	tok, p, _ := signer.Issue("u1", "s1", time.Now())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_ = revs.Revoke(ctx, p.TokenID, time.Minute)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token survived revocation: %v", err)
	}
	// A token cached while valid is refused once its exp passes.
	now := time.Now()
	v.now = func() time.Time { return now }
	other, _, _ := signer.Issue("u2", "s2", now)
	if _, err := v.Verify(ctx, other); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	now = now.Add(time.Minute + time.Second)
	if _, err := v.Verify(ctx, other); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token outlived its exp: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b, keySet, NewMemoryRevocations())
	signer := newSigner(b, testKey, 15*time.Minute)
	tok, _, _ := signer.Issue("u1", "s1", time.Now())
	ctx := context.Background()
	b.Run("first-sight", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.parse(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
