//go:build wireinject

package service

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/bugtracker/bugtracker/auth/adapters/memrepo"
	"github.com/bugtracker/bugtracker/auth/adapters/throttle"
	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/platform/authn"
)

// Build assembles the production service: PostgreSQL or SQLite, Redis Streams.
func Build(ctx context.Context, cfg Config, log *slog.Logger) (*Service, func(), error) {
	wire.Build(appSet, infraSet)
	return nil, nil, nil
}

// BuildForComponentTest assembles the service over in-memory adapters; mailer is
// the test's (an SMTP adapter pointed at a test server, or a fake), and so is hasher
// (argon2, or a spy), which runs within the configured concurrency limit.
func BuildForComponentTest(cfg Config, log *slog.Logger, store *memrepo.Store, revocations *authn.MemoryRevocations,
	limits *throttle.Memory, mailer app.Mailer, hasher RawHasher,
) (*Service, error) {
	wire.Build(appSet, memorySet,
		wire.Bind(new(app.Users), new(*memrepo.Store)),
		wire.Bind(new(app.Sessions), new(*memrepo.Store)),
		wire.Bind(new(app.ResetTokens), new(*memrepo.Store)),
		wire.Bind(new(app.ResetRequests), new(*memrepo.Store)),
		wire.Bind(new(authn.RevocationChecker), new(*authn.MemoryRevocations)),
		wire.Bind(new(app.Revoker), new(*authn.MemoryRevocations)),
		wire.Bind(new(app.Throttle), new(*throttle.Memory)),
	)
	return nil, nil
}
