// Package redistest gives tests a Redis client, real or miniredis, and a
// key prefix of their own that is deleted when the test ends.
package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus/internal/testenv"
)

// Real connects to REDIS_URL (skipping or failing as testenv.Lookup does).
func Real(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(testenv.Lookup(t, "REDIS_URL"))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at REDIS_URL: %v", err)
	}
	return c
}

// Mini starts a miniredis server for the test and connects to it.
func Mini(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return m, c
}

// Prefix returns a random key prefix and deletes every key under it when
// the test ends, so tests can share one Redis server.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	prefix := testenv.RandomName("bt-test-") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return prefix
}

// Pending returns how many entries group has delivered but not
// acknowledged on the streams keys.
func Pending(t testing.TB, c redis.UniversalClient, group string, keys ...string) int64 {
	t.Helper()
	var n int64
	for _, key := range keys {
		p, err := c.XPending(context.Background(), key, group).Result()
		if err != nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
			t.Fatalf("XPENDING %s %s: %v", key, group, err)
		}
		if p != nil {
			n += p.Count
		}
	}
	return n
}

// Server is a redis-server process of the test's own, without persistence,
// so a test can kill it with SIGKILL and start it again empty on the same
// port, which is what a production Redis without persistence does when it
// crashes.
type Server struct {
	t    testing.TB
	Addr string
	cmd  *exec.Cmd
}

// StartServer starts redis-server on a free loopback port and stops it
// when the test ends. The binary must be installed (it is on the CI
// machine); without it the test fails in CI and skips elsewhere.
func StartServer(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed: %v", err)
		}
		t.Skip("redis-server is not installed")
	}
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := &Server{t: t, Addr: addr}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start starts the server (again) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.CommandContext(context.Background(), "redis-server", //nolint:gosec // fixed binary, arguments chosen by the test
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.t.TempDir())
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s does not answer", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, losing everything it held.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client returns a client of the server, closed when the test ends. Its
// short timeouts let code under test notice a killed server quickly.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, MaxRetries: -1,
	})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}
