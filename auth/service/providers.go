package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/google/wire"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/auth/adapters/argon2"
	"github.com/bugtracker/bugtracker/auth/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/auth/app"
	authhttp "github.com/bugtracker/bugtracker/auth/ports/http"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/redisx"
	"github.com/bugtracker/bugtracker/platform/runner"
)

// Service is the assembled auth process.
type Service struct {
	HTTP  *runner.HTTP
	Relay *outbox.Relay
}

// Components lists what main runs.
func (s *Service) Components() map[string]runner.Component {
	c := map[string]runner.Component{"http": s.HTTP}
	if s.Relay != nil {
		c["outbox-relay"] = s.Relay
	}
	return c
}

// appSet builds the use cases from ports; both injectors share it.
var appSet = wire.NewSet(
	provideClock, provideIDs, provideHasher, provideAccessTokens, provideRefreshTTL,
	app.NewRegisterHandler, app.NewLoginHandler,
	wire.Struct(new(app.Application), "*"),
	authhttp.NewHandlers,
)

// infraSet is the production adapters: SQL through bun, events through the outbox to
// Redis Streams.
var infraSet = wire.NewSet(
	provideDB, provideRedis, providePublisher, provideRelay, provideRepo, provideChecks,
	wire.Bind(new(app.Users), new(*bunrepo.Repo)),
	wire.Bind(new(app.Sessions), new(*bunrepo.Repo)),
	wire.Bind(new(eventbus.Publisher), new(*redisstream.Publisher)),
	provideHTTP,
	wire.Struct(new(Service), "*"),
)

// memorySet swaps every outbound adapter for memory, for component tests; the
// component-test injector binds its in-memory store to the ports.
var memorySet = wire.NewSet(
	provideNoChecks,
	provideHTTP,
	wire.Struct(new(Service), "HTTP"),
)

func provideClock() app.Clock { return time.Now }

func provideIDs() app.IDGenerator { return func() string { return uuid.Must(uuid.NewV7()).String() } }

func provideHasher(cfg Config) app.PasswordHasher { return argon2.New(cfg.Argon2) }

func provideRefreshTTL(cfg Config) app.RefreshTTL { return app.RefreshTTL(cfg.RefreshTokenTTL) }

// accessTokens adapts the platform signer to the use cases' port.
type accessTokens struct{ signer *authn.Signer }

func (a accessTokens) Issue(userID string, now time.Time) (string, time.Duration, error) {
	tok, _, err := a.signer.Issue(userID, now)
	return tok, a.signer.TTL(), err
}

func provideAccessTokens(cfg Config) (app.AccessTokens, error) {
	s, err := authn.NewSigner(authn.Keys{Secret: cfg.JWTSecret, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}, cfg.AccessTokenTTL)
	if err != nil {
		return nil, err
	}
	return accessTokens{s}, nil
}

func provideDB(ctx context.Context, cfg Config) (*bun.DB, func(), error) {
	db, err := database.Open(ctx, cfg.DatabaseURL, cfg.Pool)
	if err != nil {
		return nil, nil, err
	}
	if err := database.Migrate(ctx, db, bunrepo.Migrations); err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return db, func() { _ = db.Close() }, nil
}

func provideRedis(ctx context.Context, cfg Config) (redis.UniversalClient, func(), error) {
	c, err := redisx.Open(ctx, cfg.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}

func providePublisher(client redis.UniversalClient, cfg Config, log *slog.Logger) (*redisstream.Publisher, error) {
	return redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: cfg.RedisPrefix, Logger: log})
}

func provideRelay(db *bun.DB, pub eventbus.Publisher, log *slog.Logger) (*outbox.Relay, error) {
	return outbox.NewRelay(db, pub, outbox.RelayConfig{Producer: eventbus.GroupAuth, Logger: log})
}

func provideRepo(db *bun.DB, relay *outbox.Relay) *bunrepo.Repo { return bunrepo.New(db, relay.Notify) }

func provideChecks(db *bun.DB, client redis.UniversalClient) map[string]httpserver.Check {
	return map[string]httpserver.Check{
		"database": db.PingContext,
		"redis":    func(ctx context.Context) error { return client.Ping(ctx).Err() },
	}
}

func provideNoChecks() map[string]httpserver.Check { return nil }

func provideHTTP(cfg Config, log *slog.Logger, h *authhttp.Handlers, checks map[string]httpserver.Check) *runner.HTTP {
	app := httpserver.New(httpserver.Config{Service: "auth", Logger: log, Checks: checks, MapError: authhttp.MapError})
	h.Register(app)
	return &runner.HTTP{App: app, Addr: cfg.HTTPAddr}
}
