// Package bunrepo is the SQL adapter of the comment service's Store on bun: MariaDB
// in production, SQLite for `make run`. Comments and the local copies live in one
// database, so a use case's checks and writes share one transaction; events go to the
// outbox table in that transaction, and consumed events are recorded in the inbox
// table in the transaction that applies them.
package bunrepo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/comment/domain/comment"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
)

type commentRow struct {
	bun.BaseModel `bun:"table:comment"`

	ID        string    `bun:"id,pk"`
	CardID    string    `bun:"card_id"`
	ProjectID string    `bun:"project_id"`
	AuthorID  string    `bun:"author_id"`
	Body      string    `bun:"body"`
	CreatedAt time.Time `bun:"created_at"`
}

func (r commentRow) toDomain() comment.Comment {
	return comment.UnmarshalFromDB(r.ID, r.CardID, r.ProjectID, r.AuthorID, r.Body, r.CreatedAt)
}

type userRow struct {
	bun.BaseModel `bun:"table:user_copy"`

	ID      string `bun:"id,pk"`
	Name    string `bun:"name"`
	Version int64  `bun:"version"`
}

type projectRow struct {
	bun.BaseModel `bun:"table:project_copy"`

	ID      string `bun:"id,pk"`
	Title   string `bun:"title"`
	OwnerID string `bun:"owner_id"`
	Version int64  `bun:"version"`
	Deleted bool   `bun:"deleted"`
}

type memberRow struct {
	bun.BaseModel `bun:"table:member_copy"`

	ProjectID string `bun:"project_id,pk"`
	UserID    string `bun:"user_id,pk"`
	Version   int64  `bun:"version"`
	Removed   bool   `bun:"removed"`
}

type cardRow struct {
	bun.BaseModel `bun:"table:card_copy"`

	ID        string `bun:"id,pk"`
	ProjectID string `bun:"project_id"`
	Title     string `bun:"title"`
	Version   int64  `bun:"version"`
	Deleted   bool   `bun:"deleted"`
}

// AfterCommit is called after a transaction that wrote events commits; the service
// passes the outbox relay's Notify so events leave at once instead of at the next poll.
type AfterCommit func()

// Repo implements app.Store.
type Repo struct {
	db          *bun.DB
	inbox       *inbox.Inbox
	afterCommit AfterCommit
	mysql       bool
}

// New returns the store over db (migrated with Migrations); consumer names its
// inbox records (the consumer group) and afterCommit may be nil.
func New(db *bun.DB, consumer string, afterCommit AfterCommit) *Repo {
	if afterCommit == nil {
		afterCommit = func() {}
	}
	return &Repo{
		db: db, inbox: inbox.New(db, consumer), afterCommit: afterCommit,
		mysql: db.Dialect().Name() == dialect.MySQL,
	}
}

// maxAttempts bounds how often Update reruns a transaction that MariaDB chose as a
// deadlock victim; the locking reads of concurrent creations and deletions can
// deadlock in rare interleavings, which a rerun resolves.
const maxAttempts = 5

func retryable(err error) bool {
	var my *mysql.MySQLError
	return errors.As(err, &my) && (my.Number == 1213 || my.Number == 1205)
}

// Update implements app.Store.
func (r *Repo) Update(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		var published bool
		err = r.db.RunInTx(ctx, nil, func(ctx context.Context, btx bun.Tx) error {
			t := &tx{db: btx, mysql: r.mysql, locks: true}
			if err := fn(ctx, t); err != nil {
				return err
			}
			published = t.published
			return nil
		})
		if err == nil {
			if published {
				r.afterCommit()
			}
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// View implements app.Store. It reads outside a transaction: on SQLite every
// transaction takes the write lock, and one query per read is consistent enough for
// a listing.
func (r *Repo) View(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	return fn(ctx, &tx{db: r.db, mysql: r.mysql})
}

// ApplyEvent implements app.Store through the inbox: the event's record and fn's
// writes commit together, so a redelivered event is skipped. A deadlock is retried
// here too, since the event would otherwise wait for the subscriber's claim timeout.
func (r *Repo) ApplyEvent(ctx context.Context, eventID string, fn func(ctx context.Context, tx app.Tx) error) (bool, error) {
	var (
		applied bool
		err     error
	)
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		applied, err = r.inbox.Apply(ctx, eventID, func(ctx context.Context, btx bun.Tx) error {
			return fn(ctx, &tx{db: btx, mysql: r.mysql, locks: true})
		})
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return applied, err
		}
	}
	return applied, err
}

// PruneInbox forgets the consumed events older than olderThan, which must exceed
// the producers' outbox retention (72h) plus the longest redelivery delay: an event
// whose record is gone would be applied again if it were republished.
func (r *Repo) PruneInbox(ctx context.Context, olderThan time.Duration) error {
	return r.inbox.Prune(ctx, olderThan)
}

// tx implements app.Tx over a bun transaction (or the database, for View).
type tx struct {
	db        bun.IDB
	mysql     bool
	locks     bool
	published bool
}

// lockClause is the suffix of a locking read. SQLite needs none: platform/database
// opens write transactions with BEGIN IMMEDIATE, so they run one at a time.
func (t *tx) lockClause(l app.Lock) string {
	if !t.locks || !t.mysql {
		return ""
	}
	switch l {
	case app.Share:
		return " LOCK IN SHARE MODE"
	case app.Exclusive:
		return " FOR UPDATE"
	default:
		return ""
	}
}

// one scans the single row of a raw query into dst, mapping no row to notFound.
func (t *tx) one(ctx context.Context, dst any, notFound error, query string, args ...any) error {
	err := t.db.NewRaw(query, args...).Scan(ctx, dst)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	return err
}

func (t *tx) User(ctx context.Context, id string) (app.UserCopy, error) {
	var row userRow
	if err := t.one(ctx, &row, app.ErrNoCopy, "SELECT id, name, version FROM user_copy WHERE id = ?", id); err != nil {
		return app.UserCopy{}, err
	}
	return app.UserCopy{ID: row.ID, Name: row.Name, Version: row.Version}, nil
}

func (t *tx) Project(ctx context.Context, id string, l app.Lock) (app.ProjectCopy, error) {
	var row projectRow
	err := t.one(ctx, &row, app.ErrNoCopy,
		"SELECT id, title, owner_id, version, deleted FROM project_copy WHERE id = ?"+t.lockClause(l), id)
	if err != nil {
		return app.ProjectCopy{}, err
	}
	return app.ProjectCopy{ID: row.ID, Title: row.Title, OwnerID: row.OwnerID, Version: row.Version, Deleted: row.Deleted}, nil
}

func (t *tx) Member(ctx context.Context, projectID, userID string, l app.Lock) (app.MemberCopy, error) {
	var row memberRow
	err := t.one(ctx, &row, app.ErrNoCopy,
		"SELECT project_id, user_id, version, removed FROM member_copy WHERE project_id = ? AND user_id = ?"+t.lockClause(l),
		projectID, userID)
	if err != nil {
		return app.MemberCopy{}, err
	}
	return app.MemberCopy{ProjectID: row.ProjectID, UserID: row.UserID, Version: row.Version, Removed: row.Removed}, nil
}

func (t *tx) MemberIDs(ctx context.Context, projectID string) ([]string, error) {
	var ids []string
	err := t.db.NewSelect().Model((*memberRow)(nil)).Column("user_id").
		Where("project_id = ?", projectID).Where("removed = ?", false).Order("user_id").Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("select members: %w", err)
	}
	return ids, nil
}

func (t *tx) Card(ctx context.Context, id string, l app.Lock) (app.CardCopy, error) {
	var row cardRow
	err := t.one(ctx, &row, app.ErrNoCopy,
		"SELECT id, project_id, title, version, deleted FROM card_copy WHERE id = ?"+t.lockClause(l), id)
	if err != nil {
		return app.CardCopy{}, err
	}
	return app.CardCopy{ID: row.ID, ProjectID: row.ProjectID, Title: row.Title, Version: row.Version, Deleted: row.Deleted}, nil
}

// accessRow is the joined read of CardAccess; the project and membership columns
// are NULL when their copies are missing.
type accessRow struct {
	CardID         string  `bun:"card_id"`
	ProjectID      string  `bun:"project_id"`
	CardTitle      string  `bun:"card_title"`
	CardVersion    int64   `bun:"card_version"`
	CardDeleted    bool    `bun:"card_deleted"`
	ProjectTitle   *string `bun:"project_title"`
	OwnerID        *string `bun:"owner_id"`
	ProjectVersion *int64  `bun:"project_version"`
	ProjectDeleted *bool   `bun:"project_deleted"`
	MemberVersion  *int64  `bun:"member_version"`
	MemberRemoved  *bool   `bun:"member_removed"`
}

// CardAccess reads the card, its project and the membership in one statement; on
// MariaDB a locking read of a join locks the rows it reads in every table (and the
// gap where a missing membership would go), as the three separate reads would.
func (t *tx) CardAccess(ctx context.Context, cardID, userID string, l app.Lock) (app.CardAccess, error) {
	var row accessRow
	err := t.one(ctx, &row, app.ErrNoCopy, `SELECT c.id AS card_id, c.project_id, c.title AS card_title,
		c.version AS card_version, c.deleted AS card_deleted,
		p.title AS project_title, p.owner_id, p.version AS project_version, p.deleted AS project_deleted,
		m.version AS member_version, m.removed AS member_removed
		FROM card_copy c
		LEFT JOIN project_copy p ON p.id = c.project_id
		LEFT JOIN member_copy m ON m.project_id = c.project_id AND m.user_id = ?
		WHERE c.id = ?`+t.lockClause(l), userID, cardID)
	if err != nil {
		return app.CardAccess{}, err
	}
	a := app.CardAccess{Card: app.CardCopy{
		ID: row.CardID, ProjectID: row.ProjectID, Title: row.CardTitle, Version: row.CardVersion, Deleted: row.CardDeleted,
	}}
	if row.ProjectVersion != nil {
		a.ProjectFound = true
		a.Project = app.ProjectCopy{
			ID: row.ProjectID, Title: *row.ProjectTitle, OwnerID: *row.OwnerID, Version: *row.ProjectVersion, Deleted: *row.ProjectDeleted,
		}
	}
	if row.MemberVersion != nil {
		a.MemberFound = true
		a.Member = app.MemberCopy{ProjectID: row.ProjectID, UserID: userID, Version: *row.MemberVersion, Removed: *row.MemberRemoved}
	}
	return a, nil
}

// upsert inserts row or, when its primary key exists, overwrites the given columns.
func (t *tx) upsert(ctx context.Context, row any, conflict string, cols ...string) error {
	q := t.db.NewInsert().Model(row)
	if t.mysql {
		q = q.On("DUPLICATE KEY UPDATE")
		for _, c := range cols {
			q = q.Set("? = VALUES(?)", bun.Ident(c), bun.Ident(c))
		}
	} else {
		q = q.On("CONFLICT (" + conflict + ") DO UPDATE")
		for _, c := range cols {
			q = q.Set("? = EXCLUDED.?", bun.Ident(c), bun.Ident(c))
		}
	}
	_, err := q.Exec(ctx)
	return err
}

func (t *tx) SaveUser(ctx context.Context, u app.UserCopy) error {
	return t.upsert(ctx, &userRow{ID: u.ID, Name: u.Name, Version: u.Version}, "id", "name", "version")
}

func (t *tx) SaveProject(ctx context.Context, p app.ProjectCopy) error {
	row := projectRow{ID: p.ID, Title: p.Title, OwnerID: p.OwnerID, Version: p.Version, Deleted: p.Deleted}
	return t.upsert(ctx, &row, "id", "title", "owner_id", "version", "deleted")
}

func (t *tx) SaveMember(ctx context.Context, m app.MemberCopy) error {
	row := memberRow{ProjectID: m.ProjectID, UserID: m.UserID, Version: m.Version, Removed: m.Removed}
	return t.upsert(ctx, &row, "project_id, user_id", "version", "removed")
}

func (t *tx) SaveCard(ctx context.Context, c app.CardCopy) error {
	row := cardRow{ID: c.ID, ProjectID: c.ProjectID, Title: c.Title, Version: c.Version, Deleted: c.Deleted}
	return t.upsert(ctx, &row, "id", "project_id", "title", "version", "deleted")
}

func (t *tx) AddComment(ctx context.Context, c comment.Comment) error {
	row := commentRow{
		ID: c.ID(), CardID: c.CardID(), ProjectID: c.ProjectID(), AuthorID: c.AuthorID(),
		Body: c.Body(), CreatedAt: c.CreatedAt(),
	}
	if _, err := t.db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("insert comment: %w", err)
	}
	return nil
}

func (t *tx) Comment(ctx context.Context, id string, l app.Lock) (comment.Comment, error) {
	var row commentRow
	err := t.one(ctx, &row, comment.ErrNotFound,
		"SELECT id, card_id, project_id, author_id, body, created_at FROM comment WHERE id = ?"+t.lockClause(l), id)
	if err != nil {
		return comment.Comment{}, err
	}
	return row.toDomain(), nil
}

func (t *tx) Comments(ctx context.Context, cardID string, after *app.Position, limit int) ([]comment.Comment, error) {
	var rows []commentRow
	q := t.db.NewSelect().Model(&rows).Where("card_id = ?", cardID).OrderExpr("created_at ASC, id ASC").Limit(int64(limit))
	if after != nil {
		at := after.CreatedAt.UTC()
		q = q.Where("(created_at > ? OR (created_at = ? AND id > ?))", at, at, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list comments: %w", err)
	}
	out := make([]comment.Comment, len(rows))
	for i, row := range rows {
		out[i] = row.toDomain()
	}
	return out, nil
}

func (t *tx) remove(ctx context.Context, where string, arg any) (int, error) {
	res, err := t.db.NewDelete().Model((*commentRow)(nil)).Where(where, arg).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete comments: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *tx) RemoveComment(ctx context.Context, id string) (bool, error) {
	n, err := t.remove(ctx, "id = ?", id)
	return n == 1, err
}

func (t *tx) RemoveCardComments(ctx context.Context, cardID string) (int, error) {
	return t.remove(ctx, "card_id = ?", cardID)
}

func (t *tx) RemoveProjectComments(ctx context.Context, projectID string) (int, error) {
	return t.remove(ctx, "project_id = ?", projectID)
}

func (t *tx) Publish(ctx context.Context, envs ...eventbus.Envelope) error {
	if err := outbox.Add(ctx, t.db, envs...); err != nil {
		return err
	}
	t.published = t.published || len(envs) > 0
	return nil
}
