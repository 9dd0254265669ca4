//go:build wireinject

package service

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/project/adapters/memrepo"
	"github.com/bugtracker/bugtracker/project/app"
)

// Build assembles the production service: MariaDB or SQLite, Redis Streams.
func Build(ctx context.Context, cfg Config, log *slog.Logger) (*Service, func(), error) {
	wire.Build(appSet, infraSet)
	return nil, nil, nil
}

// BuildForComponentTest assembles the service over the in-memory store and bus.
func BuildForComponentTest(cfg Config, log *slog.Logger, store *memrepo.Store, bus *memory.Bus, revocations *authn.MemoryRevocations) (*Service, error) {
	wire.Build(appSet, memorySet,
		wire.Bind(new(app.Store), new(*memrepo.Store)),
		wire.Bind(new(authn.RevocationChecker), new(*authn.MemoryRevocations)),
	)
	return nil, nil
}
