package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/comment/adapters/memrepo"
	"github.com/bugtracker/bugtracker/comment/service"
	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/memory"
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
	cfg := service.Config{
		Common:       tokens.Common,
		CursorSecret: "component-test-cursor-secret-0123456789",
	}
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
	t.Helper()
	tok, _, err := h.signer.Issue(userID, "session-"+userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (h *harness) publish(t *testing.T, e contracts.Aggregated) {
	t.Helper()
	id, _ := e.AggregateRef()
	env, err := contracts.New(e, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.bus.Publish(context.Background(), env); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (h *harness) call(t *testing.T, method, path, token, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
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
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// until repeats the request until it answers want (events are asynchronous) and
// returns that answer and how long it took; it fails after 5 s.
func (h *harness) until(t *testing.T, want int, method, path, token, body string) (result, time.Duration) {
	t.Helper()
	begin := time.Now()
	for {
		r := h.call(t, method, path, token, body)
		if r.status == want {
			return r, time.Since(begin)
		}
		if r.status >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.raw)
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatalf("%s %s never answered %d: last %d %s", method, path, want, r.status, r.raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// events returns the stored events of type typ, decoded.
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

// project publishes a project owned by "ann" with members "bob" and "carol", and a
// card c1 in it; "dave" is a registered stranger. It returns once the card is usable.
func (h *harness) project(t *testing.T) {
	t.Helper()
	for _, u := range []string{"ann", "bob", "carol", "dave"} {
		h.publish(t, contracts.UserRegistered{UserID: u, Name: strings.ToUpper(u[:1]) + u[1:], AggregateVersion: 1})
	}
	h.publish(t, contracts.ProjectCreated{ProjectID: "p1", Title: "Apollo", OwnerID: "ann", AggregateVersion: 1})
	h.publish(t, contracts.MemberAdded{ProjectID: "p1", UserID: "bob", Role: "member", AggregateVersion: 1})
	h.publish(t, contracts.MemberAdded{ProjectID: "p1", UserID: "carol", Role: "member", AggregateVersion: 1})
	h.publish(t, contracts.CardCreated{CardID: "c1", ProjectID: "p1", Title: "Crash on start", Status: "todo", AggregateVersion: 1})
	h.until(t, 200, "GET", "/api/v1/cards/c1/comments", h.token(t, "carol"), "")
}

func TestCommentLifecycleAndPermissions(t *testing.T) {
	h := start(t)
	h.project(t)
	ann, bob, carol, dave := h.token(t, "ann"), h.token(t, "bob"), h.token(t, "carol"), h.token(t, "dave")

	r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"It crashes here too"}`)
	if r.status != 201 || r.header.Get("Location") != "/api/v1/comments/"+fmt.Sprint(r.body["id"]) {
		t.Fatalf("create: %d %v %s", r.status, r.header, r.raw)
	}
	if r.body["cardId"] != "c1" || r.body["projectId"] != "p1" || r.body["authorId"] != "bob" || r.body["body"] != "It crashes here too" {
		t.Fatalf("created comment %v", r.body)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.body["createdAt"].(string)); err != nil || !strings.HasSuffix(r.body["createdAt"].(string), "Z") {
		t.Fatalf("createdAt %v: %v", r.body["createdAt"], err)
	}
	bobsID := r.body["id"].(string)

	created := h.events(t, contracts.TypeNewComment)
	if len(created) != 1 {
		t.Fatalf("newComment events: %d", len(created))
	}
	ev := created[0].(contracts.CommentCreated)
	if ev.CommentID != bobsID || ev.CardID != "c1" || ev.ProjectID != "p1" || ev.AuthorID != "bob" || ev.AggregateVersion != 1 ||
		ev.CardTitle != "Crash on start" || ev.ProjectTitle != "Apollo" || ev.ActorName != "Bob" ||
		ev.Audience.OwnerID != "ann" || strings.Join(ev.Audience.MemberIDs, ",") != "bob,carol" {
		t.Fatalf("newComment %+v", ev)
	}

	// The owner comments too; everyone of the project sees both, oldest first.
	r = h.call(t, "POST", "/api/v1/cards/c1/comments", ann, `{"body":"Looking into it"}`)
	if r.status != 201 {
		t.Fatalf("owner create: %d %s", r.status, r.raw)
	}
	annsID := r.body["id"].(string)
	for _, tok := range []string{ann, bob, carol} {
		l := h.call(t, "GET", "/api/v1/cards/c1/comments", tok, "")
		data := l.body["data"].([]any)
		if l.status != 200 || len(data) != 2 || data[0].(map[string]any)["id"] != bobsID || data[1].(map[string]any)["id"] != annsID {
			t.Fatalf("list: %d %s", l.status, l.raw)
		}
		if meta := l.body["meta"].(map[string]any); meta["nextCursor"] != nil || meta["limit"].(float64) != 20 {
			t.Fatalf("meta %v", meta)
		}
		if g := h.call(t, "GET", "/api/v1/comments/"+bobsID, tok, ""); g.status != 200 || g.body["body"] != "It crashes here too" {
			t.Fatalf("detail: %d %s", g.status, g.raw)
		}
	}

	// A stranger learns nothing: every route is 404, and nothing changes.
	before := len(h.store.Events())
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/cards/c1/comments", `{"body":"hi"}`},
		{"GET", "/api/v1/cards/c1/comments", ""},
		{"GET", "/api/v1/comments/" + bobsID, ""},
		{"DELETE", "/api/v1/comments/" + bobsID, ""},
		{"POST", "/api/v1/cards/nope/comments", `{"body":"hi"}`},
		{"GET", "/api/v1/comments/nope", ""},
	} {
		if r := h.call(t, c.method, c.path, dave, c.body); r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("stranger %s %s: %d %s", c.method, c.path, r.status, r.raw)
		}
	}
	// A member may not delete another member's comment, nor the owner's.
	for _, id := range []string{bobsID, annsID} {
		if r := h.call(t, "DELETE", "/api/v1/comments/"+id, carol, ""); r.status != 403 || r.body["status"].(float64) != 403 {
			t.Fatalf("member deleting another's comment: %d %s", r.status, r.raw)
		}
	}
	if len(h.store.Events()) != before || h.store.CommentCount() != 2 {
		t.Fatal("a refused request changed something")
	}

	// The owner deletes a member's comment.
	if r := h.call(t, "DELETE", "/api/v1/comments/"+bobsID, ann, ""); r.status != 204 || r.raw != "" {
		t.Fatalf("owner delete: %d %s", r.status, r.raw)
	}
	deleted := h.events(t, contracts.TypeDeleteComment)
	if len(deleted) != 1 {
		t.Fatalf("deleteComment events: %d", len(deleted))
	}
	if d := deleted[0].(contracts.CommentDeleted); d.CommentID != bobsID || d.CardID != "c1" || d.ProjectID != "p1" ||
		d.AuthorID != "bob" || d.DeletedBy != "ann" || d.AggregateVersion != 2 || d.DeletedAt.IsZero() {
		t.Fatalf("deleteComment %+v", d)
	}
	if r := h.call(t, "GET", "/api/v1/comments/"+bobsID, bob, ""); r.status != 404 {
		t.Fatalf("deleted comment: %d", r.status)
	}
	if r := h.call(t, "DELETE", "/api/v1/comments/"+bobsID, ann, ""); r.status != 404 {
		t.Fatalf("second delete: %d", r.status)
	}
	// An author deletes their own comment (here the owner's own).
	if r := h.call(t, "DELETE", "/api/v1/comments/"+annsID, ann, ""); r.status != 204 {
		t.Fatalf("author delete: %d %s", r.status, r.raw)
	}
	r = h.call(t, "POST", "/api/v1/cards/c1/comments", carol, `{"body":"mine"}`)
	if r := h.call(t, "DELETE", "/api/v1/comments/"+r.body["id"].(string), carol, ""); r.status != 204 {
		t.Fatalf("member deleting own comment: %d %s", r.status, r.raw)
	}
	if n := len(h.events(t, contracts.TypeDeleteComment)); n != 3 || h.store.CommentCount() != 0 {
		t.Fatalf("deleteComment events %d, comments left %d", n, h.store.CommentCount())
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	h := start(t)
	h.project(t)
	bob := h.token(t, "bob")
	long := strings.Repeat("é", 5001)
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"body":""}`, 422, "body"},
		{`{"body":"   \n"}`, 422, "body"},
		{`{}`, 422, "body"},
		{`{"body":null}`, 422, "body"},
		{`{"body":5}`, 422, "body"},
		{`{"body":"` + long + `"}`, 422, "body"},
		{`{"body":"hi","authorId":"ann"}`, 400, ""},
		{`{"body":"hi"`, 400, ""},
		{`[]`, 400, ""},
		{``, 400, ""},
		{`{"body":"a"} {"body":"b"}`, 400, ""},
	}
	for _, c := range cases {
		r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, c.body)
		if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%.40s: %d %s", c.body, r.status, r.raw)
			continue
		}
		if c.field != "" {
			errs, _ := r.body["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != c.field {
				t.Errorf("%.40s: errors %v", c.body, r.body["errors"])
			}
		}
	}
	if h.store.CommentCount() != 0 || len(h.events(t, contracts.TypeNewComment)) != 0 {
		t.Fatal("bad input stored something")
	}
	if r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"`+strings.Repeat("é", 5000)+`"}`); r.status != 201 {
		t.Fatalf("5000 characters: %d %s", r.status, r.raw)
	}

	for _, q := range []string{"?limit=0", "?limit=101", "?limit=abc", "?cursor=garbage", "?cursor=a.b"} {
		if r := h.call(t, "GET", "/api/v1/cards/c1/comments"+q, bob, ""); r.status != 400 {
			t.Errorf("list%s: %d %s", q, r.status, r.raw)
		}
	}
	if r := h.call(t, "GET", "/api/v1/cards/c1/comments", "", ""); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := h.call(t, "GET", path, "", ""); r.status != 200 || r.raw == "" {
			t.Errorf("%s: %d", path, r.status)
		}
	}
	if r := h.call(t, "GET", "/metrics", "", ""); !strings.Contains(r.raw, "http_requests_total") || !strings.Contains(r.raw, "/api/v1/cards/:id/comments") {
		t.Errorf("metrics lack the request counter by route: %.300s", r.raw)
	}
	if r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob+"x", `{"body":"hi"}`); r.status != 401 {
		t.Fatalf("bad signature: %d", r.status)
	}
	tok, p, _ := h.signer.Issue("bob", "s2", time.Now())
	_ = h.revs.Revoke(context.Background(), p.TokenID, time.Minute)
	if r := h.call(t, "GET", "/api/v1/cards/c1/comments", tok, ""); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
}

func TestCursorWalkIsStableUnderConcurrentInserts(t *testing.T) {
	h := start(t)
	h.project(t)
	h.publish(t, contracts.CardCreated{CardID: "c2", ProjectID: "p1", Title: "Other", AggregateVersion: 1})
	bob, carol := h.token(t, "bob"), h.token(t, "carol")
	var existing []string
	for i := range 45 {
		r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, fmt.Sprintf(`{"body":"comment %d"}`, i))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		existing = append(existing, r.body["id"].(string))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.call(t, "POST", "/api/v1/cards/c1/comments", carol, fmt.Sprintf(`{"body":"late %d"}`, i))
		}
	})
	seen := map[string]int{}
	var walked []string
	cursor := ""
	var firstCursor string
	for pages := 0; ; pages++ {
		q := "?limit=20"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := h.call(t, "GET", "/api/v1/cards/c1/comments"+q, bob, "")
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.raw)
		}
		for _, d := range r.body["data"].([]any) {
			id := d.(map[string]any)["id"].(string)
			seen[id]++
			walked = append(walked, id)
		}
		next, _ := r.body["meta"].(map[string]any)["nextCursor"].(string)
		if next == "" || pages > 100 {
			break
		}
		if firstCursor == "" {
			firstCursor = next
		}
		cursor = next
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for i, id := range existing {
		if seen[id] != 1 {
			t.Fatalf("existing comment %d seen %d times", i, seen[id])
		}
		if walked[i] != id {
			t.Fatalf("position %d: %s, want %s (oldest first)", i, walked[i], id)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
	// The cursor belongs to c1's list: on another card, or altered, it is refused.
	if r := h.call(t, "GET", "/api/v1/cards/c2/comments?cursor="+url.QueryEscape(firstCursor), bob, ""); r.status != 400 {
		t.Fatalf("foreign cursor: %d %s", r.status, r.raw)
	}
	tampered := []byte(firstCursor)
	tampered[3] ^= 1
	if r := h.call(t, "GET", "/api/v1/cards/c1/comments?cursor="+url.QueryEscape(string(tampered)), bob, ""); r.status != 400 {
		t.Fatalf("tampered cursor: %d %s", r.status, r.raw)
	}
}

func TestCommentOnCardBeforeItsCopyArrives(t *testing.T) {
	h := start(t)
	h.project(t)
	bob := h.token(t, "bob")
	// c9's newCard has not arrived: 404, never 403 or 5xx.
	for range 3 {
		if r := h.call(t, "POST", "/api/v1/cards/c9/comments", bob, `{"body":"early"}`); r.status != 404 {
			t.Fatalf("before the copy: %d %s", r.status, r.raw)
		}
	}
	// The copy catches up (here an updateCard overtakes the newCard): it succeeds.
	h.publish(t, contracts.CardUpdated{CardID: "c9", ProjectID: "p1", Title: "Late card v2", AggregateVersion: 2})
	r, _ := h.until(t, 201, "POST", "/api/v1/cards/c9/comments", bob, `{"body":"now"}`)
	h.publish(t, contracts.CardCreated{CardID: "c9", ProjectID: "p1", Title: "Late card", AggregateVersion: 1})
	if r.body["cardId"] != "c9" {
		t.Fatalf("created %v", r.body)
	}
	// A card whose project copy is missing is 404 as well.
	h.publish(t, contracts.CardCreated{CardID: "c10", ProjectID: "p-unknown", Title: "x", AggregateVersion: 1})
	time.Sleep(50 * time.Millisecond)
	if r := h.call(t, "POST", "/api/v1/cards/c10/comments", bob, `{"body":"x"}`); r.status != 404 {
		t.Fatalf("card of an unknown project: %d", r.status)
	}
	// The stale newCard did not overwrite the newer title.
	h.call(t, "POST", "/api/v1/cards/c9/comments", bob, `{"body":"again"}`)
	evs := h.events(t, contracts.TypeNewComment)
	if last := evs[len(evs)-1].(contracts.CommentCreated); last.CardTitle != "Late card v2" {
		t.Fatalf("card title %q: an older newCard overwrote the copy", last.CardTitle)
	}
}

func TestKickedMemberRefusedWithinOneSecond(t *testing.T) {
	h := start(t)
	h.project(t)
	bob := h.token(t, "bob")
	if r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"before"}`); r.status != 201 {
		t.Fatalf("member: %d", r.status)
	}
	commentID := h.call(t, "GET", "/api/v1/cards/c1/comments", bob, "").body["data"].([]any)[0].(map[string]any)["id"].(string)
	h.publish(t, contracts.MemberRemoved{ProjectID: "p1", UserID: "bob", AggregateVersion: 2})
	_, took := h.until(t, 404, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"after"}`)
	if took > time.Second {
		t.Fatalf("kicked member refused only after %v", took)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/cards/c1/comments"}, {"GET", "/api/v1/comments/" + commentID}, {"DELETE", "/api/v1/comments/" + commentID},
	} {
		if r := h.call(t, c.method, c.path, bob, ""); r.status != 404 {
			t.Fatalf("kicked member %s %s: %d", c.method, c.path, r.status)
		}
	}
	// A late memberAdded of the old membership does not bring access back...
	h.publish(t, contracts.MemberAdded{ProjectID: "p1", UserID: "bob", AggregateVersion: 1})
	time.Sleep(50 * time.Millisecond)
	if r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"late add"}`); r.status != 404 {
		t.Fatalf("stale memberAdded restored access: %d", r.status)
	}
	// ...and the owner no longer counts bob in the audience; a re-add (newer) does.
	h.call(t, "POST", "/api/v1/cards/c1/comments", h.token(t, "ann"), `{"body":"owner"}`)
	evs := h.events(t, contracts.TypeNewComment)
	if aud := evs[len(evs)-1].(contracts.CommentCreated).Audience; strings.Join(aud.MemberIDs, ",") != "carol" {
		t.Fatalf("audience after the kick: %v", aud)
	}
	h.publish(t, contracts.MemberAdded{ProjectID: "p1", UserID: "bob", AggregateVersion: 3})
	h.until(t, 201, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"back"}`)
}

func TestDeletedCardsAndProjectsTakeTheirComments(t *testing.T) {
	h := start(t)
	h.project(t)
	h.publish(t, contracts.CardCreated{CardID: "c2", ProjectID: "p1", Title: "Second", AggregateVersion: 1})
	bob := h.token(t, "bob")
	h.until(t, 201, "POST", "/api/v1/cards/c2/comments", bob, `{"body":"on c2"}`)
	r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"on c1"}`)
	onC1 := r.body["id"].(string)
	events := len(h.store.Events())

	h.publish(t, contracts.CardDeleted{CardID: "c1", ProjectID: "p1", DeletedBy: "ann", AggregateVersion: 3})
	h.until(t, 404, "GET", "/api/v1/cards/c1/comments", bob, "")
	if r := h.call(t, "GET", "/api/v1/comments/"+onC1, bob, ""); r.status != 404 {
		t.Fatalf("comment of a deleted card: %d", r.status)
	}
	// A late update (older than the deletion, or not) does not resurrect the card.
	h.publish(t, contracts.CardUpdated{CardID: "c1", ProjectID: "p1", Title: "edited", AggregateVersion: 2})
	h.publish(t, contracts.CardStatusChanged{CardID: "c1", ProjectID: "p1", Title: "edited", To: "done", AggregateVersion: 9})
	time.Sleep(50 * time.Millisecond)
	if r := h.call(t, "POST", "/api/v1/cards/c1/comments", bob, `{"body":"zombie"}`); r.status != 404 {
		t.Fatalf("comment on a deleted card: %d", r.status)
	}
	if h.store.CommentCount() != 1 {
		t.Fatalf("comments left: %d", h.store.CommentCount())
	}

	h.publish(t, contracts.ProjectDeleted{ProjectID: "p1", Title: "Apollo", OwnerID: "ann", DeletedBy: "ann", AggregateVersion: 2})
	h.until(t, 404, "GET", "/api/v1/cards/c2/comments", h.token(t, "ann"), "")
	h.publish(t, contracts.ProjectUpdated{ProjectID: "p1", Title: "Back?", OwnerID: "ann", AggregateVersion: 5})
	time.Sleep(50 * time.Millisecond)
	if r := h.call(t, "POST", "/api/v1/cards/c2/comments", h.token(t, "ann"), `{"body":"zombie"}`); r.status != 404 {
		t.Fatalf("comment in a deleted project: %d", r.status)
	}
	if h.store.CommentCount() != 0 {
		t.Fatalf("comments left after deleteProject: %d", h.store.CommentCount())
	}
	// The deletions publish nothing.
	if n := len(h.store.Events()); n != events {
		t.Fatalf("deleteCard/deleteProject published %d events", n-events)
	}
}
