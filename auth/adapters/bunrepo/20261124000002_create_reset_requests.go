package bunrepo

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

type resetRequestsV2 struct {
	bun.BaseModel `bun:"table:reset_requests"`

	ID          string    `bun:"id,pk,type:varchar(36)"`
	Email       string    `bun:"email,notnull,type:varchar(254)"`
	RequestedAt time.Time `bun:"requested_at,notnull"`
	Attempts    int       `bun:"attempts,notnull,default:0"`
	NotBefore   time.Time `bun:"not_before,notnull"`
}

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewCreateTable().Model((*resetRequestsV2)(nil)).IfNotExists().Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewCreateIndex().Table("reset_requests").Index("reset_requests_due_idx").
				Column("not_before", "requested_at").IfNotExists().Exec(ctx)
			return err
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*resetRequestsV2)(nil)).IfExists().Exec(ctx)
		return err
	})
}
