package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bugtracker/bugtracker/platform/logging"
)

// ServiceConfig is what Main needs to know of a service's configuration.
type ServiceConfig interface {
	Level() slog.Level
	Grace() time.Duration
}

// Main is the whole body of a service's main function: load the configuration (exit 2
// with the message naming the bad variable), build the components, run them until
// SIGINT or SIGTERM, then stop gracefully and release resources.
func Main[C ServiceConfig](service string, load func() (C, error),
	build func(ctx context.Context, cfg C, log *slog.Logger) (map[string]Component, func(), error),
) {
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(2)
	}
	log := logging.New(os.Stdout, service, cfg.Level())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	components, cleanup, err := build(ctx, cfg, log)
	if err != nil {
		stop()
		log.Error("start failed", "error", err)
		os.Exit(1)
	}
	log.Info("started")
	err = Run(ctx, log, cfg.Grace(), components)
	stop()
	cleanup()
	if err != nil {
		log.Error("stopped with error", "error", err)
		os.Exit(1)
	}
	log.Info("stopped")
}
