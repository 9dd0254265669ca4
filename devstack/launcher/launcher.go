// Package launcher implements the development launcher behind `make run`:
// it starts embedded Redis and FerretDB, prepares the services' environment
// (development secrets, addresses, database URLs), runs the service binaries
// under a supervisor, waits until they are healthy and stops everything in
// order on shutdown.
package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bugtracker/bugtracker/devstack/ferret"
	"github.com/bugtracker/bugtracker/devstack/supervisor"
)

// Defaults of the launcher's own settings.
const (
	DefaultDataDir      = "data"
	DefaultServices     = "auth,project,comment,notif,gateway"
	DefaultRedisAddr    = "127.0.0.1:0"
	DefaultFerretAddr   = "127.0.0.1:0"
	DefaultReadyTimeout = 60 * time.Second
)

// Options configure [Run].
type Options struct {
	// Environ is the launcher's environment as "KEY=value" pairs (normally
	// os.Environ()). It configures the launcher and is the base of the
	// children's environment.
	Environ []string

	// ExeDir is the directory searched for service binaries when
	// DEVSTACK_BIN is unset; normally the directory of the devstack binary.
	ExeDir string

	// Stdout receives the prefixed output of the services and the line
	// announcing that the stack is up. When nil, os.Stdout is used.
	Stdout io.Writer

	// Logger receives the launcher's own messages. When nil, slog.Default()
	// is used.
	Logger *slog.Logger

	// FerretLogger receives embedded FerretDB's messages. When nil, they
	// are discarded.
	FerretLogger *slog.Logger

	// StopTimeout is how long children get to exit after SIGTERM before
	// they are killed. Zero means [supervisor.DefaultStopTimeout].
	StopTimeout time.Duration
}

// Run starts the development stack and blocks until ctx is canceled (a
// clean shutdown, returning nil) or something fails: a dependency cannot be
// started, a service does not become healthy in time, or a service exits on
// its own. In every case the children are stopped first, then FerretDB and
// Redis.
func Run(ctx context.Context, opts Options) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}

	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}

	env := ParseEnv(opts.Environ)

	dataDir, err := filepath.Abs(env.Get("DATA_DIR", DefaultDataDir))
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}

	services := parseServices(env.Get("DEVSTACK_SERVICES", DefaultServices))
	if len(services) == 0 {
		return errors.New("DEVSTACK_SERVICES lists no services")
	}

	binDir := env.Get("DEVSTACK_BIN", opts.ExeDir)

	binaries, err := findBinaries(binDir, services)
	if err != nil {
		return err
	}

	readyTimeout := DefaultReadyTimeout
	if s := env["DEVSTACK_READY_TIMEOUT"]; s != "" {
		if readyTimeout, err = time.ParseDuration(s); err != nil || readyTimeout <= 0 {
			return fmt.Errorf("DEVSTACK_READY_TIMEOUT=%q is not a positive duration", s)
		}
	}

	if env.IsSet("REDIS_URL") {
		logger.Info("using external Redis", "url", env["REDIS_URL"])
	} else {
		url, stop, err := StartRedis(env.Get("DEVSTACK_REDIS_ADDR", DefaultRedisAddr))
		if err != nil {
			return err
		}
		defer stop()

		env["REDIS_URL"] = url
		logger.Info("embedded Redis started", "url", url)
	}

	if env.IsSet("NOTIF_MONGO_URI") {
		logger.Info("using external MongoDB", "uri", env["NOTIF_MONGO_URI"])
	} else {
		sqliteDir := filepath.Join(dataDir, "ferretdb")

		uri, stop, err := ferret.Start(context.WithoutCancel(ctx), ferret.Config{
			Addr:      env.Get("DEVSTACK_FERRETDB_ADDR", DefaultFerretAddr),
			SQLiteDir: sqliteDir,
			Logger:    opts.FerretLogger,
		})
		if err != nil {
			return err
		}
		defer stop()

		env["NOTIF_MONGO_URI"] = uri
		logger.Info("embedded FerretDB started", "uri", uri, "sqlite_dir", sqliteDir)
	}

	for name, file := range map[string]string{"JWT_SECRET": "dev-jwt-secret", "CURSOR_SECRET": "dev-cursor-secret"} { //nolint:gosec // file names, not credentials
		if env.IsSet(name) {
			continue
		}

		secret, err := LoadOrCreateSecret(filepath.Join(dataDir, file))
		if err != nil {
			return err
		}

		env[name] = secret
	}

	ApplyDefaults(env, dataDir, services)

	specs := make([]supervisor.Service, len(services))
	for i, s := range services {
		specs[i] = supervisor.Service{Name: s, Path: binaries[i], Env: env.List()}
	}

	logger.Info("starting services", "services", strings.Join(services, ","), "bin", binDir, "data", dataDir)

	group, err := supervisor.Start(specs, supervisor.Options{
		Output:      stdout,
		StopTimeout: opts.StopTimeout,
		Logger:      logger,
	})
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	readyCtx, readyCancel := context.WithTimeoutCause(runCtx, readyTimeout,
		fmt.Errorf("not healthy within DEVSTACK_READY_TIMEOUT=%s", readyTimeout))
	defer readyCancel()

	go func() {
		if err := waitReady(readyCtx, logger, env, services); err != nil {
			if runCtx.Err() == nil {
				cancel(err)
			}

			return
		}

		_, _ = fmt.Fprintln(stdout, upMessage(env, services))
	}()

	err = group.Wait(runCtx)
	if err == nil {
		if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil {
			err = cause
		}
	}

	if err == nil {
		logger.Info("all services stopped")
	}

	return err
}

// parseServices splits a comma-separated list of service names.
func parseServices(list string) []string {
	var services []string

	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			services = append(services, s)
		}
	}

	return services
}

// findBinaries returns the paths of the services' executables in dir.
func findBinaries(dir string, services []string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("no directory for service binaries: set DEVSTACK_BIN")
	}

	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}

	paths := make([]string, len(services))

	for i, s := range services {
		p := filepath.Join(dir, s)

		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("service %s: binary %s not found (build the services first, or set DEVSTACK_BIN): %w", s, p, err)
		}

		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("service %s: %s is not an executable file", s, p)
		}

		paths[i] = p
	}

	return paths, nil
}

// waitReady waits until every service with a known address answers its
// /healthz endpoint.
func waitReady(ctx context.Context, logger *slog.Logger, env Env, services []string) error {
	client := &http.Client{Timeout: 2 * time.Second}

	for _, s := range services {
		addr := env[AddrVar(s)]
		if addr == "" {
			logger.Warn("no address known for service, not waiting for its health", "service", s, "variable", AddrVar(s))
			continue
		}

		if err := WaitHealthy(ctx, client, BaseURL(addr)+"/healthz"); err != nil {
			return fmt.Errorf("service %s: %w", s, err)
		}
	}

	return nil
}

// upMessage is the line printed once every service is healthy.
func upMessage(env Env, services []string) string {
	for _, s := range services {
		if s == "gateway" {
			return "bugtracker is up on " + BaseURL(env["GATEWAY_ADDR"])
		}
	}

	parts := make([]string, 0, len(services))
	for _, s := range services {
		if addr := env[AddrVar(s)]; addr != "" {
			parts = append(parts, s+" "+BaseURL(addr))
		}
	}

	return "bugtracker is up (no gateway): " + strings.Join(parts, ", ")
}
