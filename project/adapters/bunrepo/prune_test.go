package bunrepo_test

import (
	"context"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
	"github.com/bugtracker/bugtracker/platform/servicetest"
	"github.com/bugtracker/bugtracker/project/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/project/app"
)

// TestPrunerBoundsTheInbox: records older than InboxRetention go, younger ones stay.
func TestPrunerBoundsTheInbox(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	ctx := context.Background()
	if err := database.Migrate(ctx, db, bunrepo.Migrations); err != nil {
		t.Fatal(err)
	}
	repo := bunrepo.New(db, nil)
	for _, id := range []string{"old", "young"} {
		if _, err := repo.ApplyUser(ctx, id, app.UserCopy{ID: "u-" + id, Name: "N", Email: "e", Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.NewUpdate().TableExpr("processed_events").Set("processed_at = ?", time.Now().UTC().Add(-bunrepo.InboxRetention-time.Hour)).
		Where("event_id = ?", "old").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bunrepo.NewPruner(repo, time.Hour, servicetest.Discard()).Run(pctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := db.NewSelect().TableExpr("processed_events").Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d inbox records, want 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, _ := repo.ApplyUser(ctx, "young", app.UserCopy{ID: "u-young", Version: 2}); ok {
		t.Fatal("a young record was pruned")
	}
}
