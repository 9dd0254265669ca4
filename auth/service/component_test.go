package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/auth/adapters/argon2"
	"github.com/bugtracker/bugtracker/auth/adapters/memrepo"
	"github.com/bugtracker/bugtracker/auth/service"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/config"
	"github.com/bugtracker/bugtracker/platform/servicetest"
)

const secret = "component-test-secret-0123456789abcdef"

var keys = authn.Keys{Secret: secret, Issuer: "bugtracker-auth", Audience: "bugtracker"}

func start(t *testing.T) (string, *memrepo.Store) {
	t.Helper()
	cfg := service.Config{
		Common:          config.Common{JWTSecret: secret, JWTIssuer: keys.Issuer, JWTAudience: keys.Audience},
		Argon2:          argon2.Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1},
		AccessTokenTTL:  15 * time.Minute,
		RefreshTokenTTL: 24 * time.Hour,
	}
	store := memrepo.New()
	svc, err := service.BuildForComponentTest(cfg, servicetest.Discard(), store)
	if err != nil {
		t.Fatal(err)
	}
	return servicetest.Start(t, svc.HTTP, svc.Components()), store
}

type result struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func post(t *testing.T, base, path, body string) result {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestRegisterAndLogin(t *testing.T) {
	base, store := start(t)
	r := post(t, base, "/api/v1/auth/register", `{"name":"Ann","email":"Ann@Example.com","password":"correct horse"}`)
	if r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	id, _ := r.body["id"].(string)
	if id == "" || r.body["name"] != "Ann" || r.body["email"] != "Ann@Example.com" || r.header.Get("Location") != "/api/v1/users/"+id {
		t.Fatalf("user %s, location %q", r.raw, r.header.Get("Location"))
	}
	if _, err := time.Parse(time.RFC3339, r.body["createdAt"].(string)); err != nil {
		t.Fatalf("createdAt: %v", err)
	}
	if len(r.body) != 4 || strings.Contains(strings.ToLower(r.raw), "password") || strings.Contains(r.raw, "argon2") {
		t.Fatalf("user must be exactly id,name,email,createdAt: %s", r.raw)
	}

	events := store.Events()
	if len(events) != 2 || events[0].Type != contracts.TypeNewUser || events[1].Type != contracts.TypeNewNotif {
		t.Fatalf("events %+v", events)
	}
	ev, _ := contracts.Decode(events[0])
	if u := ev.(contracts.UserRegistered); u.UserID != id || u.Email != "Ann@Example.com" || u.Name != "Ann" {
		t.Fatalf("newUser payload %+v", u)
	}
	if strings.Contains(string(events[0].Payload), "argon2") {
		t.Fatal("newUser carries the password hash")
	}
	ev, _ = contracts.Decode(events[1])
	if n := ev.(contracts.NotificationRequested); n.Kind != contracts.KindRegistration || len(n.RecipientIDs) != 1 || n.RecipientIDs[0] != id {
		t.Fatalf("newNotif payload %+v", n)
	}

	r = post(t, base, "/api/v1/auth/login", `{"email":"ann@example.COM","password":"correct horse"}`)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if r.body["tokenType"] != "Bearer" || r.body["expiresIn"].(float64) != 900 || r.body["refreshToken"] == "" {
		t.Fatalf("tokens %s", r.raw)
	}
	if u := r.body["user"].(map[string]any); u["id"] != id {
		t.Fatalf("tokens.user %v", u)
	}
	v, _ := authn.NewVerifier(keys, authn.NewMemoryRevocations())
	p, err := v.Verify(context.Background(), r.body["accessToken"].(string))
	if err != nil || p.UserID != id {
		t.Fatalf("access token: %+v %v", p, err)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatal("tokens must not be cached")
	}
}

func TestRegisterAndLoginErrors(t *testing.T) {
	base, store := start(t)
	if r := post(t, base, "/api/v1/auth/register", `{"name":"Ann","email":"ann@example.com","password":"correct horse"}`); r.status != 201 {
		t.Fatalf("setup: %d", r.status)
	}
	cases := []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"malformed", "/api/v1/auth/register", `{"name":`, 400, ""},
		{"unknown field", "/api/v1/auth/register", `{"name":"B","email":"b@example.com","password":"12345678","role":"admin"}`, 400, ""},
		{"empty name", "/api/v1/auth/register", `{"name":"","email":"b@example.com","password":"12345678"}`, 422, "name"},
		{"long name", "/api/v1/auth/register", `{"name":"` + strings.Repeat("n", 101) + `","email":"b@example.com","password":"12345678"}`, 422, "name"},
		{"bad email", "/api/v1/auth/register", `{"name":"B","email":"nope","password":"12345678"}`, 422, "email"},
		{"short password", "/api/v1/auth/register", `{"name":"B","email":"b@example.com","password":"1234567"}`, 422, "password"},
		{"long password", "/api/v1/auth/register", `{"name":"B","email":"b@example.com","password":"` + strings.Repeat("p", 129) + `"}`, 422, "password"},
		{"wrong type", "/api/v1/auth/register", `{"name":1,"email":"b@example.com","password":"12345678"}`, 422, "name"},
		{"duplicate email", "/api/v1/auth/register", `{"name":"A2","email":"ANN@example.com","password":"12345678"}`, 409, ""},
		{"login malformed", "/api/v1/auth/login", `nope`, 400, ""},
		{"login unknown field", "/api/v1/auth/login", `{"email":"ann@example.com","password":"x","remember":true}`, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, base, tc.path, tc.body)
			if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %q %s", r.status, r.header.Get("Content-Type"), r.raw)
			}
			if tc.field != "" {
				errs, _ := r.body["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["field"] != tc.field {
					t.Fatalf("field %s not named: %s", tc.field, r.raw)
				}
			}
		})
	}
	if n := len(store.Events()); n != 2 {
		t.Fatalf("refused registrations published events: %d", n)
	}

	wrongPassword := post(t, base, "/api/v1/auth/login", `{"email":"ann@example.com","password":"wrong password"}`)
	unknownEmail := post(t, base, "/api/v1/auth/login", `{"email":"nobody@example.com","password":"wrong password"}`)
	if wrongPassword.status != 401 || unknownEmail.status != 401 || wrongPassword.raw != unknownEmail.raw {
		t.Fatalf("wrong password and unknown email must look alike:\n%s\n%s", wrongPassword.raw, unknownEmail.raw)
	}
}
