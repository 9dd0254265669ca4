package http

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
	"github.com/bugtracker/bugtracker/platform/authn"
	"github.com/bugtracker/bugtracker/platform/httpserver"
	"github.com/bugtracker/bugtracker/platform/servicetest"
)

// stuckStore is a store that never answers before its caller gives up.
type stuckStore struct{ app.Notifications }

func (stuckStore) List(ctx context.Context, _ app.Filter, _, _ int) ([]notification.Notification, int, int, error) {
	<-ctx.Done()
	return nil, 0, 0, ctx.Err()
}

// TestSlowStoreAnswers503 checks the query deadline: a store that hangs makes the
// list answer 503 problem+json with Retry-After after the deadline, instead of
// holding the request (and its queries) for as long as the store takes.
func TestSlowStoreAnswers503(t *testing.T) {
	keys := servicetest.NewTokens(t)
	v, err := authn.NewVerifier(keys.Parties, keys.Keys, authn.NewMemoryRevocations())
	if err != nil {
		t.Fatal(err)
	}
	tok := keys.Token(t, "u1")
	a := app.Application{Notifications: app.NewListNotificationsHandler(stuckStore{})}
	srv := httpserver.New(httpserver.Config{Service: "notif", Logger: servicetest.Discard(), MapError: MapError})
	NewHandlers(a, v, QueryTimeout(100*time.Millisecond)).Register(srv)

	req := httptest.NewRequest("GET", "/api/v1/notifications", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := srv.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, headers %v, body %v", resp.StatusCode, resp.Header, body)
	}
	if took > 2*time.Second {
		t.Fatalf("the deadline did not end the request: %v", took)
	}
	if detail, _ := body["detail"].(string); detail == "" || body["status"].(float64) != 503 {
		t.Fatalf("body %v", body)
	}
}
