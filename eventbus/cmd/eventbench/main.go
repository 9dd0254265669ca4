// Command eventbench measures the event bus on a real Redis (make
// bench-events): raw XADD with redis-benchmark as the baseline, events
// committed through the outbox until a consumer applied them, the consumer
// against a naive read-one-ack-one loop, and the latency from commit to
// applied at a steady 500 events/s. Every figure is measured in the same
// run as its baseline, because this machine is shared and noisy. It uses
// keys under a random prefix and a database of its own, and removes both.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/outbox"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eventbench:", err)
		os.Exit(1)
	}
}

func run() error {
	events := flag.Int("events", 50000, "events committed through the outbox for the throughput figure")
	consumerEvents := flag.Int("consumer-events", 20000, "entries consumed by the subscriber and by the naive loop")
	latencySeconds := flag.Int("latency-seconds", 6, "duration of the 500 events/s latency run")
	dbKind := flag.String("db", "auto", "outbox database: postgres (POSTGRES_URL), sqlite, or auto (postgres when POSTGRES_URL is set)")
	producers := flag.Int("producers", 4, "goroutines committing outbox transactions concurrently, as request handlers do")
	relays := flag.Int("relays", 2, "relay replicas publishing the outbox")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))

	redisURL := cmpOr(os.Getenv("REDIS_URL"), "redis://127.0.0.1:6379/0")
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	client := redis.NewClient(opts)
	defer func() { _ = client.Close() }()
	prefix := "bench-" + randHex() + ":"
	defer cleanup(client, prefix)

	plain, err := redisBenchmark(opts, prefix+"xadd", false)
	if err != nil {
		return err
	}
	piped, err := redisBenchmark(opts, prefix+"xadd", true)
	if err != nil {
		return err
	}
	fmt.Printf("xadd_plain_per_s: %.0f\n", plain)
	fmt.Printf("xadd_pipelined16_per_s: %.0f\n", piped)

	db, kind, closeDB, err := openDB(ctx, *dbKind)
	if err != nil {
		return err
	}
	defer closeDB()
	fmt.Printf("outbox_db: %s\n", kind)
	thr, committed, err := relayThroughput(ctx, db, client, prefix+"t:", *events, *producers, *relays)
	if err != nil {
		return err
	}
	fmt.Printf("relay_consumer_per_s: %.0f (producers %d, relays %d)\n", thr, *producers, *relays)
	fmt.Printf("producers_committed_per_s: %.0f (same run: how fast the producers' commits went beside the relays; the end-to-end figure cannot exceed it)\n", committed)
	fmt.Printf("ratio_vs_xadd_plain: %.2f\n", thr/plain)
	fmt.Printf("ratio_vs_xadd_p16: %.2f\n", thr/piped)

	sub, naive, err := consumerVsNaive(ctx, client, prefix+"c:", *consumerEvents)
	if err != nil {
		return err
	}
	fmt.Printf("consumer_per_s: %.0f\n", sub)
	fmt.Printf("naive_loop_per_s: %.0f\n", naive)
	fmt.Printf("ratio_vs_naive: %.2f\n", sub/naive)

	p50, p99, n, err := latency(ctx, db, client, prefix+"l:", *latencySeconds)
	if err != nil {
		return err
	}
	fmt.Printf("latency_events: %d\n", n)
	fmt.Printf("latency_p50_ms: %.2f\n", ms(p50))
	fmt.Printf("latency_p99_ms: %.2f\n", ms(p99))
	fmt.Printf("goals: ratio_vs_xadd_plain>=0.3 %v, ratio_vs_naive>=3 %v, p99<=20ms %v\n",
		thr/plain >= 0.3, sub/naive >= 3, p99 <= 20*time.Millisecond)
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func randHex() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cleanup deletes every key under prefix.
func cleanup(c *redis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		_ = c.Del(ctx, iter.Val()).Err()
	}
}

var rpsRe = regexp.MustCompile(`([0-9.]+) requests per second`)

// redisBenchmark runs redis-benchmark -n 200000 XADD key * f v, with -P 16
// when pipelined, and returns its requests per second.
func redisBenchmark(opts *redis.Options, key string, pipelined bool) (float64, error) {
	host, port, _ := strings.Cut(opts.Addr, ":")
	args := []string{"-h", host, "-p", port, "-n", "200000", "-q"}
	if opts.DB != 0 {
		args = append(args, "--dbnum", strconv.Itoa(opts.DB))
	}
	if opts.Password != "" {
		args = append(args, "-a", opts.Password)
	}
	if pipelined {
		args = append(args, "-P", "16")
	}
	args = append(args, "XADD", key, "*", "f", "v")
	out, err := exec.CommandContext(context.Background(), "redis-benchmark", args...).CombinedOutput() //nolint:gosec // fixed binary; the arguments come from REDIS_URL and this program
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w: %s", err, out)
	}
	m := rpsRe.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("redis-benchmark printed no rate: %s", out)
	}
	return strconv.ParseFloat(string(m[len(m)-1][1]), 64)
}

// openDB opens a database of its own: a fresh PostgreSQL database on the
// server of POSTGRES_URL, or a SQLite file in a temporary directory.
func openDB(ctx context.Context, kind string) (*bun.DB, string, func(), error) {
	pg := os.Getenv("POSTGRES_URL")
	if kind == "postgres" || (kind == "auto" && pg != "") {
		if pg == "" {
			return nil, "", nil, errors.New("POSTGRES_URL is not set")
		}
		name := "bt_bench_" + randHex()
		admin, err := sql.Open("pgx", pg)
		if err != nil {
			return nil, "", nil, err
		}
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
			return nil, "", nil, err
		}
		u, err := url.Parse(pg)
		if err != nil {
			return nil, "", nil, err
		}
		u.Path = "/" + name
		sqldb, err := sql.Open("pgx", u.String())
		if err != nil {
			return nil, "", nil, err
		}
		// The services' pool (platform/database): database/sql keeps only
		// two idle connections by default, so the producers and relays
		// would open a new PostgreSQL backend for most transactions.
		sqldb.SetMaxOpenConns(20)
		sqldb.SetMaxIdleConns(10)
		db := bun.NewDB(sqldb, pgdialect.New())
		return db, "postgres", func() {
			_ = db.Close()
			_, _ = admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
			_ = admin.Close()
		}, nil
	}
	dir, err := os.MkdirTemp("", "eventbench")
	if err != nil {
		return nil, "", nil, err
	}
	sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+filepath.Join(dir, "o.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, "", nil, err
	}
	sqldb.SetMaxOpenConns(1)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	return db, "sqlite", func() { _ = db.Close(); _ = os.RemoveAll(dir) }, nil
}

// resetOutbox gives each run an empty outbox table.
func resetOutbox(ctx context.Context, db *bun.DB) error {
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS outbox"); err != nil {
		return err
	}
	return outbox.CreateTable(ctx, db)
}

func envelope(i int, at time.Time) (eventbus.Envelope, error) {
	return contracts.New(contracts.CardCreated{CardID: strconv.Itoa(i), Title: "benchmark card", AggregateVersion: 1}, strconv.Itoa(i), at)
}

// startPipeline runs a relay and a subscriber whose handler calls applied,
// and returns the relay and a stop function.
func startPipeline(ctx context.Context, db *bun.DB, client *redis.Client, prefix string, batch, replicas int, applied func(*eventbus.Message)) (*multiRelay, func(), error) {
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
	if err != nil {
		return nil, nil, err
	}
	relay := &multiRelay{}
	for range replicas {
		r, err := outbox.NewRelay(db, pub, outbox.RelayConfig{Producer: "bench", BatchSize: batch, CheckInterval: time.Hour})
		if err != nil {
			return nil, nil, err
		}
		relay.rs = append(relay.rs, r)
	}
	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "bench", Families: []string{contracts.FamilyCard}, BatchSize: 256, Block: 100 * time.Millisecond,
	})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var relayWG sync.WaitGroup
	for _, r := range relay.rs {
		relayWG.Go(func() { _ = r.Run(rctx) })
	}
	subDone := make(chan struct{})
	go func() {
		_ = sub.Run(ctx, func(_ context.Context, m *eventbus.Message) error { applied(m); return nil })
		close(subDone)
	}()
	return relay, func() {
		cancel()
		relayWG.Wait()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = sub.Shutdown(sctx)
		<-subDone
	}, nil
}

// multiRelay notifies every relay replica, as each service replica
// notifies its own relay after a commit.
type multiRelay struct{ rs []*outbox.Relay }

func (m *multiRelay) Notify() {
	for _, r := range m.rs {
		r.Notify()
	}
}

// relayThroughput commits n events in transactions of 100 from producers
// goroutines as fast as the database allows while the relays and a
// consumer run, and returns events per second from the first commit to
// the last event applied, and the producers' own rate (from the first
// commit to the last).
func relayThroughput(ctx context.Context, db *bun.DB, client *redis.Client, prefix string, n, producers, relays int) (float64, float64, error) {
	if err := resetOutbox(ctx, db); err != nil {
		return 0, 0, err
	}
	var applied atomic.Int64
	done := make(chan struct{})
	relay, stop, err := startPipeline(ctx, db, client, prefix, 500, relays, func(*eventbus.Message) {
		if applied.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	time.Sleep(200 * time.Millisecond) // groups created
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for range producers {
		wg.Go(func() {
			for {
				i := int(next.Add(100)) - 100
				if i >= n {
					return
				}
				envs := make([]eventbus.Envelope, 0, 100)
				for j := i; j < min(i+100, n); j++ {
					env, err := envelope(j, time.Now())
					if err != nil {
						errs <- err
						return
					}
					envs = append(envs, env)
				}
				if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return outbox.Add(ctx, tx, envs...) }); err != nil {
					errs <- err
					return
				}
				relay.Notify()
			}
		})
	}
	wg.Wait()
	committed := float64(n) / time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, 0, fmt.Errorf("only %d of %d events applied", applied.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), committed, nil
}

// consumerVsNaive fills a stream with n entries and consumes them once
// with the subscriber and once with a loop that reads one entry and acks
// it before the next, both with a no-op handler.
func consumerVsNaive(ctx context.Context, client *redis.Client, prefix string, n int) (float64, float64, error) {
	pub, err := redisstream.NewPublisher(client, redisstream.PublisherConfig{Prefix: prefix})
	if err != nil {
		return 0, 0, err
	}
	for i := 0; i < n; i += 500 {
		envs := make([]eventbus.Envelope, 0, 500)
		for j := i; j < min(i+500, n); j++ {
			env, err := envelope(j, time.Now())
			if err != nil {
				return 0, 0, err
			}
			envs = append(envs, env)
		}
		if _, err := pub.Publish(ctx, envs...); err != nil {
			return 0, 0, err
		}
	}
	key := eventbus.StreamKey(prefix, contracts.FamilyCard)

	sub, err := redisstream.NewSubscriber(client, redisstream.SubscriberConfig{
		Prefix: prefix, Group: "sub", Families: []string{contracts.FamilyCard}, BatchSize: 256, Block: 100 * time.Millisecond,
	})
	if err != nil {
		return 0, 0, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	go func() {
		_ = sub.Run(ctx, func(context.Context, *eventbus.Message) error {
			if got.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	}()
	<-done
	subRate := float64(n) / time.Since(start).Seconds()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = sub.Shutdown(sctx)
	cancel()

	if err := client.XGroupCreate(ctx, key, "naive", "0").Err(); err != nil {
		return 0, 0, err
	}
	start = time.Now()
	for i := 0; i < n; i++ {
		res, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "naive", Consumer: "n", Streams: []string{key, ">"}, Count: 1}).Result()
		if err != nil {
			return 0, 0, err
		}
		for _, m := range res[0].Messages {
			if err := client.XAck(ctx, key, "naive", m.ID).Err(); err != nil {
				return 0, 0, err
			}
		}
	}
	return subRate, float64(n) / time.Since(start).Seconds(), nil
}

// latency commits one event every 2 ms (500 events/s) for seconds and
// measures, for each, the time from just before its commit to its handler.
func latency(ctx context.Context, db *bun.DB, client *redis.Client, prefix string, seconds int) (p50, p99 time.Duration, n int, err error) {
	if err := resetOutbox(ctx, db); err != nil {
		return 0, 0, 0, err
	}
	total := 500 * seconds
	lat := make(chan time.Duration, total+100)
	relay, stop, err := startPipeline(ctx, db, client, prefix, 100, 1, func(m *eventbus.Message) {
		lat <- time.Since(m.Envelope.OccurredAt)
	})
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	time.Sleep(200 * time.Millisecond)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := range total {
		<-tick.C
		env, err := envelope(i, time.Now())
		if err != nil {
			return 0, 0, 0, err
		}
		if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return outbox.Add(ctx, tx, env) }); err != nil {
			return 0, 0, 0, err
		}
		relay.Notify()
	}
	var all []time.Duration
	deadline := time.After(30 * time.Second)
	for len(all) < total {
		select {
		case d := <-lat:
			all = append(all, d)
		case <-deadline:
			return 0, 0, 0, fmt.Errorf("only %d of %d events applied", len(all), total)
		}
	}
	slices.Sort(all)
	return all[len(all)/2], all[len(all)*99/100], len(all), nil
}
