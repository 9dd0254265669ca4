// Package e2e holds the end-to-end tests: they build the real service binaries, run
// them against the real PostgreSQL, MariaDB, Redis and MongoDB-wire servers named by
// the environment (POSTGRES_URL, MYSQL_URL, REDIS_URL, MONGO_URI), and talk to them
// only through the gateway, as a client would. Every run uses its own database, Redis key prefix and
// ports, so runs can overlap on one machine.
package e2e
