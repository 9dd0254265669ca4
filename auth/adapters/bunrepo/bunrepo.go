// Package bunrepo is the SQL adapter of the auth ports on bun (PostgreSQL in
// production, SQLite for `make run`). Events are written to the outbox table in the
// same transaction as the state they describe.
package bunrepo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/platform/database"
)

type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID           string    `bun:"id,pk"`
	Name         string    `bun:"name"`
	Email        string    `bun:"email"`
	EmailLower   string    `bun:"email_lower"`
	PasswordHash string    `bun:"password_hash"`
	CreatedAt    time.Time `bun:"created_at"`
}

func (r userRow) toDomain() user.User {
	return user.UnmarshalUserFromDB(r.ID, r.Name, r.Email, r.PasswordHash, r.CreatedAt)
}

type sessionRow struct {
	bun.BaseModel `bun:"table:refresh_sessions"`

	ID              string     `bun:"id,pk"`
	FamilyID        string     `bun:"family_id"`
	UserID          string     `bun:"user_id"`
	TokenHash       string     `bun:"token_hash"`
	CreatedAt       time.Time  `bun:"created_at"`
	ExpiresAt       time.Time  `bun:"expires_at"`
	UsedAt          *time.Time `bun:"used_at"`
	RevokedAt       *time.Time `bun:"revoked_at"`
	AccessTokenID   string     `bun:"access_token_id"`
	AccessExpiresAt time.Time  `bun:"access_expires_at"`
}

// familyRow is the lock both Rotate and revocations take first (see
// sessionFamiliesV3).
type familyRow struct {
	bun.BaseModel `bun:"table:session_families"`

	ID         string     `bun:"id,pk"`
	UserID     string     `bun:"user_id"`
	CreatedAt  time.Time  `bun:"created_at"`
	LastUsedAt time.Time  `bun:"last_used_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

type resetRow struct {
	bun.BaseModel `bun:"table:password_resets"`

	ID        string     `bun:"id,pk"`
	UserID    string     `bun:"user_id"`
	TokenHash string     `bun:"token_hash"`
	CreatedAt time.Time  `bun:"created_at"`
	ExpiresAt time.Time  `bun:"expires_at"`
	UsedAt    *time.Time `bun:"used_at"`
}

type resetRequestRow struct {
	bun.BaseModel `bun:"table:reset_requests"`

	ID          string    `bun:"id,pk"`
	Email       string    `bun:"email"`
	RequestedAt time.Time `bun:"requested_at"`
	Attempts    int       `bun:"attempts"`
	NotBefore   time.Time `bun:"not_before"`
}

// AfterCommit is called after a transaction that wrote events commits; the service
// passes the outbox relay's Notify so events leave at once instead of at the next poll.
type AfterCommit func()

// Repo implements app.Users, app.Sessions and app.ResetTokens.
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
	return row.toDomain(), nil
}

// likeEscaper makes a user's filter text literal inside a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// List pages the users whose lower-cased name contains the filter, in createdAt, id
// order, with the total; on PostgreSQL a trigram index serves the filter.
func (r *Repo) List(ctx context.Context, name string, offset, limit int) ([]user.User, int, error) {
	var rows []userRow
	q := r.db.NewSelect().Model(&rows).OrderExpr("created_at ASC, id ASC").Offset(int64(offset)).Limit(int64(limit))
	if name != "" {
		q = q.Where(`lower(name) LIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(strings.ToLower(name))+"%")
	}
	total, err := q.ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	us := make([]user.User, len(rows))
	for i, row := range rows {
		us[i] = row.toDomain()
	}
	return us, int(total), nil
}

// UpdatePassword replaces the hash and, in the same transaction, spends every
// outstanding reset token of the user, so a reset mail from before the change cannot
// take the account back.
func (r *Repo) UpdatePassword(ctx context.Context, id, hash string, at time.Time) error {
	return r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*userRow)(nil)).Set("password_hash = ?", hash).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return user.ErrNotFound
		}
		return spendResets(ctx, tx, id, at)
	})
}

// spendResets marks every unused reset token of the user used.
func spendResets(ctx context.Context, tx bun.Tx, userID string, at time.Time) error {
	if _, err := tx.NewUpdate().Model((*resetRow)(nil)).Set("used_at = ?", at.UTC()).
		Where("user_id = ?", userID).Where("used_at IS NULL").Exec(ctx); err != nil {
		return fmt.Errorf("spend reset tokens: %w", err)
	}
	return nil
}

func toSessionRow(s app.RefreshSession) sessionRow {
	return sessionRow{
		ID: s.ID, FamilyID: s.FamilyID, UserID: s.UserID, TokenHash: s.TokenHash,
		CreatedAt: s.CreatedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(), UsedAt: s.UsedAt, RevokedAt: s.RevokedAt,
		AccessTokenID: s.Access.ID, AccessExpiresAt: s.Access.ExpiresAt.UTC(),
	}
}

// Create stores the first refresh session of a new family and the family's row.
func (r *Repo) Create(ctx context.Context, s app.RefreshSession) error {
	row := toSessionRow(s)
	family := familyRow{ID: s.FamilyID, UserID: s.UserID, CreatedAt: row.CreatedAt, LastUsedAt: row.CreatedAt}
	return r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&family).Exec(ctx); err != nil {
			return fmt.Errorf("insert session family: %w", err)
		}
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("insert refresh session: %w", err)
		}
		return nil
	})
}

// ByTokenHash finds a refresh session.
func (r *Repo) ByTokenHash(ctx context.Context, hash string) (app.RefreshSession, error) {
	var row sessionRow
	err := r.db.NewSelect().Model(&row).Where("token_hash = ?", hash).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return app.RefreshSession{}, app.ErrSessionNotFound
	}
	if err != nil {
		return app.RefreshSession{}, fmt.Errorf("select refresh session: %w", err)
	}
	return app.RefreshSession{
		ID: row.ID, FamilyID: row.FamilyID, UserID: row.UserID, TokenHash: row.TokenHash,
		CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt, UsedAt: row.UsedAt, RevokedAt: row.RevokedAt,
		Access: app.AccessToken{ID: row.AccessTokenID, ExpiresAt: row.AccessExpiresAt},
	}, nil
}

// Rotate marks old used (only if unused and unrevoked: the conditional update is the
// arbiter between concurrent refreshes) and inserts next, in one transaction. It first
// writes the family's row, which a revocation also writes first: whichever comes
// second waits for the other's commit, so a revocation either sees the inserted token
// or makes this rotation find the family revoked (TestRevocationBeatsRotation).
func (r *Repo) Rotate(ctx context.Context, oldID string, next app.RefreshSession, at time.Time) (bool, error) {
	rotated := false
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*familyRow)(nil)).Set("last_used_at = ?", at.UTC()).
			Where("id = ?", next.FamilyID).Where("revoked_at IS NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("lock session family: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		res, err = tx.NewUpdate().Model((*sessionRow)(nil)).Set("used_at = ?", at.UTC()).
			Where("id = ?", oldID).Where("used_at IS NULL").Where("revoked_at IS NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark refresh session used: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		row := toSessionRow(next)
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("insert rotated session: %w", err)
		}
		rotated = true
		return nil
	})
	return rotated, err
}

// RevokeFamily revokes a family and returns its live access tokens.
func (r *Repo) RevokeFamily(ctx context.Context, family string, at time.Time) ([]app.AccessToken, error) {
	return r.revoke(ctx, at, "id = ?", "family_id = ?", family)
}

// RevokeUser revokes every family of the user but keep.
func (r *Repo) RevokeUser(ctx context.Context, userID, keep string, at time.Time) ([]app.AccessToken, error) {
	return r.revoke(ctx, at, "user_id = ? AND id <> ?", "user_id = ? AND family_id <> ?", userID, keep)
}

// revoke marks the matching families and their sessions revoked and returns the
// access tokens issued with them that are still alive, in one transaction. The
// families are written first: that takes the row locks a concurrent Rotate holds or
// waits for, so the sessions update (a new statement, hence a new snapshot under READ
// COMMITTED) sees every token such a rotation inserted.
func (r *Repo) revoke(ctx context.Context, at time.Time, families, sessions string, args ...any) ([]app.AccessToken, error) {
	var live []app.AccessToken
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model((*familyRow)(nil)).Set("revoked_at = ?", at.UTC()).
			Where("revoked_at IS NULL").Where(families, args...).Exec(ctx); err != nil {
			return fmt.Errorf("revoke session families: %w", err)
		}
		if _, err := tx.NewUpdate().Model((*sessionRow)(nil)).Set("revoked_at = ?", at.UTC()).
			Where("revoked_at IS NULL").Where(sessions, args...).Exec(ctx); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		var rows []sessionRow
		if err := tx.NewSelect().Model(&rows).Column("access_token_id", "access_expires_at").
			Where("access_expires_at > ?", at.UTC()).Where(sessions, args...).Scan(ctx); err != nil {
			return fmt.Errorf("select live access tokens: %w", err)
		}
		for _, row := range rows {
			live = append(live, app.AccessToken{ID: row.AccessTokenID, ExpiresAt: row.AccessExpiresAt})
		}
		return nil
	})
	return live, err
}

// CreateReset stores a reset token.
func (r *Repo) CreateReset(ctx context.Context, t app.ResetToken) error {
	row := resetRow{ID: t.ID, UserID: t.UserID, TokenHash: t.TokenHash, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
	if _, err := r.db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("insert reset token: %w", err)
	}
	return nil
}

// FindReset returns the owner of an unused, unexpired reset token, so the caller can
// refuse a bad token before paying for a password hash.
func (r *Repo) FindReset(ctx context.Context, hash string, at time.Time) (string, error) {
	var row resetRow
	err := r.db.NewSelect().Model(&row).Column("user_id").Where("token_hash = ?", hash).
		Where("used_at IS NULL").Where("expires_at > ?", at.UTC()).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return "", user.ErrInvalidResetToken
	}
	if err != nil {
		return "", fmt.Errorf("find reset token: %w", err)
	}
	return row.UserID, nil
}

// Redeem marks the token used (only if unused and unexpired), sets the password and
// spends the user's other reset tokens, in one transaction.
func (r *Repo) Redeem(ctx context.Context, hash, newPasswordHash string, at time.Time) (string, error) {
	var userID string
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var row resetRow
		err := tx.NewUpdate().Model(&row).Set("used_at = ?", at.UTC()).
			Where("token_hash = ?", hash).Where("used_at IS NULL").Where("expires_at > ?", at.UTC()).
			Returning("user_id").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return user.ErrInvalidResetToken
		}
		if err != nil {
			return fmt.Errorf("redeem reset token: %w", err)
		}
		userID = row.UserID
		_, err = tx.NewUpdate().Model((*userRow)(nil)).Set("password_hash = ?", newPasswordHash).Where("id = ?", userID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		return spendResets(ctx, tx, userID, at)
	})
	return userID, err
}

// EnqueueReset stores a forgot-password request, due at once.
func (r *Repo) EnqueueReset(ctx context.Context, req app.ResetRequest) error {
	row := resetRequestRow{ID: req.ID, Email: req.Email, RequestedAt: req.RequestedAt.UTC(), NotBefore: req.RequestedAt.UTC()}
	if _, err := r.db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("insert reset request: %w", err)
	}
	return nil
}

// ClaimResets leases due requests, oldest first, in one transaction; on PostgreSQL and
// MariaDB rows another worker holds are skipped (SQLite serialises writers anyway).
func (r *Repo) ClaimResets(ctx context.Context, now, leaseUntil time.Time, limit int) ([]app.ResetRequest, error) {
	var out []app.ResetRequest
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []resetRequestRow
		q := tx.NewSelect().Model(&rows).Where("not_before <= ?", now.UTC()).Order("requested_at").Limit(int64(limit))
		if r.db.Dialect().Name() != dialect.SQLite {
			q = q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil || len(rows) == 0 {
			return err
		}
		ids := make([]string, len(rows))
		for i, row := range rows {
			ids[i] = row.ID
			out = append(out, app.ResetRequest{ID: row.ID, Email: row.Email, RequestedAt: row.RequestedAt, Attempts: row.Attempts + 1})
		}
		_, err := tx.NewUpdate().Model((*resetRequestRow)(nil)).
			Set("not_before = ?", leaseUntil.UTC()).Set("attempts = attempts + 1").
			Where("id IN (?)", bun.List(ids)).Exec(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim reset requests: %w", err)
	}
	return out, nil
}

// DeleteReset removes a request.
func (r *Repo) DeleteReset(ctx context.Context, id string) error {
	if _, err := r.db.NewDelete().Model((*resetRequestRow)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("delete reset request: %w", err)
	}
	return nil
}
