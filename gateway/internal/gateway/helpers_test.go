package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	assets "github.com/bugtracker/bugtracker/gateway"
	"github.com/bugtracker/bugtracker/gateway/internal/gateway"
)

// seenRequest is what a fake service received.
type seenRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// fakeService stands in for one backend service on a random 127.0.0.1 port. By
// default it answers 200 {"service": name}; tests swap the handler.
type fakeService struct {
	name string
	srv  *httptest.Server

	mu      sync.Mutex
	seen    []seenRequest
	handler http.HandlerFunc
}

func newFakeService(t testing.TB, name string) *fakeService {
	t.Helper()
	f := &fakeService{name: name}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	if r.URL.Path != "/healthz" {
		f.seen = append(f.seen, seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	}
	h := f.handler
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"service":"`+f.name+`"}`)
}

// handle replaces the response logic; the request body has already been read.
func (f *fakeService) handle(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

// requests returns what the service has received (health probes excluded).
func (f *fakeService) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// last returns the last request received, failing the test if there is none.
func (f *fakeService) last(t *testing.T) seenRequest {
	t.Helper()
	reqs := f.requests()
	if len(reqs) == 0 {
		t.Fatalf("service %s received no request", f.name)
	}
	return reqs[len(reqs)-1]
}

// harness is a gateway served on a random 127.0.0.1 port in front of four fakes.
type harness struct {
	url      string
	adminURL string
	client   *http.Client
	gw       *gateway.Gateway
	services map[string]*fakeService
	logs     *syncBuffer
}

type harnessOption func(env map[string]string)

// withEnv sets an environment variable for the gateway under test.
func withEnv(key, value string) harnessOption {
	return func(env map[string]string) { env[key] = value }
}

// withTimeout loads a copy of krakend.json whose endpoint timeouts are d, through
// GATEWAY_CONFIG, the way an operator would.
func withTimeout(t testing.TB, d time.Duration) harnessOption {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(assets.KrakendConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["timeout"] = d.String()
	for _, e := range cfg["endpoints"].([]any) {
		e.(map[string]any)["timeout"] = d.String()
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "krakend-test.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return withEnv("GATEWAY_CONFIG", path)
}

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{services: map[string]*fakeService{}, logs: &syncBuffer{}}
	env := map[string]string{}
	for _, name := range []string{"auth", "project", "comment", "notif"} {
		f := newFakeService(t, name)
		h.services[name] = f
		env[envName(name)] = f.srv.URL
	}
	for _, o := range opts {
		o(env)
	}
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	s, err := gateway.LoadSettings(environ)
	if err != nil {
		t.Fatal(err)
	}
	data, name, err := gateway.ConfigSource(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.LoadConfig(data, name, s)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw, err := gateway.New(context.Background(), gateway.Options{Settings: s, Config: cfg, Logger: logger, AccessLog: h.logs})
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	public, admin := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, public, admin) }()
	h.client = &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.url = "http://" + public.Addr().String()
	h.adminURL = "http://" + admin.Addr().String()
	return h
}

// listen opens a listener on a random 127.0.0.1 port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func envName(service string) string {
	return map[string]string{
		"auth": "GATEWAY_AUTH_URL", "project": "GATEWAY_PROJECT_URL",
		"comment": "GATEWAY_COMMENT_URL", "notif": "GATEWAY_NOTIF_URL",
	}[service]
}

// response is a fully read HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request through the gateway; header is a flat list of name, value pairs.
func (h *harness) do(t testing.TB, method, path string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// problemBody is an RFC 9457 body as the tests read it.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// wantProblem checks that r is a problem+json response with the status.
func wantProblem(t *testing.T, r response, status int) problemBody {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.Body, err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem: %+v", p)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Fatal("problem response has no X-Request-Id")
	}
	return p
}

// deadURL returns the URL of a 127.0.0.1 port nothing listens on.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
