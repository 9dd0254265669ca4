// Package problem implements RFC 9457 problem details, the single error format every
// bugtracker HTTP endpoint answers with.
package problem

import (
	"fmt"
	"net/http"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// typeBase prefixes problem type URIs so clients can tell our problem kinds apart.
const typeBase = "https://bugtracker.dev/problems/"

// FieldError names one invalid input field and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem details object. It is also an error, so handlers can
// return one directly and the shared error handler writes it unchanged.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`

	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

// Error returns a one-line description, so a Problem can travel as an error value.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Title)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// New builds a problem for status with a slug type (e.g. "not-found") and a detail.
func New(status int, slug, detail string) *Problem {
	return &Problem{Type: typeBase + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

// BadRequest reports malformed syntax: broken JSON, unknown fields, bad query values.
func BadRequest(detail string) *Problem { return New(http.StatusBadRequest, "bad-request", detail) }

// Validation reports well-formed input that breaks a rule, one entry per field.
func Validation(errs ...FieldError) *Problem {
	p := New(http.StatusUnprocessableEntity, "validation", "the request has invalid fields")
	p.Errors = errs
	return p
}

// Unauthorized reports a missing or unacceptable credential.
func Unauthorized(detail string) *Problem {
	return New(http.StatusUnauthorized, "unauthorized", detail)
}

// Forbidden reports an authenticated caller that may not do this.
func Forbidden(detail string) *Problem { return New(http.StatusForbidden, "forbidden", detail) }

// NotFound reports a resource that does not exist or that the caller may not see.
func NotFound(detail string) *Problem { return New(http.StatusNotFound, "not-found", detail) }

// Conflict reports a request that clashes with the current state, such as a duplicate.
func Conflict(detail string) *Problem { return New(http.StatusConflict, "conflict", detail) }

// TooManyRequests reports throttling and tells the client when to come back.
func TooManyRequests(detail string, retryAfterSeconds int) *Problem {
	p := New(http.StatusTooManyRequests, "rate-limited", detail)
	p.RetryAfter = retryAfterSeconds
	return p
}

// Internal is the only thing a client learns about a server fault: no internals leak.
func Internal() *Problem {
	return New(http.StatusInternalServerError, "internal", "an unexpected error occurred; it has been logged")
}

// Unavailable reports a dependency that does not answer.
func Unavailable(detail string) *Problem {
	return New(http.StatusServiceUnavailable, "unavailable", detail)
}

// statusSlugs names the problem types of the bare statuses FromStatus keeps.
var statusSlugs = map[int]string{
	http.StatusNotFound:              "not-found",
	http.StatusMethodNotAllowed:      "method-not-allowed",
	http.StatusRequestEntityTooLarge: "body-too-large",
	http.StatusUnsupportedMediaType:  "unsupported-media-type",
	http.StatusRequestTimeout:        "timeout",
}

// FromStatus builds a generic problem for a bare HTTP status, for errors that carry
// nothing but a status code (unknown route, body too large, wrong method).
func FromStatus(status int, detail string) *Problem {
	slug, ok := statusSlugs[status]
	if !ok {
		if status >= 500 {
			return Internal()
		}
		slug = "bad-request"
	}
	return New(status, slug, detail)
}
