package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/redisstream"
)

// publish puts events on the system's streams as the project service would.
func (s *system) publish(t *testing.T, events ...contracts.Aggregated) {
	t.Helper()
	pub, err := redisstream.NewPublisher(s.redis, redisstream.PublisherConfig{Prefix: s.prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		id, _ := e.AggregateRef()
		env, err := contracts.New(e, id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually repeats the request until it answers want, within limit.
func (s *system) eventually(t *testing.T, limit time.Duration, want int, method, path, token, body string) (reply, time.Duration) {
	t.Helper()
	begin := time.Now()
	for {
		r := s.call(t, method, path, token, body)
		if r.status == want {
			return r, time.Since(begin)
		}
		if r.status >= 500 && r.status != 502 {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.raw)
		}
		if time.Since(begin) > limit {
			t.Fatalf("%s %s never answered %d within %v: %d %s", method, path, want, limit, r.status, r.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamEvents reads every envelope of a family's stream.
func (s *system) streamEvents(t *testing.T, family string) []eventbus.Envelope {
	t.Helper()
	entries, err := s.redis.XRange(context.Background(), eventbus.StreamKey(s.prefix, family), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []eventbus.Envelope
	for _, e := range entries {
		for _, v := range e.Values {
			var env eventbus.Envelope
			if str, ok := v.(string); ok && json.Unmarshal([]byte(str), &env) == nil && env.ID != "" {
				out = append(out, env)
			}
		}
	}
	return out
}

// TestCommentsThroughGateway drives the comment service as a client would, with the
// project and card events a project service would publish put on the streams: the
// users' copies come from auth's real newUser events.
func TestCommentsThroughGateway(t *testing.T) {
	s := startSystem(t)
	annID, ann := s.user(t, "Ann")
	bobID, bob := s.user(t, "Bob")
	_, carol := s.user(t, "Carol")
	s.publish(t,
		contracts.ProjectCreated{ProjectID: "p-e2e", Title: "Apollo", OwnerID: annID, AggregateVersion: 1},
		contracts.MemberAdded{ProjectID: "p-e2e", UserID: bobID, Role: "member", AggregateVersion: 1},
	)
	// The card's copy has not arrived: 404, never 403 or 5xx; then it arrives.
	if r := s.call(t, "POST", "/api/v1/cards/c-e2e/comments", bob, `{"body":"early"}`); r.status != 404 {
		t.Fatalf("before the card: %d %s", r.status, r.raw)
	}
	s.publish(t, contracts.CardCreated{CardID: "c-e2e", ProjectID: "p-e2e", Title: "Crash", AggregateVersion: 1})
	r, took := s.eventually(t, 5*time.Second, 201, "POST", "/api/v1/cards/c-e2e/comments", bob, `{"body":"It crashes"}`)
	t.Logf("card copy usable %v after its event", took.Round(time.Millisecond))
	if r.header.Get("Location") != "/api/v1/comments/"+r.body["id"].(string) || r.body["authorId"] != bobID {
		t.Fatalf("created: %v %s", r.header, r.raw)
	}
	commentID := r.body["id"].(string)
	if r := s.call(t, "GET", "/api/v1/comments/"+commentID, ann, ""); r.status != 200 || r.body["body"] != "It crashes" {
		t.Fatalf("owner reads: %d %s", r.status, r.raw)
	}
	if r := s.call(t, "GET", "/api/v1/cards/c-e2e/comments", carol, ""); r.status != 404 {
		t.Fatalf("stranger lists: %d %s", r.status, r.raw)
	}
	if r := s.call(t, "POST", "/api/v1/cards/c-e2e/comments", bob, `{"body":""}`); r.status != 422 {
		t.Fatalf("empty body: %d %s", r.status, r.raw)
	}

	// The outbox relay published newComment with the names notif needs.
	deadline := time.Now().Add(5 * time.Second)
	for {
		envs := s.streamEvents(t, contracts.FamilyComment)
		if len(envs) == 1 {
			ev, err := contracts.Decode(envs[0])
			if err != nil {
				t.Fatal(err)
			}
			c := ev.(contracts.CommentCreated)
			if c.CommentID != commentID || c.ActorName != "Bob" || c.CardTitle != "Crash" || c.ProjectTitle != "Apollo" ||
				c.Audience.OwnerID != annID || !slices.Equal(c.Audience.MemberIDs, []string{bobID}) {
				t.Fatalf("newComment %+v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("comment stream: %d events", len(envs))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A kicked member is refused within a second of the kick's event.
	s.publish(t, contracts.MemberRemoved{ProjectID: "p-e2e", UserID: bobID, AggregateVersion: 2})
	_, took = s.eventually(t, time.Second, 404, "POST", "/api/v1/cards/c-e2e/comments", bob, `{"body":"after the kick"}`)
	t.Logf("kicked member refused %v after the kick's event", took.Round(time.Millisecond))

	// The owner deletes the comment; deleteCard then leaves nothing behind.
	if r := s.call(t, "DELETE", "/api/v1/comments/"+commentID, ann, ""); r.status != 204 {
		t.Fatalf("owner deletes: %d %s", r.status, r.raw)
	}
	s.call(t, "POST", "/api/v1/cards/c-e2e/comments", ann, `{"body":"second"}`)
	s.publish(t, contracts.CardDeleted{CardID: "c-e2e", ProjectID: "p-e2e", AggregateVersion: 2})
	s.eventually(t, 5*time.Second, 404, "GET", "/api/v1/cards/c-e2e/comments", ann, "")
}

// projectGateway returns the base URL of a gateway that routes to a project service:
// the system's own when it runs one, else a gateway started here in front of all
// four services and a project service started here, so that this test runs before
// and after the project service joins startSystem.
func projectGateway(t *testing.T, s *system) string {
	t.Helper()
	if r := s.call(t, "GET", "/api/v1/projects", "", ""); r.status != 502 && r.status != 504 {
		return s.gateway
	}
	dir := filepath.Join("..", "project")
	if _, err := os.Stat(filepath.Join(dir, "cmd", "project")); err != nil {
		t.Fatalf("the project service is needed for totalComment and is not in this checkout: %v", err)
	}
	bin := filepath.Join(s.bin, "project")
	if out, err := execOutput(dir, "go", "build", "-o", bin, "./cmd/project"); err != nil {
		t.Fatalf("build project: %v\n%s", err, out)
	}
	name := randomName()
	projectAddr, gwAddr := freeAddr(t), freeAddr(t)
	project := startProcess(t, s.bin, "project", append(slices.Clone(s.common),
		"PROJECT_HTTP_ADDR="+projectAddr, "PROJECT_DATABASE_URL="+mariaDB(t, name),
		"PROJECT_CONSUMER_NAME=project-e2e", "EVENTBUS_CLAIM_MIN_IDLE=1s"))
	waitReady(t, project, "http://"+projectAddr+"/readyz")
	gw := startProcess(t, s.bin, "gateway", append(slices.Clone(s.common), "GATEWAY_ADDR="+gwAddr,
		"GATEWAY_AUTH_URL="+s.serviceURLs["auth"], "GATEWAY_NOTIF_URL="+s.serviceURLs["notif"],
		"GATEWAY_COMMENT_URL="+s.serviceURLs["comment"], "GATEWAY_PROJECT_URL=http://"+projectAddr))
	waitReady(t, gw, "http://"+gwAddr+"/healthz")
	return "http://" + gwAddr
}

// waitStreamLen waits until a family's stream holds at least n entries.
func (s *system) waitStreamLen(t *testing.T, family string, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := s.redis.XLen(context.Background(), eventbus.StreamKey(s.prefix, family)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s stream holds %d events, want %d", family, got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restartComment kills the comment service without a graceful stop (a crash in the
// middle of a batch: what it read is left unacknowledged) and starts it again.
func (s *system) restartComment(t *testing.T) {
	t.Helper()
	s.comment.killed = true
	_ = s.comment.cmd.Process.Signal(syscall.SIGKILL)
	<-s.comment.exited
	s.comment = startProcess(t, s.bin, "comment", s.commentEnv)
	waitReady(t, s.comment, s.serviceURLs["comment"]+"/readyz")
}

// TestTotalCommentStaysExact is issue 9's acceptance test: 200 comments created
// concurrently by two users from 10 goroutines, 50 of them deleted concurrently, the
// comment service crashed and restarted in the middle so events are redelivered, and
// then the card's totalComment in the project service equals the live comments, and
// walking the comment list returns exactly them.
func TestTotalCommentStaysExact(t *testing.T) {
	s := startSystem(t)
	gw := projectGateway(t, s)
	through := *s // the same system, reached through gw
	through.gateway = gw
	call := func(method, path, token, body string) reply {
		t.Helper()
		return through.call(t, method, path, token, body)
	}
	_, ann := s.user(t, "Ann")
	bobID, bob := s.user(t, "Bob")
	r := call("POST", "/api/v1/projects", ann, `{"title":"Apollo","description":"moon"}`)
	if r.status != 201 {
		t.Fatalf("project: %d %s", r.status, r.raw)
	}
	projectID := r.body["id"].(string)
	if r := call("POST", "/api/v1/projects/"+projectID+"/members", ann, fmt.Sprintf(`{"userId":%q}`, bobID)); r.status != 201 {
		t.Fatalf("member: %d %s", r.status, r.raw)
	}
	r = call("POST", "/api/v1/projects/"+projectID+"/cards", bob, `{"title":"Crash on start"}`)
	if r.status != 201 {
		t.Fatalf("card: %d %s", r.status, r.raw)
	}
	cardID := r.body["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for call("GET", "/api/v1/cards/"+cardID+"/comments", bob, "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the comment service never learnt the card")
		}
		time.Sleep(20 * time.Millisecond)
	}

	tokens := []string{ann, bob}
	ids := make(chan string, 200)
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 20 {
				r := call("POST", "/api/v1/cards/"+cardID+"/comments", tokens[g%2], fmt.Sprintf(`{"body":"comment %d-%d"}`, g, i))
				if r.status != 201 {
					t.Errorf("create: %d %s", r.status, r.raw)
					return
				}
				ids <- r.body["id"].(string)
			}
		})
	}
	wg.Wait()
	close(ids)
	var all []string
	for id := range ids {
		all = append(all, id)
	}
	if len(all) != 200 {
		t.Fatalf("created %d comments", len(all))
	}
	// Redelivery, twice over: the comment service crashes (kill -9: its relay stops
	// mid-work and its consumer leaves deliveries unacknowledged), and Redis loses
	// the comment stream, so the relay republishes every newComment from its outbox
	// and the project service's consumer sees each one again.
	s.restartComment(t)
	if err := s.redis.Del(context.Background(), eventbus.StreamKey(s.prefix, contracts.FamilyComment)).Err(); err != nil {
		t.Fatal(err)
	}
	// The relay notices the loss within its check interval (5 s) and republishes.
	// The deletions wait for that, so that the count below is reached through the
	// republished creations and not before them. Rows the killed process had leased
	// mid-batch are free again only after the lease (30 s), so the wait allows for it.
	s.waitStreamLen(t, contracts.FamilyComment, 200)
	deleted := map[string]bool{}
	for g := range 10 {
		chunk := all[g*5 : g*5+5]
		for _, id := range chunk {
			deleted[id] = true
		}
		wg.Go(func() {
			for _, id := range chunk {
				if r := call("DELETE", "/api/v1/comments/"+id, ann, ""); r.status != 204 {
					t.Errorf("delete: %d %s", r.status, r.raw)
				}
			}
		})
	}
	wg.Wait()

	var live []string
	for _, id := range all {
		if !deleted[id] {
			live = append(live, id)
		}
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		r := call("GET", "/api/v1/cards/"+cardID, bob, "")
		if r.status == 200 && r.body["totalComment"].(float64) == float64(len(live)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("totalComment never reached %d: %d %s", len(live), r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The stream holds the republished creations and the deletions, and the count
	// stays where it is: no redelivery counted twice.
	s.waitStreamLen(t, contracts.FamilyComment, 250)
	time.Sleep(2 * time.Second)
	if r := call("GET", "/api/v1/cards/"+cardID, bob, ""); r.body["totalComment"].(float64) != float64(len(live)) {
		t.Fatalf("totalComment drifted to %v", r.body["totalComment"])
	}
	var walked []string
	cursor := ""
	for {
		q := "?limit=37"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := call("GET", "/api/v1/cards/"+cardID+"/comments"+q, ann, "")
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.raw)
		}
		for _, d := range r.body["data"].([]any) {
			walked = append(walked, d.(map[string]any)["id"].(string))
		}
		next, _ := r.body["meta"].(map[string]any)["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(walked)
	slices.Sort(live)
	if !slices.Equal(walked, live) {
		t.Fatalf("walked %d comments, want the %d live ones", len(walked), len(live))
	}
}

func execOutput(dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
