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
