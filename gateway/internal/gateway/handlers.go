package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// readinessTimeout bounds the whole readiness check, all services probed at once.
const readinessTimeout = time.Second

// healthz answers 200 while the process runs.
func (g *Gateway) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 when every service the configuration routes to answers its
// /healthz with 200 within a second, else 503 naming the services that did not.
func (g *Gateway) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readinessTimeout)
	defer cancel()
	id := requestIDOf(c)

	ready := make([]bool, len(g.services))
	var wg sync.WaitGroup
	for i, svc := range g.services {
		wg.Go(func() { ready[i] = g.probe(ctx, svc, id) })
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
		writeProblem(c, p)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "services": status})
}

// probe reports whether the service's /healthz answers 200.
func (g *Gateway) probe(ctx context.Context, service, requestID string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.backends[service]+"/healthz", nil)
	if err != nil {
		g.logger.WarnContext(ctx, "readiness probe", "request_id", requestID, "backend", service, "error", err.Error())
		return false
	}
	req.Header.Set(requestIDHeader, requestID)
	resp, err := g.client.Do(req)
	if err != nil {
		g.logger.WarnContext(ctx, "readiness probe", "request_id", requestID, "backend", service, "error", err.Error())
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		g.logger.WarnContext(ctx, "readiness probe", "request_id", requestID, "backend", service, "status", resp.StatusCode)
		return false
	}
	return true
}

// openAPIDocument serves the OpenAPI document of the whole public API.
func (g *Gateway) openAPIDocument(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", g.openAPI)
}
