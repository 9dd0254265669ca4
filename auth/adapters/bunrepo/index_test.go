package bunrepo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/auth/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/auth/domain/user"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
)

// TestNameFilterUsesTrigramIndex shows that on PostgreSQL the user list's
// case-insensitive substring filter can be served by the trigram index: with
// sequential scans priced out, the planner picks it (a b-tree could not serve a
// leading-wildcard LIKE at all, and the plan would stay a scan).
func TestNameFilterUsesTrigramIndex(t *testing.T) {
	db := dbtest.Open(t, database.Postgres)
	ctx := context.Background()
	if err := database.Migrate(ctx, db, bunrepo.Migrations); err != nil {
		t.Fatal(err)
	}
	repo := bunrepo.New(db, nil)
	for i := range 50 {
		u, err := user.NewUser(fmt.Sprintf("0190a000-0000-7000-8000-%012d", i), fmt.Sprintf("User Number %d", i),
			fmt.Sprintf("u%d@example.com", i), "h", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Add(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	var plan []string
	rows, err := conn.QueryContext(ctx, `EXPLAIN SELECT * FROM users WHERE lower(name) LIKE '%number 12%' ESCAPE '\'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "users_name_trgm_idx") {
		t.Fatalf("filter not served by the trigram index:\n%s", strings.Join(plan, "\n"))
	}
}
