package database

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// IsUniqueViolation reports whether err is a unique-constraint violation on any of the
// supported databases, so adapters can turn it into their domain's conflict error.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1062
	}
	// modernc's sqlite error type lives in an internal-ish package; its text is stable.
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
