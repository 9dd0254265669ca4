package bunrepo_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/google/uuid"

	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
	"github.com/bugtracker/bugtracker/project/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/project/app"
)

// BenchmarkListCards compares a card page (20 of a project's 25 cards) served by the
// use case (policy check, then the keyset query through bun, rows to domain cards)
// with the same two SQL statements run through plain database/sql and scanned into
// structs, on MariaDB. Each iteration runs both, one after the other, so the noise of
// a shared machine hits both alike; it reports each one's time per page and
// throughput ratio (sql-ns / service-ns, goal >= 0.6). The plain pool interpolates
// parameters client-side as bun does, so both send one statement per query instead of
// a prepare, execute and close.
func BenchmarkListCards(b *testing.B) {
	url := dbtest.URL(b, database.MySQL)
	db, err := database.Open(context.Background(), url, database.Pool{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	if err := database.Migrate(ctx, db, bunrepo.Migrations); err != nil {
		b.Fatal(err)
	}
	repo := bunrepo.New(db, nil)
	d := app.Deps{Store: repo, Clock: time.Now, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }, MaxMembers: 500}
	policy := app.NewPolicy(repo)
	if _, err := repo.ApplyUser(ctx, "e1", app.UserCopy{ID: "ann", Name: "Ann", Email: "ann@example.com", Version: 1}); err != nil {
		b.Fatal(err)
	}
	p, err := app.NewCreateProjectHandler(d).Handle(ctx, app.CreateProject{CallerID: "ann", Title: "P"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 25 {
		if _, err := app.NewCreateCardHandler(d, policy).Handle(ctx, app.CreateCard{
			CallerID: "ann", ProjectID: p.ID(), Title: fmt.Sprintf("card %d", i), Description: "a description of some length",
		}); err != nil {
			b.Fatal(err)
		}
	}
	list := app.NewListCardsHandler(d, policy)
	raw := plainPool(b, url)

	service := func() {
		page, err := list.Handle(ctx, app.ListCards{CallerID: "ann", Filter: app.CardFilter{ProjectID: p.ID()}, Limit: 20})
		if err != nil || len(page.Cards) != 20 || page.Next == nil {
			b.Fatalf("%d cards, %v", len(page.Cards), err)
		}
	}
	type row struct {
		id, projectID, title, description, status, creatorID string
		total                                                int
		createdAt, updatedAt                                 time.Time
		version                                              int64
	}
	plain := func() {
		var role sql.NullString
		var pr struct {
			id, title, description, ownerID string
			createdAt, updatedAt            time.Time
			version                         int64
		}
		err := raw.QueryRowContext(ctx, "SELECT p.id, p.title, p.description, p.owner_id, p.created_at, p.updated_at, p.version, "+
			"(SELECT m.role FROM project_member AS m WHERE m.project_id = p.id AND m.user_id = ? AND m.active = TRUE) "+
			"FROM project AS p WHERE p.id = ?", "ann", p.ID()).
			Scan(&pr.id, &pr.title, &pr.description, &pr.ownerID, &pr.createdAt, &pr.updatedAt, &pr.version, &role)
		if err != nil || !role.Valid {
			b.Fatal(err)
		}
		rows, err := raw.QueryContext(ctx, "SELECT c.id, c.project_id, c.title, c.description, c.status, c.creator_id, "+
			"c.total_comment, c.created_at, c.updated_at, c.version FROM card AS c WHERE c.project_id = ? "+
			"ORDER BY c.created_at ASC, c.id ASC LIMIT 21", p.ID())
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = rows.Close() }()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.projectID, &r.title, &r.description, &r.status, &r.creatorID, &r.total,
				&r.createdAt, &r.updatedAt, &r.version); err != nil {
				b.Fatal(err)
			}
			out = append(out, r)
		}
		if rows.Err() != nil || len(out) != 21 {
			b.Fatalf("%d rows, %v", len(out), rows.Err())
		}
	}
	var inService, inPlain time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		service()
		t1 := time.Now()
		plain()
		inService += t1.Sub(t0)
		inPlain += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(inService.Nanoseconds())/float64(n), "service-ns/page")
	b.ReportMetric(float64(inPlain.Nanoseconds())/float64(n), "sql-ns/page")
	b.ReportMetric(float64(inPlain)/float64(inService), "ratio")
}

// plainPool opens the benchmark database through go-sql-driver alone.
func plainPool(b *testing.B, rawURL string) *sql.DB {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime, cfg.Loc, cfg.InterpolateParams = true, time.UTC, true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(20)
	b.Cleanup(func() { _ = db.Close() })
	return db
}
