package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bugtracker/bugtracker/auth/adapters/argon2"
	"github.com/bugtracker/bugtracker/auth/adapters/mail"
	"github.com/bugtracker/bugtracker/auth/adapters/mail/mailtest"
	"github.com/bugtracker/bugtracker/auth/adapters/memrepo"
	"github.com/bugtracker/bugtracker/auth/adapters/throttle"
	"github.com/bugtracker/bugtracker/auth/app"
	"github.com/bugtracker/bugtracker/auth/service"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/config"
	"github.com/bugtracker/bugtracker/platform/servicetest"
)

var (
	parties = authn.Parties{Issuer: "bugtracker-auth", Audience: "bugtracker"}
	// signingKey is the component tests' auth key; its PEM is what
	// AUTH_JWT_PRIVATE_KEY_FILE would hold.
	signingKey, signingPEM = mustKey()
)

func mustKey() (authn.SigningKey, string) {
	k, err := authn.GenerateSigningKey()
	if err != nil {
		panic(err)
	}
	pem, err := authn.MarshalPrivateKeyPEM(k.Private)
	if err != nil {
		panic(err)
	}
	return k, string(pem)
}

// harness is one auth service over memory adapters, mailing through the SMTP adapter
// to a real SMTP server started by the test.
type harness struct {
	base  string
	store *memrepo.Store
	smtp  *mailtest.Server
}

func start(t testing.TB) *harness {
	t.Helper()
	return startWith(t, nil, nil)
}

// startWith starts the service with the test's hasher (nil: argon2 with the OWASP
// minimum) and lets it adjust the configuration.
func startWith(t testing.TB, hasher service.RawHasher, adjust func(*service.Config)) *harness {
	t.Helper()
	smtpServer := mailtest.Start(t)
	mailer, err := mail.NewSMTP(mail.SMTPConfig{
		Host: smtpServer.Host, Port: smtpServer.Port, TLS: "none", From: "bugtracker <no-reply@example.com>",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{
		Common:          config.Common{JWTIssuer: parties.Issuer, JWTAudience: parties.Audience},
		JWTPrivateKey:   signingPEM,
		Argon2:          argon2.Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1},
		AccessTokenTTL:  15 * time.Minute,
		RefreshTokenTTL: 24 * time.Hour,
		TrustedProxies:  []string{"127.0.0.1"},
		ResetURL:        "http://example.com/reset",
	}
	if adjust != nil {
		adjust(&cfg)
	}
	if hasher == nil {
		hasher = argon2.New(cfg.Argon2)
	}
	store := memrepo.New()
	svc, err := service.BuildForComponentTest(cfg, servicetest.Discard(), store, authn.NewMemoryRevocations(), throttle.NewMemory(), mailer, hasher)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{base: servicetest.Start(t, svc.HTTP, svc.Components()), store: store, smtp: smtpServer}
}

type result struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (h *harness) do(t testing.TB, method, path, token, body string, headers ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (h *harness) post(t testing.TB, path, body string) result {
	return h.do(t, "POST", path, "", body)
}

func (h *harness) register(t testing.TB, name, email, password string) string {
	t.Helper()
	r := h.post(t, "/api/v1/auth/register", fmt.Sprintf(`{"name":%q,"email":%q,"password":%q}`, name, email, password))
	if r.status != 201 {
		t.Fatalf("register %s: %d %s", email, r.status, r.raw)
	}
	return r.body["id"].(string)
}

type pair struct{ access, refresh string }

func (h *harness) login(t testing.TB, email, password string) pair {
	t.Helper()
	r := h.post(t, "/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if r.status != 200 {
		t.Fatalf("login %s: %d %s", email, r.status, r.raw)
	}
	return pair{r.body["accessToken"].(string), r.body["refreshToken"].(string)}
}

func (h *harness) me(t *testing.T, access string) int {
	t.Helper()
	return h.do(t, "GET", "/api/v1/auth/me", access, "").status
}

func expectProblem(t *testing.T, r result, status int) {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want %d problem, got %d %q %s", status, r.status, r.header.Get("Content-Type"), r.raw)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	h := start(t)
	r := h.post(t, "/api/v1/auth/register", `{"name":"Ann","email":"Ann@Example.com","password":"correct horse"}`)
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

	events := h.store.Events()
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

	r = h.post(t, "/api/v1/auth/login", `{"email":"ann@example.COM","password":"correct horse"}`)
	if r.status != 200 || r.body["tokenType"] != "Bearer" || r.body["expiresIn"].(float64) != 900 || r.body["refreshToken"] == "" {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if u := r.body["user"].(map[string]any); u["id"] != id {
		t.Fatalf("tokens.user %v", u)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatal("tokens must not be cached")
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.Parse(r.body["accessToken"].(string), func(*jwt.Token) (any, error) { return signingKey.Public(), nil },
		jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["kid"] != signingKey.ID {
		t.Fatalf("kid %v, want %s", parsed.Header["kid"], signingKey.ID)
	}
	_, _, _ = jwt.NewParser().ParseUnverified(r.body["accessToken"].(string), claims)
	for _, c := range []string{"sub", "jti", "exp", "iat", "iss", "aud"} {
		if _, ok := claims[c]; !ok {
			t.Fatalf("access token lacks %s: %v", c, claims)
		}
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 900 {
		t.Fatalf("lifetime %v s", exp-iat)
	}

	me := h.do(t, "GET", "/api/v1/auth/me", r.body["accessToken"].(string), "")
	if me.status != 200 || me.body["id"] != id || me.body["email"] != "Ann@Example.com" {
		t.Fatalf("me: %d %s", me.status, me.raw)
	}
}

func TestValidationAndConflicts(t *testing.T) {
	h := start(t)
	h.register(t, "Ann", "ann@example.com", "correct horse")
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
		{"refresh empty", "/api/v1/auth/refresh", `{"refreshToken":""}`, 422, "refreshToken"},
		{"refresh unknown field", "/api/v1/auth/refresh", `{"refreshToken":"x","userId":"y"}`, 400, ""},
		{"forgot bad email", "/api/v1/auth/password/forgot", `{"email":"nope"}`, 422, "email"},
		{"forgot malformed", "/api/v1/auth/password/forgot", `{`, 400, ""},
		{"reset short password", "/api/v1/auth/password/reset", `{"token":"x","newPassword":"short"}`, 422, "newPassword"},
		{"reset unknown field", "/api/v1/auth/password/reset", `{"token":"x","newPassword":"long enough","admin":true}`, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.post(t, tc.path, tc.body)
			expectProblem(t, r, tc.status)
			if tc.field != "" {
				errs, _ := r.body["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["field"] != tc.field {
					t.Fatalf("field %s not named: %s", tc.field, r.raw)
				}
			}
		})
	}
	if n := len(h.store.Events()); n != 2 {
		t.Fatalf("refused registrations published events: %d", n)
	}

	wrongPassword := h.post(t, "/api/v1/auth/login", `{"email":"ann@example.com","password":"wrong password"}`)
	unknownEmail := h.post(t, "/api/v1/auth/login", `{"email":"nobody@example.com","password":"wrong password"}`)
	expectProblem(t, wrongPassword, 401)
	if wrongPassword.raw != unknownEmail.raw {
		t.Fatalf("wrong password and unknown email must look alike:\n%s\n%s", wrongPassword.raw, unknownEmail.raw)
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, mutate func(jwt.MapClaims)) string {
	t.Helper()
	return signKid(t, method, key, signingKey.ID, mutate)
}

func signKid(t *testing.T, method jwt.SigningMethod, key any, kid string, mutate func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"sub": "u1", "jti": "j1", "iss": parties.Issuer, "aud": parties.Audience,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
	if mutate != nil {
		mutate(c)
	}
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessTokenVariantsAre401(t *testing.T) {
	h := start(t)
	priv := signingKey.Private
	stranger, _ := mustKey()
	tokens := map[string]string{
		"none":                      "",
		"garbage":                   "garbage",
		"alg none":                  sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil),
		"HS256 with a secret":       sign(t, jwt.SigningMethodHS256, []byte("component-test-secret-0123456789abcdef"), nil),
		"HS256 with the public key": sign(t, jwt.SigningMethodHS256, []byte(signingKey.Public()), nil),
		"HS384":                     sign(t, jwt.SigningMethodHS384, []byte("another-secret-0123456789abcdefghij"), nil),
		"key not in the set":        signKid(t, jwt.SigningMethodEdDSA, stranger.Private, stranger.ID, nil),
		"stranger's key, our kid":   sign(t, jwt.SigningMethodEdDSA, stranger.Private, nil),
		"expired":                   sign(t, jwt.SigningMethodEdDSA, priv, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"wrong audience":            sign(t, jwt.SigningMethodEdDSA, priv, func(c jwt.MapClaims) { c["aud"] = "elsewhere" }),
		"wrong issuer":              sign(t, jwt.SigningMethodEdDSA, priv, func(c jwt.MapClaims) { c["iss"] = "mallory" }),
		"valid, unknown user":       sign(t, jwt.SigningMethodEdDSA, priv, nil),
	}
	for name, tok := range tokens {
		for _, path := range []string{"/api/v1/auth/me", "/api/v1/users", "/api/v1/users/u1"} {
			r := h.do(t, "GET", path, tok, "")
			if name == "valid, unknown user" && path != "/api/v1/auth/me" {
				continue // a valid token may list users; only /me needs the user to exist
			}
			if r.status != 401 || r.header.Get("WWW-Authenticate") == "" && name != "valid, unknown user" {
				t.Errorf("%s on %s: %d %v", name, path, r.status, r.header)
			}
		}
	}
	r := h.do(t, "POST", "/api/v1/auth/logout", "", "")
	expectProblem(t, r, 401)
	r = h.do(t, "POST", "/api/v1/auth/password", "", `{"currentPassword":"a","newPassword":"bbbbbbbb"}`)
	expectProblem(t, r, 401)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	h := start(t)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	first := h.login(t, "ann@example.com", "correct horse")

	r := h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, first.refresh))
	if r.status != 200 || r.body["refreshToken"] == first.refresh || r.body["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	second := pair{r.body["accessToken"].(string), r.body["refreshToken"].(string)}
	if h.me(t, second.access) != 200 {
		t.Fatal("rotated access token refused")
	}

	// Reuse of the first refresh token: 401, and the whole family dies.
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, first.refresh)), 401)
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, second.refresh)), 401)
	if h.me(t, second.access) != 401 || h.me(t, first.access) != 401 {
		t.Fatal("access tokens of a revoked family still work")
	}
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", `{"refreshToken":"never-issued"}`), 401)

	// Another login is another family, untouched by that revocation.
	other := h.login(t, "ann@example.com", "correct horse")
	if h.me(t, other.access) != 200 {
		t.Fatal("a separate session was revoked")
	}
}

func TestLogout(t *testing.T) {
	h := start(t)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	a := h.login(t, "ann@example.com", "correct horse")
	b := h.login(t, "ann@example.com", "correct horse")

	expectProblem(t, h.do(t, "POST", "/api/v1/auth/logout", a.access, `{"refreshToken":`), 400)
	if r := h.do(t, "POST", "/api/v1/auth/logout", a.access, ""); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.raw)
	}
	if h.me(t, a.access) != 401 {
		t.Fatal("access token still works after logout")
	}
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, a.refresh)), 401)
	if h.me(t, b.access) != 200 {
		t.Fatal("logout of one session ended another")
	}
	// With a refresh token in the body, that session ends too.
	c := h.login(t, "ann@example.com", "correct horse")
	if r := h.do(t, "POST", "/api/v1/auth/logout", c.access, fmt.Sprintf(`{"refreshToken":%q}`, b.refresh)); r.status != 204 {
		t.Fatalf("logout with body: %d", r.status)
	}
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, b.refresh)), 401)
	if h.me(t, b.access) != 401 || h.me(t, c.access) != 401 {
		t.Fatal("named session not ended")
	}
}

func TestUsersListAndDetail(t *testing.T) {
	h := start(t)
	ids := []string{
		h.register(t, "Ann Lee", "ann@example.com", "correct horse"),
		h.register(t, "Bob", "bob@example.com", "correct horse"),
		h.register(t, "Joanne", "jo@example.com", "correct horse"),
	}
	tok := h.login(t, "bob@example.com", "correct horse").access
	r := h.do(t, "GET", "/api/v1/users?name=ANN&limit=1", tok, "")
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	meta := r.body["meta"].(map[string]any)
	data := r.body["data"].([]any)
	if meta["total"].(float64) != 2 || meta["limit"].(float64) != 1 || meta["offset"].(float64) != 0 || len(data) != 1 ||
		data[0].(map[string]any)["id"] != ids[0] {
		t.Fatalf("filtered page: %s", r.raw)
	}
	if r := h.do(t, "GET", "/api/v1/users?name=ann&offset=1&limit=1", tok, ""); r.body["data"].([]any)[0].(map[string]any)["id"] != ids[2] {
		t.Fatalf("second page: %s", r.raw)
	}
	if r := h.do(t, "GET", "/api/v1/users", tok, ""); r.body["meta"].(map[string]any)["total"].(float64) != 3 || r.body["meta"].(map[string]any)["limit"].(float64) != 20 {
		t.Fatalf("defaults: %s", r.raw)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "offset=-1", "name=" + strings.Repeat("a", 101)} {
		expectProblem(t, h.do(t, "GET", "/api/v1/users?"+q, tok, ""), 400)
	}
	if r := h.do(t, "GET", "/api/v1/users/"+ids[2], tok, ""); r.status != 200 || r.body["name"] != "Joanne" || strings.Contains(r.raw, "assword") {
		t.Fatalf("detail: %d %s", r.status, r.raw)
	}
	expectProblem(t, h.do(t, "GET", "/api/v1/users/0190a000-0000-7000-8000-000000000000", tok, ""), 404)
}

func TestChangePassword(t *testing.T) {
	h := start(t)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	current := h.login(t, "ann@example.com", "correct horse")
	other := h.login(t, "ann@example.com", "correct horse")

	expectProblem(t, h.do(t, "POST", "/api/v1/auth/password", current.access, `{"currentPassword":"wrong one","newPassword":"new password"}`), 401)
	expectProblem(t, h.do(t, "POST", "/api/v1/auth/password", current.access, `{"currentPassword":"correct horse","newPassword":"short"}`), 422)
	expectProblem(t, h.do(t, "POST", "/api/v1/auth/password", current.access, `{"currentPassword":"correct horse"}`), 422)
	if h.me(t, other.access) != 200 {
		t.Fatal("failed changes must change nothing")
	}
	if r := h.do(t, "POST", "/api/v1/auth/password", current.access, `{"currentPassword":"correct horse","newPassword":"new password"}`); r.status != 204 {
		t.Fatalf("change: %d %s", r.status, r.raw)
	}
	if h.me(t, other.access) != 401 {
		t.Fatal("other session's access token survived the password change")
	}
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, other.refresh)), 401)
	if h.me(t, current.access) != 200 {
		t.Fatal("the session that changed the password must stay")
	}
	if r := h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, current.refresh)); r.status != 200 {
		t.Fatalf("current session's refresh: %d", r.status)
	}
	expectProblem(t, h.post(t, "/api/v1/auth/login", `{"email":"ann@example.com","password":"correct horse"}`), 401)
	h.login(t, "ann@example.com", "new password")
}

func TestLoginThrottling(t *testing.T) {
	h := start(t)
	h.register(t, "Ann", "ann@example.com", "correct horse")
	for i := range 10 {
		expectProblem(t, h.post(t, "/api/v1/auth/login", `{"email":"ann@example.com","password":"guess `+strconv.Itoa(i)+`"}`), 401)
	}
	r := h.post(t, "/api/v1/auth/login", `{"email":"ANN@example.com","password":"correct horse"}`)
	expectProblem(t, r, 429)
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 890 || retry > 900 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}

	// Per client IP (through a trusted proxy): many emails from one address.
	h2 := start(t)
	for i := range 10 {
		r := h2.do(t, "POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"email":"user%d@example.com","password":"guess"}`, i), "X-Forwarded-For", "198.51.100.9")
		expectProblem(t, r, 401)
	}
	expectProblem(t, h2.do(t, "POST", "/api/v1/auth/login", "", `{"email":"fresh@example.com","password":"guess"}`, "X-Forwarded-For", "198.51.100.9"), 429)
	expectProblem(t, h2.do(t, "POST", "/api/v1/auth/login", "", `{"email":"fresh@example.com","password":"guess"}`, "X-Forwarded-For", "198.51.100.10"), 401)
}

var tokenLine = regexp.MustCompile(`token: (\S+)`)

func TestForgotAndResetPassword(t *testing.T) {
	h := start(t)
	id := h.register(t, "Ann", "ann@example.com", "correct horse")
	session := h.login(t, "ann@example.com", "correct horse")

	known := h.post(t, "/api/v1/auth/password/forgot", `{"email":"ANN@example.com"}`)
	unknown := h.post(t, "/api/v1/auth/password/forgot", `{"email":"nobody@example.com"}`)
	if known.status != 202 || unknown.status != 202 || known.raw != unknown.raw {
		t.Fatalf("forgot must answer alike: %d %q / %d %q", known.status, known.raw, unknown.status, unknown.raw)
	}
	msg := h.smtp.WaitFor(t, "ann@example.com", 5*time.Second)
	m := tokenLine.FindStringSubmatch(msg.Body)
	if m == nil || msg.Subject != "Reset your bugtracker password" || !strings.Contains(msg.Body, "http://example.com/reset?token="+m[1]) {
		t.Fatalf("reset mail: %+v", msg)
	}
	token := m[1]

	expectProblem(t, h.post(t, "/api/v1/auth/password/reset", `{"token":"not-a-token","newPassword":"brand new pass"}`), 400)
	expectProblem(t, h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"newPassword":"short"}`, token)), 422)
	if r := h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"newPassword":"brand new pass"}`, token)); r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	expectProblem(t, h.post(t, "/api/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"newPassword":"another pass"}`, token)), 400)
	if h.me(t, session.access) != 401 {
		t.Fatal("reset must end every session")
	}
	expectProblem(t, h.post(t, "/api/v1/auth/refresh", fmt.Sprintf(`{"refreshToken":%q}`, session.refresh)), 401)
	h.login(t, "ann@example.com", "brand new pass")

	// An expired token (stored 31 minutes ago) is refused.
	past := time.Now().Add(-31 * time.Minute)
	if err := h.store.CreateReset(context.Background(), app.ResetToken{
		ID: "r-old", UserID: id, TokenHash: app.HashToken("expired-token"), CreatedAt: past, ExpiresAt: past.Add(30 * time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	expectProblem(t, h.post(t, "/api/v1/auth/password/reset", `{"token":"expired-token","newPassword":"yet another pass"}`), 400)

	time.Sleep(100 * time.Millisecond)
	for _, msg := range h.smtp.Messages() {
		if msg.To[0] != "ann@example.com" {
			t.Fatalf("mail sent for an unknown address: %+v", msg)
		}
	}
}

func TestForgotPasswordIsThrottled(t *testing.T) {
	h := start(t)
	for range 10 {
		if r := h.post(t, "/api/v1/auth/password/forgot", `{"email":"ann@example.com"}`); r.status != 202 {
			t.Fatalf("forgot: %d", r.status)
		}
	}
	r := h.post(t, "/api/v1/auth/password/forgot", `{"email":"ann@example.com"}`)
	expectProblem(t, r, 429)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}
