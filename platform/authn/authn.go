// Package authn issues and verifies the EdDSA (Ed25519) access tokens every service
// accepts, and asks a revocation port whether a token was revoked (logout, password
// change). Only auth holds a private key; every other service verifies with public
// keys from a JWK Set (a file, or auth's GET /api/v1/auth/jwks.json), so no service
// but auth can mint a token.
package authn

import (
	"context"
	"crypto/ed25519"
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

// algorithm is pinned: tokens signed any other way (alg none, HS256 made with any
// secret, RS256) are rejected before their signature is even looked at.
const algorithm = "EdDSA"

// Parties are the issuer and audience both signer and verifier agree on.
type Parties struct {
	Issuer   string
	Audience string
}

// Validate rejects empty names.
func (p Parties) Validate() error {
	if p.Issuer == "" || p.Audience == "" {
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
	key     SigningKey
	parties Parties
	ttl     time.Duration
}

// NewSigner returns a signer of tokens valid for ttl, with key's id as their kid.
func NewSigner(key SigningKey, parties Parties, ttl time.Duration) (*Signer, error) {
	if err := parties.Validate(); err != nil {
		return nil, err
	}
	if len(key.Private) != ed25519.PrivateKeySize || key.ID == "" {
		return nil, errors.New("authn: an Ed25519 signing key is required")
	}
	if ttl <= 0 {
		return nil, errors.New("authn: token lifetime must be positive")
	}
	return &Signer{key: key, parties: parties, ttl: ttl}, nil
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
			Issuer:    s.parties.Issuer,
			Audience:  jwt.ClaimStrings{s.parties.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(p.ExpiresAt),
		},
		SessionID: sessionID,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.key.ID
	token, err = t.SignedString(s.key.Private)
	if err != nil {
		return "", Principal{}, fmt.Errorf("authn: sign: %w", err)
	}
	return token, p, nil
}

// Verifier checks access tokens: algorithm, key id, signature, expiry, issuer,
// audience and revocation.
type Verifier struct {
	keys    KeySource
	parser  *jwt.Parser
	revoked RevocationChecker
	// verified caches successful signature and claim checks by the exact token
	// string, so a client's repeated requests skip the signature check; expiry is
	// rechecked on every hit, the key must still be in the set (a key rotated out
	// takes its tokens with it), and revocation is always asked.
	verified *expirable.LRU[string, verifiedToken]
	// now is the verifier's clock; tests move it.
	now func() time.Time
}

// verifiedToken is a cache entry: the principal and the key that signed the token.
type verifiedToken struct {
	Principal
	kid string
}

// verifiedCacheTTL bounds how long a verified token is remembered.
const verifiedCacheTTL = time.Minute

// NewVerifier returns a verifier of tokens signed by keys; revoked may not be nil.
func NewVerifier(parties Parties, keys KeySource, revoked RevocationChecker) (*Verifier, error) {
	if err := parties.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("authn: a key source is required")
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
		jwt.WithIssuer(parties.Issuer),
		jwt.WithAudience(parties.Audience),
	)
	v.revoked = revoked
	v.verified = expirable.NewLRU[string, verifiedToken](50_000, nil, verifiedCacheTTL)
	return v, nil
}

// Verify returns the principal of a valid, unrevoked token. It returns an error
// wrapping ErrInvalidToken for a bad token, and another error when the revocation
// store cannot answer.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	vt, ok := v.verified.Get(token)
	if ok && v.now().Before(vt.ExpiresAt) {
		if _, err := v.keys.PublicKey(ctx, vt.kid); err != nil {
			v.verified.Remove(token)
			return Principal{}, keyError(err)
		}
	} else {
		var err error
		if vt, err = v.parse(ctx, token); err != nil {
			return Principal{}, err
		}
		// Callers may pass a string backed by a reused buffer (fasthttp's zero-copy
		// header values): the cache keeps its own copy.
		v.verified.Add(strings.Clone(token), vt)
	}
	p := vt.Principal
	revoked, err := v.revoked.IsRevoked(ctx, p.TokenID)
	if err != nil {
		return Principal{}, fmt.Errorf("authn: revocation check: %w", err)
	}
	if revoked {
		return Principal{}, fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	return p, nil
}

// keyError maps a key source's answer: an unknown key is a bad token (401), anything
// else is an outage of the source.
func keyError(err error) error {
	if errors.Is(err, ErrUnknownKey) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return fmt.Errorf("authn: key source: %w", err)
}

// parse checks the token's algorithm, key id, signature and claims.
func (v *Verifier) parse(ctx context.Context, token string) (verifiedToken, error) {
	var c claims
	var kid string
	var keyErr error
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		key, err := v.keys.PublicKey(ctx, kid)
		if err != nil {
			keyErr = err
			return nil, err
		}
		return key, nil
	})
	if keyErr != nil {
		return verifiedToken{}, keyError(keyErr)
	}
	if err != nil {
		return verifiedToken{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.ID == "" {
		return verifiedToken{}, fmt.Errorf("%w: sub and jti are required", ErrInvalidToken)
	}
	p := Principal{UserID: c.Subject, TokenID: c.ID, SessionID: c.SessionID, ExpiresAt: c.ExpiresAt.Time}
	return verifiedToken{Principal: p, kid: kid}, nil
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
