package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"github.com/valyala/fasthttp"
)

// problemContentType is the media type of RFC 9457 problem details.
const problemContentType = "application/problem+json"

// problemTypeBase prefixes problem type URIs; the services use the same base, so a
// client sees one family of problem types whichever component answered.
const problemTypeBase = "https://bugtracker.dev/problems/"

// statusClientClosedRequest is recorded (never seen by anyone) when the client went
// away before the backend answered; nginx uses the same code for this case.
const statusClientClosedRequest = 499

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// newProblem builds a problem whose title is the standard status text.
func newProblem(status int, slug, detail string) problem {
	title := http.StatusText(status)
	if status == statusClientClosedRequest {
		title = "Client Closed Request"
	}
	return problem{Type: problemTypeBase + slug, Title: title, Status: status, Detail: detail}
}

// problemFor describes a status the gateway produces itself, with a detail that tells
// the client what happened without naming hosts, ports or Go errors.
func problemFor(status int) problem {
	switch status {
	case http.StatusBadRequest:
		return newProblem(status, "bad-request", "the request is malformed")
	case http.StatusRequestTimeout:
		return newProblem(status, "request-timeout", "the request was not received in time")
	case http.StatusRequestHeaderFieldsTooLarge:
		return newProblem(status, "headers-too-large", "the request headers exceed the 16 KiB limit")
	case http.StatusNotImplemented:
		return newProblem(status, "not-implemented", "this transfer encoding is not supported")
	case http.StatusNotFound:
		return newProblem(status, "not-found", "no route matches this method and path")
	case http.StatusMethodNotAllowed:
		return newProblem(status, "method-not-allowed", "this path does not accept this method")
	case http.StatusRequestEntityTooLarge:
		return newProblem(status, "body-too-large", "the request body exceeds the 1 MiB limit")
	case http.StatusBadGateway:
		return newProblem(status, "bad-gateway", "the service behind this route is unavailable; try again later")
	case http.StatusServiceUnavailable:
		return newProblem(status, "unavailable", "the gateway is not ready")
	case http.StatusGatewayTimeout:
		return newProblem(status, "gateway-timeout", "the service behind this route did not answer in time")
	case statusClientClosedRequest:
		return newProblem(status, "client-closed-request", "the client closed the connection")
	default:
		return newProblem(http.StatusInternalServerError, "internal",
			"an unexpected error occurred; it has been logged")
	}
}

// writeProblem sends p as the whole response, replacing anything set before
// except the request id and the security headers that finish adds.
func writeProblem(ctx *fasthttp.RequestCtx, p problem) {
	body, err := json.Marshal(p)
	if err != nil {
		// A struct of strings and an int always marshals; keep the status regardless.
		body = nil
	}
	resp := &ctx.Response
	resp.Header.Reset()
	resp.Header.SetContentType(problemContentType)
	resp.Header.Set("Cache-Control", "no-store")
	resp.SetStatusCode(p.Status)
	resp.SetBody(body)
}

// statusForError maps an error from the lura proxy stack (in the end, from the
// fasthttp client) to the status the client gets; the body is always a problem.
func statusForError(err error) int {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// First: a call cancelled for a client that left also carries the error
		// its cut connection produced.
		return statusClientClosedRequest
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, fasthttp.ErrDialTimeout):
		return http.StatusGatewayTimeout
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}
