package bunrepo_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
	"github.com/bugtracker/bugtracker/project/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/project/app"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// captured records the SQL text the repository sends, so the test explains exactly
// the queries the lists run rather than hand-written copies of them.
// ScanAndCount runs its two queries concurrently, hence the lock; the count query is
// left out, the list query is the one whose plan matters.
type captured struct {
	mu      sync.Mutex
	queries []string
}

func (c *captured) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (c *captured) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.HasPrefix(e.Query, "SELECT") && !strings.HasPrefix(e.Query, "SELECT count(") {
		c.mu.Lock()
		c.queries = append(c.queries, e.Query)
		c.mu.Unlock()
	}
}

// TestListQueriesUseIndexes runs every list query of the repository on MariaDB over
// enough rows that a scan would cost, and checks with EXPLAIN that each reads its
// table through the index made for it, in index order (no filesort).
func TestListQueriesUseIndexes(t *testing.T) {
	db := dbtest.Open(t, database.MySQL)
	ctx := context.Background()
	if err := database.Migrate(ctx, db, bunrepo.Migrations); err != nil {
		t.Fatal(err)
	}
	seed(t, db)
	for _, table := range []string{"project", "project_member", "card"} {
		if _, err := db.ExecContext(ctx, "ANALYZE TABLE "+table); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, table, index string
		run                func(repo *bunrepo.Repo) error
	}{
		{"projects of a user", "m", "project_member_user_idx", func(repo *bunrepo.Repo) error {
			_, _, err := repo.ListProjects(ctx, "user-3", "", 0, 20)
			return err
		}},
		{"projects of a user by title", "m", "project_member_user_idx", func(repo *bunrepo.Repo) error {
			_, _, err := repo.ListProjects(ctx, "user-3", "ti_tle%", 0, 20)
			return err
		}},
		{"members", "m", "project_member_list_idx", func(repo *bunrepo.Repo) error {
			_, _, err := repo.ListMembers(ctx, "p-7", 0, 20)
			return err
		}},
		{"cards", "c", "card_project_idx", func(repo *bunrepo.Repo) error {
			_, err := repo.ListCards(ctx, app.CardFilter{ProjectID: "p-7"}, 21)
			return err
		}},
		{"cards after a cursor", "c", "card_project_idx", func(repo *bunrepo.Repo) error {
			_, err := repo.ListCards(ctx, app.CardFilter{ProjectID: "p-7", After: &app.CardPosition{CreatedAt: base.Add(time.Hour), ID: "c-7-10"}}, 21)
			return err
		}},
		{"cards by status after a cursor", "c", "card_project_status_idx", func(repo *bunrepo.Repo) error {
			_, err := repo.ListCards(ctx, app.CardFilter{ProjectID: "p-7", Status: project.StatusDone, After: &app.CardPosition{CreatedAt: base, ID: "c"}}, 21)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hook := &captured{}
			if err := tc.run(bunrepo.New(db.WithQueryHook(hook), nil)); err != nil {
				t.Fatal(err)
			}
			if len(hook.queries) == 0 {
				t.Fatal("no query captured")
			}
			plan := explain(t, db, hook.queries[0])
			row, ok := plan[tc.table]
			if !ok {
				t.Fatalf("table %s not in the plan of %s: %v", tc.table, hook.queries[0], plan)
			}
			if row.key != tc.index || strings.Contains(row.extra, "filesort") {
				t.Fatalf("%s read through %q (%s), want %s without filesort\nquery: %s", tc.table, row.key, row.extra, tc.index, hook.queries[0])
			}
		})
	}
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seed writes 40 projects with 5 members each and 60 cards each directly, fast.
func seed(t *testing.T, db *bun.DB) {
	t.Helper()
	ctx := context.Background()
	var projects, members, cards []string
	for p := range 40 {
		at := base.Add(time.Duration(p) * time.Minute).Format("2006-01-02 15:04:05.000000")
		projects = append(projects, fmt.Sprintf("('p-%d','title %d','', 'user-%d','%s','%s',1)", p, p, p%10, at, at))
		members = append(members, fmt.Sprintf("('p-%d','user-%d','owner',0,1,'%s','%s',1)", p, p%10, at, at))
		for m := 1; m <= 5; m++ {
			members = append(members, fmt.Sprintf("('p-%d','user-%d','member',1,1,'%s','%s',1)", p, (p+m)%10+10*m, at, at))
		}
		for c := range 60 {
			cat := base.Add(time.Duration(c) * time.Minute).Format("2006-01-02 15:04:05.000000")
			st := []string{"todo", "in_progress", "done"}[c%3]
			cards = append(cards, fmt.Sprintf("('c-%d-%d','p-%d','card','', '%s','user-1',0,'%s','%s',1)", p, c, p, st, cat, cat))
		}
	}
	for _, q := range []string{
		"INSERT INTO project (id,title,description,owner_id,created_at,updated_at,version) VALUES " + strings.Join(projects, ","),
		"INSERT INTO project_member (project_id,user_id,role,sort_rank,active,added_at,project_created_at,version) VALUES " + strings.Join(members, ","),
		"INSERT INTO card (id,project_id,title,description,status,creator_id,total_comment,created_at,updated_at,version) VALUES " + strings.Join(cards, ","),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

type planRow struct{ key, extra string }

// explain returns, per table alias, the index MariaDB reads it through and the Extra
// column of EXPLAIN.
func explain(t *testing.T, db *bun.DB, query string) map[string]planRow {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN "+query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string]planRow{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		rec := map[string]string{}
		for i, c := range cols {
			rec[c] = vals[i].String
		}
		out[rec["table"]] = planRow{key: rec["key"], extra: rec["Extra"]}
	}
	return out
}
