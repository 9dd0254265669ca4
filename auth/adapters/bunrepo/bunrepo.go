// Package bunrepo is the SQL adapter of the auth ports on bun (PostgreSQL in
// production, SQLite for `make run`). Events are written to the outbox table in the
// same transaction as the state they describe.
package bunrepo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/platform/database"
)

type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID           string    `bun:"id,pk,type:varchar(36)"`
	Name         string    `bun:"name,notnull,type:varchar(400)"`
	Email        string    `bun:"email,notnull,type:varchar(254)"`
	EmailLower   string    `bun:"email_lower,notnull,unique,type:varchar(254)"`
	PasswordHash string    `bun:"password_hash,notnull,type:varchar(255)"`
	CreatedAt    time.Time `bun:"created_at,notnull"`
}

type sessionRow struct {
	bun.BaseModel `bun:"table:refresh_sessions"`

	ID        string     `bun:"id,pk,type:varchar(36)"`
	FamilyID  string     `bun:"family_id,notnull,type:varchar(36)"`
	UserID    string     `bun:"user_id,notnull,type:varchar(36)"`
	TokenHash string     `bun:"token_hash,notnull,unique,type:varchar(64)"`
	CreatedAt time.Time  `bun:"created_at,notnull"`
	ExpiresAt time.Time  `bun:"expires_at,notnull"`
	UsedAt    *time.Time `bun:"used_at"`
	RevokedAt *time.Time `bun:"revoked_at"`
}

// AfterCommit is called after a transaction that wrote events commits; the service
// passes the outbox relay's Notify so events leave at once instead of at the next poll.
type AfterCommit func()

// Repo implements app.Users and app.Sessions.
type Repo struct {
	db          *bun.DB
	afterCommit AfterCommit
}

// New returns the repository; afterCommit may be nil.
func New(db *bun.DB, afterCommit AfterCommit) *Repo {
	if afterCommit == nil {
		afterCommit = func() {}
	}
	return &Repo{db: db, afterCommit: afterCommit}
}

// Add inserts the user and its events in one transaction.
func (r *Repo) Add(ctx context.Context, u user.User, events ...eventbus.Envelope) error {
	row := userRow{
		ID: u.ID(), Name: u.Name(), Email: u.Email(), EmailLower: u.NormalizedEmail(),
		PasswordHash: u.PasswordHash(), CreatedAt: u.CreatedAt(),
	}
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			if database.IsUniqueViolation(err) {
				return user.ErrEmailTaken
			}
			return fmt.Errorf("insert user: %w", err)
		}
		return outbox.Add(ctx, tx, events...)
	})
	if err != nil {
		return err
	}
	r.afterCommit()
	return nil
}

// ByEmail finds a user by the lower-cased email (served by the unique index).
func (r *Repo) ByEmail(ctx context.Context, email string) (user.User, error) {
	return r.one(ctx, "email_lower = ?", user.NormalizeEmail(email))
}

// ByID finds a user by id.
func (r *Repo) ByID(ctx context.Context, id string) (user.User, error) {
	return r.one(ctx, "id = ?", id)
}

func (r *Repo) one(ctx context.Context, where string, arg any) (user.User, error) {
	var row userRow
	err := r.db.NewSelect().Model(&row).Where(where, arg).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return user.User{}, user.ErrNotFound
	}
	if err != nil {
		return user.User{}, fmt.Errorf("select user: %w", err)
	}
	return user.UnmarshalUserFromDB(row.ID, row.Name, row.Email, row.PasswordHash, row.CreatedAt), nil
}

// Create stores a refresh session.
func (r *Repo) Create(ctx context.Context, s app.RefreshSession) error {
	row := sessionRow{
		ID: s.ID, FamilyID: s.FamilyID, UserID: s.UserID, TokenHash: s.TokenHash,
		CreatedAt: s.CreatedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
	}
	if _, err := r.db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("insert refresh session: %w", err)
	}
	return nil
}
