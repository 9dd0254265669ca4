package database_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
	"github.com/bugtracker/bugtracker/platform/database/testmigrations"
)

func TestMigrateTwiceAndUse(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		for range 2 { // a restart applies nothing twice
			if err := database.Migrate(ctx, db, testmigrations.Migrations); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.NewInsert().Model(&testmigrations.Widget{Name: "w"}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := db.NewSelect().Model((*testmigrations.Widget)(nil)).Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("count %d %v", n, err)
		}
	})
}

func TestKindOfAndErrors(t *testing.T) {
	for url, want := range map[string]database.Kind{
		"postgres://u@h/db": database.Postgres, "postgresql://u@h/db": database.Postgres,
		"mysql://root@h:3306/db": database.MySQL, "sqlite:///tmp/x.db": database.SQLite,
	} {
		if got, err := database.KindOf(url); err != nil || got != want {
			t.Fatalf("%s: %v %v", url, got, err)
		}
	}
	if _, err := database.KindOf("oracle://x"); err == nil {
		t.Fatal("unsupported scheme accepted")
	}
	_, err := database.Open(context.Background(), "postgres://u:topsecret@127.0.0.1:1/db?connect_timeout=1", database.Pool{})
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("want a redacted error, got %v", err)
	}
}

func TestIsUniqueViolation(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, "CREATE TABLE u (email VARCHAR(100) NOT NULL UNIQUE)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO u (email) VALUES ('a')"); err != nil {
			t.Fatal(err)
		}
		_, err := db.ExecContext(ctx, "INSERT INTO u (email) VALUES ('a')")
		if !database.IsUniqueViolation(err) {
			t.Fatalf("duplicate not recognised: %v", err)
		}
		_, err = db.ExecContext(ctx, "INSERT INTO missing_table (x) VALUES (1)")
		if err == nil || database.IsUniqueViolation(err) {
			t.Fatalf("other error taken for a duplicate: %v", err)
		}
	})
}
