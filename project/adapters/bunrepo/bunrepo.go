// Package bunrepo is the SQL adapter of the project service's Store on bun: MariaDB in
// production, SQLite for `make run`. Events go to the outbox table in the same
// transaction as the change they describe, and consumed events are recorded in the
// inbox in the same transaction as their effect.
package bunrepo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/project/app"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

type projectRow struct {
	bun.BaseModel `bun:"table:project,alias:p"`

	ID          string    `bun:"id,pk"`
	Title       string    `bun:"title"`
	Description string    `bun:"description"`
	OwnerID     string    `bun:"owner_id"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
	Version     int64     `bun:"version"`
}

func (r projectRow) toDomain() project.Project {
	return project.UnmarshalProjectFromDB(r.ID, r.Title, r.Description, r.OwnerID, r.CreatedAt, r.UpdatedAt, r.Version)
}

func toProjectRow(p project.Project) projectRow {
	return projectRow{
		ID: p.ID(), Title: p.Title(), Description: p.Description(), OwnerID: p.OwnerID(),
		CreatedAt: p.CreatedAt(), UpdatedAt: p.UpdatedAt(), Version: p.Version(),
	}
}

type memberRow struct {
	bun.BaseModel `bun:"table:project_member,alias:m"`

	ProjectID        string    `bun:"project_id,pk"`
	UserID           string    `bun:"user_id,pk"`
	Role             string    `bun:"role"`
	Rank             int       `bun:"sort_rank"`
	Active           bool      `bun:"active"`
	AddedAt          time.Time `bun:"added_at"`
	ProjectCreatedAt time.Time `bun:"project_created_at"`
	Version          int64     `bun:"version"`
}

type cardRow struct {
	bun.BaseModel `bun:"table:card,alias:c"`

	ID           string    `bun:"id,pk"`
	ProjectID    string    `bun:"project_id"`
	Title        string    `bun:"title"`
	Description  string    `bun:"description"`
	Status       string    `bun:"status"`
	CreatorID    string    `bun:"creator_id"`
	TotalComment int       `bun:"total_comment"`
	CreatedAt    time.Time `bun:"created_at"`
	UpdatedAt    time.Time `bun:"updated_at"`
	Version      int64     `bun:"version"`
}

func (r cardRow) toDomain() project.Card {
	return project.UnmarshalCardFromDB(r.ID, r.ProjectID, r.Title, r.Description, project.Status(r.Status), r.CreatorID,
		r.TotalComment, r.CreatedAt, r.UpdatedAt, r.Version)
}

func toCardRow(c project.Card) cardRow {
	return cardRow{
		ID: c.ID(), ProjectID: c.ProjectID(), Title: c.Title(), Description: c.Description(), Status: c.Status().String(),
		CreatorID: c.CreatorID(), TotalComment: c.TotalComment(), CreatedAt: c.CreatedAt(), UpdatedAt: c.UpdatedAt(),
		Version: c.Version(),
	}
}

type commentRow struct {
	bun.BaseModel `bun:"table:card_comment"`

	CommentID string `bun:"comment_id,pk"`
	CardID    string `bun:"card_id"`
	Live      bool   `bun:"live"`
}

type userRow struct {
	bun.BaseModel `bun:"table:user_copy,alias:u"`

	ID      string `bun:"id,pk"`
	Name    string `bun:"name"`
	Email   string `bun:"email"`
	Version int64  `bun:"version"`
}

// InboxConsumer names the project service's records in processed_events.
const InboxConsumer = "project"

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

// New returns the repository; afterCommit may be nil.
func New(db *bun.DB, afterCommit AfterCommit) *Repo {
	if afterCommit == nil {
		afterCommit = func() {}
	}
	return &Repo{
		db: db, inbox: inbox.New(db, InboxConsumer), afterCommit: afterCommit,
		mysql: db.Dialect().Name() == dialect.MySQL,
	}
}

func roleAccess(role string) project.Access {
	switch project.Role(role) {
	case project.RoleOwner:
		return project.Owner
	case project.RoleMember:
		return project.MemberAccess
	}
	return project.Stranger
}

// access reads the project and the caller's membership in one query (the primary
// keys of both tables); lock is "", "FOR UPDATE" or "LOCK IN SHARE MODE".
func (r *Repo) access(ctx context.Context, db bun.IDB, projectID, userID, lock string) (project.Project, project.Access, error) {
	var row struct {
		projectRow
		Role sql.NullString `bun:"member_role"`
	}
	query := "SELECT p.*, (SELECT m.role FROM project_member AS m WHERE m.project_id = p.id AND m.user_id = ? AND m.active = ?) AS member_role" +
		" FROM project AS p WHERE p.id = ?"
	if lock != "" && r.mysql {
		// SQLite has no row locks; its write transactions are serialised instead.
		query += " " + lock
	}
	q := db.NewRaw(query, userID, true, projectID)
	err := q.Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return project.Project{}, project.Stranger, project.ErrProjectNotFound
	}
	if err != nil {
		return project.Project{}, project.Stranger, fmt.Errorf("select project: %w", err)
	}
	return row.toDomain(), roleAccess(row.Role.String), nil
}

// Access implements app.Store.
func (r *Repo) Access(ctx context.Context, projectID, userID string) (project.Project, project.Access, error) {
	return r.access(ctx, r.db, projectID, userID, "")
}

// Card implements app.Store.
func (r *Repo) Card(ctx context.Context, id string) (project.Card, error) {
	return r.card(ctx, r.db, id, "", false)
}

func (r *Repo) card(ctx context.Context, db bun.IDB, id, projectID string, lock bool) (project.Card, error) {
	var row cardRow
	q := db.NewSelect().Model(&row).Where("c.id = ?", id)
	if projectID != "" {
		q = q.Where("c.project_id = ?", projectID)
	}
	if lock && r.mysql {
		q = q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return project.Card{}, project.ErrCardNotFound
	}
	if err != nil {
		return project.Card{}, fmt.Errorf("select card: %w", err)
	}
	return row.toDomain(), nil
}

// likeEscaper makes a user's filter text literal inside a LIKE pattern. The escape
// character is '!', which needs no escaping in SQL string literals on any dialect
// (MariaDB would read '\' as an escape of the closing quote).
var likeEscaper = strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`)

// ListProjects implements app.Store: the caller's memberships (the owner is one) are
// read in project order from project_member_user_idx and joined to their projects.
func (r *Repo) ListProjects(ctx context.Context, userID, title string, offset, limit int) ([]project.Project, int, error) {
	var rows []projectRow
	q := r.db.NewSelect().Model(&rows).
		Join("JOIN project_member AS m ON m.project_id = p.id").
		Where("m.user_id = ?", userID).Where("m.active = ?", true).
		OrderExpr("m.project_created_at ASC, m.project_id ASC").
		Offset(int64(offset)).Limit(int64(limit))
	if title != "" {
		q = q.Where("lower(p.title) LIKE ? ESCAPE '!'", "%"+likeEscaper.Replace(strings.ToLower(title))+"%")
	}
	total, err := q.ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list projects: %w", err)
	}
	ps := make([]project.Project, len(rows))
	for i, row := range rows {
		ps[i] = row.toDomain()
	}
	return ps, int(total), nil
}

// ListMembers implements app.Store, in project_member_list_idx order.
func (r *Repo) ListMembers(ctx context.Context, projectID string, offset, limit int) ([]project.Member, int, error) {
	var rows []struct {
		memberRow
		Name  sql.NullString `bun:"user_name"`
		Email sql.NullString `bun:"user_email"`
	}
	q := r.db.NewSelect().Model((*memberRow)(nil)).
		ColumnExpr("m.*, u.name AS user_name, u.email AS user_email").
		Join("LEFT JOIN user_copy AS u ON u.id = m.user_id").
		Where("m.project_id = ?", projectID).Where("m.active = ?", true).
		OrderExpr("m.sort_rank ASC, m.added_at ASC, m.user_id ASC").
		Offset(int64(offset)).Limit(int64(limit))
	if err := q.Scan(ctx, &rows); err != nil {
		return nil, 0, fmt.Errorf("list members: %w", err)
	}
	total, err := r.db.NewSelect().Model((*memberRow)(nil)).Where("m.project_id = ?", projectID).Where("m.active = ?", true).Count(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("count members: %w", err)
	}
	ms := make([]project.Member, len(rows))
	for i, row := range rows {
		ms[i] = project.Member{
			UserID: row.UserID, Name: row.Name.String, Email: row.Email.String, Role: project.Role(row.Role), AddedAt: row.AddedAt.UTC(),
		}
	}
	return ms, int(total), nil
}

// ListCards implements app.Store: a keyset range on card_project_idx, or on
// card_project_status_idx with a status filter.
func (r *Repo) ListCards(ctx context.Context, f app.CardFilter, limit int) ([]project.Card, error) {
	var rows []cardRow
	q := r.db.NewSelect().Model(&rows).Where("c.project_id = ?", f.ProjectID).
		OrderExpr("c.created_at ASC, c.id ASC").Limit(int64(limit))
	if f.Status != "" {
		q = q.Where("c.status = ?", f.Status.String())
	}
	if f.After != nil {
		at := f.After.CreatedAt.UTC()
		q = q.Where("c.created_at >= ?", at).WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("c.created_at > ?", at).WhereOr("c.id > ?", f.After.ID)
		})
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list cards: %w", err)
	}
	cs := make([]project.Card, len(rows))
	for i, row := range rows {
		cs[i] = row.toDomain()
	}
	return cs, nil
}

// deadlockRetries bounds how often a transaction MariaDB chose as a deadlock victim
// is run again; the victim was rolled back whole, so running it again is safe.
const deadlockRetries = 3

func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// Write implements app.Store.
func (r *Repo) Write(ctx context.Context, fn func(ctx context.Context, tx app.Tx) error) error {
	for attempt := 0; ; attempt++ {
		published := false
		err := r.db.RunInTx(ctx, nil, func(ctx context.Context, btx bun.Tx) error {
			t := &tx{r: r, tx: btx}
			err := fn(ctx, t)
			published = t.published
			return err
		})
		if err != nil && isDeadlock(err) && attempt < deadlockRetries {
			continue
		}
		if err == nil && published {
			r.afterCommit()
		}
		return err
	}
}

// ApplyUser implements app.Store: insert the copy if it is new, else overwrite it only
// from a newer version, all in the inbox transaction.
func (r *Repo) ApplyUser(ctx context.Context, eventID string, u app.UserCopy) (bool, error) {
	return r.apply(ctx, eventID, func(ctx context.Context, tx bun.Tx) error {
		row := userRow{ID: u.ID, Name: u.Name, Email: u.Email, Version: u.Version}
		res, err := tx.NewInsert().Model(&row).Ignore().Exec(ctx)
		if err != nil {
			return fmt.Errorf("insert user copy: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		_, err = tx.NewUpdate().Model(&row).Column("name", "email", "version").WherePK().Where("version < ?", u.Version).Exec(ctx)
		return err
	})
}

// ApplyComment implements app.Store. The row per comment id decides, with
// conditional writes that serialise on its primary key: a newComment counts only when
// it inserts the row (not after a tombstone, not twice), a deleteComment uncounts only
// when it turns a live row into a tombstone, and inserts the tombstone when it comes
// first (TestCommentCountContract, TestConcurrentCommentConsumers).
func (r *Repo) ApplyComment(ctx context.Context, eventID, commentID, cardID string, live bool) (bool, error) {
	return r.apply(ctx, eventID, func(ctx context.Context, tx bun.Tx) error {
		row := commentRow{CommentID: commentID, CardID: cardID, Live: live}
		res, err := tx.NewInsert().Model(&row).Ignore().Exec(ctx)
		if err != nil {
			return fmt.Errorf("insert comment row: %w", err)
		}
		inserted, _ := res.RowsAffected()
		delta := ""
		switch {
		case live && inserted == 1:
			delta = "total_comment + 1"
		case !live && inserted == 0:
			res, err := tx.NewUpdate().Model((*commentRow)(nil)).Set("live = ?", false).
				Where("comment_id = ?", commentID).Where("live = ?", true).Exec(ctx)
			if err != nil {
				return fmt.Errorf("tombstone comment: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				delta = "total_comment - 1"
			}
		}
		if delta == "" {
			return nil
		}
		_, err = tx.NewUpdate().Model((*cardRow)(nil)).Set("total_comment = "+delta).
			Where("c.id = ?", cardID).Where("c.total_comment + ? >= 0", boolDelta(live)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("update total comment: %w", err)
		}
		return nil
	})
}

func boolDelta(live bool) int {
	if live {
		return 1
	}
	return -1
}

func (r *Repo) apply(ctx context.Context, eventID string, fn func(ctx context.Context, tx bun.Tx) error) (bool, error) {
	for attempt := 0; ; attempt++ {
		applied, err := r.inbox.Apply(ctx, eventID, fn)
		if err != nil && isDeadlock(err) && attempt < deadlockRetries {
			continue
		}
		return applied, err
	}
}

// tx implements app.Tx on a bun transaction.
type tx struct {
	r         *Repo
	tx        bun.Tx
	published bool
}

func (t *tx) LockProject(ctx context.Context, projectID, userID string, exclusive bool) (project.Project, project.Access, error) {
	lock := "LOCK IN SHARE MODE"
	if exclusive {
		lock = "FOR UPDATE"
	}
	return t.r.access(ctx, t.tx, projectID, userID, lock)
}

func (t *tx) LockCard(ctx context.Context, projectID, cardID string) (project.Card, error) {
	return t.r.card(ctx, t.tx, cardID, projectID, true)
}

func (t *tx) User(ctx context.Context, id string) (app.UserCopy, error) {
	var row userRow
	err := t.tx.NewSelect().Model(&row).Where("u.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return app.UserCopy{}, project.ErrUnknownUser
	}
	if err != nil {
		return app.UserCopy{}, fmt.Errorf("select user copy: %w", err)
	}
	return app.UserCopy{ID: row.ID, Name: row.Name, Email: row.Email, Version: row.Version}, nil
}

func (t *tx) Audience(ctx context.Context, projectID string) ([]string, error) {
	var ids []string
	err := t.tx.NewSelect().Model((*memberRow)(nil)).Column("m.user_id").
		Where("m.project_id = ?", projectID).Where("m.active = ?", true).Where("m.sort_rank = 1").
		OrderExpr("m.user_id ASC").Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("select audience: %w", err)
	}
	return ids, nil
}

func (t *tx) IsMember(ctx context.Context, projectID, userID string) (bool, error) {
	ok, err := t.tx.NewSelect().Model((*memberRow)(nil)).
		Where("m.project_id = ?", projectID).Where("m.user_id = ?", userID).Where("m.active = ?", true).Where("m.sort_rank = 1").
		Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("select membership: %w", err)
	}
	return ok, nil
}

func (t *tx) CountMembers(ctx context.Context, projectID string) (int, error) {
	n, err := t.tx.NewSelect().Model((*memberRow)(nil)).
		Where("m.project_id = ?", projectID).Where("m.active = ?", true).Where("m.sort_rank = 1").Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count members: %w", err)
	}
	return int(n), nil
}

func (t *tx) InsertProject(ctx context.Context, p project.Project) error {
	row := toProjectRow(p)
	if _, err := t.tx.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("insert project: %w", err)
	}
	owner := memberRow{
		ProjectID: p.ID(), UserID: p.OwnerID(), Role: project.RoleOwner.String(), Rank: 0, Active: true,
		AddedAt: p.CreatedAt(), ProjectCreatedAt: p.CreatedAt(), Version: 1,
	}
	if _, err := t.tx.NewInsert().Model(&owner).Exec(ctx); err != nil {
		return fmt.Errorf("insert owner membership: %w", err)
	}
	return nil
}

func (t *tx) SaveProject(ctx context.Context, p project.Project) error {
	row := toProjectRow(p)
	if _, err := t.tx.NewUpdate().Model(&row).Column("title", "description", "updated_at", "version").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update project: %w", err)
	}
	return nil
}

func (t *tx) DeleteProject(ctx context.Context, projectID string) error {
	steps := []struct {
		what string
		q    *bun.DeleteQuery
	}{
		{"comment rows", t.tx.NewDelete().TableExpr("card_comment").
			Where("card_id IN (SELECT id FROM card WHERE project_id = ?)", projectID)},
		{"cards", t.tx.NewDelete().TableExpr("card").Where("project_id = ?", projectID)},
		{"memberships", t.tx.NewDelete().TableExpr("project_member").Where("project_id = ?", projectID)},
		{"project", t.tx.NewDelete().TableExpr("project").Where("id = ?", projectID)},
	}
	for _, s := range steps {
		if _, err := s.q.Exec(ctx); err != nil {
			return fmt.Errorf("delete %s: %w", s.what, err)
		}
	}
	return nil
}

func (t *tx) AddMember(ctx context.Context, projectID, userID string, at time.Time) (int64, error) {
	var old memberRow
	err := t.tx.NewSelect().Model(&old).Where("m.project_id = ?", projectID).Where("m.user_id = ?", userID).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var created time.Time
		if err := t.tx.NewSelect().Model((*projectRow)(nil)).Column("created_at").Where("id = ?", projectID).Scan(ctx, &created); err != nil {
			return 0, fmt.Errorf("select project: %w", err)
		}
		row := memberRow{
			ProjectID: projectID, UserID: userID, Role: project.RoleMember.String(), Rank: 1, Active: true,
			AddedAt: at, ProjectCreatedAt: created, Version: 1,
		}
		if _, err := t.tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			if database.IsUniqueViolation(err) {
				return 0, project.ErrAlreadyMember
			}
			return 0, fmt.Errorf("insert membership: %w", err)
		}
		return 1, nil
	case err != nil:
		return 0, fmt.Errorf("select membership: %w", err)
	case old.Active:
		return 0, project.ErrAlreadyMember
	}
	res, err := t.tx.NewUpdate().Model((*memberRow)(nil)).
		Set("active = ?", true).Set("added_at = ?", at).Set("version = version + 1").
		Where("m.project_id = ?", projectID).Where("m.user_id = ?", userID).Where("m.active = ?", false).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("reactivate membership: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, project.ErrAlreadyMember
	}
	return old.Version + 1, nil
}

func (t *tx) RemoveMember(ctx context.Context, projectID, userID string) (int64, error) {
	var old memberRow
	err := t.tx.NewSelect().Model(&old).Where("m.project_id = ?", projectID).Where("m.user_id = ?", userID).
		Where("m.active = ?", true).Where("m.sort_rank = 1").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, project.ErrMemberNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("select membership: %w", err)
	}
	res, err := t.tx.NewUpdate().Model((*memberRow)(nil)).Set("active = ?", false).Set("version = version + 1").
		Where("m.project_id = ?", projectID).Where("m.user_id = ?", userID).Where("m.active = ?", true).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("end membership: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, project.ErrMemberNotFound
	}
	return old.Version + 1, nil
}

func (t *tx) InsertCard(ctx context.Context, c project.Card) error {
	row := toCardRow(c)
	if _, err := t.tx.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("insert card: %w", err)
	}
	return nil
}

func (t *tx) SaveCard(ctx context.Context, c project.Card) error {
	row := toCardRow(c)
	res, err := t.tx.NewUpdate().Model(&row).Column("title", "description", "status", "updated_at", "version").WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("update card: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return project.ErrCardNotFound
	}
	return nil
}

func (t *tx) DeleteCard(ctx context.Context, cardID string) error {
	if _, err := t.tx.NewDelete().TableExpr("card_comment").Where("card_id = ?", cardID).Exec(ctx); err != nil {
		return fmt.Errorf("delete comment rows: %w", err)
	}
	if _, err := t.tx.NewDelete().TableExpr("card").Where("id = ?", cardID).Exec(ctx); err != nil {
		return fmt.Errorf("delete card: %w", err)
	}
	return nil
}

func (t *tx) Publish(ctx context.Context, envs ...eventbus.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	t.published = true
	return outbox.Add(ctx, t.tx, envs...)
}

// InboxRetention is how long consumed event ids are remembered: the inbox's own
// floor, which exceeds the outbox retention of every producer (72h) by a week of
// redelivery delay, so a republished event still finds its record (see package
// inbox).
const InboxRetention = inbox.MinRetention

// Pruner deletes inbox records older than InboxRetention every interval, so the
// processed_events table stays bounded however many events arrive.
type Pruner struct {
	repo     *Repo
	interval time.Duration
	log      *slog.Logger
}

// NewPruner returns the pruner of repo's inbox; log receives failures, which are
// retried at the next interval.
func NewPruner(repo *Repo, interval time.Duration, log *slog.Logger) *Pruner {
	return &Pruner{repo: repo, interval: interval, log: log}
}

// Run prunes at start and then every interval until ctx ends.
func (p *Pruner) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		if err := p.repo.inbox.Prune(ctx, InboxRetention); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "inbox prune failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
