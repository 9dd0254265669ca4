// Package authn issues and verifies the HS256 access tokens every service accepts, and
// asks a revocation port whether a token was revoked (logout, password change).
package authn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/bugtracker/bugtracker/platform/problem"
)

// algorithm is pinned: tokens signed any other way (alg none, RS256 with an HMAC key
// confusion) are rejected before their signature is even looked at.
const algorithm = "HS256"

// Keys holds what both signer and verifier must agree on.
type Keys struct {
	Secret   string
	Issuer   string
	Audience string
}

// Validate rejects keys that cannot protect anything.
func (k Keys) Validate() error {
	if len(k.Secret) < 32 {
		return errors.New("authn: secret must be at least 32 bytes")
	}
	if k.Issuer == "" || k.Audience == "" {
		return errors.New("authn: issuer and audience are required")
	}
	return nil
}

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID string
	// TokenID is the access token's jti, the handle for revoking it.
	TokenID string
	// SessionID names the login session (refresh-token family) the token belongs
	// to, so logout and password changes can tell this session from the others.
	SessionID string
	ExpiresAt time.Time
}

// claims are the registered claims plus the session id.
type claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid,omitempty"`
}

// RevocationChecker is the port through which the verifier learns that a token id was
// revoked. Implementations may cache answers, but for at most one second.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, tokenID string) (bool, error)
}

// Revoker records a revoked token id for ttl, its remaining lifetime.
type Revoker interface {
	Revoke(ctx context.Context, tokenID string, ttl time.Duration) error
}

// Revocations is a revocation list that can be both written and read.
type Revocations interface {
	RevocationChecker
	Revoker
}

// ErrInvalidToken covers every reason a token is refused; callers answer 401 without
// saying which, so probing learns nothing.
var ErrInvalidToken = errors.New("invalid access token")

// Signer mints access tokens. Only the auth service uses it outside tests.
type Signer struct {
	keys Keys
	ttl  time.Duration
}

// NewSigner returns a signer of tokens valid for ttl.
func NewSigner(keys Keys, ttl time.Duration) (*Signer, error) {
	if err := keys.Validate(); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, errors.New("authn: token lifetime must be positive")
	}
	return &Signer{keys: keys, ttl: ttl}, nil
}

// TTL is the lifetime of the tokens this signer issues.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Issue mints a token for userID in login session sessionID with a fresh random jti.
func (s *Signer) Issue(userID, sessionID string, now time.Time) (token string, p Principal, err error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Principal{}, fmt.Errorf("authn: token id: %w", err)
	}
	p = Principal{
		UserID: userID, TokenID: hex.EncodeToString(b[:]), SessionID: sessionID,
		ExpiresAt: now.Add(s.ttl).Truncate(time.Second),
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			ID:        p.TokenID,
			Issuer:    s.keys.Issuer,
			Audience:  jwt.ClaimStrings{s.keys.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(p.ExpiresAt),
		},
		SessionID: sessionID,
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(s.keys.Secret))
	if err != nil {
		return "", Principal{}, fmt.Errorf("authn: sign: %w", err)
	}
	return token, p, nil
}

// Verifier checks access tokens: algorithm, signature, expiry, issuer, audience and
// revocation.
type Verifier struct {
	keys    Keys
	parser  *jwt.Parser
	revoked RevocationChecker
	// verified caches successful signature and claim checks by the exact token
	// string, so a client's repeated requests skip parsing; expiry is rechecked on
	// every hit and revocation is always asked.
	verified *expirable.LRU[string, Principal]
	// now is the verifier's clock; tests move it.
	now func() time.Time
}

// verifiedCacheTTL bounds how long a verified token is remembered.
const verifiedCacheTTL = time.Minute

// NewVerifier returns a verifier; revoked may not be nil.
func NewVerifier(keys Keys, revoked RevocationChecker) (*Verifier, error) {
	if err := keys.Validate(); err != nil {
		return nil, err
	}
	if revoked == nil {
		return nil, errors.New("authn: a revocation checker is required")
	}
	v := &Verifier{keys: keys, now: time.Now}
	v.parser = jwt.NewParser(
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithValidMethods([]string{algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(keys.Issuer),
		jwt.WithAudience(keys.Audience),
	)
	v.revoked = revoked
	v.verified = expirable.NewLRU[string, Principal](50_000, nil, verifiedCacheTTL)
	return v, nil
}

// Verify returns the principal of a valid, unrevoked token. It returns an error
// wrapping ErrInvalidToken for a bad token, and another error when the revocation
// store cannot answer.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	p, ok := v.verified.Get(token)
	if !ok || !v.now().Before(p.ExpiresAt) {
		var err error
		if p, err = v.parse(token); err != nil {
			return Principal{}, err
		}
		// Callers may pass a string backed by a reused buffer (fasthttp's zero-copy
		// header values): the cache keeps its own copy.
		v.verified.Add(strings.Clone(token), p)
	}
	revoked, err := v.revoked.IsRevoked(ctx, p.TokenID)
	if err != nil {
		return Principal{}, fmt.Errorf("authn: revocation check: %w", err)
	}
	if revoked {
		return Principal{}, fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	return p, nil
}

// parse checks the token's algorithm, signature and claims.
func (v *Verifier) parse(token string) (Principal, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) {
		return []byte(v.keys.Secret), nil
	})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.ID == "" {
		return Principal{}, fmt.Errorf("%w: sub and jti are required", ErrInvalidToken)
	}
	return Principal{UserID: c.Subject, TokenID: c.ID, SessionID: c.SessionID, ExpiresAt: c.ExpiresAt.Time}, nil
}

type principalKey struct{}

// Middleware authenticates the request with its Bearer token and stores the principal
// for PrincipalFrom. Any token problem is a 401; a revocation store outage is a 503.
func (v *Verifier) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		scheme, token, ok := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return unauthorized(c)
		}
		p, err := v.Verify(c.UserContext(), strings.TrimSpace(token))
		if errors.Is(err, ErrInvalidToken) {
			return unauthorized(c)
		}
		if err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
		c.Locals(principalKey{}, p)
		return c.Next()
	}
}

func unauthorized(c *fiber.Ctx) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="bugtracker"`)
	return problem.Unauthorized("a valid bearer access token is required")
}

// PrincipalFrom returns the caller authenticated by Middleware.
func PrincipalFrom(c *fiber.Ctx) (Principal, bool) {
	p, ok := c.Locals(principalKey{}).(Principal)
	return p, ok
}
