// Package testmigrations holds a migration used by the database package's tests; bun
// names a migration after its file, hence the file name.
package testmigrations

import (
	"context"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// Migrations is the test collection.
var Migrations = migrate.NewMigrations()

// Widget is the test table.
type Widget struct {
	bun.BaseModel `bun:"table:widgets"`
	ID            int64  `bun:",pk,autoincrement"`
	Name          string `bun:",notnull"`
}

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewCreateTable().Model((*Widget)(nil)).IfNotExists().Exec(ctx)
		return err
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*Widget)(nil)).IfExists().Exec(ctx)
		return err
	})
}
