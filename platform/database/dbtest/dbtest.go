// Package dbtest gives tests a fresh, uniquely named database on each real server the
// environment names (POSTGRES_URL, MYSQL_URL) or in a temporary SQLite file, and drops
// it when the test ends, so test runs can overlap on one machine.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/testenv"
)

// Kinds lists the database families a contract suite should run against.
var Kinds = []database.Kind{database.SQLite, database.Postgres, database.MySQL}

// Name returns a unique database name such as bt_test_1a2b3c4d5e6f.
func Name() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "bt_test_" + hex.EncodeToString(b)
}

// URL creates a fresh database of kind and returns its URL for database.Open. It skips
// (outside CI) when the server's variable is unset, and drops the database at cleanup.
func URL(t testing.TB, kind database.Kind) string {
	t.Helper()
	name := Name()
	switch kind {
	case database.SQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), name+".db")
	case database.Postgres:
		admin := testenv.Require(t, "POSTGRES_URL")
		exec(t, "pgx", admin, "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatalf("POSTGRES_URL: %v", err)
		}
		u.Path = "/" + name
		return u.String()
	case database.MySQL:
		admin := testenv.Require(t, "MYSQL_URL")
		cfg, err := mysql.ParseDSN(admin)
		if err != nil {
			t.Fatalf("MYSQL_URL must be a go-sql-driver DSN such as root@tcp(127.0.0.1:3306)/: %v", err)
		}
		exec(t, "mysql", admin, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "DROP DATABASE IF EXISTS "+name)
		u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + name}
		if cfg.Passwd != "" {
			u.User = url.UserPassword(cfg.User, cfg.Passwd)
		} else {
			u.User = url.User(cfg.User)
		}
		return u.String()
	}
	t.Fatalf("dbtest: unknown kind %q", kind)
	return ""
}

// Open creates a fresh database of kind and opens it; both are closed at cleanup.
func Open(t testing.TB, kind database.Kind) *bun.DB {
	t.Helper()
	db, err := database.Open(context.Background(), URL(t, kind), database.Pool{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// exec runs create on the admin connection now and drop at cleanup.
func exec(t testing.TB, driver, dsn, create, drop string) {
	t.Helper()
	admin, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(context.Background(), create); err != nil {
		_ = admin.Close()
		t.Fatalf("dbtest: %s: %v", create, err)
	}
	t.Cleanup(func() {
		defer func() { _ = admin.Close() }()
		if _, err := admin.ExecContext(context.Background(), drop); err != nil {
			t.Logf("dbtest: %s: %v", drop, err)
		}
	})
}

// ForEach runs f as a subtest against every kind of database.
func ForEach(t *testing.T, f func(t *testing.T, db *bun.DB)) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) { f(t, Open(t, kind)) })
	}
}
