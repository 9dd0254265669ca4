package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// securityHeaders are the headers the services' helmet middleware sets; every answer
// the gateway makes itself must carry the same values.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":            "nosniff",
	"X-Frame-Options":                   "SAMEORIGIN",
	"X-Xss-Protection":                  "0",
	"Referrer-Policy":                   "no-referrer",
	"Cross-Origin-Embedder-Policy":      "require-corp",
	"Cross-Origin-Opener-Policy":        "same-origin",
	"Cross-Origin-Resource-Policy":      "same-origin",
	"Origin-Agent-Cluster":              "?1",
	"X-Dns-Prefetch-Control":            "off",
	"X-Download-Options":                "noopen",
	"X-Permitted-Cross-Domain-Policies": "none",
}

// wantSecurityHeaders checks that r carries every security header exactly once.
func wantSecurityHeaders(t *testing.T, what string, r response) {
	t.Helper()
	for name, want := range securityHeaders {
		if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s = %q, want [%s]", what, name, got, want)
		}
	}
}

// rawRequest sends one request line as written, bypassing any client-side URL
// cleaning, and returns the status, headers and body of the answer.
func rawRequest(t *testing.T, baseURL, method, target string) response {
	t.Helper()
	addr := strings.TrimPrefix(baseURL, "http://")
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, body}
}

func TestBadPathsGive400ProblemWithoutErrorLog(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{
		"/api/v1/users/%00",
		"/api/v1/users/%0A",
		"/api/v1/users/%0d",
		"/api/v1/users/%7F",
		"/api/v1/users/%1b",
		"/api/v1/users/a%5Cb",
		"/api/v1/users/a%5cb",
		`/api/v1/users/a\b`,
		`/api/v1\users`,
		"/api/v1/no/such/%00",
		"/api/v1/users/%zz",
		"/api/v1/users/%4",
		"/api/v1/users/%",
	} {
		t.Run(target, func(t *testing.T) {
			r := rawRequest(t, h.url, http.MethodGet, target)
			wantProblem(t, r, http.StatusBadRequest)
			wantSecurityHeaders(t, "400", r)
		})
	}
	if n := len(h.services["auth"].requests()); n != 0 {
		t.Errorf("auth got %d requests; bad paths must stop at the gateway", n)
	}
	if strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Errorf("bad input logged at ERROR:\n%s", h.logs.String())
	}
}

func TestGatewayAnswersCarrySecurityHeaders(t *testing.T) {
	h := newHarness(t, withTimeout(t, 150*time.Millisecond), withEnv("GATEWAY_AUTH_URL", deadURL(t)))
	h.services["notif"].handle(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	big := strings.Repeat("a", 2<<20)
	for _, tc := range []struct {
		name   string
		do     func() response
		status int
	}{
		{"404", func() response { return h.do(t, http.MethodGet, "/nope", nil) }, 404},
		{"405", func() response { return h.do(t, http.MethodPut, "/api/v1/projects/p1", nil) }, 405},
		{"413", func() response {
			return h.do(t, http.MethodPost, "/api/v1/projects", strings.NewReader(big), "Content-Type", "application/json")
		}, 413},
		{"502", func() response { return h.do(t, http.MethodGet, "/api/v1/auth/me", nil) }, 502},
		{"504", func() response { return h.do(t, http.MethodGet, "/api/v1/notifications", nil) }, 504},
		{"healthz", func() response { return h.do(t, http.MethodGet, "/healthz", nil) }, 200},
		{"readyz", func() response { return h.do(t, http.MethodGet, "/readyz", nil) }, 503},
		{"openapi", func() response { return h.do(t, http.MethodGet, "/api/v1/openapi.json", nil) }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.do()
			if r.Status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tc.status, r.Body)
			}
			wantSecurityHeaders(t, tc.name, r)
		})
	}
}

func TestProxiedAnswerKeepsOneCopyOfEachSecurityHeader(t *testing.T) {
	h := newHarness(t)
	h.services["auth"].handle(func(w http.ResponseWriter, _ *http.Request) {
		for name, v := range securityHeaders {
			w.Header().Set(name, v)
		}
		w.WriteHeader(http.StatusOK)
	})
	wantSecurityHeaders(t, "proxied", h.do(t, http.MethodGet, "/api/v1/auth/me", nil))
}

func TestMetricsOnlyOnTheAdminListener(t *testing.T) {
	h := newHarness(t)
	h.do(t, http.MethodGet, "/api/v1/cards/c1", nil)

	wantProblem(t, h.do(t, http.MethodGet, "/metrics", nil), http.StatusNotFound)

	resp, err := http.Get(h.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `route="/api/v1/cards/{id}"`) {
		t.Fatalf("admin /metrics: %d\n%s", resp.StatusCode, body)
	}
}

func TestClientHostIsNotForwarded(t *testing.T) {
	h := newHarness(t)

	h.do(t, http.MethodGet, "/api/v1/auth/me", nil, "X-Forwarded-Host", "evil.example")

	seen := h.services["auth"].last(t).Header
	for _, name := range []string{"X-Forwarded-Host", "X-Forwarded-Via", "Forwarded"} {
		if v, ok := seen[name]; ok {
			t.Errorf("service saw %s = %q", name, v)
		}
	}
}

// rawExchange writes raw bytes to the gateway and reads one answer.
func rawExchange(t *testing.T, baseURL, raw string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(baseURL, "http://"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw[:min(len(raw), 60)], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, body}
}

func TestHTTPParserErrorsGiveProblems(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name   string
		raw    string
		status int
	}{
		{"oversized headers", "GET /api/v1/auth/me HTTP/1.1\r\nHost: gw\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431},
		{"bad chunk size", "POST /api/v1/projects HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400},
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"bad content length", "POST /api/v1/projects HTTP/1.1\r\nHost: gw\r\nContent-Length: nope\r\n\r\n{}", 400},
		{"chunked body over 1 MiB", "POST /api/v1/projects HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 1<<20+1, strings.Repeat("x", 1<<20+1)), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawExchange(t, h.url, tc.raw)
			wantProblem(t, r, tc.status)
			wantSecurityHeaders(t, tc.name, r)
		})
	}
	if n := len(h.services["project"].requests()) + len(h.services["auth"].requests()); n != 0 {
		t.Errorf("services got %d requests; refused requests must stop at the gateway", n)
	}
}
