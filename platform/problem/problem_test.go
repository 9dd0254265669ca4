package problem

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestProblemJSONShape(t *testing.T) {
	p := Validation(FieldError{Field: "title", Message: "must not be empty"})
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["status"].(float64) != 422 || got["title"] != "Unprocessable Entity" {
		t.Fatalf("unexpected body %s", b)
	}
	errs := got["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["field"] != "title" {
		t.Fatalf("errors not carried: %s", b)
	}
	if _, ok := got["RetryAfter"]; ok {
		t.Fatalf("RetryAfter must not be serialised: %s", b)
	}
}

func TestFromStatusNeverLeaksServerDetail(t *testing.T) {
	p := FromStatus(http.StatusBadGateway, "dial tcp 10.0.0.1:5432: connection refused")
	if strings.Contains(p.Detail, "10.0.0.1") || p.Status != http.StatusInternalServerError {
		t.Fatalf("server fault leaked or kept status: %+v", p)
	}
	if FromStatus(http.StatusRequestEntityTooLarge, "too big").Status != 413 {
		t.Fatal("413 must be kept")
	}
	if BadRequest("x").Errors != nil {
		t.Fatal("errors is only for validation failures")
	}
}

func TestConstructorsKeepTheirStatus(t *testing.T) {
	for want, p := range map[int]*Problem{
		400: BadRequest("x"), 401: Unauthorized("x"), 403: Forbidden("x"), 404: NotFound("x"),
		409: Conflict("x"), 429: TooManyRequests("x", 3), 500: Internal(), 503: Unavailable("x"),
	} {
		if p.Status != want || p.Title != http.StatusText(want) || p.Type == "" {
			t.Fatalf("%d: %+v", want, p)
		}
	}
}
