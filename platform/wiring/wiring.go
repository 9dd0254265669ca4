// Package wiring holds the Wire providers every service builds the same way from the
// shared settings (config.Common): the Redis client, the token revocation list and the
// access-token verifier. A service adds Set to its injector and exposes its Common with
// wire.FieldsOf.
package wiring

import (
	"context"

	"github.com/google/wire"
	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/config"
	"github.com/bugtracker/bugtracker/platform/redisx"
)

// Set provides Redis, the Redis revocation list and the verifier.
var Set = wire.NewSet(ProvideRedis, ProvideRevocations, ProvideVerifier)

// ProvideRedis connects to REDIS_URL; the cleanup closes the client.
func ProvideRedis(ctx context.Context, c config.Common) (redis.UniversalClient, func(), error) {
	client, err := redisx.Open(ctx, c.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	return client, func() { _ = client.Close() }, nil
}

// ProvideRevocations is the revocation list in Redis under REDIS_PREFIX.
func ProvideRevocations(client redis.UniversalClient, c config.Common) *authn.RedisRevocations {
	return authn.NewRedisRevocations(client, c.RedisPrefix)
}

// ProvideVerifier checks access tokens with the shared JWT settings: EdDSA only, with
// the public keys of JWT_PUBLIC_KEYS_FILE or fetched from JWT_JWKS_URL.
func ProvideVerifier(c config.Common, revoked authn.RevocationChecker) (*authn.Verifier, error) {
	keys, err := c.JWTKeySource()
	if err != nil {
		return nil, err
	}
	return authn.NewVerifier(c.JWTParties(), keys, revoked)
}
