package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for the test database
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/testenv"
)

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "bt_e2e_" + hex.EncodeToString(b)
}

// freeAddr returns a loopback address no one listens on, for a service the test
// starts. The port is drawn below the kernel's ephemeral range: a port the kernel
// handed out (127.0.0.1:0) could be taken by one of the many outgoing connections
// made before the service binds it, which made a service fail with "address already
// in use".
func freeAddr(t testing.TB) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+mrand.IntN(low-10000)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// buildAll compiles the service binaries once per test run.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "bt-e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, svc := range []string{"auth", "project", "comment", "notif", "gateway"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, svc), "./cmd/"+svc)
			cmd.Dir = filepath.Join("..", svc)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %w\n%s", svc, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// system is one running deployment: auth, project, comment, notif and gateway processes.
type system struct {
	gateway string
	// auth is auth's own base URL, for what the other services fetch from it
	// directly (its JWK Set).
	auth string
	// project is the project service's own base URL, for direct comparisons.
	project string
	// notif is notif's own base URL, for baselines beside the gateway.
	notif   string
	redis   *redis.Client
	prefix  string
	mailDir string
	// comment is the comment service's process, which a test may kill and
	// restart (restartComment) to force redeliveries.
	comment     *process
	commentEnv  []string
	bin         string
	common      []string
	serviceURLs map[string]string
}

// process is a running service binary whose output is kept for failure reports.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *bytes.Buffer
	mu     *sync.Mutex
	exited chan struct{}
	err    error
	// killed marks a process a test killed on purpose, so cleanup does not
	// report its exit status.
	killed bool
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func startProcess(t testing.TB, bin, name string, env []string) *process {
	t.Helper()
	p := &process{name: name, out: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, name))
	p.cmd.Env = append(os.Environ(), env...)
	w := lockedWriter{p.mu, p.out}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.err != nil && !p.killed {
				t.Errorf("%s exited with %v on SIGTERM", name, p.err)
			}
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop within 15s of SIGTERM", name)
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- %s output ---\n%s", name, p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

// waitReady polls url until it answers 200, failing at once if the process died.
func waitReady(t testing.TB, p *process, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v", p.name, p.err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func startSystem(t testing.TB) *system {
	t.Helper()
	pgURL := testenv.Require(t, "POSTGRES_URL")
	redisURL := testenv.Require(t, "REDIS_URL")
	mongoURI := testenv.Require(t, "MONGO_URI")
	bin := binaries(t)
	name := randomName()

	// A fresh PostgreSQL database for auth.
	admin, err := sql.Open("pgx", pgURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	authURL, _ := url.Parse(pgURL)
	authURL.Path = "/" + name

	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	prefix := name + ":"

	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database: %v", err)
		}
		_ = admin.Close()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
		_ = rdb.Close()
		if client, err := mongo.Connect(ctx, options.Client().ApplyURI(mongoURI)); err == nil {
			_ = client.Database(name).Drop(ctx)
			_ = client.Disconnect(ctx)
		}
	})

	projectDB, commentDB := mariaDB(t, name+"_p"), mariaDB(t, name+"_c")
	authAddr, notifAddr, gwAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	projectAddr, commentAddr := freeAddr(t), freeAddr(t)
	mailDir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "jwt-ed25519.pem")
	key, err := authn.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := authn.MarshalPrivateKeyPEM(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{
		// Auth signs with the key; notif fetches its public half from auth's JWK Set.
		"AUTH_JWT_PRIVATE_KEY_FILE=" + keyFile,
		"JWT_JWKS_URL=http://" + authAddr + "/api/v1/auth/jwks.json",
		// Every e2e client comes from 127.0.0.1, and one test registers 20 accounts
		// at once: a roomier register limit and hash queue than production's.
		"AUTH_THROTTLE_REGISTER_MAX=100",
		"AUTH_HASH_QUEUE_WAIT=20s",
		"REDIS_URL=" + redisURL,
		"REDIS_PREFIX=" + prefix,
		"LOG_LEVEL=debug",
		"CURSOR_SECRET=e2e-cursor-" + name + "-0123456789abcdef",
	}
	auth := startProcess(t, bin, "auth", append(common, "AUTH_HTTP_ADDR="+authAddr, "AUTH_DATABASE_URL="+authURL.String(), "AUTH_MAIL_DIR="+mailDir))
	project := startProcess(t, bin, "project", append(common, "PROJECT_HTTP_ADDR="+projectAddr, "PROJECT_DATABASE_URL="+projectDB))
	notif := startProcess(t, bin, "notif", append(common, "NOTIF_HTTP_ADDR="+notifAddr, "NOTIF_MONGO_URI="+mongoURI, "NOTIF_MONGO_DATABASE="+name))
	commentEnv := append(slices.Clone(common), "COMMENT_HTTP_ADDR="+commentAddr, "COMMENT_DATABASE_URL="+commentDB,
		"COMMENT_CONSUMER_NAME=comment-e2e", "EVENTBUS_CLAIM_MIN_IDLE=1s")
	comment := startProcess(t, bin, "comment", commentEnv)
	gw := startProcess(t, bin, "gateway", append(common, "GATEWAY_ADDR="+gwAddr, "GATEWAY_ADMIN_ADDR=127.0.0.1:0",
		"GATEWAY_AUTH_URL=http://"+authAddr, "GATEWAY_NOTIF_URL=http://"+notifAddr,
		"GATEWAY_PROJECT_URL=http://"+projectAddr, "GATEWAY_COMMENT_URL=http://"+commentAddr))
	waitReady(t, auth, "http://"+authAddr+"/readyz")
	waitReady(t, notif, "http://"+notifAddr+"/readyz")
	waitReady(t, project, "http://"+projectAddr+"/readyz")
	waitReady(t, comment, "http://"+commentAddr+"/readyz")
	waitReady(t, gw, "http://"+gwAddr+"/healthz")
	return &system{
		gateway: "http://" + gwAddr, auth: "http://" + authAddr, project: "http://" + projectAddr,
		notif: "http://" + notifAddr, redis: rdb, prefix: prefix, mailDir: mailDir,
		comment: comment, commentEnv: commentEnv, bin: bin, common: common,
		serviceURLs: map[string]string{
			"auth": "http://" + authAddr, "notif": "http://" + notifAddr,
			"project": "http://" + projectAddr, "comment": "http://" + commentAddr,
		},
	}
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (s *system) call(t testing.TB, method, path, token, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.gateway+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// TestRegistrationNotificationThroughGateway is the walking skeleton: register, log in
// and see the registration notification, all through the gateway, within one second.
func TestRegistrationNotificationThroughGateway(t *testing.T) {
	s := startSystem(t)

	r := s.call(t, "POST", "/api/v1/auth/register", "", `{"name":"Ann","email":"ann@example.com","password":"correct horse battery"}`)
	registered := time.Now()
	if r.status != 201 || r.header.Get("Location") == "" || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("register: %d %s %v", r.status, r.raw, r.header)
	}
	userID := r.body["id"].(string)

	r = s.call(t, "POST", "/api/v1/auth/login", "", `{"email":"ANN@example.com","password":"correct horse battery"}`)
	if r.status != 200 || r.body["tokenType"] != "Bearer" {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	token := r.body["accessToken"].(string)

	var list reply
	for {
		list = s.call(t, "GET", "/api/v1/notifications", token, "")
		if list.status != 200 {
			t.Fatalf("list: %d %s", list.status, list.raw)
		}
		if len(list.body["data"].([]any)) > 0 {
			break
		}
		if time.Since(registered) > time.Second {
			t.Fatalf("no registration notification within 1s of the 201: %s", list.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("registration notification visible %v after the 201", time.Since(registered).Round(time.Millisecond))
	n := list.body["data"].([]any)[0].(map[string]any)
	if n["type"] != "registration" || n["userId"] != userID || n["actorId"] != userID || n["read"] != false {
		t.Fatalf("notification %v", n)
	}
	if meta := list.body["meta"].(map[string]any); meta["total"].(float64) != 1 || meta["unread"].(float64) != 1 {
		t.Fatalf("meta %v", meta)
	}

	// Problems pass through the gateway unchanged.
	dup := s.call(t, "POST", "/api/v1/auth/register", "", `{"name":"Ann","email":"Ann@Example.com","password":"correct horse battery"}`)
	if dup.status != 409 || dup.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("duplicate: %d %s", dup.status, dup.raw)
	}
	if r := s.call(t, "GET", "/api/v1/notifications", "", ""); r.status != 401 {
		t.Fatalf("no token through gateway: %d", r.status)
	}
	// A second user does not see the first one's notification.
	s.call(t, "POST", "/api/v1/auth/register", "", `{"name":"Bob","email":"bob@example.com","password":"correct horse battery"}`)
	bob := s.call(t, "POST", "/api/v1/auth/login", "", `{"email":"bob@example.com","password":"correct horse battery"}`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := s.call(t, "GET", "/api/v1/notifications", bob.body["accessToken"].(string), "")
		data := r.body["data"].([]any)
		if len(data) == 1 {
			if data[0].(map[string]any)["userId"] != bob.body["user"].(map[string]any)["id"] {
				t.Fatalf("bob sees %v", data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's list: %s", r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Exactly once: Ann still has one notification.
	if r := s.call(t, "GET", "/api/v1/notifications", token, ""); r.body["meta"].(map[string]any)["total"].(float64) != 1 {
		t.Fatalf("ann's list after more traffic: %s", r.raw)
	}
}
