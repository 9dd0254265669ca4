package authn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// KeySource hands the verifier the public key a token names.
type KeySource interface {
	// PublicKey returns the key with id kid, ErrUnknownKey when there is none, or
	// another error when the source cannot answer (its server is down).
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// RemoteKeys is a KeySource that fetches auth's JWK Set over HTTP and caches it.
// A kid it does not know triggers a refetch (that is how a rotated-in key is
// learned), but at most once per MinInterval, so tokens with invented kids cannot
// make it hammer auth; the set is also refreshed when older than MaxAge, so a key
// rotated out stops being accepted.
type RemoteKeys struct {
	url    string
	client *http.Client
	// MinInterval is the least time between two fetches.
	minInterval time.Duration
	// maxAge is how long a fetched set is used before it is refreshed.
	maxAge time.Duration
	now    func() time.Time

	mu          sync.RWMutex
	keys        KeySet
	fetchedAt   time.Time
	lastAttempt time.Time
	lastFailed  bool
	fetch       sync.Mutex // one fetch at a time
}

// Defaults of RemoteKeys.
const (
	DefaultJWKSMinInterval = 10 * time.Second
	DefaultJWKSMaxAge      = 5 * time.Minute
	// jwksRetryInterval is the least time between fetches after a failed one: short,
	// so a verifier that could not reach auth once does not refuse every token for
	// the whole minimum interval, yet still at most one request a second.
	jwksRetryInterval = time.Second
	jwksFetchTimeout  = 5 * time.Second
	maxJWKSBytes      = 64 << 10
)

// NewRemoteKeys returns a source for the JWK Set at url; nothing is fetched until
// a token needs a key.
func NewRemoteKeys(url string) *RemoteKeys {
	return &RemoteKeys{
		url: url, client: &http.Client{Timeout: jwksFetchTimeout},
		minInterval: DefaultJWKSMinInterval, maxAge: DefaultJWKSMaxAge, now: time.Now,
	}
}

// PublicKey answers from the cached set when it is fresh and knows kid, else
// refetches (bounded by the minimum interval). While auth cannot be reached a
// stale set keeps being used for the keys it knows.
func (r *RemoteKeys) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	r.mu.RLock()
	key, err := r.keys.PublicKey(ctx, kid)
	fresh := !r.fetchedAt.IsZero() && r.now().Sub(r.fetchedAt) < r.maxAge
	r.mu.RUnlock()
	if err == nil && fresh {
		return key, nil
	}

	r.fetch.Lock()
	defer r.fetch.Unlock()
	r.mu.RLock()
	key, err = r.keys.PublicKey(ctx, kid)
	fresh = !r.fetchedAt.IsZero() && r.now().Sub(r.fetchedAt) < r.maxAge
	interval := r.minInterval
	if r.lastFailed {
		interval = jwksRetryInterval
	}
	tooSoon := !r.lastAttempt.IsZero() && r.now().Sub(r.lastAttempt) < interval
	never := r.fetchedAt.IsZero()
	r.mu.RUnlock()
	if (err == nil && fresh) || tooSoon {
		// Another caller fetched meanwhile, or one did too recently to try again.
		if err != nil && never {
			return nil, errors.New("authn: JWK Set not fetched yet")
		}
		return key, err
	}

	set, ferr := r.get(ctx)
	r.mu.Lock()
	r.lastAttempt, r.lastFailed = r.now(), ferr != nil
	if ferr == nil {
		r.keys, r.fetchedAt = set, r.lastAttempt
	}
	r.mu.Unlock()
	if ferr != nil {
		if err == nil {
			return key, nil // stale but known: keep serving while auth is away
		}
		return nil, ferr
	}
	return set.PublicKey(ctx, kid)
}

// get fetches and parses the set.
func (r *RemoteKeys) get(ctx context.Context) (KeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return KeySet{}, fmt.Errorf("authn: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return KeySet{}, fmt.Errorf("authn: fetch JWKS: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return KeySet{}, fmt.Errorf("authn: fetch JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return KeySet{}, fmt.Errorf("authn: read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return KeySet{}, errors.New("authn: JWKS larger than 64 KiB")
	}
	return ParseJWKS(body)
}
