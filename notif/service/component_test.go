package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/memory"
	"github.com/bugtracker/bugtracker/notif/adapters/memrepo"
	"github.com/bugtracker/bugtracker/notif/service"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/servicetest"
)

type harness struct {
	base   string
	bus    *memory.Bus
	store  *memrepo.Store
	revs   *authn.MemoryRevocations
	signer *authn.Signer
}

func start(t *testing.T) *harness {
	t.Helper()
	tokens := servicetest.NewTokens(t)
	cfg := service.Config{Common: tokens.Common}
	h := &harness{bus: memory.New(), store: memrepo.New(), revs: authn.NewMemoryRevocations()}
	svc, err := service.BuildForComponentTest(cfg, servicetest.Discard(), h.store, h.bus, h.revs)
	if err != nil {
		t.Fatal(err)
	}
	h.base = servicetest.Start(t, svc.HTTP, svc.Components())
	h.signer = tokens.Signer
	return h
}

func (h *harness) token(t *testing.T, userID string) string {
	tok, _, err := h.signer.Issue(userID, "session-"+userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
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

type result struct {
	status int
	header http.Header
	body   map[string]any
}

func (h *harness) call(t *testing.T, method, path, token, body string) result {
	t.Helper()
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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

// waitList polls until the caller's list holds want items (events are asynchronous).
func (h *harness) waitList(t *testing.T, token, query string, want int) result {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.call(t, "GET", "/api/v1/notifications"+query, token, "")
		if r.status == 200 && int(r.body["meta"].(map[string]any)["total"].(float64)) == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("list never reached %d items: %d %v", want, r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRegistrationNotificationAppears(t *testing.T) {
	h := start(t)
	h.publish(t, contracts.UserRegistered{UserID: "u1", Name: "Ann", Email: "ann@example.com", RegisteredAt: time.Now()}, "u1")
	welcome := h.publish(t, contracts.NotificationRequested{RecipientIDs: []string{"u1"}, Kind: contracts.KindRegistration, Message: "Welcome, Ann!", ActorID: "u1"}, "u1")
	// The same event delivered again (a replay after Redis loss) must not duplicate.
	if _, err := h.bus.Publish(context.Background(), welcome); err != nil {
		t.Fatal(err)
	}

	r := h.waitList(t, h.token(t, "u1"), "", 1)
	n := r.body["data"].([]any)[0].(map[string]any)
	if n["type"] != "registration" || n["userId"] != "u1" || n["message"] != "Welcome, Ann!" || n["read"] != false {
		t.Fatalf("unexpected notification %v", n)
	}
	meta := r.body["meta"].(map[string]any)
	if meta["unread"].(float64) != 1 || meta["page"].(float64) != 1 || meta["limit"].(float64) != 20 || meta["totalPages"].(float64) != 1 {
		t.Fatalf("meta %v", meta)
	}
	if _, ok := h.store.User("u1"); !ok {
		t.Fatal("newUser not applied to the local user copies")
	}
	// Another user sees nothing of u1's.
	if r := h.call(t, "GET", "/api/v1/notifications", h.token(t, "u2"), ""); r.body["meta"].(map[string]any)["total"].(float64) != 0 {
		t.Fatalf("u2 sees %v", r.body)
	}
	time.Sleep(100 * time.Millisecond) // let a wrongly duplicated delivery land, if any
	h.waitList(t, h.token(t, "u1"), "", 1)
}

func TestPagingReadAndUnread(t *testing.T) {
	h := start(t)
	for i := range 5 {
		h.publish(t, contracts.NotificationRequested{
			RecipientIDs: []string{"u1", "u2"}, Kind: contracts.KindCardCreated,
			Message: fmt.Sprintf("card %d", i), ActorID: "u3", ProjectID: "p1", CardID: fmt.Sprintf("c%d", i),
		}, "p1")
	}
	tok := h.token(t, "u1")
	r := h.waitList(t, tok, "?page=2&limit=2", 5)
	data := r.body["data"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["message"] != "card 2" {
		t.Fatalf("page 2 newest first: %v", data)
	}
	if r.body["meta"].(map[string]any)["totalPages"].(float64) != 3 {
		t.Fatalf("meta %v", r.body["meta"])
	}
	id := data[0].(map[string]any)["id"].(string)

	if r := h.call(t, "PATCH", "/api/v1/notifications/"+id, h.token(t, "u2"), `{"read":true}`); r.status != 404 {
		t.Fatalf("another user's notification: %d", r.status)
	}
	if r := h.call(t, "PATCH", "/api/v1/notifications/"+id, tok, `{"read":false}`); r.status != 422 {
		t.Fatalf("read:false: %d", r.status)
	}
	if r := h.call(t, "PATCH", "/api/v1/notifications/"+id, tok, `{"read":true,"userId":"u2"}`); r.status != 400 {
		t.Fatalf("unknown field: %d", r.status)
	}
	r = h.call(t, "PATCH", "/api/v1/notifications/"+id, tok, `{"read":true}`)
	if r.status != 200 || r.body["read"] != true || r.body["cardId"] != "c2" {
		t.Fatalf("mark read: %d %v", r.status, r.body)
	}
	if r := h.waitList(t, tok, "?unread=true", 4); r.body["meta"].(map[string]any)["unread"].(float64) != 4 {
		t.Fatalf("unread count %v", r.body["meta"])
	}
	h.waitList(t, tok, "?unread=false", 1)
	if r := h.call(t, "POST", "/api/v1/notifications/read-all", tok, ""); r.status != 204 {
		t.Fatalf("read-all: %d", r.status)
	}
	h.waitList(t, tok, "?unread=true", 0)
	if r := h.waitList(t, h.token(t, "u2"), "?unread=true", 5); r.status != 200 {
		t.Fatal("u2's unread changed by u1's read-all")
	}
}

func TestAuthAndQueryErrors(t *testing.T) {
	h := start(t)
	tok := h.token(t, "u1")
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=abc", "?page=0", "?unread=maybe"} {
		if r := h.call(t, "GET", "/api/v1/notifications"+q, tok, ""); r.status != 400 {
			t.Errorf("%s: status %d", q, r.status)
		}
	}
	if r := h.call(t, "GET", "/api/v1/notifications", "", ""); r.status != 401 || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no token: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := h.call(t, "GET", "/api/v1/notifications", tok+"x", ""); r.status != 401 {
		t.Fatalf("bad signature: %d", r.status)
	}
	revoked, pr, _ := h.signer.Issue("u1", "s1", time.Now())
	if r := h.call(t, "GET", "/api/v1/notifications", revoked, ""); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	_ = h.revs.Revoke(context.Background(), pr.TokenID, time.Minute)
	if r := h.call(t, "GET", "/api/v1/notifications", revoked, ""); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
}

// seen is one notification as the list shows it.
type seen struct{ typ, message, actor, project, card, comment string }

func (h *harness) listOf(t *testing.T, user string) []seen {
	t.Helper()
	r := h.call(t, "GET", "/api/v1/notifications?limit=100", h.token(t, user), "")
	if r.status != 200 {
		t.Fatalf("%s's list: %d %v", user, r.status, r.body)
	}
	var out []seen
	for _, d := range r.body["data"].([]any) {
		n := d.(map[string]any)
		if n["userId"] != user {
			t.Fatalf("%s sees %v", user, n)
		}
		str := func(k string) string { s, _ := n[k].(string); return s }
		out = append(out, seen{str("type"), str("message"), str("actorId"), str("projectId"), str("cardId"), str("commentId")})
	}
	return out
}

// TestProjectCardCommentNotifications drives notif with the events the project and
// comment services publish, out of order and each delivered twice, and checks every
// user's list: who is told (the audience of each event, minus the actor for card and
// comment events), the wording, the ids, and that a member added after an event or
// kicked before it is not told.
func TestProjectCardCommentNotifications(t *testing.T) {
	h := start(t)
	now := time.Now().UTC()
	at := func(i int) time.Time { return now.Add(time.Duration(i) * time.Second) }
	team := contracts.Audience{OwnerID: "owner", MemberIDs: []string{"m1", "m2"}}
	afterKick := contracts.Audience{OwnerID: "owner", MemberIDs: []string{"m1"}}
	atDeletion := contracts.Audience{OwnerID: "owner", MemberIDs: []string{"m1", "m3"}}

	events := []struct {
		e   eventbus.Event
		agg string
		at  time.Time
	}{
		{contracts.ProjectCreated{ProjectID: "p1", Title: "Web app", OwnerID: "owner", OwnerName: "Olga", CreatedAt: at(0), AggregateVersion: 1}, "p1", at(0)},
		{contracts.MemberAdded{ProjectID: "p1", UserID: "m1", Role: "member", AddedBy: "owner", AddedAt: at(1), AggregateVersion: 1}, "p1/m1", at(1)},
		{contracts.CardCreated{CardID: "c1", ProjectID: "p1", Title: "Login fails on Safari", Status: "todo", CreatorID: "m1", CreatedAt: at(2), AggregateVersion: 1, ProjectTitle: "Web app", ActorName: "Ann", Audience: team}, "c1", at(2)},
		{contracts.CardUpdated{CardID: "c1", ProjectID: "p1", Title: "Login fails on Safari", Status: "todo", UpdatedBy: "m1", UpdatedAt: at(3), AggregateVersion: 2}, "c1", at(3)},
		{contracts.CardStatusChanged{CardID: "c1", ProjectID: "p1", Title: "Login fails on Safari", From: "todo", To: "done", ChangedBy: "m1", ChangedAt: at(4), AggregateVersion: 3, ProjectTitle: "Web app", ActorName: "Ann", Audience: team}, "c1", at(4)},
		{contracts.CommentCreated{CommentID: "k1", CardID: "c1", ProjectID: "p1", AuthorID: "owner", Body: "Thanks!", CreatedAt: at(5), AggregateVersion: 1, CardTitle: "Login fails on Safari", ProjectTitle: "Web app", ActorName: "Olga", Audience: team}, "k1", at(5)},
		// m2 was kicked (memberRemoved) before this card: its audience lacks m2.
		{contracts.MemberRemoved{ProjectID: "p1", UserID: "m2", RemovedBy: "owner", RemovedAt: at(6), AggregateVersion: 2}, "p1/m2", at(6)},
		{contracts.CardCreated{CardID: "c2", ProjectID: "p1", Title: "Dark mode", Status: "todo", CreatorID: "owner", CreatedAt: at(7), AggregateVersion: 1, ProjectTitle: "Web app", ActorName: "Olga", Audience: afterKick}, "c2", at(7)},
		// A status "change" to the same status tells nobody.
		{contracts.CardStatusChanged{CardID: "c2", ProjectID: "p1", Title: "Dark mode", From: "todo", To: "todo", ChangedBy: "owner", ChangedAt: at(8), AggregateVersion: 2, ProjectTitle: "Web app", ActorName: "Olga", Audience: afterKick}, "c2", at(8)},
		// m3 joined after everything above, and only sees the deletion.
		{contracts.ProjectDeleted{ProjectID: "p1", Title: "Web app", OwnerID: "owner", DeletedBy: "owner", ActorName: "Olga", Audience: atDeletion, DeletedAt: at(9), AggregateVersion: 5}, "p1", at(9)},
	}
	envs := make([]eventbus.Envelope, len(events))
	for i, ev := range events {
		env, err := contracts.New(ev.e, ev.agg, ev.at)
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = env
	}
	// Newest first, then everything again: order and redelivery must not matter.
	for i := len(envs) - 1; i >= 0; i-- {
		if _, err := h.bus.Publish(context.Background(), envs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, env := range envs {
		if _, err := h.bus.Publish(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string][]seen{
		"owner": {
			{"project_deleted", "Olga deleted the project 'Web app'", "owner", "p1", "", ""},
			{"card_status_changed", "Ann moved 'Login fails on Safari' to done in 'Web app'", "m1", "p1", "c1", ""},
			{"card_created", "Ann created 'Login fails on Safari' in 'Web app'", "m1", "p1", "c1", ""},
			{"project_created", "Olga created the project 'Web app'", "owner", "p1", "", ""},
		},
		"m1": {
			{"project_deleted", "Olga deleted the project 'Web app'", "owner", "p1", "", ""},
			{"card_created", "Olga created 'Dark mode' in 'Web app'", "owner", "p1", "c2", ""},
			{"comment_created", `Olga commented on 'Login fails on Safari' in 'Web app': "Thanks!"`, "owner", "p1", "c1", "k1"},
		},
		"m2": {
			{"comment_created", `Olga commented on 'Login fails on Safari' in 'Web app': "Thanks!"`, "owner", "p1", "c1", "k1"},
			{"card_status_changed", "Ann moved 'Login fails on Safari' to done in 'Web app'", "m1", "p1", "c1", ""},
			{"card_created", "Ann created 'Login fails on Safari' in 'Web app'", "m1", "p1", "c1", ""},
		},
		"m3": {
			{"project_deleted", "Olga deleted the project 'Web app'", "owner", "p1", "", ""},
		},
	}
	total := 0
	for _, w := range want {
		total += len(w)
	}
	// Wait until every expected notification is there, then a little longer, so
	// that a duplicate from the second deliveries would be seen.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for u := range want {
			n += len(h.listOf(t, u))
		}
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let a wrongly duplicated delivery land, if any
	for u, w := range want {
		if got := h.listOf(t, u); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s's list:\n got  %v\n want %v", u, got, w)
		}
	}
}
