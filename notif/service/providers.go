package service

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
	"github.com/google/wire"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
	"github.com/bugtracker/bugtracker/notif/adapters/mongorepo"
	"github.com/bugtracker/bugtracker/notif/app"
	notifhttp "github.com/bugtracker/bugtracker/notif/ports/http"
	"github.com/bugtracker/bugtracker/notif/ports/stream"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/mongox"
	"github.com/bugtracker/bugtracker/platform/runner"
	"github.com/bugtracker/bugtracker/platform/wiring"
)

// Service is the assembled notif process.
type Service struct {
	HTTP     *runner.HTTP
	Consumer eventbus.Consumer
}

// Components lists what main runs.
func (s *Service) Components() map[string]runner.Component {
	return map[string]runner.Component{"http": s.HTTP, "consumer": s.Consumer}
}

// appSet builds the use cases and inbound ports; every injector shares it.
var appSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideIDs, provideMaxRecipients, provideQueryTimeout,
	app.NewRecordUserHandler, app.NewNotifyHandler, app.NewNotifyAudienceHandler, app.NewListNotificationsHandler,
	app.NewMarkReadHandler, app.NewMarkAllReadHandler,
	wire.Struct(new(app.Application), "*"),
	notifhttp.NewHandlers, stream.NewHandler, provideHTTP, provideConsumer,
	wire.FieldsOf(new(Config), "Common"), wiring.ProvideVerifier,
	wire.Struct(new(Service), "*"),
)

// infraSet is the production adapters: MongoDB, Redis Streams, Redis revocations.
var infraSet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideMongo, provideRepo, wiring.ProvideRedis, wiring.ProvideRevocations, provideSubscriber, provideChecks,
	wire.Bind(new(app.Notifications), new(*mongorepo.Repo)),
	wire.Bind(new(app.Users), new(*mongorepo.Repo)),
	wire.Bind(new(authn.RevocationChecker), new(*authn.RedisRevocations)),
	wire.Bind(new(eventbus.Subscriber), new(*redisstream.Subscriber)),
)

// memorySet swaps every outbound adapter for memory, for component tests; the
// the component-test injector binds its in-memory arguments to the ports.
var memorySet = wire.NewSet( //nolint:unused // used by the wireinject injectors in wire.go
	provideMemorySubscriber, provideNoChecks,
	wire.Bind(new(eventbus.Subscriber), new(*memory.Subscriber)),
)

func provideIDs() app.IDGenerator { return func() string { return uuid.Must(uuid.NewV7()).String() } }

func provideMaxRecipients(cfg Config) app.MaxRecipients {
	if cfg.MaxRecipients <= 0 {
		return app.DefaultMaxRecipients
	}
	return app.MaxRecipients(cfg.MaxRecipients)
}

func provideQueryTimeout(cfg Config) notifhttp.QueryTimeout {
	return notifhttp.QueryTimeout(cfg.QueryTimeout)
}

func provideHTTP(cfg Config, log *slog.Logger, h *notifhttp.Handlers, checks map[string]httpserver.Check) *runner.HTTP {
	app := httpserver.New(httpserver.Config{Service: "notif", Logger: log, Checks: checks, MapError: notifhttp.MapError})
	h.Register(app)
	return &runner.HTTP{App: app, Addr: cfg.HTTPAddr}
}

func provideConsumer(sub eventbus.Subscriber, h *stream.Handler) eventbus.Consumer {
	return eventbus.Consumer{Subscriber: sub, Handler: h.Handle}
}

func provideMongo(ctx context.Context, cfg Config) (*mongo.Database, func(), error) {
	client, err := mongox.Connect(ctx, cfg.MongoURI)
	if err != nil {
		return nil, nil, err
	}
	return client.Database(cfg.MongoDatabase), func() { _ = client.Disconnect(context.Background()) }, nil
}

func provideRepo(ctx context.Context, db *mongo.Database) (*mongorepo.Repo, error) {
	r := mongorepo.New(db)
	return r, r.EnsureIndexes(ctx)
}

func provideSubscriber(client redis.UniversalClient, cfg Config, log *slog.Logger) (*redisstream.Subscriber, error) {
	return redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: cfg.RedisPrefix, Group: eventbus.GroupNotif, Consumer: cfg.ConsumerName,
		Families: stream.Families, ClaimMinIdle: cfg.ClaimMinIdle, MaxDeliveries: cfg.MaxDeliveries, Logger: log,
	})
}

func provideChecks(db *mongo.Database, client redis.UniversalClient) map[string]httpserver.Check {
	return map[string]httpserver.Check{
		"database": func(ctx context.Context) error { return db.Client().Ping(ctx, nil) },
		"redis":    func(ctx context.Context) error { return client.Ping(ctx).Err() },
	}
}

func provideMemorySubscriber(bus *memory.Bus, log *slog.Logger) (*memory.Subscriber, error) {
	return bus.NewSubscriber(memory.SubscriberConfig{
		Group: eventbus.GroupNotif, Consumer: "component-test", Families: stream.Families, Logger: log,
	})
}

func provideNoChecks() map[string]httpserver.Check { return nil }
