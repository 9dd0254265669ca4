package launcher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/devstack/ferret"
	"github.com/bugtracker/bugtracker/devstack/launcher"
)

// fakeServices are the names under which the test binary is linked into a
// temporary bin directory; run under one of them it acts as that service.
var fakeServices = []string{"auth", "project", "comment", "notif", "gateway"}

// reportedVars are the variables a fake service prints, one per line.
var reportedVars = []string{
	"REDIS_URL", "NOTIF_MONGO_URI", "NOTIF_MONGO_DATABASE", "JWT_SECRET", "CURSOR_SECRET",
	"AUTH_DATABASE_URL", "GATEWAY_AUTH_URL", "GATEWAY_NOTIF_URL", "LOG_LEVEL",
	"COMMENT_DATABASE_URL", "GATEWAY_COMMENT_URL",
}

func TestMain(m *testing.M) {
	name := filepath.Base(os.Args[0])
	for _, s := range fakeServices {
		if name == s {
			os.Exit(runFakeService(name))
		}
	}

	os.Exit(m.Run())
}

// runFakeService serves /healthz on the service's address variable, prints
// its environment and exits on SIGTERM. FAKE_CRASH=<name> makes that service
// exit with status 1 shortly after start; FAKE_UNHEALTHY=<name> makes its
// /healthz answer 503.
func runFakeService(name string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)

	for _, v := range reportedVars {
		fmt.Printf("env %s=%s\n", v, os.Getenv(v))
	}

	if os.Getenv("FAKE_CRASH") == name {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprintln(os.Stderr, "fatal: simulated crash")

		return 1
	}

	ln, err := net.Listen("tcp", os.Getenv(launcher.AddrVar(name)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	status := http.StatusOK
	if os.Getenv("FAKE_UNHEALTHY") == name {
		status = http.StatusServiceUnavailable
	}

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(status)
			return
		}

		http.NotFound(w, r)
	})}

	go func() { _ = srv.Serve(ln) }()

	fmt.Printf(`{"level":"INFO","msg":"listening","addr":%q}`+"\n", ln.Addr().String())

	<-term
	_ = srv.Close()

	fmt.Println("stopped on SIGTERM")

	return 0
}

// buffer is an io.Writer safe for concurrent use.
type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	return ln.Addr().String()
}

// stackEnv links the test binary as the fake services into a bin directory
// and returns an environment for [launcher.Run] using a temporary data
// directory and free ports.
func stackEnv(t *testing.T, extra ...string) (environ []string, dataDir string) {
	t.Helper()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	tmp := t.TempDir()
	binDir := filepath.Join(tmp, "bin")

	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, s := range fakeServices {
		if err := os.Symlink(exe, filepath.Join(binDir, s)); err != nil {
			t.Fatal(err)
		}
	}

	dataDir = filepath.Join(tmp, "data")

	base := []string{"PATH=" + os.Getenv("PATH")}
	if os.Getenv("GORACE") == "" {
		// Under -race a child otherwise sleeps a second before exiting.
		base = append(base, "GORACE=atexit_sleep_ms=0")
	}
	for _, kv := range os.Environ() {
		// Keep the race detector's and the coverage tool's settings only.
		if strings.HasPrefix(kv, "GORACE=") || strings.HasPrefix(kv, "GOCOVERDIR=") {
			base = append(base, kv)
		}
	}

	environ = append(base,
		"DATA_DIR="+dataDir,
		"DEVSTACK_BIN="+binDir,
		"AUTH_HTTP_ADDR="+freeAddr(t),
		"PROJECT_HTTP_ADDR="+freeAddr(t),
		"COMMENT_HTTP_ADDR="+freeAddr(t),
		"NOTIF_HTTP_ADDR="+freeAddr(t),
		"GATEWAY_ADDR="+freeAddr(t),
	)

	return append(environ, extra...), dataDir
}

// quietLogger discards the launcher's own messages.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// reported extracts the value of a variable printed by a fake service.
func reported(t *testing.T, out, service, name string) string {
	t.Helper()

	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(service) + ` *\| env ` + regexp.QuoteMeta(name) + `=(.*)$`)

	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("service %s did not report %s; output:\n%s", service, name, out)
	}

	return m[1]
}

func TestRunStartsStackAndStopsOnCancel(t *testing.T) {
	environ, dataDir := stackEnv(t, "LOG_LEVEL=debug")
	env := launcher.ParseEnv(environ)
	out := &buffer{}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	runErr := make(chan error, 1)
	go func() {
		runErr <- launcher.Run(ctx, launcher.Options{Environ: environ, Stdout: out, Logger: quietLogger()})
	}()

	upLine := "bugtracker is up on http://" + env["GATEWAY_ADDR"] + "\n"

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), upLine) {
		select {
		case err := <-runErr:
			t.Fatalf("Run returned early: %v; output:\n%s", err, out.String())
		default:
		}

		if time.Now().After(deadline) {
			t.Fatalf("no %q line; output:\n%s", upLine, out.String())
		}

		time.Sleep(20 * time.Millisecond)
	}

	got := out.String()

	for _, s := range fakeServices {
		if !regexp.MustCompile(`(?m)^` + s + ` *\| \{"level":"INFO","msg":"listening"`).MatchString(got) {
			t.Errorf("no prefixed log line from %s; output:\n%s", s, got)
		}
	}

	absData, err := filepath.Abs(dataDir)
	if err != nil {
		t.Fatal(err)
	}

	jwtFile, err := os.ReadFile(filepath.Join(absData, "dev-jwt-secret"))
	if err != nil {
		t.Fatalf("JWT secret file: %v", err)
	}

	cursorFile, err := os.ReadFile(filepath.Join(absData, "dev-cursor-secret"))
	if err != nil {
		t.Fatalf("cursor secret file: %v", err)
	}

	checks := map[string]string{
		"JWT_SECRET":           strings.TrimSpace(string(jwtFile)),
		"CURSOR_SECRET":        strings.TrimSpace(string(cursorFile)),
		"AUTH_DATABASE_URL":    "sqlite://" + filepath.Join(absData, "auth.db"),
		"NOTIF_MONGO_DATABASE": "notif",
		"GATEWAY_AUTH_URL":     "http://" + env["AUTH_HTTP_ADDR"],
		"GATEWAY_NOTIF_URL":    "http://" + env["NOTIF_HTTP_ADDR"],
		"LOG_LEVEL":            "debug",
		"COMMENT_DATABASE_URL": "sqlite://" + filepath.Join(absData, "comment.db"),
		"GATEWAY_COMMENT_URL":  "http://" + env["COMMENT_HTTP_ADDR"],
	}

	for name, want := range checks {
		for _, s := range fakeServices {
			if v := reported(t, got, s, name); v != want {
				t.Errorf("%s saw %s=%q, want %q", s, name, v, want)
			}
		}
	}

	if len(checks["JWT_SECRET"]) != 64 || checks["JWT_SECRET"] == checks["CURSOR_SECRET"] {
		t.Errorf("secrets look wrong: JWT %q, cursor %q", checks["JWT_SECRET"], checks["CURSOR_SECRET"])
	}

	opCtx, opCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer opCancel()

	redisURL := reported(t, got, "auth", "REDIS_URL")

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("REDIS_URL %q: %v", redisURL, err)
	}

	rdb := redis.NewClient(opts)

	if err := rdb.Set(opCtx, "devstack:test", "ok", 0).Err(); err != nil {
		t.Errorf("embedded Redis at %s: SET: %v", redisURL, err)
	}

	if v, err := rdb.Get(opCtx, "devstack:test").Result(); err != nil || v != "ok" {
		t.Errorf("embedded Redis at %s: GET = %q, %v", redisURL, v, err)
	}

	if err := rdb.Close(); err != nil {
		t.Error(err)
	}

	mongoURI := reported(t, got, "notif", "NOTIF_MONGO_URI")

	u, err := url.Parse(mongoURI)
	if err != nil || u.Scheme != "mongodb" {
		t.Fatalf("NOTIF_MONGO_URI %q is not a mongodb URI", mongoURI)
	}

	if err := ferret.Ping(opCtx, u.Host); err != nil {
		t.Errorf("embedded FerretDB at %s: %v", mongoURI, err)
	}

	if _, err := os.Stat(filepath.Join(absData, "ferretdb")); err != nil {
		t.Errorf("FerretDB SQLite directory: %v", err)
	}

	cancel()

	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	got = out.String()
	for _, s := range fakeServices {
		if !regexp.MustCompile(`(?m)^` + s + ` *\| stopped on SIGTERM$`).MatchString(got) {
			t.Errorf("%s was not stopped with SIGTERM; output:\n%s", s, got)
		}
	}

	if conn, err := net.DialTimeout("tcp", opts.Addr, time.Second); err == nil {
		conn.Close()
		t.Error("embedded Redis still accepts connections after Run returned")
	}

	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close()
		t.Error("embedded FerretDB still accepts connections after Run returned")
	}

	// A second start reuses the stored secrets and keeps preset ones.
	environ2, _ := stackEnv(t, "DATA_DIR="+dataDir, "CURSOR_SECRET=preset", "REDIS_URL=redis://127.0.0.1:1/0",
		"NOTIF_MONGO_URI=mongodb://127.0.0.1:1/", "FAKE_CRASH=auth")
	out2 := &buffer{}

	err = launcher.Run(t.Context(), launcher.Options{Environ: environ2, Stdout: out2, Logger: quietLogger()})
	if err == nil {
		t.Fatal("Run with a crashing service returned nil")
	}

	got2 := out2.String()
	checks2 := map[string]string{
		"JWT_SECRET":      checks["JWT_SECRET"],
		"CURSOR_SECRET":   "preset",
		"REDIS_URL":       "redis://127.0.0.1:1/0",
		"NOTIF_MONGO_URI": "mongodb://127.0.0.1:1/",
	}

	for name, want := range checks2 {
		if v := reported(t, got2, "notif", name); v != want {
			t.Errorf("second run: notif saw %s=%q, want %q", name, v, want)
		}
	}
}

func TestRunReportsCrashedService(t *testing.T) {
	environ, _ := stackEnv(t, "FAKE_CRASH=notif")
	out := &buffer{}

	start := time.Now()
	err := launcher.Run(t.Context(), launcher.Options{Environ: environ, Stdout: out, Logger: quietLogger()})

	if err == nil {
		t.Fatalf("Run returned nil; output:\n%s", out.String())
	}

	if !strings.Contains(err.Error(), "notif") {
		t.Errorf("error %q does not name the crashed service", err)
	}

	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Run took %v to report the crash", d)
	}

	if !strings.Contains(out.String(), "notif   | fatal: simulated crash\n") {
		t.Errorf("output lacks the crashed service's last line:\n%s", out.String())
	}

	if strings.Contains(out.String(), "bugtracker is up") {
		t.Errorf("stack announced as up although a service crashed:\n%s", out.String())
	}
}

func TestRunFailsWhenServiceNeverHealthy(t *testing.T) {
	environ, _ := stackEnv(t, "FAKE_UNHEALTHY=gateway", "DEVSTACK_READY_TIMEOUT=1s")
	out := &buffer{}

	err := launcher.Run(t.Context(), launcher.Options{Environ: environ, Stdout: out, Logger: quietLogger()})
	if err == nil {
		t.Fatalf("Run returned nil; output:\n%s", out.String())
	}

	if !strings.Contains(err.Error(), "gateway") || !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not name the unhealthy service and its status", err)
	}

	if !strings.Contains(out.String(), "gateway | stopped on SIGTERM\n") {
		t.Errorf("services were not stopped after the health timeout:\n%s", out.String())
	}
}

func TestRunMissingBinary(t *testing.T) {
	environ, _ := stackEnv(t, "DEVSTACK_SERVICES=auth,unbuilt")

	err := launcher.Run(t.Context(), launcher.Options{Environ: environ, Stdout: io.Discard, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "unbuilt") {
		t.Fatalf("Run = %v, want an error naming the missing unbuilt binary", err)
	}

	var pathErr *os.PathError
	if !errors.As(err, &pathErr) {
		t.Errorf("error %v does not wrap the stat error", err)
	}
}
