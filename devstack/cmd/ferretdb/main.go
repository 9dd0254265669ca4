// Command ferretdb runs an embedded FerretDB server, a MongoDB wire-protocol
// server that stores its data in SQLite files or in PostgreSQL. It is used
// for tests and local development; it never sends telemetry.
//
// Flags (each with an environment variable as its default):
//
//	-listen          FERRETDB_LISTEN_ADDR      TCP listen address (default 127.0.0.1:27017)
//	-handler         FERRETDB_HANDLER          sqlite or postgresql (default sqlite)
//	-sqlite-dir      FERRETDB_SQLITE_DIR       SQLite directory, created if missing (default ./data/ferretdb)
//	-postgresql-url  FERRETDB_POSTGRESQL_URL   PostgreSQL URL for the postgresql handler
//	-log-level       FERRETDB_LOG_LEVEL        debug, info, warn or error (default error)
//
// With -ping ADDR it instead checks that a MongoDB-compatible server answers
// a hello command on ADDR and exits 0 if it does, 1 if it does not.
//
// It stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bugtracker/bugtracker/devstack/ferret"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	listen := fs.String("listen", envOr("FERRETDB_LISTEN_ADDR", "127.0.0.1:27017"), "TCP listen `address`")
	handler := fs.String("handler", envOr("FERRETDB_HANDLER", ferret.HandlerSQLite), "storage handler: sqlite or postgresql")
	sqliteDir := fs.String("sqlite-dir", envOr("FERRETDB_SQLITE_DIR", "./data/ferretdb"), "`directory` for SQLite files (created if missing)")
	pgURL := fs.String("postgresql-url", envOr("FERRETDB_POSTGRESQL_URL", ""), "PostgreSQL `URL` for the postgresql handler")
	logLevel := fs.String("log-level", envOr("FERRETDB_LOG_LEVEL", "error"), "log level: debug, info, warn or error")
	ping := fs.String("ping", "", "only check that a MongoDB-compatible server answers on `address`, then exit")
	pingTimeout := fs.Duration("ping-timeout", 3*time.Second, "time limit of -ping")

	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}

	if *ping != "" {
		ctx, cancel := context.WithTimeout(context.Background(), *pingTimeout)
		defer cancel()

		if err := ferret.Ping(ctx, *ping); err != nil {
			fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
			return 1
		}

		return 0
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: invalid -log-level %q\n", *logLevel)
		return 2
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	uri, stop, err := ferret.Start(ctx, ferret.Config{
		Addr:          *listen,
		Handler:       strings.ToLower(*handler),
		SQLiteDir:     *sqliteDir,
		PostgreSQLURL: *pgURL,
		Logger:        logger,
	})
	if err != nil {
		logger.Error("FerretDB failed to start", "error", err)
		return 1
	}

	fmt.Printf("ferretdb: listening on %s (handler %s)\n", uri, *handler)

	<-ctx.Done()
	stopSignals()

	stop()
	logger.Info("FerretDB stopped")

	return 0
}

// envOr returns the value of the environment variable name, or def when it
// is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}

	return def
}
