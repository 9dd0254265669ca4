package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/luraproject/lura/v2/transport/http/server"
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
		return newProblem(status, "bad-request", "the request path is malformed")
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

// writeProblem sends p as the response and stops the handler chain.
func writeProblem(c *gin.Context, p problem) {
	body, err := json.Marshal(p)
	if err != nil {
		// A struct of strings and an int always marshals; keep the status regardless.
		c.AbortWithStatus(p.Status)
		return
	}
	h := c.Writer.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", problemContentType)
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusRequestEntityTooLarge {
		// Part of the body is still unread: the connection cannot carry another request.
		h.Set("Connection", "close")
	}
	c.Writer.WriteHeader(p.Status)
	_, _ = c.Writer.Write(body)
	c.Abort()
}

// statusForError maps an error from the lura proxy stack to the status the client
// gets. It is the error-to-status mapper given to krakendgin.CustomErrorEndpointHandler;
// the problems middleware then writes the body.
func statusForError(err error) int {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, server.ErrInternalError):
		// lura reports ErrInternalError only when the endpoint context is done, and
		// the endpoint context ends on its timeout (or on a client that left).
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return statusClientClosedRequest
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}
