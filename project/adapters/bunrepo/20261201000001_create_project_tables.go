package bunrepo

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

// Migrations is the project schema's history; bun names each migration after its
// file. A migration defines its own table structs, so later changes to the row types
// cannot change what an old migration does. Times are DATETIME(6): MariaDB's DATETIME
// would drop the microseconds the card cursor orders by.
var Migrations = migrate.NewMigrations()

type projectV1 struct {
	bun.BaseModel `bun:"table:project"`

	ID          string    `bun:"id,pk,type:varchar(36)"`
	Title       string    `bun:"title,notnull,type:varchar(200)"`
	Description string    `bun:"description,notnull,type:text"`
	OwnerID     string    `bun:"owner_id,notnull,type:varchar(36)"`
	CreatedAt   time.Time `bun:"created_at,notnull,type:datetime(6)"`
	UpdatedAt   time.Time `bun:"updated_at,notnull,type:datetime(6)"`
	Version     int64     `bun:"version,notnull"`
}

// projectMemberV1 holds the owner (sort_rank 0) and the members (sort_rank 1) of each project.
// A kick keeps the row inactive with its version, so a re-add continues the
// membership's version; project_created_at is copied so the caller's project list is
// read in order straight from an index.
type projectMemberV1 struct {
	bun.BaseModel `bun:"table:project_member"`

	ProjectID        string    `bun:"project_id,pk,type:varchar(36)"`
	UserID           string    `bun:"user_id,pk,type:varchar(36)"`
	Role             string    `bun:"role,notnull,type:varchar(16)"`
	Rank             int       `bun:"sort_rank,notnull"`
	Active           bool      `bun:"active,notnull"`
	AddedAt          time.Time `bun:"added_at,notnull,type:datetime(6)"`
	ProjectCreatedAt time.Time `bun:"project_created_at,notnull,type:datetime(6)"`
	Version          int64     `bun:"version,notnull"`
}

type cardV1 struct {
	bun.BaseModel `bun:"table:card"`

	ID           string    `bun:"id,pk,type:varchar(36)"`
	ProjectID    string    `bun:"project_id,notnull,type:varchar(36)"`
	Title        string    `bun:"title,notnull,type:varchar(200)"`
	Description  string    `bun:"description,notnull,type:text"`
	Status       string    `bun:"status,notnull,type:varchar(16)"`
	CreatorID    string    `bun:"creator_id,notnull,type:varchar(36)"`
	TotalComment int       `bun:"total_comment,notnull"`
	CreatedAt    time.Time `bun:"created_at,notnull,type:datetime(6)"`
	UpdatedAt    time.Time `bun:"updated_at,notnull,type:datetime(6)"`
	Version      int64     `bun:"version,notnull"`
}

// cardCommentV1 is one row per comment id seen in an event: live, or a tombstone
// once deleted (or when the deletion arrived first).
type cardCommentV1 struct {
	bun.BaseModel `bun:"table:card_comment"`

	CommentID string `bun:"comment_id,pk,type:varchar(36)"`
	CardID    string `bun:"card_id,notnull,type:varchar(36)"`
	Live      bool   `bun:"live,notnull"`
}

type userCopyV1 struct {
	bun.BaseModel `bun:"table:user_copy"`

	ID      string `bun:"id,pk,type:varchar(36)"`
	Name    string `bun:"name,notnull,type:varchar(400)"`
	Email   string `bun:"email,notnull,type:varchar(254)"`
	Version int64  `bun:"version,notnull"`
}

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, model := range []any{
				(*projectV1)(nil), (*projectMemberV1)(nil), (*cardV1)(nil), (*cardCommentV1)(nil), (*userCopyV1)(nil),
			} {
				if _, err := tx.NewCreateTable().Model(model).IfNotExists().Exec(ctx); err != nil {
					return err
				}
			}
			// One index per list query, each in the query's order (TestListQueriesUseIndexes).
			indexes := []struct {
				name, table string
				cols        []string
			}{
				{"project_member_user_idx", "project_member", []string{"user_id", "active", "project_created_at", "project_id"}},
				{"project_member_list_idx", "project_member", []string{"project_id", "active", "sort_rank", "added_at", "user_id"}},
				{"card_project_idx", "card", []string{"project_id", "created_at", "id"}},
				{"card_project_status_idx", "card", []string{"project_id", "status", "created_at", "id"}},
				{"card_comment_card_idx", "card_comment", []string{"card_id"}},
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
			(*userCopyV1)(nil), (*cardCommentV1)(nil), (*cardV1)(nil), (*projectMemberV1)(nil), (*projectV1)(nil),
		} {
			if _, err := db.NewDropTable().Model(model).IfExists().Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}
