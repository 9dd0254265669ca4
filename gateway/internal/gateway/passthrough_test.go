package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestPassThroughCreatedKeepsStatusLocationAndBody(t *testing.T) {
	h := newHarness(t)
	const created = `{"id":"p1","title":"Bugs","description":"","ownerId":"u1"}`
	h.services["project"].handle(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/api/v1/projects/p1")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, created)
	})

	r := h.do(t, http.MethodPost, "/api/v1/projects", strings.NewReader(`{"title":"Bugs"}`),
		"Content-Type", "application/json")

	if r.Status != http.StatusCreated {
		t.Fatalf("status = %d, want 201", r.Status)
	}
	if got := r.Header.Get("Location"); got != "/api/v1/projects/p1" {
		t.Errorf("Location = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if string(r.Body) != created {
		t.Errorf("body = %s, want %s", r.Body, created)
	}
	seen := h.services["project"].last(t)
	if seen.Method != http.MethodPost || seen.Path != "/api/v1/projects" {
		t.Errorf("service saw %s %s", seen.Method, seen.Path)
	}
	if string(seen.Body) != `{"title":"Bugs"}` {
		t.Errorf("service saw body %q", seen.Body)
	}
	if got := seen.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("service saw Content-Type %q", got)
	}
	for _, name := range []string{"X-Krakend", "X-Krakend-Completed"} {
		if v := r.Header.Get(name); v != "" {
			t.Errorf("response leaks %s: %q", name, v)
		}
	}
}

func TestPassThroughNoContent(t *testing.T) {
	h := newHarness(t)
	h.services["project"].handle(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})

	r := h.do(t, http.MethodDelete, "/api/v1/cards/c1", nil)

	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("got %d %q, want 204 and no body", r.Status, r.Body)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("204 has no X-Request-Id")
	}
	if seen := h.services["project"].last(t); seen.Method != http.MethodDelete || seen.Path != "/api/v1/cards/c1" {
		t.Errorf("service saw %s %s", seen.Method, seen.Path)
	}
}

func TestPassThroughProblemResponsesUnchanged(t *testing.T) {
	h := newHarness(t)
	for _, status := range []int{400, 401, 403, 404, 409, 413, 422, 429, 500, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			body := `{"type":"https://bugtracker.dev/problems/x","title":"` + http.StatusText(status) +
				`","status":` + itoa(status) + `,"detail":"from the service","errors":[{"field":"title","message":"required"}]}`
			h.services["auth"].handle(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				if status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "7")
				}
				w.WriteHeader(status)
				_, _ = io.WriteString(w, body)
			})

			r := h.do(t, http.MethodPost, "/api/v1/auth/login", strings.NewReader(`{}`),
				"Content-Type", "application/json")

			if r.Status != status {
				t.Fatalf("status = %d, want %d", r.Status, status)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if string(r.Body) != body {
				t.Errorf("body = %s\nwant %s", r.Body, body)
			}
			if status == http.StatusTooManyRequests && r.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q, want 7", r.Header.Get("Retry-After"))
			}
		})
	}
}

func TestRedirectFromServiceIsRelayedNotFollowed(t *testing.T) {
	h := newHarness(t)
	h.services["auth"].handle(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	})

	r := h.do(t, http.MethodGet, "/api/v1/auth/me", nil)

	if r.Status != http.StatusFound || r.Header.Get("Location") != "/elsewhere" {
		t.Fatalf("got %d Location %q, want 302 /elsewhere", r.Status, r.Header.Get("Location"))
	}
	if n := len(h.services["auth"].requests()); n != 1 {
		t.Errorf("service got %d requests, want 1", n)
	}
}

func TestQueryStringForwarded(t *testing.T) {
	h := newHarness(t)

	h.do(t, http.MethodGet, "/api/v1/users?name=Al%20B&offset=20&limit=10&name=x", nil)

	got, err := url.ParseQuery(h.services["auth"].last(t).Query)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"name": {"Al B", "x"}, "offset": {"20"}, "limit": {"10"}}
	if got.Encode() != want.Encode() {
		t.Errorf("service saw query %q, want %q", got.Encode(), want.Encode())
	}
}

func TestHeadersForwardedOnlyFromTheList(t *testing.T) {
	h := newHarness(t)

	h.do(t, http.MethodGet, "/api/v1/auth/me", nil,
		"Authorization", "Bearer abc.def.ghi",
		"Accept", "application/json",
		"User-Agent", "bugtracker-test/1",
		"X-Internal-User", "admin",
		"X-Forwarded-For", "10.9.9.9",
		"Cookie", "session=secret")

	seen := h.services["auth"].last(t).Header
	for name, want := range map[string]string{
		"Authorization": "Bearer abc.def.ghi",
		"Accept":        "application/json",
		"User-Agent":    "bugtracker-test/1",
	} {
		if got := seen.Get(name); got != want {
			t.Errorf("service saw %s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"X-Internal-User", "Cookie"} {
		if v, ok := seen[name]; ok {
			t.Errorf("service saw %s = %q; it must not be forwarded", name, v)
		}
	}
	// The gateway trusts no forwarding header from clients: it sends the peer address.
	if got := seen.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client's address 127.0.0.1", got)
	}
}

func TestRequestIDEchoedAndForwarded(t *testing.T) {
	h := newHarness(t)
	// Services echo the id too; the client must still see exactly one value.
	h.services["auth"].handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		w.WriteHeader(http.StatusOK)
	})

	r := h.do(t, http.MethodGet, "/api/v1/auth/me", nil, "X-Request-Id", "client-id-42")

	if got := r.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "client-id-42" {
		t.Errorf("response X-Request-Id = %q, want [client-id-42]", got)
	}
	if got := h.services["auth"].last(t).Header.Get("X-Request-Id"); got != "client-id-42" {
		t.Errorf("service saw X-Request-Id %q", got)
	}
}

func TestRequestIDGeneratedWhenMissingOrUnsafe(t *testing.T) {
	h := newHarness(t)
	for name, header := range map[string][]string{
		"missing":  nil,
		"too long": {"X-Request-Id", strings.Repeat("a", 129)},
		"spaces":   {"X-Request-Id", "a b"},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do(t, http.MethodGet, "/api/v1/users/u1", nil, header...)

			id := r.Header.Get("X-Request-Id")
			if _, err := uuid.Parse(id); err != nil {
				t.Fatalf("response X-Request-Id %q is not a UUID: %v", id, err)
			}
			if got := h.services["auth"].last(t).Header.Get("X-Request-Id"); got != id {
				t.Errorf("service saw X-Request-Id %q, client got %q", got, id)
			}
		})
	}
}

func TestDownServiceGives502Problem(t *testing.T) {
	h := newHarness(t, withEnv("GATEWAY_COMMENT_URL", deadURL(t)))

	r := h.do(t, http.MethodGet, "/api/v1/comments/m1", nil)

	p := wantProblem(t, r, http.StatusBadGateway)
	for _, leak := range []string{"127.0.0.1", "refused", "dial", "tcp"} {
		if strings.Contains(string(r.Body), leak) {
			t.Errorf("problem leaks %q: %+v", leak, p)
		}
	}
	if !strings.Contains(h.logs.String(), "refused") {
		t.Error("the cause is not in the log")
	}
}

func TestSlowServiceGives504Problem(t *testing.T) {
	h := newHarness(t, withTimeout(t, 150*time.Millisecond))
	h.services["notif"].handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})

	start := time.Now()
	r := h.do(t, http.MethodGet, "/api/v1/notifications", nil)

	wantProblem(t, r, http.StatusGatewayTimeout)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v; the 150ms endpoint timeout was not applied", elapsed)
	}
}

func TestBodyOverOneMiBGives413Problem(t *testing.T) {
	h := newHarness(t)
	big := bytes.Repeat([]byte("a"), 2<<20)

	t.Run("declared length", func(t *testing.T) {
		r := h.do(t, http.MethodPost, "/api/v1/projects", bytes.NewReader(big), "Content-Type", "application/json")
		wantProblem(t, r, http.StatusRequestEntityTooLarge)
		if n := len(h.services["project"].requests()); n != 0 {
			t.Errorf("service got %d requests; it should be refused up front", n)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// io.MultiReader hides the length, so the client streams the body chunked.
		r := h.do(t, http.MethodPost, "/api/v1/cards/c1/comments", io.MultiReader(bytes.NewReader(big)),
			"Content-Type", "application/json")
		wantProblem(t, r, http.StatusRequestEntityTooLarge)
		if n := len(h.services["comment"].requests()); n != 0 {
			t.Errorf("service got %d requests; the body limit must stop a chunked body at the gateway", n)
		}
	})
	t.Run("exactly 1 MiB passes", func(t *testing.T) {
		body := bytes.Repeat([]byte("b"), 1<<20)
		r := h.do(t, http.MethodPost, "/api/v1/projects", bytes.NewReader(body), "Content-Type", "application/json")
		if r.Status != http.StatusOK {
			t.Fatalf("status = %d, want 200", r.Status)
		}
		if got := len(h.services["project"].last(t).Body); got != 1<<20 {
			t.Errorf("service got %d bytes, want %d", got, 1<<20)
		}
	})
}

func TestUnknownRouteAndMethodGiveProblems(t *testing.T) {
	h := newHarness(t)

	p := wantProblem(t, h.do(t, http.MethodGet, "/api/v1/nope", nil), http.StatusNotFound)
	if p.Type != "https://bugtracker.dev/problems/not-found" {
		t.Errorf("type = %q", p.Type)
	}
	wantProblem(t, h.do(t, http.MethodGet, "/api/v1/projects/", nil), http.StatusNotFound)
	wantProblem(t, h.do(t, http.MethodPut, "/api/v1/projects/p1", nil), http.StatusMethodNotAllowed)
}

func TestMalformedPathParamGives400Problem(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/api/v1/cards/a%3Fb", "/api/v1/cards/%2E%2E", "/api/v1/cards/a%2525"} {
		wantProblem(t, h.do(t, http.MethodGet, path, nil), http.StatusBadRequest)
	}
	for _, target := range []string{"/api/v1/cards/..", "/api/v1/cards/.", "/api/v1/projects/{{.UserId}}/members/u2"} {
		wantProblem(t, rawRequest(t, h.url, http.MethodDelete, target), http.StatusBadRequest)
	}
	if n := len(h.services["project"].requests()); n != 0 {
		t.Errorf("service got %d requests", n)
	}
}

func TestAccessLogLine(t *testing.T) {
	h := newHarness(t)

	h.do(t, http.MethodGet, "/api/v1/cards/c9", nil, "X-Request-Id", "log-me")

	for _, line := range strings.Split(h.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" || rec["request_id"] != "log-me" {
			continue
		}
		if rec["method"] != "GET" || rec["route"] != "/api/v1/cards/{id}" || rec["status"] != float64(200) ||
			rec["path"] != "/api/v1/cards/c9" || rec["level"] != "INFO" || rec["remote"] != "127.0.0.1" {
			t.Errorf("access log line = %s", line)
		}
		if _, ok := rec["bytes"].(float64); !ok {
			t.Errorf("no bytes in %s", line)
		}
		if _, ok := rec["duration_ms"].(float64); !ok {
			t.Errorf("no duration_ms in %s", line)
		}
		return
	}
	t.Fatalf("no access log line for the request in:\n%s", h.logs.String())
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
