package httpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/platform/problem"
)

var errDomainMissing = errors.New("card not found")

type input struct {
	Title string `json:"title"`
	Count int    `json:"count"`
}

func newTestApp(ready *error) *fiber.App {
	app := New(Config{
		Service: "test",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Checks:  map[string]Check{"database": func(context.Context) error { return *ready }},
		MapError: func(err error) *problem.Problem {
			if errors.Is(err, errDomainMissing) {
				return problem.NotFound("card not found")
			}
			return nil
		},
	})
	app.Post("/echo", func(c *fiber.Ctx) error {
		var in input
		if err := DecodeJSON(c, &in); err != nil {
			return err
		}
		return c.Status(201).JSON(in)
	})
	app.Get("/missing", func(*fiber.Ctx) error { return errDomainMissing })
	app.Get("/ip", func(c *fiber.Ctx) error { return c.SendString(ClientIP(c)) })
	app.Get("/boom", func(*fiber.Ctx) error { return errors.New("pq: password=hunter2 at 10.0.0.5") })
	app.Get("/panic", func(*fiber.Ctx) error { panic("secret internals") })
	return app
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, app *fiber.App, method, path, body string, hdr ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestErrorsAreProblemDetails(t *testing.T) {
	var ready error
	app := newTestApp(&ready)
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"malformed JSON", "POST", "/echo", `{"title":`, 400},
		{"syntax error", "POST", "/echo", `{"title" "x"}`, 400},
		{"unknown field", "POST", "/echo", `{"title":"x","ownerId":"me"}`, 400},
		{"trailing data", "POST", "/echo", `{"title":"x"} {}`, 400},
		{"empty body", "POST", "/echo", ``, 400},
		{"array body", "POST", "/echo", `[]`, 400},
		{"wrong type", "POST", "/echo", `{"count":"many"}`, 422},
		{"domain error mapped", "GET", "/missing", "", 404},
		{"unknown route", "GET", "/nope", "", 404},
		{"server fault", "GET", "/boom", "", 500},
		{"panic", "GET", "/panic", "", 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, app, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
				t.Fatalf("content type %q", ct)
			}
			if int(r.body["status"].(float64)) != tc.status || r.body["title"] == "" || r.body["type"] == "" {
				t.Fatalf("not a problem: %s", r.raw)
			}
			if strings.Contains(r.raw, "hunter2") || strings.Contains(r.raw, "secret internals") {
				t.Fatalf("internals leaked: %s", r.raw)
			}
		})
	}
	r := do(t, app, "POST", "/echo", `{"count":"many"}`)
	errs := r.body["errors"].([]any)
	if errs[0].(map[string]any)["field"] != "count" {
		t.Fatalf("field not named: %s", r.raw)
	}
	if r := do(t, app, "POST", "/echo", `{"title":"ok","count":2}`); r.status != 201 || r.body["title"] != "ok" {
		t.Fatalf("valid body refused: %d %s", r.status, r.raw)
	}
}

func TestRequestIDAndSecurityHeaders(t *testing.T) {
	var ready error
	app := newTestApp(&ready)
	r := do(t, app, "GET", "/healthz", "", "X-Request-Id", "abc-123")
	if r.header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id not echoed: %v", r.header)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("helmet headers missing: %v", r.header)
	}
	r = do(t, app, "GET", "/nope", "")
	if len(r.header.Get("X-Request-Id")) < 16 {
		t.Fatal("request id not generated on an error response")
	}
	r = do(t, app, "GET", "/healthz", "", "X-Request-Id", "evil\tinjected")
	if r.header.Get("X-Request-Id") == "evil\tinjected" {
		t.Fatal("unsafe request id echoed")
	}
}

func TestReadiness(t *testing.T) {
	var ready error
	app := newTestApp(&ready)
	if r := do(t, app, "GET", "/readyz", ""); r.status != 200 {
		t.Fatalf("ready: %d", r.status)
	}
	ready = errors.New("dial tcp 127.0.0.1:5432: refused")
	r := do(t, app, "GET", "/readyz", "")
	if r.status != 503 || strings.Contains(r.raw, "5432") || !strings.Contains(r.raw, "database") {
		t.Fatalf("not ready: %d %s", r.status, r.raw)
	}
}

func TestMetricsCountRoutes(t *testing.T) {
	var ready error
	app := newTestApp(&ready)
	do(t, app, "GET", "/missing", "")
	r := do(t, app, "GET", "/metrics", "")
	for _, want := range []string{
		`http_requests_total{method="GET",route="/missing",service="test",status="404"} 1`,
		"http_request_duration_seconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(r.raw, want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

// TestBodyLimitOverRealSocket declares a 2 MiB body to a listening server: fasthttp
// rejects it before reading the body or running a handler, and the error handler still
// writes a 413 problem. Only the headers are sent, so the server's early close cannot
// race with the client's write.
func TestBodyLimitOverRealSocket(t *testing.T) {
	var ready error
	app := newTestApp(&ready)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != problem.ContentType || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
}

// TestClientIPTrustsOnlyConfiguredProxies: X-Forwarded-For counts only when the
// connection comes from a trusted proxy; anyone else gets their socket address.
func TestClientIPTrustsOnlyConfiguredProxies(t *testing.T) {
	for _, tc := range []struct {
		trusted []string
		want    string
	}{
		{[]string{"127.0.0.1"}, "203.0.113.7"},
		{[]string{"10.0.0.0/8"}, "127.0.0.1"},
		{nil, "127.0.0.1"},
	} {
		app := New(Config{Service: "ip", TrustedProxies: tc.trusted})
		app.Get("/ip", func(c *fiber.Ctx) error { return c.SendString(ClientIP(c)) })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = app.Listener(ln) }()
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/ip", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = app.Shutdown()
		if string(body) != tc.want {
			t.Fatalf("trusted %v: client IP %q, want %q", tc.trusted, body, tc.want)
		}
	}
}
