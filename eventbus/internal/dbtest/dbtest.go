// Package dbtest opens a fresh database per test for each dialect the
// outbox and inbox support: SQLite always, PostgreSQL when POSTGRES_URL is
// set and MariaDB when MYSQL_URL is set (see testenv.Lookup for CI).
package dbtest

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	_ "github.com/go-sql-driver/mysql" // registers "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/internal/testenv"
)

// Each runs fn as a subtest against every dialect.
func Each(t *testing.T, fn func(t *testing.T, db *bun.DB)) {
	for _, d := range []struct {
		name string
		open func(t *testing.T) *bun.DB
	}{{"sqlite", SQLite}, {"postgres", Postgres}, {"mysql", MySQL}} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			fn(t, d.open(t))
		})
	}
}

// SQLite opens a database file in the test's temporary directory. One
// connection serialises access, since SQLite has a single writer.
func SQLite(t *testing.T) *bun.DB {
	dsn := "file:" + filepath.Join(t.TempDir(), "test.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	sqldb.SetMaxOpenConns(1)
	return wrap(t, bun.NewDB(sqldb, sqlitedialect.New()))
}

// Postgres creates a uniquely named database on the server of
// POSTGRES_URL and drops it when the test ends.
func Postgres(t *testing.T) *bun.DB {
	base := testenv.Lookup(t, "POSTGRES_URL")
	name := testenv.RandomName("bt_test_")
	admin(t, "pgx", base, `CREATE DATABASE "`+name+`"`, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	sqldb, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	return wrap(t, bun.NewDB(sqldb, pgdialect.New()))
}

// MySQL creates a uniquely named database on the server of MYSQL_URL (a
// go-sql-driver DSN without database name) and drops it when the test
// ends.
func MySQL(t *testing.T) *bun.DB {
	base := testenv.Lookup(t, "MYSQL_URL")
	name := testenv.RandomName("bt_test_")
	admin(t, "mysql", base, "CREATE DATABASE `"+name+"`", "DROP DATABASE IF EXISTS `"+name+"`")
	sqldb, err := sql.Open("mysql", base+name+"?parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	return wrap(t, bun.NewDB(sqldb, mysqldialect.New()))
}

// admin runs create on the server at dsn now and drop when the test ends;
// it is registered before the test's own connections close, so it runs
// after them.
func admin(t *testing.T, driver, dsn, create, drop string) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), create); err != nil {
		_ = db.Close()
		t.Fatalf("%s: %v", create, err)
	}
	t.Cleanup(func() {
		defer func() { _ = db.Close() }()
		if _, err := db.ExecContext(context.Background(), drop); err != nil {
			t.Errorf("%s: %v", drop, err)
		}
	})
}

func wrap(t *testing.T, db *bun.DB) *bun.DB {
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// CreateEffects creates the table tests record side effects in. It has no
// unique key on purpose: a duplicate effect must show up as a second row.
func CreateEffects(t *testing.T, db bun.IDB) {
	if _, err := db.ExecContext(context.Background(), "CREATE TABLE effects (event_id VARCHAR(64) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
}

// AddEffect records one effect of event id inside tx.
func AddEffect(ctx context.Context, tx bun.IDB, eventID string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO effects (event_id) VALUES (?)", eventID)
	return err
}

// Effects counts the recorded effects per event id.
func Effects(t *testing.T, db bun.IDB) map[string]int {
	var rows []struct {
		EventID string `bun:"event_id"`
		N       int    `bun:"n"`
	}
	if err := db.NewRaw("SELECT event_id, COUNT(*) AS n FROM effects GROUP BY event_id").Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.EventID] = r.N
	}
	return out
}

// EffectHandler returns an idempotent consumer: it applies each event
// through in by recording one effect row, and reports every call to seen
// (applied is false for a duplicate). seen must be safe for concurrent use.
func EffectHandler(in *inbox.Inbox, seen func(eventID string, applied bool)) eventbus.Handler {
	return func(ctx context.Context, m *eventbus.Message) error {
		id := m.Envelope.ID
		applied, err := in.Apply(ctx, id, func(ctx context.Context, tx bun.Tx) error { return AddEffect(ctx, tx, id) })
		if err == nil {
			seen(id, applied)
		}
		return err
	}
}

// Migrate creates the inbox and effects tables.
func Migrate(t *testing.T, db bun.IDB) {
	if err := inbox.CreateTable(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	CreateEffects(t, db)
}
