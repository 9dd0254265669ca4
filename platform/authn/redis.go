package authn

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"
)

// MaxCacheAge bounds how stale a cached "not revoked" answer may be: a revoked token is
// refused by every service within this time plus one Redis round trip (API.md: within
// 1 second, so half of it leaves room for the request that revokes).
const MaxCacheAge = 500 * time.Millisecond

// RedisRevocations is the Redis adapter of the revocation ports. Revoked token ids are
// keys with a TTL equal to the token's remaining life, so the list cleans itself.
type RedisRevocations struct {
	client redis.UniversalClient
	prefix string
	cache  *expirable.LRU[string, bool]
}

// NewRedisRevocations returns the adapter; prefix namespaces its keys.
func NewRedisRevocations(client redis.UniversalClient, prefix string) *RedisRevocations {
	return &RedisRevocations{
		client: client,
		prefix: prefix + "revoked:",
		cache:  expirable.NewLRU[string, bool](100_000, nil, MaxCacheAge),
	}
}

// IsRevoked answers from a cache at most MaxCacheAge old, else from Redis.
func (r *RedisRevocations) IsRevoked(ctx context.Context, tokenID string) (bool, error) {
	if v, ok := r.cache.Get(tokenID); ok {
		return v, nil
	}
	n, err := r.client.Exists(ctx, r.prefix+tokenID).Result()
	if err != nil {
		return false, fmt.Errorf("revocations: %w", err)
	}
	r.cache.Add(tokenID, n > 0)
	return n > 0, nil
}

// Revoke records tokenID as revoked for ttl.
func (r *RedisRevocations) Revoke(ctx context.Context, tokenID string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil // already expired: the verifier refuses it anyway
	}
	if err := r.client.Set(ctx, r.prefix+tokenID, 1, ttl).Err(); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	r.cache.Add(tokenID, true)
	return nil
}
