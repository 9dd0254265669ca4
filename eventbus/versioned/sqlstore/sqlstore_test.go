package sqlstore_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bugtracker/bugtracker/eventbus/internal/dbtest"
	"github.com/bugtracker/bugtracker/eventbus/versioned/sqlstore"
)

func migrate(t *testing.T, db *bun.DB) {
	t.Helper()
	for range 2 {
		if err := sqlstore.CreateTable(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(context.Background(), "CREATE TABLE copies (id VARCHAR(100) PRIMARY KEY, v BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
}

// apply is a consumer: in one transaction it advances the version and, if
// the event won, writes the copy.
func apply(ctx context.Context, db *bun.DB, s *sqlstore.Store, id string, v int64, deletes bool) (bool, error) {
	var won bool
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if won, err = s.Advance(ctx, tx, id, v, deletes); err != nil || !won {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM copies WHERE id = ?", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO copies (id, v) VALUES (?, ?)", id, v)
		return err
	})
	return won, err
}

// TestAdvanceOutOfOrderAndTombstones: versions arriving out of order, and
// duplicates, leave the newest; after a deletion neither an older nor a
// newer event is applied; other consumers keep their own versions.
func TestAdvanceOutOfOrderAndTombstones(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		migrate(t, db)
		s := sqlstore.New(db, "g")
		for _, step := range []struct {
			v       int64
			deletes bool
			want    bool
		}{{2, false, true}, {1, false, false}, {2, false, false}, {4, false, true}, {3, false, false}, {5, true, true}, {6, false, false}, {5, true, false}} {
			won, err := s.Advance(ctx, db, "a", step.v, step.deletes)
			if err != nil || won != step.want {
				t.Fatalf("Advance(v%d, deletes=%v) = %v, %v; want %v", step.v, step.deletes, won, err, step.want)
			}
		}
		if won, err := sqlstore.New(db, "other").Advance(ctx, db, "a", 1, false); err != nil || !won {
			t.Fatalf("another consumer's first version: %v, %v", won, err)
		}
	})
}

// TestAdvanceConcurrentVersions: versions 1..n of one aggregate applied
// concurrently in random order leave the copy at n, and exactly the
// applications that raised the version won (the check-then-act of the
// version comparison, under concurrency).
func TestAdvanceConcurrentVersions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		migrate(t, db)
		s := sqlstore.New(db, "g")
		const n = 40
		order := rand.Perm(n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, i := range order {
			wg.Go(func() {
				for {
					_, err := apply(ctx, db, s, "agg", int64(i+1), false)
					if err != nil && (strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "busy")) {
						continue // SQLite's single writer; the transaction is retried
					}
					errs <- err
					return
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var v int64
		if err := db.NewRaw("SELECT v FROM copies WHERE id = ?", "agg").Scan(ctx, &v); err != nil {
			t.Fatal(err)
		}
		if v != n {
			t.Fatalf("the copy holds version %d, want %d", v, n)
		}
	})
}
