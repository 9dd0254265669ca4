package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/comment/adapters/bunrepo"
	"github.com/bugtracker/bugtracker/comment/app"
	"github.com/bugtracker/bugtracker/comment/service"
	"github.com/bugtracker/bugtracker/eventbus/inbox"
	"github.com/bugtracker/bugtracker/platform/database"
	"github.com/bugtracker/bugtracker/platform/database/dbtest"
	"github.com/bugtracker/bugtracker/platform/servicetest"
)

// TestInboxPrunerForgetsOnlyOldEvents: the pruner removes consumed-event records past
// the retention and keeps the recent ones, which still deduplicate.
func TestInboxPrunerForgetsOnlyOldEvents(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	ctx := context.Background()
	if err := database.Migrate(ctx, db, bunrepo.Migrations); err != nil {
		t.Fatal(err)
	}
	repo := bunrepo.New(db, "comment", nil)
	noop := func(context.Context, app.Tx) error { return nil }
	for _, id := range []string{"old", "recent"} {
		if _, err := repo.ApplyEvent(ctx, id, noop); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "UPDATE processed_events SET processed_at = ? WHERE event_id = 'old'", time.Now().UTC().Add(-inbox.MinRetention-time.Hour)); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	p := &service.InboxPruner{Repo: repo, Retention: inbox.MinRetention, Every: time.Hour, Log: servicetest.Discard()}
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := db.NewSelect().Table("processed_events").Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if applied, _ := repo.ApplyEvent(ctx, "recent", noop); applied {
		t.Fatal("a recent event was forgotten")
	}
	if applied, _ := repo.ApplyEvent(ctx, "old", noop); !applied {
		t.Fatal("the old record was kept")
	}
}
