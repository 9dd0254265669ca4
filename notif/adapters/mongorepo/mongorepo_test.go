package mongorepo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
	"github.com/bugtracker/bugtracker/platform/testenv"
)

// recorder keeps the commands the driver sends to one database.
type recorder struct {
	mu   sync.Mutex
	db   string
	cmds []recorded
}

type recorded struct {
	name string
	cmd  bson.Raw
}

func (r *recorder) started(_ context.Context, e *event.CommandStartedEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.DatabaseName == r.db {
		r.cmds = append(r.cmds, recorded{e.CommandName, slices.Clone(e.Command)})
	}
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.cmds
	r.cmds = nil
	return out
}

// testDB returns a fresh database on MONGO_URI whose commands rec records.
func testDB(t *testing.T) (*mongo.Database, *recorder) {
	t.Helper()
	uri := testenv.Require(t, "MONGO_URI")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	rec := &recorder{db: "bt_test_" + hex.EncodeToString(b)}
	ctx := context.Background()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5*time.Second).SetMonitor(&event.CommandMonitor{Started: rec.started}))
	if err != nil {
		t.Fatal(err)
	}
	db := client.Database(rec.db)
	t.Cleanup(func() {
		_ = db.Drop(context.Background())
		_ = client.Disconnect(context.Background())
	})
	return db, rec
}

type indexKey struct {
	field string
	dir   int
}

type index struct {
	name string
	keys []indexKey
}

func listIndexes(t *testing.T, c *mongo.Collection) []index {
	t.Helper()
	cur, err := c.Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name string `bson:"name"`
		Key  bson.D `bson:"key"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	out := make([]index, len(specs))
	for i, s := range specs {
		out[i].name = s.Name
		for _, k := range s.Key {
			dir := 1
			if fmt.Sprint(k.Value) == "-1" {
				dir = -1
			}
			out[i].keys = append(out[i].keys, indexKey{k.Key, dir})
		}
	}
	return out
}

// servedBy returns the indexes that serve a query with the given equality fields
// and sort without scanning the collection or sorting in memory: the equality fields
// are the index's leading fields (in any order), and the sort continues the index,
// all in its direction or all reversed (MongoDB's equality-sort rule).
func servedBy(indexes []index, equal []string, sort []indexKey) []string {
	var out []string
	for _, ix := range indexes {
		if len(ix.keys) < len(equal)+len(sort) {
			continue
		}
		lead := make([]string, len(equal))
		for i := range equal {
			lead[i] = ix.keys[i].field
		}
		if !sameSet(lead, equal) {
			continue
		}
		forward, backward := true, true
		for i, s := range sort {
			k := ix.keys[len(equal)+i]
			forward = forward && k.field == s.field && k.dir == s.dir
			backward = backward && k.field == s.field && k.dir == -s.dir
		}
		if forward || backward {
			out = append(out, ix.name)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// shape extracts a recorded query's equality fields and sort.
func shape(t *testing.T, c recorded) (what string, equal []string, sort []indexKey) {
	t.Helper()
	var filter bson.Raw
	switch c.name {
	case "find":
		filter, _ = c.cmd.Lookup("filter").DocumentOK()
		if s, ok := c.cmd.Lookup("sort").DocumentOK(); ok {
			elems, _ := s.Elements()
			for _, e := range elems {
				sort = append(sort, indexKey{e.Key(), int(e.Value().AsInt64())})
			}
		}
	case "aggregate": // CountDocuments: [{$match: filter}, {$group: ...}]
		stages, _ := c.cmd.Lookup("pipeline").Array().Values()
		filter = stages[0].Document().Lookup("$match").Document()
	case "findAndModify":
		filter = c.cmd.Lookup("query").Document()
	case "update":
		updates, _ := c.cmd.Lookup("updates").Array().Values()
		filter = updates[0].Document().Lookup("q").Document()
	default:
		return "", nil, nil
	}
	elems, _ := filter.Elements()
	for _, e := range elems {
		if d, ok := e.Value().DocumentOK(); ok && strings.HasPrefix(d.Index(0).Key(), "$") {
			if e.Key() == "_id" && d.Index(0).Key() == "$in" { // the token change of several users
				equal = append(equal, e.Key())
				continue
			}
			t.Fatalf("%s filters %s with an operator; teach this test which index serves it", c.name, e.Key())
		}
		equal = append(equal, e.Key())
	}
	return fmt.Sprintf("%s %v sort %v", c.name, equal, sort), equal, sort
}

// TestQueriesUseIndexes records every query the repository sends for the list (all,
// unread, read), its counts (cached ones and a count), mark-read and read-all, and
// the token changes, and checks that an index serves
// each one without a collection scan or an in-memory sort. On MongoDB the server's
// own explain must agree (IXSCAN, no COLLSCAN, no SORT stage). FerretDB v1 runs every
// query but an _id lookup as a scan of its SQLite or PostgreSQL table, whatever the
// indexes (its explain shows SCAN or Seq Scan), so there the explain output is only
// logged and the indexes are checked against the recorded queries.
// indexedRepo returns a repository on a fresh database whose indexes are in
// place, and the recorder of the commands sent to it.
func indexedRepo(t *testing.T) (*Repo, *recorder) {
	t.Helper()
	db, rec := testDB(t)
	r := New(db)
	if err := r.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, rec
}

func TestQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	r, rec := indexedRepo(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var first string
	for i := range 30 {
		n, err := notification.New(fmt.Sprintf("n%02d", i), fmt.Sprintf("u%d", i%3), notification.CardCreated, "m", "a", notification.Refs{}, at.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddForEvent(ctx, fmt.Sprintf("e%d", i), []notification.Notification{n}); err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = n.ID()
		}
	}
	rec.take()

	yes, no := true, false
	for _, f := range []app.Filter{{UserID: "u0"}, {UserID: "u0", Unread: &yes}, {UserID: "u0", Unread: &no}} {
		if _, _, _, err := r.List(ctx, f, 0, 20); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.MarkRead(ctx, "u0", first); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkAllRead(ctx, "u0"); err != nil {
		t.Fatal(err)
	}

	indexes := listIndexes(t, r.notifs)
	if names := servedBy(indexes, []string{"eventId", "userId"}, nil); !slices.Contains(names, indexEventUser) {
		t.Fatalf("no index on (eventId, userId): %v", indexes)
	}
	// touch deletes a user's cached counts by userId.
	if names := servedBy(listIndexes(t, r.counts), []string{"userId"}, nil); !slices.Contains(names, indexCountsUser) {
		t.Fatalf("no index on notif_counts.userId: %v", listIndexes(t, r.counts))
	}
	seen := map[string]bool{}
	for _, c := range rec.take() {
		what, equal, sort := shape(t, c)
		if what == "" {
			continue
		}
		seen[c.name] = true
		names := servedBy(indexes, equal, sort)
		if slices.Contains(equal, "_id") {
			names = append(names, "_id_") // the primary key, which every server uses
		}
		if len(names) == 0 {
			t.Errorf("%s: no index serves it (indexes %v)", what, indexes)
			continue
		}
		t.Logf("%s: served by %v", what, names)
		if c.name == "find" || c.name == "aggregate" {
			explain(t, r.notifs.Database(), c)
		}
	}
	for _, name := range []string{"find", "aggregate", "findAndModify", "update"} {
		if !seen[name] {
			t.Errorf("no %s command recorded: the test no longer sees the repository's queries", name)
		}
	}
}

// explain asks the server how it runs a recorded command and, on MongoDB, fails
// on a collection scan or an in-memory sort.
func explain(t *testing.T, db *mongo.Database, c recorded) {
	t.Helper()
	var inner bson.D
	elems, _ := c.cmd.Elements()
	for _, e := range elems {
		switch e.Key() {
		case "$db", "lsid", "$clusterTime", "$readPreference", "txnNumber":
			continue
		}
		inner = append(inner, bson.E{Key: e.Key(), Value: e.Value()})
	}
	var out bson.M
	if err := db.RunCommand(context.Background(), bson.D{{Key: "explain", Value: inner}, {Key: "verbosity", Value: "queryPlanner"}}).Decode(&out); err != nil {
		t.Fatalf("explain %s: %v", c.name, err)
	}
	info, _ := out["serverInfo"].(bson.M)
	if _, ferret := info["ferretdbVersion"]; ferret {
		t.Logf("FerretDB plan of %s: %v (filter pushdown %v)", c.name, out["queryPlanner"], out["filterPushdown"])
		return
	}
	stages := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case bson.M:
			if s, ok := x["stage"].(string); ok {
				stages[s] = true
			}
			for k, child := range x {
				if k != "rejectedPlans" {
					walk(child)
				}
			}
		case bson.A:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(out)
	// An _id lookup (the cached counts) is IDHACK, or EXPRESS_IXSCAN from MongoDB 8.
	byIndex := stages["IXSCAN"] || stages["COUNT_SCAN"] || stages["IDHACK"] || stages["EXPRESS_IXSCAN"] || stages["EXPRESS_CLUSTERED_IXSCAN"]
	if stages["COLLSCAN"] || stages["SORT"] || !byIndex {
		t.Errorf("MongoDB runs %s without its index: stages %v", c.name, stages)
	}
}

func TestEnsureIndexesDropsObsoleteAndKeepsExisting(t *testing.T) {
	ctx := context.Background()
	db, _ := testDB(t)
	c := db.Collection("notif")
	old := mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "read", Value: 1}}, Options: options.Index().SetName("user_read")}
	if _, err := c.Indexes().CreateOne(ctx, old); err != nil {
		t.Fatal(err)
	}
	r := New(db)
	for range 2 {
		if err := r.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, ix := range listIndexes(t, c) {
		names = append(names, ix.name)
	}
	slices.Sort(names)
	if want := []string{"_id_", indexEventUser, indexUserNewest, indexUserUnreadNewest}; !slices.Equal(names, want) {
		t.Fatalf("indexes %v, want %v", names, want)
	}
}

func TestOnlyDuplicates(t *testing.T) {
	dup := mongo.WriteError{Code: 11000, Message: "E11000 duplicate key"}
	other := mongo.WriteError{Code: 2, Message: "bad value"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"all duplicates", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: dup}, {WriteError: dup}}}, true},
		{"a duplicate hiding another failure", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: dup}, {WriteError: other}}}, false},
		{"write concern failure", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: dup}}, WriteConcernError: &mongo.WriteConcernError{Code: 64}}, false},
		{"no write errors", mongo.BulkWriteException{}, false},
		{"wrapped", fmt.Errorf("x: %w", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: dup}}}), true},
		{"network", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		if got := onlyDuplicates(tt.err); got != tt.want {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}

// TestCountsCache checks that a list with no write since the last one reads its
// counts from notif_counts (no aggregation), that each kind of write makes the next
// list count again, and how a write whose token change was lost (a crash between the
// two) is repaired: by the client's retry, else by the restart (a new epoch).
func TestCountsCache(t *testing.T) {
	ctx := context.Background()
	r, rec := indexedRepo(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Notifications written before the counts cache existed (an older version): no
	// token and no counts document.
	for i := range 3 {
		n, err := notification.New(fmt.Sprintf("n%d", i), "u", notification.CardCreated, "m", "a", notification.Refs{}, at.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.notifs.InsertOne(ctx, toDoc(fmt.Sprintf("e%d", i), n)); err != nil {
			t.Fatal(err)
		}
	}
	counted := func() bool {
		for _, c := range rec.take() {
			if c.name == "aggregate" {
				return true
			}
		}
		return false
	}
	list := func(step string, wantUnread int, wantCount bool) {
		t.Helper()
		rec.take()
		_, total, unread, err := r.List(ctx, app.Filter{UserID: "u"}, 0, 20)
		if err != nil {
			t.Fatal(err)
		}
		if total != 3 || unread != wantUnread {
			t.Fatalf("%s: total %d unread %d, want 3 and %d", step, total, unread, wantUnread)
		}
		if c := counted(); c != wantCount {
			t.Fatalf("%s: counted %v, want %v", step, c, wantCount)
		}
	}
	list("old data, first list", 3, true)
	list("no write since", 3, false)
	if _, err := r.MarkRead(ctx, "u", "n0"); err != nil {
		t.Fatal(err)
	}
	list("after a mark", 2, true)
	list("no write since the mark", 2, false)

	// A crash after the write, before its token change: the cache still answers.
	crash := func(id string) {
		t.Helper()
		if _, err := r.notifs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "read", Value: true}}}}); err != nil {
			t.Fatal(err)
		}
	}
	crash("n1")
	list("a write without its token change", 2, false)
	if _, err := r.MarkRead(ctx, "u", "n1"); err != nil { // the client's retry
		t.Fatal(err)
	}
	list("after the retry", 1, true)

	crash("n2")
	list("a write without its token change, again", 1, false)
	if err := r.EnsureIndexes(ctx); err != nil { // the restart
		t.Fatal(err)
	}
	list("after a restart", 0, true)
	list("no write since the restart", 0, false)

	if err := r.AddForEvent(ctx, "e0", []notification.Notification{mustNew(t, "dup", "u", at)}); err != nil {
		t.Fatal(err)
	}
	list("after a redelivered event (all duplicates)", 0, true)
	if err := r.MarkAllRead(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	list("after read-all", 0, true)
}

func mustNew(t *testing.T, id, user string, at time.Time) notification.Notification {
	t.Helper()
	n, err := notification.New(id, user, notification.CardCreated, "m", "a", notification.Refs{}, at)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
