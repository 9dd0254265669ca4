package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	assets "github.com/bugtracker/bugtracker/gateway"
	"github.com/bugtracker/bugtracker/gateway/internal/gateway"
)

func TestHealthz(t *testing.T) {
	h := newHarness(t, withEnv("GATEWAY_AUTH_URL", deadURL(t)))

	r := h.do(t, http.MethodGet, "/healthz", nil)

	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
}

func TestReadyzWhenEveryServiceIsHealthy(t *testing.T) {
	h := newHarness(t)

	r := h.do(t, http.MethodGet, "/readyz", nil)

	if r.Status != http.StatusOK {
		t.Fatalf("status = %d; body %s", r.Status, r.Body)
	}
	var body struct {
		Status   string            `json:"status"`
		Services map[string]string `json:"services"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "ready" || len(body.Services) != 4 {
		t.Errorf("body = %s", r.Body)
	}
}

func TestReadyzNamesTheServicesNotReady(t *testing.T) {
	h := newHarness(t, withEnv("GATEWAY_NOTIF_URL", deadURL(t)))
	h.services["comment"].handle(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	h.services["auth"].handle(func(w http.ResponseWriter, r *http.Request) {
		// Slower than the one-second budget.
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})

	start := time.Now()
	p := wantProblem(t, h.do(t, http.MethodGet, "/readyz", nil), http.StatusServiceUnavailable)

	if p.Detail != "not ready: auth, comment, notif" {
		t.Errorf("detail = %q", p.Detail)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("readiness took %v; want about 1s at most", elapsed)
	}
}

func TestMetricsCountRequestsByRouteTemplateAndStatus(t *testing.T) {
	h := newHarness(t)
	h.do(t, http.MethodGet, "/api/v1/cards/c1", nil)
	h.do(t, http.MethodGet, "/api/v1/cards/c2", nil)
	h.do(t, http.MethodGet, "/no/such/route", nil)

	r := getURL(t, h.adminURL+"/metrics")

	if r.Status != http.StatusOK {
		t.Fatalf("status = %d", r.Status)
	}
	text := string(r.Body)
	for _, want := range []string{
		`http_requests_total{method="GET",route="/api/v1/cards/{id}",service="gateway",status="200"} 2`,
		`http_requests_total{method="GET",route="unmatched",service="gateway",status="404"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="/api/v1/cards/{id}",service="gateway",status="200",le="+Inf"} 2`,
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)

	r := h.do(t, http.MethodGet, "/api/v1/openapi.json", nil)

	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("served document is not JSON: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi = %q", v)
	}
}

// serve runs the harness's gateway on a free port until cancel; served
// receives what Serve returned.
func serve(t *testing.T, h *harness) (net.Listener, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.gw.Serve(ctx, ln, nil) }()
	return ln, cancel, served
}

func TestServeFinishesInFlightRequestsOnShutdown(t *testing.T) {
	h := newHarness(t)
	started := make(chan struct{})
	h.services["project"].handle(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
	})
	ln, cancel, served := serve(t, h)

	got := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/api/v1/projects", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Error(err)
			got <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-started
	cancel()

	if status := <-got; status != http.StatusCreated {
		t.Errorf("in-flight request got %d, want 201", status)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

// TestShutdownClosesConnectionsThatNeverSentAByte: a connection that a client
// opened but has not used (an HTTP client that dialled ahead of need, or gave up
// before sending) holds no request, so it must not hold up the shutdown. fasthttp
// leaves such a connection in StateNew, which its Shutdown does not close, until
// the 30 s read timeout: the gateway then outlived an orchestrator's grace
// period (e2e's 15 s). Like net/http, the gateway closes it once it is 5 s old.
func TestShutdownClosesConnectionsThatNeverSentAByte(t *testing.T) {
	h := newHarness(t)
	ln, cancel, served := serve(t, h)

	// A used keep-alive connection, idle now, and a connection that sends nothing.
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	time.Sleep(100 * time.Millisecond) // accepted
	cancel()

	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return within 15 s: the silent connection held up the shutdown")
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("silent connection: read %d bytes, err %v; want it closed by the gateway", n, err)
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	auth := newFakeService(t, "auth")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, []string{"GATEWAY_ADDR=" + addr, "GATEWAY_ADMIN_ADDR=127.0.0.1:0", "GATEWAY_AUTH_URL=" + auth.srv.URL}, logs)
	}()

	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/api/v1/auth/me"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("gateway never answered: %v\n%s", err, logs.String())
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"listening"`) {
		t.Errorf("no startup line in %s", logs.String())
	}
}

func TestRunRejectsBadEnvironment(t *testing.T) {
	err := gateway.Run(context.Background(), []string{"GATEWAY_PROJECT_URL=::nope"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GATEWAY_PROJECT_URL") {
		t.Fatalf("Run = %v, want an error naming GATEWAY_PROJECT_URL", err)
	}
}

// getURL fetches a URL with the default client and reads the whole answer.
func getURL(t *testing.T, url string) response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func TestRunFlushesBufferedLogsOnShutdown(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	_ = ln.Close()
	auth := newFakeService(t, "auth")
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, []string{"GATEWAY_ADDR=" + addr, "GATEWAY_ADMIN_ADDR=127.0.0.1:0", "GATEWAY_AUTH_URL=" + auth.srv.URL}, logs)
	}()
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/api/v1/auth/me?last=1"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"path":"/api/v1/auth/me"`) || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("access log or stop line lost at shutdown:\n%s", logs.String())
	}
}

func TestClientDisconnectCancelsTheServiceCall(t *testing.T) {
	h := newHarness(t)
	started := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	h.services["auth"].handle(func(_ http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(8 * time.Second):
		}
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /api/v1/auth/me HTTP/1.1\r\nHost: gw\r\nX-Request-Id: gone-client\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	hungUp := time.Now()
	_ = conn.Close()

	select {
	case <-cancelled:
		if d := time.Since(hungUp); d > 2*time.Second {
			t.Errorf("service call cancelled %v after the hang-up", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the service call was not cancelled after the client hung up (endpoint timeout is 10s)")
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(h.logs.String(), `"request_id":"gone-client"`) {
			break
		}
	}
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, `"request_id":"gone-client"`) && strings.Contains(line, `"msg":"request"`) {
			if !strings.Contains(line, `"status":499`) {
				t.Errorf("access log line = %s, want status 499", line)
			}
			return
		}
	}
	t.Errorf("no access log line for the abandoned request:\n%s", h.logs.String())
}

func TestSlowCallWithClientStillThereIsNotCancelled(t *testing.T) {
	h := newHarness(t)
	h.services["auth"].handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(400 * time.Millisecond): // Past the watch delay.
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"slow":true}`)
	})
	for i := 0; i < 3; i++ { // Same keep-alive connection: watching must not break it.
		r := h.do(t, http.MethodGet, "/api/v1/auth/me", nil)
		if r.Status != http.StatusOK || string(r.Body) != `{"slow":true}` {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
}

func TestClientConnectionsAreBounded(t *testing.T) {
	h := newHarness(t)
	s, err := gateway.LoadSettings([]string{"GATEWAY_AUTH_URL=" + h.services["auth"].srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.LoadConfig(assets.KrakendConfig, "krakend.json", s)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), gateway.Options{Settings: s, Config: cfg, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), MaxClientConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-served }()

	exchange := func(conn net.Conn) error {
		_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := exchange(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
	}
	third, err := net.Dial("tcp", ln.Addr().String()) // The kernel accepts it into the backlog.
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(third)
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); err == nil {
		t.Fatal("a third connection was served while the limit is 2")
	}
	_ = held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the waiting connection was not served after one of the two closed: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d", resp.StatusCode)
	}
}
