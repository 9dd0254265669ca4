// Command project runs the project service.
package main

import (
	"context"
	"log/slog"

	"github.com/bugtracker/bugtracker/platform/runner"
	"github.com/bugtracker/bugtracker/project/service"
)

func main() {
	runner.Main("project", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *slog.Logger) (map[string]runner.Component, func(), error) {
		svc, cleanup, err := service.Build(ctx, cfg, log)
		if err != nil {
			return nil, nil, err
		}
		return svc.Components(), cleanup, nil
	})
}
