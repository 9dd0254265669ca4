// Package database opens bun databases from a URL (PostgreSQL through pgx, MariaDB
// through go-sql-driver/mysql, SQLite through the pure-Go sqliteshim) and runs bun
// migrations at start.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"github.com/uptrace/bun/migrate"
)

// Pool holds connection pool settings; zero values take the defaults.
type Pool struct {
	MaxOpenConns    int           `env:"DB_MAX_OPEN_CONNS" envDefault:"20"`
	MaxIdleConns    int           `env:"DB_MAX_IDLE_CONNS" envDefault:"10"`
	ConnMaxLifetime time.Duration `env:"DB_CONN_MAX_LIFETIME" envDefault:"30m"`
}

// Kind names a supported database family.
type Kind string

// The supported database families.
const (
	Postgres Kind = "postgres"
	MySQL    Kind = "mysql"
	SQLite   Kind = "sqlite"
)

// KindOf reports which family a database URL names.
func KindOf(rawURL string) (Kind, error) {
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok {
		return "", fmt.Errorf("database: %q has no scheme (postgres://, mysql://, sqlite://)", redact(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "sqlite", "file":
		return SQLite, nil
	}
	return "", fmt.Errorf("database: unsupported scheme %q (postgres://, mysql://, sqlite://)", scheme)
}

// Open connects to the database at rawURL, checks that it answers, and returns a bun
// DB with the matching dialect. URLs: postgres://user@host:5432/db?sslmode=disable,
// mysql://user:pass@host:3306/db, sqlite:///abs/path.db or sqlite://relative/path.db.
func Open(ctx context.Context, rawURL string, pool Pool) (*bun.DB, error) {
	kind, err := KindOf(rawURL)
	if err != nil {
		return nil, err
	}
	var db *bun.DB
	switch kind {
	case Postgres:
		sqldb, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("database: open postgres: %w", err)
		}
		db = bun.NewDB(sqldb, pgdialect.New())
	case MySQL:
		dsn, err := mysqlDSN(rawURL)
		if err != nil {
			return nil, err
		}
		sqldb, err := sql.Open("mysql", dsn)
		if err != nil {
			return nil, fmt.Errorf("database: open mysql: %w", err)
		}
		db = bun.NewDB(sqldb, mysqldialect.New())
	case SQLite:
		dsn, err := sqliteDSN(rawURL)
		if err != nil {
			return nil, err
		}
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
		if err != nil {
			return nil, fmt.Errorf("database: open sqlite: %w", err)
		}
		db = bun.NewDB(sqldb, sqlitedialect.New())
	}
	applyPool(db.DB, kind, pool)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("database: %s at %s does not answer: %w", kind, redact(rawURL), err)
	}
	return db, nil
}

func applyPool(db *sql.DB, kind Kind, p Pool) {
	if p.MaxOpenConns <= 0 {
		p.MaxOpenConns = 20
	}
	if p.MaxIdleConns <= 0 {
		p.MaxIdleConns = p.MaxOpenConns / 2
	}
	if kind == SQLite {
		// One writer at a time anyway; a few connections let reads proceed under WAL.
		p.MaxOpenConns = min(p.MaxOpenConns, 4)
		p.MaxIdleConns = min(p.MaxIdleConns, p.MaxOpenConns)
	}
	db.SetMaxOpenConns(p.MaxOpenConns)
	db.SetMaxIdleConns(p.MaxIdleConns)
	if p.ConnMaxLifetime > 0 {
		db.SetConnMaxLifetime(p.ConnMaxLifetime)
	}
}

// mysqlDSN turns mysql://user:pass@host:port/db?x=y into a go-sql-driver DSN with UTC
// times parsed into time.Time.
func mysqlDSN(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("database: bad mysql URL %s", redact(rawURL))
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Params = map[string]string{}
	for k, v := range u.Query() {
		cfg.Params[k] = v[0]
	}
	if _, ok := cfg.Params["time_zone"]; !ok {
		cfg.Params["time_zone"] = "'+00:00'"
	}
	return cfg.FormatDSN(), nil
}

// sqliteDSN turns sqlite:///abs/x.db (or sqlite://rel/x.db, sqlite:x.db, sqlite::memory:)
// into a modernc DSN with WAL, a busy timeout, foreign keys and immediate write
// transactions (so concurrent writers wait instead of failing to upgrade a lock).
func sqliteDSN(rawURL string) (string, error) {
	_, rest, _ := strings.Cut(rawURL, ":")
	rest = strings.TrimPrefix(rest, "//")
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return "", errors.New("database: sqlite URL has no path")
	}
	params := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return "", fmt.Errorf("database: create %s: %w", dir, err)
			}
		}
		params += "&_pragma=journal_mode(WAL)"
	}
	if query != "" {
		params += "&" + query
	}
	return "file:" + path + "?" + params, nil
}

// redact hides a password in a URL before it reaches a log or an error.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// Migrate applies every pending migration under the migrator's lock, so replicas that
// start together apply each migration once.
func Migrate(ctx context.Context, db *bun.DB, migrations *migrate.Migrations) error {
	m := migrate.NewMigrator(db, migrations)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("database: init migrations: %w", err)
	}
	if err := lockWithRetry(ctx, m); err != nil {
		return err
	}
	defer func() { _ = m.Unlock(context.WithoutCancel(ctx)) }()
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("database: migrate: %w", err)
	}
	return nil
}

func lockWithRetry(ctx context.Context, m *migrate.Migrator) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := m.Lock(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database: migration lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// OpenMigrated opens the database at rawURL and applies migrations, in the shape a
// Wire provider returns: the handle and a cleanup that closes it. A failed migration
// closes the handle before returning, so no pool is left behind.
func OpenMigrated(ctx context.Context, rawURL string, pool Pool, migrations *migrate.Migrations) (*bun.DB, func(), error) {
	db, err := Open(ctx, rawURL, pool)
	if err != nil {
		return nil, nil, err
	}
	if err := Migrate(ctx, db, migrations); err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return db, func() { _ = db.Close() }, nil
}
