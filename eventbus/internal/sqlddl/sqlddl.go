// Package sqlddl runs dialect-specific DDL. The outbox and inbox write
// their DDL by hand rather than through bun's CreateTable so that column
// types (identity columns, MEDIUMTEXT, microsecond timestamps) and indexes
// are explicit for each supported database.
package sqlddl

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Statements holds the DDL of one table per dialect.
type Statements map[dialect.Name][]string

// Exec runs the statements for db's dialect in order.
func Exec(ctx context.Context, db bun.IDB, s Statements) error {
	name := db.Dialect().Name()
	stmts, ok := s[name]
	if !ok {
		return fmt.Errorf("unsupported dialect %s", name)
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
