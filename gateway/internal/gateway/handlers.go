package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// readinessTimeout bounds the whole readiness check, all services probed at once.
const readinessTimeout = time.Second

// healthz answers 200 while the process runs.
func (g *Gateway) healthz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"ok"}`)
}

// readyz answers 200 when every service the configuration routes to answers its
// /healthz with 200 within a second, else 503 naming the services that did not.
func (g *Gateway) readyz(ctx *fasthttp.RequestCtx) {
	id := string(ctx.Request.Header.Peek(requestIDHeader))
	deadline := time.Now().Add(readinessTimeout)
	ready := make([]bool, len(g.services))
	var wg sync.WaitGroup
	for i, svc := range g.services {
		wg.Go(func() { ready[i] = g.probe(svc, id, deadline) })
	}
	wg.Wait()

	var down []string
	status := map[string]string{}
	for i, svc := range g.services {
		status[svc] = "ready"
		if !ready[i] {
			down = append(down, svc)
			status[svc] = "not ready"
		}
	}
	if len(down) > 0 {
		p := problemFor(http.StatusServiceUnavailable)
		p.Detail = "not ready: " + strings.Join(down, ", ")
		writeProblem(ctx, p)
		return
	}
	body, _ := json.Marshal(map[string]any{"status": "ready", "services": status})
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// probe reports whether the service's /healthz answers 200 before the deadline.
func (g *Gateway) probe(service, requestID string, deadline time.Time) bool {
	bc, err := g.clientFor(g.backends[service])
	if err != nil {
		g.logger.Warn("readiness probe", "request_id", requestID, "backend", service, "error", err.Error())
		return false
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURIBytes(append(append([]byte(nil), bc.base...), "/healthz"...))
	req.Header.Set(requestIDHeader, requestID)
	resp.SkipBody = true
	if err := bc.probe.DoDeadline(req, resp, deadline); err != nil {
		g.logger.Warn("readiness probe", "request_id", requestID, "backend", service, "error", err.Error())
		return false
	}
	if resp.StatusCode() != http.StatusOK {
		g.logger.Warn("readiness probe", "request_id", requestID, "backend", service, "status", resp.StatusCode())
		return false
	}
	return true
}

// openAPIDocument serves the OpenAPI document of the whole public API.
func (g *Gateway) openAPIDocument(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.Response.SetBodyRaw(g.openAPI)
}
