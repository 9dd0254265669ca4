package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/google/wire"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/comment/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/comment/app"
	commenthttp "github.com/bugtracker/bugtracker/comment/ports/http"
	"github.com/bugtracker/bugtracker/comment/ports/stream"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/pagination"
	"github.com/bugtracker/bugtracker/platform/runner"
	"github.com/bugtracker/bugtracker/platform/wiring"
)

// Service is the assembled comment process.
type Service struct {
	HTTP     *runner.HTTP
	Consumer eventbus.Consumer
	// Relay publishes the outbox; nil in component tests.
	Relay *outbox.Relay
	// Pruner trims the inbox; nil in component tests.
	Pruner *InboxPruner
}

// Components lists what main runs.
func (s *Service) Components() map[string]runner.Component {
	c := map[string]runner.Component{"http": s.HTTP, "consumer": s.Consumer}
	if s.Relay != nil {
		c["outbox-relay"] = s.Relay
	}
	if s.Pruner != nil {
		c["inbox-pruner"] = s.Pruner
	}
	return c
}

// appSet builds the use cases and inbound ports; every injector shares it.
var appSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideClock, provideIDs, provideCursors,
	app.NewCreateCommentHandler, app.NewListCommentsHandler, app.NewGetCommentHandler, app.NewDeleteCommentHandler,
	app.NewApplyUserHandler, app.NewApplyProjectHandler, app.NewApplyMembershipHandler, app.NewApplyCardHandler,
	wire.Struct(new(app.Application), "*"),
	commenthttp.NewHandlers, stream.NewHandler, provideHTTP, provideConsumer,
	wire.FieldsOf(new(Config), "Common"), wiring.ProvideVerifier,
)

// infraSet is the production adapters: MariaDB or SQLite through bun with the outbox
// relay, Redis Streams, Redis revocations.
var infraSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideDB, wiring.ProvideRedis, wiring.ProvideRevocations, providePublisher, provideRelay, provideRepo,
	provideSubscriber, provideChecks, providePruner,
	wire.Bind(new(app.Store), new(*bunrepo.Repo)),
	wire.Bind(new(eventbus.Publisher), new(*redisstream.Publisher)),
	wire.Bind(new(authn.RevocationChecker), new(*authn.RedisRevocations)),
	wire.Bind(new(eventbus.Subscriber), new(*redisstream.Subscriber)),
	wire.Struct(new(Service), "*"),
)

// memorySet swaps every outbound adapter for memory, for component tests; the
// component-test injector binds its in-memory arguments to the ports.
var memorySet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideMemorySubscriber, provideNoChecks,
	wire.Bind(new(eventbus.Subscriber), new(*memory.Subscriber)),
	wire.Struct(new(Service), "HTTP", "Consumer"),
)

func provideClock() app.Clock { return time.Now }

func provideIDs() app.IDGenerator { return func() string { return uuid.Must(uuid.NewV7()).String() } }

// provideCursors keys the cursor HMAC with CURSOR_SECRET.
func provideCursors(cfg Config) (*pagination.Cursors, error) {
	return pagination.NewCursors(cfg.CursorSecret)
}

func provideHTTP(cfg Config, log *slog.Logger, h *commenthttp.Handlers, checks map[string]httpserver.Check) *runner.HTTP {
	app := httpserver.New(httpserver.Config{Service: "comment", Logger: log, Checks: checks, MapError: commenthttp.MapError})
	h.Register(app)
	return &runner.HTTP{App: app, Addr: cfg.HTTPAddr}
}

func provideConsumer(sub eventbus.Subscriber, h *stream.Handler) eventbus.Consumer {
	return eventbus.Consumer{Subscriber: sub, Handler: h.Handle}
}

func provideDB(ctx context.Context, cfg Config) (*bun.DB, func(), error) {
	return database.OpenMigrated(ctx, cfg.DatabaseURL, cfg.Pool, bunrepo.Migrations)
}

func providePublisher(client redis.UniversalClient, cfg Config, log *slog.Logger) (*redisstream.Publisher, error) {
	return redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: cfg.RedisPrefix, Logger: log})
}

func provideRelay(db *bun.DB, pub eventbus.Publisher, log *slog.Logger) (*outbox.Relay, error) {
	return outbox.NewRelay(db, pub, outbox.RelayConfig{Producer: eventbus.GroupComment, Logger: log})
}

func provideRepo(db *bun.DB, relay *outbox.Relay) *bunrepo.Repo {
	return bunrepo.New(db, eventbus.GroupComment, relay.Notify)
}

// InboxPruner forgets consumed event ids past the retention once an hour, so the
// processed_events table stays bounded.
type InboxPruner struct {
	Repo      *bunrepo.Repo
	Retention time.Duration
	Every     time.Duration
	Log       *slog.Logger
}

// Run prunes at once and then every Every until ctx ends; a failed prune is logged
// and retried at the next tick.
func (p *InboxPruner) Run(ctx context.Context) error {
	tick := time.NewTicker(p.Every)
	defer tick.Stop()
	for {
		if err := p.Repo.PruneInbox(ctx, p.Retention); err != nil && ctx.Err() == nil {
			p.Log.WarnContext(ctx, "inbox prune failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func providePruner(repo *bunrepo.Repo, cfg Config, log *slog.Logger) *InboxPruner {
	return &InboxPruner{Repo: repo, Retention: cfg.InboxRetention, Every: time.Hour, Log: log}
}

func provideSubscriber(client redis.UniversalClient, cfg Config, log *slog.Logger) (*redisstream.Subscriber, error) {
	return redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: cfg.RedisPrefix, Group: eventbus.GroupComment, Consumer: cfg.ConsumerName,
		Families: stream.Families, ClaimMinIdle: cfg.ClaimMinIdle, MaxDeliveries: cfg.MaxDeliveries, Logger: log,
	})
}

func provideChecks(db *bun.DB, client redis.UniversalClient) map[string]httpserver.Check {
	return map[string]httpserver.Check{
		"database": db.PingContext,
		"redis":    func(ctx context.Context) error { return client.Ping(ctx).Err() },
	}
}

func provideMemorySubscriber(bus *memory.Bus, log *slog.Logger) (*memory.Subscriber, error) {
	return bus.NewSubscriber(memory.SubscriberConfig{
		Group: eventbus.GroupComment, Consumer: "component-test", Families: stream.Families, Logger: log,
	})
}

func provideNoChecks() map[string]httpserver.Check { return nil }
