package bunrepo

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

// Migrations is the comment schema's history. A migration defines its own table
// structs, so later changes to the row types cannot change what an old migration does.
var Migrations = migrate.NewMigrations()

type commentV1 struct {
	bun.BaseModel `bun:"table:comment"`

	ID        string    `bun:"id,pk,type:varchar(36)"`
	CardID    string    `bun:"card_id,notnull,type:varchar(64)"`
	ProjectID string    `bun:"project_id,notnull,type:varchar(64)"`
	AuthorID  string    `bun:"author_id,notnull,type:varchar(64)"`
	Body      string    `bun:"body,notnull,type:text"`
	CreatedAt time.Time `bun:"created_at,notnull,type:datetime(6)"`
}

type userCopyV1 struct {
	bun.BaseModel `bun:"table:user_copy"`

	ID      string `bun:"id,pk,type:varchar(64)"`
	Name    string `bun:"name,notnull,type:varchar(400)"`
	Version int64  `bun:"version,notnull"`
}

type projectCopyV1 struct {
	bun.BaseModel `bun:"table:project_copy"`

	ID      string `bun:"id,pk,type:varchar(64)"`
	Title   string `bun:"title,notnull,type:varchar(800)"`
	OwnerID string `bun:"owner_id,notnull,type:varchar(64)"`
	Version int64  `bun:"version,notnull"`
	Deleted bool   `bun:"deleted,notnull"`
}

type memberCopyV1 struct {
	bun.BaseModel `bun:"table:member_copy"`

	ProjectID string `bun:"project_id,pk,type:varchar(64)"`
	UserID    string `bun:"user_id,pk,type:varchar(64)"`
	Version   int64  `bun:"version,notnull"`
	Removed   bool   `bun:"removed,notnull"`
}

type cardCopyV1 struct {
	bun.BaseModel `bun:"table:card_copy"`

	ID        string `bun:"id,pk,type:varchar(64)"`
	ProjectID string `bun:"project_id,notnull,type:varchar(64)"`
	Title     string `bun:"title,notnull,type:varchar(800)"`
	Version   int64  `bun:"version,notnull"`
	Deleted   bool   `bun:"deleted,notnull"`
}

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, model := range []any{
				(*commentV1)(nil), (*userCopyV1)(nil), (*projectCopyV1)(nil), (*memberCopyV1)(nil), (*cardCopyV1)(nil),
			} {
				if _, err := tx.NewCreateTable().Model(model).IfNotExists().Exec(ctx); err != nil {
					return err
				}
			}
			indexes := []struct {
				name, table string
				cols        []string
			}{
				// The keyset of the comment list, and the deletions by card and project.
				{"comment_card_created_id_idx", "comment", []string{"card_id", "created_at", "id"}},
				{"comment_project_idx", "comment", []string{"project_id"}},
				{"card_copy_project_idx", "card_copy", []string{"project_id"}},
			}
			for _, ix := range indexes {
				if _, err := tx.NewCreateIndex().Table(ix.table).Index(ix.name).Column(ix.cols...).IfNotExists().Exec(ctx); err != nil {
					return err
				}
			}
			if err := outbox.CreateTable(ctx, tx); err != nil {
				return err
			}
			return inbox.CreateTable(ctx, tx)
		})
	}, func(ctx context.Context, db *bun.DB) error {
		for _, model := range []any{
			(*cardCopyV1)(nil), (*memberCopyV1)(nil), (*projectCopyV1)(nil), (*userCopyV1)(nil), (*commentV1)(nil),
		} {
			if _, err := db.NewDropTable().Model(model).IfExists().Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}
