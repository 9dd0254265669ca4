// Command auth runs the auth service.
package main

import (
	"context"
	"log/slog"

	"github.com/bugtracker/bugtracker/auth/service"
	"github.com/bugtracker/bugtracker/platform/runner"
)

func main() {
	runner.Main("auth", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *slog.Logger) (map[string]runner.Component, func(), error) {
		if limit := service.ApplyMemoryLimit(cfg); limit > 0 {
			log.Info("soft memory limit sized to the password hash cap", "bytes", limit)
		}
		svc, cleanup, err := service.Build(ctx, cfg, log)
		if err != nil {
			return nil, nil, err
		}
		return svc.Components(), cleanup, nil
	})
}
