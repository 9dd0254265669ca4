package bunrepo

import (
	"context"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

// Migrations is the auth schema's history; bun names each migration after its file.
var Migrations = migrate.NewMigrations()

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, model := range []any{(*userRow)(nil), (*sessionRow)(nil)} {
				if _, err := tx.NewCreateTable().Model(model).IfNotExists().Exec(ctx); err != nil {
					return err
				}
			}
			indexes := []struct {
				name, table string
				cols        []string
			}{
				{"users_created_at_id_idx", "users", []string{"created_at", "id"}},
				{"refresh_sessions_family_idx", "refresh_sessions", []string{"family_id"}},
				{"refresh_sessions_user_idx", "refresh_sessions", []string{"user_id"}},
			}
			for _, ix := range indexes {
				if _, err := tx.NewCreateIndex().Table(ix.table).Index(ix.name).Column(ix.cols...).Exec(ctx); err != nil {
					return err
				}
			}
			return outbox.CreateTable(ctx, tx)
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*sessionRow)(nil)).IfExists().Exec(ctx)
		if err == nil {
			_, err = db.NewDropTable().Model((*userRow)(nil)).IfExists().Exec(ctx)
		}
		return err
	})
}
