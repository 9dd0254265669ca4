package ferret_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/bugtracker/bugtracker/devstack/ferret"
)

// startFerret starts an embedded FerretDB on a free loopback port with a
// temporary SQLite directory and returns its URI, its SQLite directory and
// its stop function (also registered as a cleanup).
func startFerret(t *testing.T) (uri, dir string, stop func()) {
	t.Helper()

	dir = filepath.Join(t.TempDir(), "ferretdb")

	uri, stop, err := ferret.Start(t.Context(), ferret.Config{
		Addr:      "127.0.0.1:0",
		SQLiteDir: dir,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	t.Cleanup(stop)

	return uri, dir, stop
}

func TestStartSQLiteCRUDAndUniqueIndex(t *testing.T) {
	uri, dir, stop := startFerret(t)

	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "mongodb" || u.Port() == "0" || u.Port() == "" {
		t.Fatalf("URI %q is not a mongodb URI with a bound port (err %v)", uri, err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}

	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	coll := client.Database("devstack_test").Collection("users")

	if _, err := coll.InsertOne(ctx, bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Ada"}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}

	var got struct {
		Email string `bson:"email"`
		Name  string `bson:"name"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "email", Value: "ada@example.com"}}).Decode(&got); err != nil {
		t.Fatalf("FindOne: %v", err)
	}

	if got.Name != "Ada" {
		t.Errorf("FindOne returned name %q, want %q", got.Name, "Ada")
	}

	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "email", Value: 1}},
		Options: options.Index().SetUnique(true),
	})
	if err != nil {
		t.Fatalf("CreateOne unique index: %v", err)
	}

	_, err = coll.InsertOne(ctx, bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Other"}})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second InsertOne with the same email: got %v, want a duplicate-key error", err)
	}

	if err := client.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read SQLite directory: %v", err)
	}

	var found bool
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "devstack_test") {
			found = true
		}
	}

	if !found {
		t.Errorf("no SQLite file for database devstack_test in %s", dir)
	}

	stop()
	stop() // a second call must be harmless

	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("FerretDB still accepts connections on %s after stop", u.Host)
	}
}

func TestPing(t *testing.T) {
	uri, _, _ := startFerret(t)

	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	if err := ferret.Ping(ctx, u.Host); err != nil {
		t.Errorf("Ping FerretDB: %v", err)
	}

	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer httpSrv.Close()

	// An HTTP server never completes the handshake, so only a short deadline ends
	// this exchange.
	shortCtx, shortCancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer shortCancel()

	if err := ferret.Ping(shortCtx, strings.TrimPrefix(httpSrv.URL, "http://")); err == nil {
		t.Error("Ping of an HTTP server succeeded, want an error")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	closedAddr := ln.Addr().String()
	ln.Close()

	// The driver retries server selection until the deadline: keep it short.
	closedCtx, closedCancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer closedCancel()

	if err := ferret.Ping(closedCtx, closedAddr); err == nil {
		t.Error("Ping of a closed port succeeded, want an error")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ferret.Config
	}{
		{"no address", ferret.Config{SQLiteDir: t.TempDir()}},
		{"no SQLite directory", ferret.Config{Addr: "127.0.0.1:0"}},
		{"unknown handler", ferret.Config{Addr: "127.0.0.1:0", Handler: "mysql"}},
		{"postgresql without URL", ferret.Config{Addr: "127.0.0.1:0", Handler: ferret.HandlerPostgreSQL}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stop, err := ferret.Start(t.Context(), tt.cfg)
			if err == nil {
				stop()
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	_, stop, err := ferret.Start(t.Context(), ferret.Config{Addr: ln.Addr().String(), SQLiteDir: t.TempDir()})
	if err == nil {
		stop()
		t.Fatal("Start on a busy port succeeded, want an error")
	}

	var opErr *net.OpError
	if !errors.As(err, &opErr) && !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a busy port: unexpected error %v", err)
	}
}

func TestSQLiteURL(t *testing.T) {
	if got, want := ferret.SQLiteURL("/tmp/a dir/x/"), "file:///tmp/a%20dir/x/"; got != want {
		t.Errorf("SQLiteURL = %q, want %q", got, want)
	}
}
