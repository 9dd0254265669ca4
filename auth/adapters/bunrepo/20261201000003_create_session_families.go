package bunrepo

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

// sessionFamiliesV3 gives every refresh-token family one row. Rotation and revocation
// both write it first, so they serialise on its row lock: under READ COMMITTED a
// revocation that only updated refresh_sessions could not see the row a concurrent
// rotation was inserting, and that token outlived its family.
type sessionFamiliesV3 struct {
	bun.BaseModel `bun:"table:session_families"`

	ID         string     `bun:"id,pk,type:varchar(36)"`
	UserID     string     `bun:"user_id,notnull,type:varchar(36)"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt time.Time  `bun:"last_used_at,notnull"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewCreateTable().Model((*sessionFamiliesV3)(nil)).IfNotExists().Exec(ctx); err != nil {
				return err
			}
			if _, err := tx.NewCreateIndex().Table("session_families").Index("session_families_user_idx").
				Column("user_id").IfNotExists().Exec(ctx); err != nil {
				return err
			}
			// Families opened before this migration get their row, revoked when any of
			// their tokens was.
			_, err := tx.ExecContext(ctx, `INSERT INTO session_families (id, user_id, created_at, last_used_at, revoked_at)
				SELECT family_id, MIN(user_id), MIN(created_at), MAX(created_at), MAX(revoked_at)
				FROM refresh_sessions GROUP BY family_id`)
			return err
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*sessionFamiliesV3)(nil)).IfExists().Exec(ctx)
		return err
	})
}
