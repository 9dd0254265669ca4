package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

const usage = `eventctl: inspect and repair what the event bus set aside.

Usage:
  eventctl dlq list    --group G [--count N] [--from ID]
  eventctl dlq show    --group G ID
  eventctl dlq redrive --group G (ID... | --all)
  eventctl dlq drop    --group G (ID... | --all)
  eventctl outbox list    [--limit N]
  eventctl outbox requeue (SEQ... | --all)

Dead letters are entries a consumer group gave up on (undecodable, or
failed MaxDeliveries times). "redrive" moves them to the group's redrive
stream, which that group's consumers read, so only that group handles them
again; "drop" deletes them.

Quarantined outbox rows are events a service's relay could not publish
(undecodable, or of a type its release does not know). "requeue" hands them
back to the relay, typically after deploying the release that knows them.

Connection (flags before or after the command words):
  --redis URL    Redis URL (default $REDIS_URL, else redis://127.0.0.1:6379/0)
  --prefix P     key prefix of the services (default $REDIS_PREFIX, else bugtracker:)
  --db DSN       outbox database: postgres://..., mysql://user@tcp(host:3306)/db,
                 or sqlite:PATH (default $EVENTCTL_DB)
`

// usageError marks errors in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// options are the flags of every command.
type options struct {
	redisURL, prefix, db, group, from string
	count, limit                      int
	all, help                         bool
	args                              []string
}

// parse reads flags wherever they appear, so "eventctl dlq list --group g"
// and "eventctl --group g dlq list" both work.
func parse(args []string) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("eventctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.redisURL, "redis", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "")
	fs.StringVar(&o.prefix, "prefix", envOr("REDIS_PREFIX", "bugtracker:"), "")
	fs.StringVar(&o.db, "db", os.Getenv("EVENTCTL_DB"), "")
	fs.StringVar(&o.group, "group", "", "")
	fs.StringVar(&o.from, "from", "-", "")
	fs.IntVar(&o.count, "count", 20, "")
	fs.IntVar(&o.limit, "limit", 50, "")
	fs.BoolVar(&o.all, "all", false, "")
	fs.BoolVar(&o.help, "help", false, "")
	fs.BoolVar(&o.help, "h", false, "")
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return o, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) > 0 {
			o.args = append(o.args, args[0])
			args = args[1:]
		}
	}
	if o.count < 1 || o.count > 1000 || o.limit < 1 || o.limit > 1000 {
		return o, usageError{"--count and --limit must be between 1 and 1000"}
	}
	return o, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func dispatch(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if o.help || len(o.args) == 0 || o.args[0] == "help" {
		_, err := io.WriteString(out, usage)
		return err
	}
	if len(o.args) < 2 {
		return usageError{"missing subcommand"}
	}
	cmd, rest := o.args[0]+" "+o.args[1], o.args[2:]
	switch cmd {
	case "dlq list", "dlq show", "dlq redrive", "dlq drop":
		return dlq(ctx, o, o.args[1], rest, out)
	case "outbox list", "outbox requeue":
		return outboxCmd(ctx, o, o.args[1], rest, out)
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func dlq(ctx context.Context, o options, sub string, ids []string, out io.Writer) error {
	if o.group == "" {
		return usageError{"--group is required"}
	}
	opts, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return usageError{"--redis: " + err.Error()}
	}
	client := redis.NewClient(opts)
	defer func() { _ = client.Close() }()
	switch sub {
	case "list":
		dls, err := redisstream.DeadLettersFrom(ctx, client, o.prefix, o.group, o.from, int64(o.count))
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "ID\tEVENT\tTYPE\tSTREAM\tDELIVERIES\tERROR")
		for _, d := range dls {
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Envelope.ID, d.Envelope.Type, d.Stream, d.Deliveries, oneLine(d.Error, 80))
		}
		return w.Flush()
	case "show":
		if len(ids) != 1 {
			return usageError{"dlq show takes one id"}
		}
		d, err := redisstream.DeadLetter(ctx, client, o.prefix, o.group, ids[0])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case "redrive", "drop":
		if o.all {
			ids, err = allDeadLetters(ctx, client, o)
			if err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return usageError{"dlq " + sub + " takes ids or --all"}
		}
		if sub == "redrive" {
			n, err := redisstream.Redrive(ctx, client, o.prefix, o.group, ids...)
			_, _ = fmt.Fprintf(out, "re-drove %d of %d dead letters into group %s\n", n, len(ids), o.group)
			return err
		}
		n, err := redisstream.DropDeadLetters(ctx, client, o.prefix, o.group, ids...)
		_, _ = fmt.Fprintf(out, "dropped %d dead letters of group %s\n", n, o.group)
		return err
	}
	return usageError{"unknown dlq subcommand " + sub}
}

// allDeadLetters lists every dead-letter id of the group, which the bound
// of the stream keeps small.
func allDeadLetters(ctx context.Context, client redis.UniversalClient, o options) ([]string, error) {
	var ids []string
	start := "-"
	for {
		dls, err := redisstream.DeadLettersFrom(ctx, client, o.prefix, o.group, start, 500)
		if err != nil {
			return nil, err
		}
		for _, d := range dls {
			ids = append(ids, d.ID)
		}
		if len(dls) < 500 {
			return ids, nil
		}
		start = "(" + dls[len(dls)-1].ID
	}
}

func outboxCmd(ctx context.Context, o options, sub string, args []string, out io.Writer) error {
	db, err := openDB(o.db)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	switch sub {
	case "list":
		rows, err := outbox.ListQuarantined(ctx, db, o.limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "SEQ\tEVENT\tTYPE\tCREATED\tQUARANTINED\tREASON")
		for _, r := range rows {
			_, _ = fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.EventID, r.Type,
				r.CreatedAt.UTC().Format(time.RFC3339), r.At.UTC().Format(time.RFC3339), oneLine(r.Reason, 80))
		}
		return w.Flush()
	case "requeue":
		if !o.all && len(args) == 0 {
			return usageError{"outbox requeue takes sequence numbers or --all"}
		}
		seqs := make([]int64, 0, len(args))
		for _, a := range args {
			s, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return usageError{fmt.Sprintf("%q is not a sequence number", a)}
			}
			seqs = append(seqs, s)
		}
		n, err := outbox.Requeue(ctx, db, seqs...)
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintf(out, "re-queued %d outbox rows\n", n)
		return nil
	}
	return usageError{"unknown outbox subcommand " + sub}
}

// openDB opens the outbox database named by dsn.
func openDB(dsn string) (*bun.DB, error) {
	switch {
	case dsn == "":
		return nil, usageError{"--db (or EVENTCTL_DB) is required for outbox commands"}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		sqldb, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, err
		}
		return bun.NewDB(sqldb, pgdialect.New()), nil
	case strings.HasPrefix(dsn, "mysql://"):
		d := strings.TrimPrefix(dsn, "mysql://")
		if !strings.Contains(d, "parseTime") {
			d += map[bool]string{true: "&", false: "?"}[strings.Contains(d, "?")] + "parseTime=true"
		}
		sqldb, err := sql.Open("mysql", d)
		if err != nil {
			return nil, err
		}
		return bun.NewDB(sqldb, mysqldialect.New()), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+strings.TrimPrefix(dsn, "sqlite:")+"?_pragma=busy_timeout(5000)")
		if err != nil {
			return nil, err
		}
		return bun.NewDB(sqldb, sqlitedialect.New()), nil
	}
	return nil, usageError{"--db must start with postgres://, mysql:// or sqlite:"}
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
