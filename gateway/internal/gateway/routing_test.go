package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestEveryRouteReachesItsService sends each route of API.md with concrete ids and
// checks which fake service got it, with which method and path. Neighbouring
// routes that a router can confuse are all here: /cards/{id} (project) beside
// /cards/{id}/comments (comment), POST /notifications/read-all beside
// PATCH /notifications/{id}, /auth/password beside /auth/password/forgot.
func TestEveryRouteReachesItsService(t *testing.T) {
	h := newHarness(t)
	routes := []struct{ method, path, service string }{
		{"POST", "/api/v1/auth/register", "auth"},
		{"POST", "/api/v1/auth/login", "auth"},
		{"POST", "/api/v1/auth/refresh", "auth"},
		{"POST", "/api/v1/auth/logout", "auth"},
		{"GET", "/api/v1/auth/me", "auth"},
		{"POST", "/api/v1/auth/password", "auth"},
		{"POST", "/api/v1/auth/password/forgot", "auth"},
		{"POST", "/api/v1/auth/password/reset", "auth"},
		{"GET", "/api/v1/auth/jwks.json", "auth"},
		{"GET", "/api/v1/users", "auth"},
		{"GET", "/api/v1/users/u-17", "auth"},
		{"POST", "/api/v1/projects", "project"},
		{"GET", "/api/v1/projects", "project"},
		{"GET", "/api/v1/projects/p-1", "project"},
		{"PATCH", "/api/v1/projects/p-1", "project"},
		{"DELETE", "/api/v1/projects/p-1", "project"},
		{"POST", "/api/v1/projects/p-1/members", "project"},
		{"GET", "/api/v1/projects/p-1/members", "project"},
		{"DELETE", "/api/v1/projects/p-1/members/u-2", "project"},
		{"POST", "/api/v1/projects/p-1/cards", "project"},
		{"GET", "/api/v1/projects/p-1/cards", "project"},
		{"GET", "/api/v1/cards/c-3", "project"},
		{"PATCH", "/api/v1/cards/c-3", "project"},
		{"DELETE", "/api/v1/cards/c-3", "project"},
		{"POST", "/api/v1/cards/c-3/comments", "comment"},
		{"GET", "/api/v1/cards/c-3/comments", "comment"},
		{"GET", "/api/v1/comments/m-4", "comment"},
		{"DELETE", "/api/v1/comments/m-4", "comment"},
		{"GET", "/api/v1/notifications", "notif"},
		{"PATCH", "/api/v1/notifications/n-5", "notif"},
		{"POST", "/api/v1/notifications/read-all", "notif"},
	}
	if n := len(h.gw.Endpoints()); n != len(routes) {
		t.Errorf("gateway has %d endpoints, this table %d", n, len(routes))
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			before := map[string]int{}
			for name, f := range h.services {
				before[name] = len(f.requests())
			}
			var body *strings.Reader
			if rt.method == http.MethodPost || rt.method == http.MethodPatch {
				body = strings.NewReader(`{}`)
			}
			var r response
			if body != nil {
				r = h.do(t, rt.method, rt.path, body, "Content-Type", "application/json")
			} else {
				r = h.do(t, rt.method, rt.path, nil)
			}
			if r.Status != http.StatusOK || string(r.Body) != `{"service":"`+rt.service+`"}` {
				t.Fatalf("got %d %s, want 200 from %s", r.Status, r.Body, rt.service)
			}
			for name, f := range h.services {
				got := len(f.requests()) - before[name]
				want := 0
				if name == rt.service {
					want = 1
				}
				if got != want {
					t.Errorf("service %s got %d requests, want %d", name, got, want)
				}
			}
			seen := h.services[rt.service].last(t)
			if seen.Method != rt.method || seen.Path != rt.path {
				t.Errorf("service saw %s %s", seen.Method, seen.Path)
			}
		})
	}
}
