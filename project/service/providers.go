package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/google/wire"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

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
	"github.com/bugtracker/bugtracker/project/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/project/app"
	projecthttp "github.com/bugtracker/bugtracker/project/ports/http"
	"github.com/bugtracker/bugtracker/project/ports/stream"
)

// Service is the assembled project process.
type Service struct {
	HTTP     *runner.HTTP
	Consumer eventbus.Consumer
	Relay    *outbox.Relay
	Pruner   *bunrepo.Pruner
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

// appSet builds the use cases and inbound ports from the ports; every injector shares it.
var appSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideClock, provideIDs, provideMaxMembers, provideCursors,
	wire.Struct(new(app.Deps), "*"), app.NewPolicy,
	app.NewCreateProjectHandler, app.NewListProjectsHandler, app.NewGetProjectHandler,
	app.NewUpdateProjectHandler, app.NewDeleteProjectHandler,
	app.NewAddMemberHandler, app.NewListMembersHandler, app.NewRemoveMemberHandler,
	app.NewCreateCardHandler, app.NewListCardsHandler, app.NewGetCardHandler,
	app.NewUpdateCardHandler, app.NewDeleteCardHandler,
	app.NewRecordUserHandler, app.NewRecordCommentHandler,
	wire.Struct(new(app.Application), "*"),
	projecthttp.NewHandlers, stream.NewHandler, provideHTTP, provideConsumer,
	wire.FieldsOf(new(Config), "Common"), wiring.ProvideVerifier,
)

// infraSet is the production adapters: SQL through bun, events out through the
// outbox to Redis Streams and in through a consumer group, revocations in Redis.
var infraSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideDB, wiring.ProvideRedis, wiring.ProvideRevocations, providePublisher, provideRelay, provideRepo,
	provideSubscriber, provideChecks, providePruner,
	wire.Bind(new(app.Store), new(*bunrepo.Repo)),
	wire.Bind(new(eventbus.Publisher), new(*redisstream.Publisher)),
	wire.Bind(new(eventbus.Subscriber), new(*redisstream.Subscriber)),
	wire.Bind(new(authn.RevocationChecker), new(*authn.RedisRevocations)),
	wire.Struct(new(Service), "*"),
)

// memorySet swaps every outbound adapter for memory, for component tests; the
// component-test injector binds its in-memory arguments to the ports. Events the
// service publishes stay in the memory store (memrepo.Store.Events).
var memorySet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideMemorySubscriber, provideNoChecks,
	wire.Bind(new(eventbus.Subscriber), new(*memory.Subscriber)),
	wire.Struct(new(Service), "HTTP", "Consumer"),
)

func provideClock() app.Clock { return time.Now }

func provideIDs() app.IDGenerator { return func() string { return uuid.Must(uuid.NewV7()).String() } }

func provideMaxMembers(cfg Config) app.MaxMembers { return app.MaxMembers(cfg.MaxMembers) }

func provideCursors(cfg Config) (*pagination.Cursors, error) {
	return pagination.NewCursors(cfg.CursorSecret)
}

func provideHTTP(cfg Config, log *slog.Logger, h *projecthttp.Handlers, checks map[string]httpserver.Check) *runner.HTTP {
	app := httpserver.New(httpserver.Config{Service: "project", Logger: log, Checks: checks, MapError: projecthttp.MapError})
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
	return outbox.NewRelay(db, pub, outbox.RelayConfig{Producer: eventbus.GroupProject, Logger: log})
}

func provideRepo(db *bun.DB, relay *outbox.Relay) *bunrepo.Repo { return bunrepo.New(db, relay.Notify) }

func providePruner(repo *bunrepo.Repo, log *slog.Logger) *bunrepo.Pruner {
	return bunrepo.NewPruner(repo, time.Hour, log)
}

func provideSubscriber(client redis.UniversalClient, cfg Config, log *slog.Logger) (*redisstream.Subscriber, error) {
	return redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: cfg.RedisPrefix, Group: eventbus.GroupProject, Consumer: cfg.ConsumerName,
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
		Group: eventbus.GroupProject, Consumer: "component-test", Families: stream.Families, Logger: log,
	})
}

func provideNoChecks() map[string]httpserver.Check { return nil }
