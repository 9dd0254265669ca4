package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentRegistrationOfOneEmail: twenty clients race to register one email
// through the gateway; PostgreSQL's unique index lets exactly one win.
func TestConcurrentRegistrationOfOneEmail(t *testing.T) {
	s := startSystem(t)
	statuses := make(chan int, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			body := fmt.Sprintf(`{"name":"Racer %d","email":"Race@Example.com","password":"correct horse battery"}`, i)
			req, _ := http.NewRequest("POST", s.gateway+"/api/v1/auth/register", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	if count[201] != 1 || count[409] != 19 {
		t.Fatalf("statuses %v, want one 201 and nineteen 409", count)
	}
}

// TestLogoutIsSeenByOtherServices: after logout through the gateway, the notif service
// (which verifies JWTs itself) refuses the access token within a second.
func TestLogoutIsSeenByOtherServices(t *testing.T) {
	s := startSystem(t)
	s.call(t, "POST", "/api/v1/auth/register", "", `{"name":"Ann","email":"ann@example.com","password":"correct horse battery"}`)
	login := s.call(t, "POST", "/api/v1/auth/login", "", `{"email":"ann@example.com","password":"correct horse battery"}`)
	token := login.body["accessToken"].(string)
	if r := s.call(t, "GET", "/api/v1/notifications", token, ""); r.status != 200 {
		t.Fatalf("before logout: %d", r.status)
	}
	if r := s.call(t, "POST", "/api/v1/auth/logout", token, ""); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.raw)
	}
	loggedOut := time.Now()
	if r := s.call(t, "GET", "/api/v1/auth/me", token, ""); r.status != 401 {
		t.Fatalf("auth still accepts the token: %d", r.status)
	}
	for {
		r := s.call(t, "GET", "/api/v1/notifications", token, "")
		if r.status == 401 {
			break
		}
		if time.Since(loggedOut) > time.Second {
			t.Fatalf("notif accepted the token %v after logout", time.Since(loggedOut))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("notif refused the logged-out token %v after logout", time.Since(loggedOut).Round(time.Millisecond))
	r := s.call(t, "POST", "/api/v1/auth/refresh", "", fmt.Sprintf(`{"refreshToken":%q}`, login.body["refreshToken"]))
	if r.status != 401 {
		t.Fatalf("refresh after logout: %d", r.status)
	}
}

var tokenLine = regexp.MustCompile(`token: (\S+)`)

// TestPasswordResetByMail: forgot password through the gateway writes a mail (the
// file mailbox of `make run`), whose token resets the password once.
func TestPasswordResetByMail(t *testing.T) {
	s := startSystem(t)
	s.call(t, "POST", "/api/v1/auth/register", "", `{"name":"Ann","email":"ann@example.com","password":"correct horse battery"}`)
	if r := s.call(t, "POST", "/api/v1/auth/password/forgot", "", `{"email":"ann@example.com"}`); r.status != 202 {
		t.Fatalf("forgot: %d %s", r.status, r.raw)
	}
	var token string
	deadline := time.Now().Add(5 * time.Second)
	for token == "" {
		files, _ := filepath.Glob(filepath.Join(s.mailDir, "*.eml"))
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if m := tokenLine.FindSubmatch(raw); m != nil && strings.Contains(string(raw), "ann@example.com") {
				token = string(m[1])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reset mail in %s", s.mailDir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := s.call(t, "POST", "/api/v1/auth/password/reset", "", fmt.Sprintf(`{"token":%q,"newPassword":"a new password"}`, token)); r.status != 204 {
		t.Fatalf("reset: %d %s", r.status, r.raw)
	}
	if r := s.call(t, "POST", "/api/v1/auth/password/reset", "", fmt.Sprintf(`{"token":%q,"newPassword":"another one"}`, token)); r.status != 400 {
		t.Fatalf("second use of the token: %d", r.status)
	}
	if r := s.call(t, "POST", "/api/v1/auth/login", "", `{"email":"ann@example.com","password":"a new password"}`); r.status != 200 {
		t.Fatalf("login with the new password: %d", r.status)
	}
}
