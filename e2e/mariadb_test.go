package e2e

import (
	"database/sql"
	"net/url"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/bugtracker/bugtracker/platform/testenv"
)

// mariaDB creates a service's database on MYSQL_URL's server, dropped when
// the test ends, and returns its mysql:// URL.
func mariaDB(t testing.TB, name string) string {
	t.Helper()
	dsn := testenv.Require(t, "MYSQL_URL")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("MYSQL_URL: %v", err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Logf("drop database: %v", err)
		}
		_ = admin.Close()
	})
	u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + name, User: url.User(cfg.User)}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	}
	return u.String()
}
