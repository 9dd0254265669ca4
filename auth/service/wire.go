//go:build wireinject

package service

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/bugtracker/bugtracker/auth/adapters/memrepo"
	"github.com/bugtracker/bugtracker/auth/app"
)

// Build assembles the production service: PostgreSQL or SQLite, Redis Streams.
func Build(ctx context.Context, cfg Config, log *slog.Logger) (*Service, func(), error) {
	wire.Build(appSet, infraSet)
	return nil, nil, nil
}

// BuildForComponentTest assembles the service over in-memory adapters.
func BuildForComponentTest(cfg Config, log *slog.Logger, store *memrepo.Store) (*Service, error) {
	wire.Build(appSet, memorySet,
		wire.Bind(new(app.Users), new(*memrepo.Store)),
		wire.Bind(new(app.Sessions), new(*memrepo.Store)),
	)
	return nil, nil
}
