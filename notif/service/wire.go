//go:build wireinject

package service

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/notif/adapters/memrepo"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/platform/authn"
)

// Build assembles the production service: MongoDB and Redis.
func Build(ctx context.Context, cfg Config, log *slog.Logger) (*Service, func(), error) {
	wire.Build(appSet, infraSet)
	return nil, nil, nil
}

// BuildForComponentTest assembles the service over in-memory adapters and bus.
func BuildForComponentTest(cfg Config, log *slog.Logger, store *memrepo.Store, bus *memory.Bus, revocations *authn.MemoryRevocations) (*Service, error) {
	wire.Build(appSet, memorySet,
		wire.Bind(new(app.Notifications), new(*memrepo.Store)),
		wire.Bind(new(app.Users), new(*memrepo.Store)),
		wire.Bind(new(authn.RevocationChecker), new(*authn.MemoryRevocations)),
	)
	return nil, nil
}
