package bunrepo

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

// Migrations is the auth schema's history; bun names each migration after its file.
// A migration defines its own table structs, so later changes to the row types cannot
// change what an old migration does.
var Migrations = migrate.NewMigrations()

type usersV1 struct {
	bun.BaseModel `bun:"table:users"`

	ID           string    `bun:"id,pk,type:varchar(36)"`
	Name         string    `bun:"name,notnull,type:varchar(400)"`
	Email        string    `bun:"email,notnull,type:varchar(254)"`
	EmailLower   string    `bun:"email_lower,notnull,unique,type:varchar(254)"`
	PasswordHash string    `bun:"password_hash,notnull,type:varchar(255)"`
	CreatedAt    time.Time `bun:"created_at,notnull"`
}

type refreshSessionsV1 struct {
	bun.BaseModel `bun:"table:refresh_sessions"`

	ID              string     `bun:"id,pk,type:varchar(36)"`
	FamilyID        string     `bun:"family_id,notnull,type:varchar(36)"`
	UserID          string     `bun:"user_id,notnull,type:varchar(36)"`
	TokenHash       string     `bun:"token_hash,notnull,unique,type:varchar(64)"`
	CreatedAt       time.Time  `bun:"created_at,notnull"`
	ExpiresAt       time.Time  `bun:"expires_at,notnull"`
	UsedAt          *time.Time `bun:"used_at"`
	RevokedAt       *time.Time `bun:"revoked_at"`
	AccessTokenID   string     `bun:"access_token_id,notnull,type:varchar(64)"`
	AccessExpiresAt time.Time  `bun:"access_expires_at,notnull"`
}

type passwordResetsV1 struct {
	bun.BaseModel `bun:"table:password_resets"`

	ID        string     `bun:"id,pk,type:varchar(36)"`
	UserID    string     `bun:"user_id,notnull,type:varchar(36)"`
	TokenHash string     `bun:"token_hash,notnull,unique,type:varchar(64)"`
	CreatedAt time.Time  `bun:"created_at,notnull"`
	ExpiresAt time.Time  `bun:"expires_at,notnull"`
	UsedAt    *time.Time `bun:"used_at"`
}

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, model := range []any{(*usersV1)(nil), (*refreshSessionsV1)(nil), (*passwordResetsV1)(nil)} {
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
				{"password_resets_user_idx", "password_resets", []string{"user_id"}},
			}
			for _, ix := range indexes {
				if _, err := tx.NewCreateIndex().Table(ix.table).Index(ix.name).Column(ix.cols...).IfNotExists().Exec(ctx); err != nil {
					return err
				}
			}
			if db.Dialect().Name() == dialect.PG {
				// A trigram index serves the case-insensitive substring filter of the user
				// list (lower(name) LIKE '%...%'); a b-tree cannot.
				for _, q := range []string{
					"CREATE EXTENSION IF NOT EXISTS pg_trgm",
					"CREATE INDEX IF NOT EXISTS users_name_trgm_idx ON users USING gin (lower(name) gin_trgm_ops)",
				} {
					if _, err := tx.ExecContext(ctx, q); err != nil {
						return err
					}
				}
			}
			return outbox.CreateTable(ctx, tx)
		})
	}, func(ctx context.Context, db *bun.DB) error {
		for _, model := range []any{(*passwordResetsV1)(nil), (*refreshSessionsV1)(nil), (*usersV1)(nil)} {
			if _, err := db.NewDropTable().Model(model).IfExists().Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}
