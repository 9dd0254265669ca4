// Command devstack runs the bug tracker's services for local development
// (`make run`). It starts an embedded Redis and an embedded FerretDB (on
// SQLite files under ./data), generates development secrets on first start,
// launches the service binaries with a suitable environment, prefixes their
// output with their names and stops everything on SIGINT or SIGTERM.
//
// Environment variables read by devstack itself:
//
//	DATA_DIR                directory for local state (default ./data)
//	DEVSTACK_SERVICES       comma-separated services to run (default auth,project,comment,notif,gateway)
//	DEVSTACK_BIN            directory of the service binaries (default: devstack's own directory)
//	DEVSTACK_REDIS_ADDR     listen address of the embedded Redis (default 127.0.0.1:0, a free port)
//	DEVSTACK_FERRETDB_ADDR  listen address of the embedded FerretDB (default 127.0.0.1:0, a free port)
//	DEVSTACK_READY_TIMEOUT  how long to wait for /healthz of every service (default 60s)
//	LOG_LEVEL               debug, info, warn or error (default info)
//
// REDIS_URL and NOTIF_MONGO_URI, when set, replace the embedded Redis and
// FerretDB. JWT_SECRET and CURSOR_SECRET, when set, replace the generated
// secrets. The services' own settings (AUTH_HTTP_ADDR, NOTIF_HTTP_ADDR,
// GATEWAY_ADDR, AUTH_DATABASE_URL, ...) get development defaults only where
// they are unset. The embedded FerretDB logs errors only.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bugtracker/bugtracker/devstack/launcher"
)

func main() {
	level := parseLevel(os.Getenv("LOG_LEVEL"))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "devstack")
	// FerretDB warns about every command it lacks (endSessions on each
	// driver disconnect, for one), so only its errors are worth showing.
	ferretLogger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("component", "ferretdb")

	exeDir := ""
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}

		exeDir = filepath.Dir(exe)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err := launcher.Run(ctx, launcher.Options{
		Environ:      os.Environ(),
		ExeDir:       exeDir,
		Stdout:       os.Stdout,
		Logger:       logger,
		FerretLogger: ferretLogger,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "devstack: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// parseLevel maps a LOG_LEVEL value to a slog level, defaulting to info.
func parseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
