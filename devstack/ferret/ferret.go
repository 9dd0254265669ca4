// Package ferret embeds a FerretDB server (a MongoDB wire-protocol server
// backed by SQLite or PostgreSQL) so that development tools can run one
// in-process without a separate MongoDB installation.
package ferret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Handler names accepted by [Config.Handler].
const (
	HandlerSQLite     = "sqlite"
	HandlerPostgreSQL = "postgresql"
)

// Config describes an embedded FerretDB instance.
type Config struct {
	// Addr is the TCP address to listen on, for example "127.0.0.1:27017".
	// A port of 0 picks a free port; the URI returned by [Start] names it.
	Addr string

	// Handler is the storage backend: [HandlerSQLite] (the default when
	// empty) or [HandlerPostgreSQL].
	Handler string

	// SQLiteDir is the directory holding one SQLite file per database for
	// the sqlite handler. It is created if missing.
	SQLiteDir string

	// PostgreSQLURL is the connection string for the postgresql handler,
	// for example "postgres://127.0.0.1:5432/ferretdb".
	PostgreSQLURL string

	// Logger receives FerretDB's own log records. When nil, they are
	// discarded, which keeps an embedded instance quiet.
	Logger *slog.Logger
}

// stopTimeout bounds how long the stop function waits for FerretDB to close
// its listener, its client connections and its storage backend.
const stopTimeout = 10 * time.Second

// Start starts FerretDB with cfg and serves it in a background goroutine
// until ctx is canceled or stop is called. It returns once the listener is
// bound, together with the MongoDB URI of the instance (for example
// "mongodb://127.0.0.1:27017/"). The stop function shuts the server down and
// waits for it to finish; calling it more than once is safe.
//
// FerretDB's telemetry reporter is never started in embedded mode; the
// ferretdb package additionally marks telemetry as disabled and locked, so an
// embedded instance makes no outgoing network calls.
func Start(ctx context.Context, cfg Config) (uri string, stop func(), err error) {
	fcfg, err := cfg.ferretConfig()
	if err != nil {
		return "", nil, err
	}

	f, err := ferretdb.New(fcfg)
	if err != nil {
		return "", nil, fmt.Errorf("ferret: start %s handler on %s: %w", fcfg.Handler, cfg.Addr, err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})

	go func() {
		defer close(done)

		// Run returns only after the listener, the client connections and
		// the backend are closed; its error is always nil in v1.24.
		_ = f.Run(runCtx)
	}()

	// The listener was bound by ferretdb.New, so the address is known.
	uri = f.MongoDBURI()

	stop = func() {
		cancel()

		select {
		case <-done:
		case <-time.After(stopTimeout):
			if fcfg.Logger != nil {
				fcfg.Logger.Warn("FerretDB did not stop in time", "timeout", stopTimeout)
			}
		}
	}

	return uri, stop, nil
}

// ferretConfig validates cfg and turns it into the FerretDB configuration,
// creating the SQLite directory when needed.
func (cfg Config) ferretConfig() (*ferretdb.Config, error) {
	if cfg.Addr == "" {
		return nil, errors.New("ferret: listen address is empty")
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	fcfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: cfg.Addr},
		Logger:   logger,
	}

	switch cfg.Handler {
	case "", HandlerSQLite:
		if cfg.SQLiteDir == "" {
			return nil, errors.New("ferret: SQLite directory is empty")
		}

		dir, err := filepath.Abs(cfg.SQLiteDir)
		if err != nil {
			return nil, fmt.Errorf("ferret: SQLite directory: %w", err)
		}

		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("ferret: create SQLite directory: %w", err)
		}

		fcfg.Handler = HandlerSQLite
		fcfg.SQLiteURL = SQLiteURL(dir)

	case HandlerPostgreSQL:
		if cfg.PostgreSQLURL == "" {
			return nil, errors.New("ferret: PostgreSQL URL is empty")
		}

		fcfg.Handler = HandlerPostgreSQL
		fcfg.PostgreSQLURL = cfg.PostgreSQLURL

	default:
		return nil, fmt.Errorf("ferret: unknown handler %q (want %q or %q)", cfg.Handler, HandlerSQLite, HandlerPostgreSQL)
	}

	return fcfg, nil
}

// SQLiteURL returns the FerretDB SQLite URI ("file:" URL with a trailing
// slash) for the absolute directory dir.
func SQLiteURL(dir string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Clean(dir)) + "/"}

	return u.String()
}
