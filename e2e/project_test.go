package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// user registers and logs in through the gateway and returns the id and access token.
func (s *system) user(t testing.TB, name string) (id, token string) {
	t.Helper()
	email := name + "@example.com"
	r := s.call(t, "POST", "/api/v1/auth/register", "", fmt.Sprintf(`{"name":%q,"email":%q,"password":"correct horse battery"}`, name, email))
	if r.status != 201 {
		t.Fatalf("register %s: %d %s", name, r.status, r.raw)
	}
	l := s.call(t, "POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":"correct horse battery"}`, email))
	if l.status != 200 {
		t.Fatalf("login %s: %d %s", name, l.status, l.raw)
	}
	return r.body["id"].(string), l.body["accessToken"].(string)
}

func (s *system) must(t *testing.T, want int, method, path, token, body string) reply {
	t.Helper()
	r := s.call(t, method, path, token, body)
	if r.status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.raw)
	}
	return r
}

// streamTypes lists the event types on a family's stream, in stream order.
func (s *system) streamTypes(t *testing.T, family string) []string {
	t.Helper()
	entries, err := s.redis.XRange(context.Background(), s.prefix+"events:"+family, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range entries {
		for _, v := range e.Values {
			var env struct {
				Type string `json:"type"`
			}
			if str, ok := v.(string); ok && json.Unmarshal([]byte(str), &env) == nil && env.Type != "" {
				types = append(types, env.Type)
			}
		}
	}
	return types
}

// TestProjectFlowThroughGateway: create a project, add a member (known to the project
// service through newUser), create cards, change a status, kick the member, delete the
// project, all through the gateway on MariaDB, with the events on the streams.
func TestProjectFlowThroughGateway(t *testing.T) {
	s := startSystem(t)
	_, ann := s.user(t, "Ann")
	bobID, bob := s.user(t, "Bob")
	_, cid := s.user(t, "Cid")

	p := s.must(t, 201, "POST", "/api/v1/projects", ann, `{"title":"Website","description":"the public site"}`)
	pid := p.body["id"].(string)
	if p.header.Get("Location") != "/api/v1/projects/"+pid {
		t.Fatalf("Location %q", p.header.Get("Location"))
	}
	// Bob's newUser reaches the project service asynchronously: until then he is unknown (422).
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := s.call(t, "POST", "/api/v1/projects/"+pid+"/members", ann, fmt.Sprintf(`{"userId":%q}`, bobID))
		if r.status == 201 {
			if r.body["name"] != "Bob" || r.body["email"] != "Bob@example.com" || r.body["role"] != "member" {
				t.Fatalf("member %s", r.raw)
			}
			break
		}
		if r.status != 422 || time.Now().After(deadline) {
			t.Fatalf("add member: %d %s", r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.must(t, 409, "POST", "/api/v1/projects/"+pid+"/members", ann, fmt.Sprintf(`{"userId":%q}`, bobID))
	if m := s.must(t, 200, "GET", "/api/v1/projects/"+pid+"/members", bob, ""); m.body["meta"].(map[string]any)["total"].(float64) != 2 {
		t.Fatalf("members %s", m.raw)
	}

	c := s.must(t, 201, "POST", "/api/v1/projects/"+pid+"/cards", bob, `{"title":"Login fails"}`)
	cardID := c.body["id"].(string)
	s.must(t, 201, "POST", "/api/v1/projects/"+pid+"/cards", bob, `{"title":"Slow search","status":"in_progress"}`)
	u := s.must(t, 200, "PATCH", "/api/v1/cards/"+cardID, ann, `{"status":"done"}`)
	if u.body["status"] != "done" {
		t.Fatalf("patch %s", u.raw)
	}
	l := s.must(t, 200, "GET", "/api/v1/projects/"+pid+"/cards?limit=1", bob, "")
	next, _ := l.body["meta"].(map[string]any)["nextCursor"].(string)
	if len(l.body["data"].([]any)) != 1 || next == "" {
		t.Fatalf("first page %s", l.raw)
	}
	if l2 := s.must(t, 200, "GET", "/api/v1/projects/"+pid+"/cards?limit=1&cursor="+next, bob, ""); l2.body["meta"].(map[string]any)["nextCursor"] != nil {
		t.Fatalf("second page %s", l2.raw)
	}
	s.must(t, 404, "GET", "/api/v1/cards/"+cardID, cid, "")
	s.must(t, 404, "GET", "/api/v1/projects/"+pid, cid, "")
	s.must(t, 403, "DELETE", "/api/v1/projects/"+pid, bob, "")

	s.must(t, 204, "DELETE", "/api/v1/projects/"+pid+"/members/"+bobID, ann, "")
	s.must(t, 404, "GET", "/api/v1/cards/"+cardID, bob, "")
	s.must(t, 404, "POST", "/api/v1/projects/"+pid+"/cards", bob, `{"title":"after the kick"}`)

	s.must(t, 204, "DELETE", "/api/v1/projects/"+pid, ann, "")
	s.must(t, 404, "GET", "/api/v1/projects/"+pid, ann, "")
	s.must(t, 404, "GET", "/api/v1/cards/"+cardID, ann, "")

	want := map[string][]string{
		"project": {"newProject", "memberAdded", "memberRemoved", "deleteProject"},
		"card":    {"newCard", "newCard", "changeCardStatus"},
	}
	deadline = time.Now().Add(2 * time.Second)
	for family, types := range want {
		for {
			got := s.streamTypes(t, family)
			if fmt.Sprint(got) == fmt.Sprint(types) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s stream: %v, want %v", family, got, types)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
