package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/servicetest"
	"github.com/bugtracker/bugtracker/project/adapters/memrepo"
	"github.com/bugtracker/bugtracker/project/app"
	"github.com/bugtracker/bugtracker/project/service"
)

const (
	cursorSecret = "component-test-cursor-0123456789abcdef"
)

type harness struct {
	base   string
	bus    *memory.Bus
	store  *memrepo.Store
	signer *authn.Signer
	revs   *authn.MemoryRevocations
}

func start(t *testing.T, maxMembers int) *harness {
	t.Helper()
	tokens := servicetest.NewTokens(t)
	cfg := service.Config{
		Common:       tokens.Common,
		CursorSecret: cursorSecret, MaxMembers: maxMembers,
	}
	h := &harness{bus: memory.New(), store: memrepo.New(), revs: authn.NewMemoryRevocations()}
	svc, err := service.BuildForComponentTest(cfg, servicetest.Discard(), h.store, h.bus, h.revs)
	if err != nil {
		t.Fatal(err)
	}
	h.base = servicetest.Start(t, svc.HTTP, svc.Components())
	h.signer = tokens.Signer
	for _, u := range []string{"ann", "bob", "cid", "dan", "eve"} {
		h.store.PutUser(app.UserCopy{ID: u, Name: strings.ToUpper(u[:1]) + u[1:], Email: u + "@example.com", Version: 1})
	}
	return h
}

func (h *harness) token(t *testing.T, userID string) string {
	tok, _, err := h.signer.Issue(userID, "session-"+userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type result struct {
	status int
	header http.Header
	body   map[string]any
}

func (r result) str(k string) string { s, _ := r.body[k].(string); return s }

func (r result) data() []map[string]any {
	raw, _ := r.body["data"].([]any)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

func (r result) meta() map[string]any { m, _ := r.body["meta"].(map[string]any); return m }

func (h *harness) call(t *testing.T, method, path, user, body string) result {
	t.Helper()
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(t, user))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (h *harness) must(t *testing.T, want int, method, path, user, body string) result {
	t.Helper()
	r := h.call(t, method, path, user, body)
	if r.status != want {
		t.Fatalf("%s %s as %s: status %d, want %d: %v", method, path, user, r.status, want, r.body)
	}
	return r
}

func (h *harness) publish(t *testing.T, e eventbus.Event, agg string) eventbus.Envelope {
	t.Helper()
	env, err := contracts.New(e, agg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.bus.Publish(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	return env
}

// events decodes the events the service stored so far, of the given type.
func (h *harness) events(t *testing.T, typ string) []eventbus.Event {
	t.Helper()
	var out []eventbus.Event
	for _, env := range h.store.Events() {
		if env.Type != typ {
			continue
		}
		ev, err := contracts.Decode(env)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setup creates ann's project with bob as a member and dan as a kicked member, and one
// card; cid is a stranger.
func (h *harness) setup(t *testing.T) (projectID, cardID string) {
	t.Helper()
	p := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"Login","description":"auth bugs"}`)
	projectID = p.str("id")
	h.must(t, 201, "POST", "/api/v1/projects/"+projectID+"/members", "ann", `{"userId":"bob"}`)
	h.must(t, 201, "POST", "/api/v1/projects/"+projectID+"/members", "ann", `{"userId":"dan"}`)
	h.must(t, 204, "DELETE", "/api/v1/projects/"+projectID+"/members/dan", "ann", "")
	c := h.must(t, 201, "POST", "/api/v1/projects/"+projectID+"/cards", "bob", `{"title":"Login fails"}`)
	return projectID, c.str("id")
}

// TestPermissionsMatrix calls every route as the owner, a member, a stranger and a
// kicked member: strangers and kicked members get 404 everywhere, members 403 on the
// owner-only actions, and the owner and members what API.md grants them.
func TestPermissionsMatrix(t *testing.T) {
	h := start(t, 500)
	type route struct {
		name, method, path, body string
		// want per role: owner, member, stranger, kicked.
		want [4]int
	}
	// Each row gets fresh resources, so that a successful delete does not change the
	// next role's answer.
	routes := []func(p, c string) route{
		func(p, _ string) route {
			return route{"get project", "GET", "/api/v1/projects/" + p, "", [4]int{200, 200, 404, 404}}
		},
		func(p, _ string) route {
			return route{"patch project", "PATCH", "/api/v1/projects/" + p, `{"title":"New"}`, [4]int{200, 403, 404, 404}}
		},
		func(p, _ string) route {
			return route{"delete project", "DELETE", "/api/v1/projects/" + p, "", [4]int{204, 403, 404, 404}}
		},
		func(p, _ string) route {
			return route{"add member", "POST", "/api/v1/projects/" + p + "/members", `{"userId":"eve"}`, [4]int{201, 403, 404, 404}}
		},
		func(p, _ string) route {
			return route{"list members", "GET", "/api/v1/projects/" + p + "/members", "", [4]int{200, 200, 404, 404}}
		},
		func(p, _ string) route {
			return route{"kick member", "DELETE", "/api/v1/projects/" + p + "/members/bob", "", [4]int{204, 403, 404, 404}}
		},
		func(p, _ string) route {
			return route{"create card", "POST", "/api/v1/projects/" + p + "/cards", `{"title":"x"}`, [4]int{201, 201, 404, 404}}
		},
		func(p, _ string) route {
			return route{"list cards", "GET", "/api/v1/projects/" + p + "/cards", "", [4]int{200, 200, 404, 404}}
		},
		func(_, c string) route {
			return route{"get card", "GET", "/api/v1/cards/" + c, "", [4]int{200, 200, 404, 404}}
		},
		func(_, c string) route {
			return route{"patch card", "PATCH", "/api/v1/cards/" + c, `{"status":"done"}`, [4]int{200, 200, 404, 404}}
		},
		func(_, c string) route {
			return route{"delete card", "DELETE", "/api/v1/cards/" + c, "", [4]int{204, 204, 404, 404}}
		},
	}
	roles := [4]string{"ann", "bob", "cid", "dan"}
	for _, mk := range routes {
		for i, user := range roles {
			p, c := h.setup(t)
			rt := mk(p, c)
			t.Run(rt.name+"/"+user, func(t *testing.T) {
				r := h.call(t, rt.method, rt.path, user, rt.body)
				if r.status != rt.want[i] {
					t.Fatalf("status %d, want %d: %v", r.status, rt.want[i], r.body)
				}
				if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("error without problem+json: %s", r.header.Get("Content-Type"))
				}
			})
		}
	}
	// A project the caller cannot see and one that does not exist answer alike.
	p, _ := h.setup(t)
	a, b := h.call(t, "GET", "/api/v1/projects/"+p, "cid", ""), h.call(t, "GET", "/api/v1/projects/nope", "cid", "")
	if a.status != 404 || b.status != 404 || a.str("detail") != b.str("detail") {
		t.Fatalf("a stranger can tell a hidden project from a missing one: %v vs %v", a.body, b.body)
	}
}

func TestProjectLifecycleAndEvents(t *testing.T) {
	h := start(t, 500)
	r := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"Login 100%_done","description":"d"}`)
	id := r.str("id")
	if r.str("ownerId") != "ann" || r.str("title") != "Login 100%_done" || r.header.Get("Location") != "/api/v1/projects/"+id {
		t.Fatalf("created %v %v", r.body, r.header)
	}
	h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"Login 100xxdone"}`)
	h.must(t, 201, "POST", "/api/v1/projects", "bob", `{"title":"Bob's"}`)

	l := h.must(t, 200, "GET", "/api/v1/projects", "ann", "")
	if m := l.meta(); m["total"].(float64) != 2 || m["offset"].(float64) != 0 || m["limit"].(float64) != 20 {
		t.Fatalf("ann's list %v", l.body)
	}
	if d := l.data(); d[0]["id"] != id {
		t.Fatalf("order createdAt then id: %v", d)
	}
	// % and _ are literal: only the first title contains "100%_".
	if l := h.must(t, 200, "GET", "/api/v1/projects?title=100%25_", "ann", ""); l.meta()["total"].(float64) != 1 {
		t.Fatalf("title filter with %%_: %v", l.body)
	}
	if l := h.must(t, 200, "GET", "/api/v1/projects?title=LOGIN&offset=1&limit=1", "ann", ""); l.meta()["total"].(float64) != 2 || len(l.data()) != 1 {
		t.Fatalf("case-insensitive filter, offset page: %v", l.body)
	}

	u := h.must(t, 200, "PATCH", "/api/v1/projects/"+id, "ann", `{"description":"new"}`)
	if u.str("title") != "Login 100%_done" || u.str("description") != "new" || u.str("updatedAt") == r.str("updatedAt") {
		t.Fatalf("patch %v", u.body)
	}
	h.must(t, 201, "POST", "/api/v1/projects/"+id+"/members", "ann", `{"userId":"bob"}`)
	h.must(t, 201, "POST", "/api/v1/projects/"+id+"/cards", "bob", `{"title":"c"}`)
	h.must(t, 204, "DELETE", "/api/v1/projects/"+id, "ann", "")
	h.must(t, 404, "GET", "/api/v1/projects/"+id, "ann", "")
	if l := h.must(t, 200, "GET", "/api/v1/projects", "bob", ""); l.meta()["total"].(float64) != 1 {
		t.Fatalf("bob still lists the deleted project: %v", l.body)
	}

	created := h.events(t, contracts.TypeNewProject)[0].(contracts.ProjectCreated)
	if created.ProjectID != id || created.AggregateVersion != 1 || created.OwnerName != "Ann" {
		t.Fatalf("newProject %+v", created)
	}
	upd := h.events(t, contracts.TypeUpdateProject)
	if len(upd) != 1 || upd[0].(contracts.ProjectUpdated).AggregateVersion != 2 || upd[0].(contracts.ProjectUpdated).Description != "new" {
		t.Fatalf("updateProject %+v", upd)
	}
	del := h.events(t, contracts.TypeDeleteProject)[0].(contracts.ProjectDeleted)
	if del.AggregateVersion != 3 || del.ActorName != "Ann" || del.Audience.OwnerID != "ann" ||
		len(del.Audience.MemberIDs) != 1 || del.Audience.MemberIDs[0] != "bob" {
		t.Fatalf("deleteProject %+v", del)
	}
	// A PATCH that changes nothing publishes nothing.
	p2 := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"Same"}`)
	h.must(t, 200, "PATCH", "/api/v1/projects/"+p2.str("id"), "ann", `{"title":"Same"}`)
	if n := len(h.events(t, contracts.TypeUpdateProject)); n != 1 {
		t.Fatalf("no-op patch published: %d", n)
	}
}

func TestMembers(t *testing.T) {
	h := start(t, 2)
	p := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"P"}`).str("id")
	base := "/api/v1/projects/" + p + "/members"
	m := h.must(t, 201, "POST", base, "ann", `{"userId":"bob"}`)
	if m.str("name") != "Bob" || m.str("email") != "bob@example.com" || m.str("role") != "member" || m.str("addedAt") == "" {
		t.Fatalf("member %v", m.body)
	}
	h.must(t, 409, "POST", base, "ann", `{"userId":"bob"}`)
	h.must(t, 409, "POST", base, "ann", `{"userId":"ann"}`)
	if r := h.must(t, 422, "POST", base, "ann", `{"userId":"nobody"}`); r.body["errors"] == nil {
		t.Fatalf("unknown user: %v", r.body)
	}
	h.must(t, 422, "POST", base, "ann", `{"userId":""}`)
	h.must(t, 422, "POST", base, "ann", `{}`)
	h.must(t, 400, "POST", base, "ann", `{"userId":"cid","role":"owner"}`)
	h.must(t, 201, "POST", base, "ann", `{"userId":"cid"}`)
	h.must(t, 422, "POST", base, "ann", `{"userId":"dan"}`) // the bound (2 here)

	l := h.must(t, 200, "GET", base, "bob", "")
	d := l.data()
	if l.meta()["total"].(float64) != 3 || d[0]["userId"] != "ann" || d[0]["role"] != "owner" || d[1]["userId"] != "bob" || d[2]["userId"] != "cid" {
		t.Fatalf("member list %v", l.body)
	}
	if l := h.must(t, 200, "GET", base+"?offset=2&limit=1", "bob", ""); len(l.data()) != 1 || l.data()[0]["userId"] != "cid" {
		t.Fatalf("offset page %v", l.body)
	}
	h.must(t, 422, "DELETE", base+"/ann", "ann", "")
	h.must(t, 404, "DELETE", base+"/eve", "ann", "")
	h.must(t, 204, "DELETE", base+"/bob", "ann", "")
	h.must(t, 404, "GET", "/api/v1/projects/"+p, "bob", "")
	h.must(t, 404, "DELETE", base+"/bob", "ann", "")
	h.must(t, 201, "POST", base, "ann", `{"userId":"bob"}`) // a slot is free again
	h.must(t, 200, "GET", "/api/v1/projects/"+p, "bob", "")

	var versions []int64
	for _, env := range h.store.Events() {
		ev, _ := contracts.Decode(env)
		switch e := ev.(type) {
		case contracts.MemberAdded:
			if e.UserID == "bob" {
				versions = append(versions, e.AggregateVersion)
				if env.AggregateID != contracts.MembershipID(p, "bob") {
					t.Fatalf("aggregate id %s", env.AggregateID)
				}
			}
		case contracts.MemberRemoved:
			versions = append(versions, e.AggregateVersion)
		}
	}
	if fmt.Sprint(versions) != "[1 2 3]" {
		t.Fatalf("membership versions add, kick, re-add: %v", versions)
	}
}

func TestCards(t *testing.T) {
	h := start(t, 500)
	p := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"P"}`).str("id")
	h.must(t, 201, "POST", "/api/v1/projects/"+p+"/members", "ann", `{"userId":"bob"}`)
	base := "/api/v1/projects/" + p + "/cards"
	c := h.must(t, 201, "POST", base, "bob", `{"title":"Login fails","description":"on Safari"}`)
	if c.str("status") != "todo" || c.str("creatorId") != "bob" || c.str("projectId") != p || c.body["totalComment"].(float64) != 0 {
		t.Fatalf("card %v", c.body)
	}
	id := c.str("id")
	for _, body := range []string{
		`{"title":""}`, `{"description":"x"}`, `{"title":"x","status":"doing"}`,
		`{"title":"` + strings.Repeat("é", 201) + `"}`, `{"title":"x","description":"` + strings.Repeat("a", 10_001) + `"}`,
	} {
		h.must(t, 422, "POST", base, "bob", body)
	}
	h.must(t, 201, "POST", base, "bob", `{"title":"`+strings.Repeat("é", 200)+`","status":"in_progress"}`)
	h.must(t, 400, "POST", base, "bob", `{"title":"x","creatorId":"ann"}`)
	h.must(t, 400, "POST", base, "bob", `{"title":`)
	h.must(t, 422, "PATCH", "/api/v1/cards/"+id, "bob", `{"status":"closed"}`)
	h.must(t, 404, "GET", "/api/v1/cards/nope", "bob", "")

	u := h.must(t, 200, "PATCH", "/api/v1/cards/"+id, "ann", `{"status":"done","title":"Login fails badly"}`)
	if u.str("status") != "done" || u.str("title") != "Login fails badly" || u.str("description") != "on Safari" {
		t.Fatalf("patch %v", u.body)
	}
	h.must(t, 200, "PATCH", "/api/v1/cards/"+id, "bob", `{"status":"in_progress"}`)
	upd := h.events(t, contracts.TypeUpdateCard)
	st := h.events(t, contracts.TypeChangeCardStatus)
	if len(upd) != 1 || len(st) != 2 {
		t.Fatalf("events: %d updateCard, %d changeCardStatus", len(upd), len(st))
	}
	s0, s1 := st[0].(contracts.CardStatusChanged), st[1].(contracts.CardStatusChanged)
	if u0 := upd[0].(contracts.CardUpdated); u0.AggregateVersion != 2 || s0.AggregateVersion != 2 || u0.Title != "Login fails badly" {
		t.Fatalf("one PATCH, two events, one version: %+v %+v", u0, s0)
	}
	if s0.From != "todo" || s0.To != "done" || s0.ActorName != "Ann" || s0.ProjectTitle != "P" ||
		s0.Audience.OwnerID != "ann" || fmt.Sprint(s0.Audience.MemberIDs) != "[bob]" || s1.AggregateVersion != 3 || s1.From != "done" {
		t.Fatalf("changeCardStatus %+v %+v", s0, s1)
	}
	nc := h.events(t, contracts.TypeNewCard)[0].(contracts.CardCreated)
	if nc.AggregateVersion != 1 || nc.ActorName != "Bob" || nc.ProjectTitle != "P" || nc.Audience.OwnerID != "ann" {
		t.Fatalf("newCard %+v", nc)
	}
	h.must(t, 204, "DELETE", "/api/v1/cards/"+id, "bob", "")
	h.must(t, 404, "GET", "/api/v1/cards/"+id, "ann", "")
	if d := h.events(t, contracts.TypeDeleteCard)[0].(contracts.CardDeleted); d.AggregateVersion != 4 || d.CardID != id {
		t.Fatalf("deleteCard %+v", d)
	}
}

// TestCursorWalkWithConcurrentChanges walks a card list in pages while cards are
// inserted and deleted between pages: every card present at the start and not deleted
// is seen exactly once.
func TestCursorWalkWithConcurrentChanges(t *testing.T) {
	h := start(t, 500)
	p := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"P"}`).str("id")
	base := "/api/v1/projects/" + p + "/cards"
	var initial []string
	for i := range 25 {
		initial = append(initial, h.must(t, 201, "POST", base, "ann", fmt.Sprintf(`{"title":"c%d"}`, i)).str("id"))
	}
	seen := map[string]int{}
	deleted := map[string]bool{}
	cursor, pages := "", 0
	for {
		q := base + "?limit=4"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := h.must(t, 200, "GET", q, "ann", "")
		for _, c := range r.data() {
			seen[c["id"].(string)]++
		}
		pages++
		// Between pages: a new card, and the deletion of a card not yet seen.
		h.must(t, 201, "POST", base, "ann", fmt.Sprintf(`{"title":"late%d"}`, pages))
		for _, id := range initial {
			if seen[id] == 0 && !deleted[id] {
				h.must(t, 204, "DELETE", "/api/v1/cards/"+id, "ann", "")
				deleted[id] = true
				break
			}
		}
		next, _ := r.meta()["nextCursor"].(string)
		if next == "" {
			if r.meta()["nextCursor"] != nil {
				t.Fatalf("nextCursor must be null on the last page: %v", r.meta())
			}
			break
		}
		cursor = next
		if pages > 50 {
			t.Fatal("the walk does not end")
		}
	}
	for _, id := range initial {
		if !deleted[id] && seen[id] != 1 {
			t.Fatalf("card %s seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("card %s seen %d times", id, n)
		}
	}
}

func TestCardFilterAndCursorErrors(t *testing.T) {
	h := start(t, 500)
	p := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"P"}`).str("id")
	other := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"Q"}`).str("id")
	base := "/api/v1/projects/" + p + "/cards"
	for i := range 5 {
		st := []string{"todo", "done"}[i%2]
		h.must(t, 201, "POST", base, "ann", fmt.Sprintf(`{"title":"c%d","status":"%s"}`, i, st))
	}
	r := h.must(t, 200, "GET", base+"?status=todo&limit=2", "ann", "")
	if len(r.data()) != 2 || r.data()[0]["title"] != "c0" || r.data()[1]["title"] != "c2" {
		t.Fatalf("todo page %v", r.body)
	}
	cur := r.meta()["nextCursor"].(string)
	if r := h.must(t, 200, "GET", base+"?status=todo&limit=2&cursor="+cur, "ann", ""); len(r.data()) != 1 || r.meta()["nextCursor"] != nil {
		t.Fatalf("last todo page %v", r.body)
	}
	h.must(t, 400, "GET", base+"?cursor="+cur, "ann", "")                                        // another filter
	h.must(t, 400, "GET", "/api/v1/projects/"+other+"/cards?status=todo&cursor="+cur, "ann", "") // another project
	h.must(t, 400, "GET", base+"?status=todo&cursor=x"+cur, "ann", "")
	h.must(t, 400, "GET", base+"?status=later", "ann", "")
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x"} {
		h.must(t, 400, "GET", base+q, "ann", "")
		h.must(t, 400, "GET", "/api/v1/projects"+q, "ann", "")
	}
	h.must(t, 400, "GET", "/api/v1/projects?offset=-1", "ann", "")
	h.must(t, 401, "GET", base, "", "")
	h.must(t, 400, "PATCH", "/api/v1/projects/"+p, "ann", `{"ownerId":"bob"}`)
	h.must(t, 422, "PATCH", "/api/v1/projects/"+p, "ann", `{"title":""}`)
	h.must(t, 422, "POST", "/api/v1/projects", "ann", `{"title":"`+strings.Repeat("x", 201)+`"}`)
	if status := h.declaredHugeBody(t, "/api/v1/projects", "ann"); status != 413 {
		t.Fatalf("a body over 1 MiB: %d, want 413", status)
	}
}

// declaredHugeBody declares a 2 MiB body on a raw connection and returns the status
// of the answer. Only the headers are sent: the server refuses the body before
// reading it and closes the connection, which would race with a client still
// writing the body (a reset instead of the 413).
func (h *harness) declaredHugeBody(t *testing.T, path, user string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		path, h.token(t, user), 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestEventsIn feeds newUser and comment events through the bus: the user copy obeys
// the version rule, and totalComment counts live comments exactly, whatever the order
// and however often an event is delivered.
func TestEventsIn(t *testing.T) {
	h := start(t, 500)
	h.publish(t, contracts.UserRegistered{UserID: "zed", Name: "Zed v2", Email: "zed@example.com", AggregateVersion: 2}, "zed")
	h.publish(t, contracts.UserRegistered{UserID: "zed", Name: "Zed v1", Email: "old@example.com", AggregateVersion: 1}, "zed")
	p := h.must(t, 201, "POST", "/api/v1/projects", "ann", `{"title":"P"}`).str("id")
	eventually(t, "zed known", func() bool {
		return h.call(t, "POST", "/api/v1/projects/"+p+"/members", "ann", `{"userId":"zed"}`).status == 201
	})
	if m := h.must(t, 200, "GET", "/api/v1/projects/"+p+"/members", "ann", "").data()[1]; m["name"] != "Zed v2" {
		t.Fatalf("an older newUser overwrote a newer copy: %v", m)
	}

	card := h.must(t, 201, "POST", "/api/v1/projects/"+p+"/cards", "ann", `{"title":"c"}`).str("id")
	total := func() float64 {
		return h.must(t, 200, "GET", "/api/v1/cards/"+card, "ann", "").body["totalComment"].(float64)
	}
	c1 := h.publish(t, contracts.CommentCreated{CommentID: "k1", CardID: card, ProjectID: p, AggregateVersion: 1}, "k1")
	if _, err := h.bus.Publish(context.Background(), c1); err != nil { // a redelivery
		t.Fatal(err)
	}
	h.publish(t, contracts.CommentCreated{CommentID: "k2", CardID: card, ProjectID: p, AggregateVersion: 1}, "k2")
	// k3's deletion arrives before its creation: it never counts.
	h.publish(t, contracts.CommentDeleted{CommentID: "k3", CardID: card, ProjectID: p, AggregateVersion: 2}, "k3")
	h.publish(t, contracts.CommentCreated{CommentID: "k3", CardID: card, ProjectID: p, AggregateVersion: 1}, "k3")
	eventually(t, "two live comments", func() bool { return total() == 2 })
	h.publish(t, contracts.CommentDeleted{CommentID: "k2", CardID: card, ProjectID: p, AggregateVersion: 2}, "k2")
	h.publish(t, contracts.CommentDeleted{CommentID: "k2", CardID: card, ProjectID: p, AggregateVersion: 2}, "k2")
	eventually(t, "one live comment", func() bool { return total() == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := total(); n != 1 {
		t.Fatalf("totalComment %v", n)
	}
	if n := h.bus.DeadLetters("project"); len(n) != 0 {
		t.Fatalf("dead letters %v", n)
	}
}
