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
	"github.com/bugtracker/bugtracker/auth/adapters/hashlimit"
	"github.com/bugtracker/bugtracker/auth/adapters/mail"
	"github.com/bugtracker/bugtracker/auth/adapters/throttle"
	"github.com/bugtracker/bugtracker/auth/app"
	authhttp "github.com/bugtracker/bugtracker/auth/ports/http"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/runner"
	"github.com/bugtracker/bugtracker/platform/wiring"
)

// Service is the assembled auth process.
type Service struct {
	HTTP        *runner.HTTP
	Relay       *outbox.Relay
	ResetMailer *app.ForgotPasswordHandler
}

// Components lists what main runs.
func (s *Service) Components() map[string]runner.Component {
	c := map[string]runner.Component{"http": s.HTTP, "reset-mailer": s.ResetMailer}
	if s.Relay != nil {
		c["outbox-relay"] = s.Relay
	}
	return c
}

// appSet builds the use cases and inbound ports from the ports; both injectors share it.
var appSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideClock, provideIDs, provideHasher, provideAccessTokens, provideRefreshTTL, provideResetURL, provideLimits,
	wire.FieldsOf(new(Config), "Common"), provideKeyRing, provideKeySet, provideVerifier,
	app.NewRegisterHandler, app.NewLoginHandler, app.NewRefreshHandler, app.NewLogoutHandler,
	app.NewGetUserHandler, app.NewListUsersHandler,
	app.NewChangePasswordHandler, app.NewForgotPasswordHandler, app.NewResetPasswordHandler,
	wire.Struct(new(app.Application), "*"),
	authhttp.NewHandlers, provideHTTP,
)

// infraSet is the production adapters: SQL through bun, events through the outbox to
// Redis Streams, revocations and throttling in Redis, mail over SMTP or to files.
var infraSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideDB, wiring.ProvideRedis, wiring.ProvideRevocations, providePublisher, provideRelay, provideRepo, provideArgon2,
	provideChecks, provideThrottle, provideMailer,
	wire.Bind(new(app.Users), new(*bunrepo.Repo)),
	wire.Bind(new(app.Sessions), new(*bunrepo.Repo)),
	wire.Bind(new(app.ResetTokens), new(*bunrepo.Repo)),
	wire.Bind(new(app.ResetRequests), new(*bunrepo.Repo)),
	wire.Bind(new(eventbus.Publisher), new(*redisstream.Publisher)),
	wire.Bind(new(authn.RevocationChecker), new(*authn.RedisRevocations)),
	wire.Bind(new(app.Revoker), new(*authn.RedisRevocations)),
	wire.Bind(new(app.Throttle), new(*throttle.Redis)),
	wire.Struct(new(Service), "*"),
)

// memorySet swaps every outbound adapter for memory, for component tests; the
// component-test injector binds its in-memory arguments to the ports.
var memorySet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideNoChecks,
	wire.Struct(new(Service), "HTTP", "ResetMailer"),
)

func provideClock() app.Clock { return time.Now }

func provideIDs() app.IDGenerator { return func() string { return uuid.Must(uuid.NewV7()).String() } }

// RawHasher is the password hasher before the concurrency limit: argon2id in
// production, a test's spy in component tests (which still run it within the limit).
type RawHasher interface{ app.PasswordHasher }

func provideArgon2(cfg Config) RawHasher { return argon2.New(cfg.Argon2) }

// provideHasher runs the raw hasher within the concurrency limit.
func provideHasher(raw RawHasher, cfg Config) app.PasswordHasher {
	return hashlimit.New(raw, cfg.Hash)
}

func provideLimits(cfg Config) app.Limits { return cfg.Throttle.Limits() }

func provideRefreshTTL(cfg Config) app.RefreshTTL { return app.RefreshTTL(cfg.RefreshTokenTTL) }

func provideResetURL(cfg Config) app.ResetURL { return app.ResetURL(cfg.ResetURL) }

// accessTokens adapts the platform signer to the use cases' port.
type accessTokens struct{ signer *authn.Signer }

func (a accessTokens) Issue(userID, sessionID string, now time.Time) (string, app.AccessToken, error) {
	tok, p, err := a.signer.Issue(userID, sessionID, now)
	return tok, app.AccessToken{ID: p.TokenID, ExpiresAt: p.ExpiresAt}, err
}

func (a accessTokens) TTL() time.Duration { return a.signer.TTL() }

func provideKeyRing(cfg Config) (KeyRing, error) { return cfg.KeyRing() }

func provideKeySet(ring KeyRing) authn.KeySet { return ring.Published }

func provideAccessTokens(cfg Config, ring KeyRing) (app.AccessTokens, error) {
	s, err := authn.NewSigner(ring.Signing, cfg.JWTParties(), cfg.AccessTokenTTL)
	if err != nil {
		return nil, err
	}
	return accessTokens{s}, nil
}

// provideVerifier checks access tokens against auth's own published keys: auth
// never fetches its JWK Set from itself.
func provideVerifier(cfg Config, keys authn.KeySet, revoked authn.RevocationChecker) (*authn.Verifier, error) {
	return authn.NewVerifier(cfg.JWTParties(), keys, revoked)
}

func provideThrottle(client redis.UniversalClient, cfg Config) *throttle.Redis {
	return throttle.NewRedis(client, cfg.RedisPrefix)
}

// provideMailer sends over SMTP when a host is configured, else writes .eml files.
func provideMailer(cfg Config) (app.Mailer, error) {
	if cfg.SMTP.Host != "" {
		return mail.NewSMTP(cfg.SMTP)
	}
	return mail.NewMailbox(cfg.MailDir, cfg.SMTP.From)
}

func provideDB(ctx context.Context, cfg Config) (*bun.DB, func(), error) {
	return database.OpenMigrated(ctx, cfg.DatabaseURL, cfg.Pool, bunrepo.Migrations)
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
	app := httpserver.New(httpserver.Config{
		Service: "auth", Logger: log, Checks: checks, MapError: authhttp.MapError, TrustedProxies: cfg.TrustedProxies,
	})
	h.Register(app)
	return &runner.HTTP{App: app, Addr: cfg.HTTPAddr}
}
