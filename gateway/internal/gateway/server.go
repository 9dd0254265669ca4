package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/luraproject/lura/v2/proxy"
	"github.com/valyala/fasthttp"
)

// requestIDHeader carries the request id end to end: client, gateway, service.
const requestIDHeader = "X-Request-Id"

// securityHeaders are the values of the services' helmet middleware (Fiber's
// defaults). Every answer leaving the gateway carries each of them exactly once:
// the gateway's own answers get them here, a service's answer keeps its own.
var securityHeaders = [][2]string{
	{"X-Xss-Protection", "0"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Referrer-Policy", "no-referrer"},
	{"Cross-Origin-Embedder-Policy", "require-corp"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Origin-Agent-Cluster", "?1"},
	{"X-Dns-Prefetch-Control", "off"},
	{"X-Download-Options", "noopen"},
	{"X-Permitted-Cross-Domain-Policies", "none"},
}

// Own routes of the public port.
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
	pathOpenAPI = "/api/v1/openapi.json"
)

func init() {
	// Request ids come from a buffered pool of randomness instead of one
	// getrandom call each.
	uuid.EnableRandPool()
}

// serve is the public fasthttp handler: request id, path checks, own routes,
// routing into a lura pipeline, relaying the answer, access log and metrics.
func (g *Gateway) serve(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	id := requestID(ctx)
	route, status, errText, fromService := g.dispatch(ctx, start)
	g.finish(ctx, id, start, route, status, errText, fromService)
}

// dispatch answers the request and returns the route label for logs and metrics
// and the error text of a failed proxy call.
func (g *Gateway) dispatch(ctx *fasthttp.RequestCtx, start time.Time) (route *endpoint, status int, errText string, fromService bool) {
	defer func() {
		if r := recover(); r != nil {
			g.logger.Error("panic while handling request", "request_id", string(ctx.Request.Header.Peek(requestIDHeader)),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			writeProblem(ctx, problemFor(http.StatusInternalServerError))
			route, status, errText, fromService = nil, http.StatusInternalServerError, "panic", false
		}
	}()
	path := ctx.URI().PathOriginal()
	if detail := pathError(path); detail != "" {
		p := problemFor(http.StatusBadRequest)
		p.Detail = detail
		writeProblem(ctx, p)
		return nil, http.StatusBadRequest, "", false
	}
	method := ctx.Method()
	switch string(path) {
	case pathHealthz, pathReadyz, pathOpenAPI:
		if string(method) != http.MethodGet && string(method) != http.MethodHead {
			writeProblem(ctx, problemFor(http.StatusMethodNotAllowed))
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			return nil, http.StatusMethodNotAllowed, "", false
		}
		switch string(path) {
		case pathHealthz:
			g.healthz(ctx)
		case pathReadyz:
			g.readyz(ctx)
		default:
			g.openAPIDocument(ctx)
		}
		return nil, ctx.Response.StatusCode(), "", false
	}

	var params [maxParams]span
	rt, known := g.router.match(method, path, &params)
	if rt == nil {
		if known {
			writeProblem(ctx, problemFor(http.StatusMethodNotAllowed))
			ctx.Response.Header.Set("Allow", g.router.allowed(path))
			return nil, http.StatusMethodNotAllowed, "", false
		}
		writeProblem(ctx, problemFor(http.StatusNotFound))
		return nil, http.StatusNotFound, "", false
	}
	for i := 0; i < rt.params; i++ {
		if detail := paramError(path[params[i].start:params[i].end]); detail != "" {
			p := problemFor(http.StatusBadRequest)
			p.Detail = detail
			writeProblem(ctx, p)
			return rt.ep, http.StatusBadRequest, "", false
		}
	}
	status, errText, fromService = g.proxy(ctx, rt.ep, path, &params, start)
	return rt.ep, status, errText, fromService
}

// proxy runs the endpoint's lura pipeline and relays its answer; start is when the
// request arrived (one clock read serves the whole request: they cost about
// 0.1 us each on this kind of virtual machine).
func (g *Gateway) proxy(ctx *fasthttp.RequestCtx, ep *endpoint, path []byte, params *[maxParams]span, start time.Time) (status int, errText string, helmet bool) {
	c := acquireCall(ctx, ep, start)
	defer releaseCall(c)
	c.startWatch()
	defer c.stopWatch()
	for i, name := range ep.params {
		c.params[name] = string(path[params[i].start:params[i].end])
	}
	c.preq = proxy.Request{
		Method: ep.method,
		Path:   "",
		Params: c.params,
	}
	resp, err := ep.proxy(c, &c.preq)
	if e := c.err.Load(); err == nil && e != nil {
		// The client left while the answer came: it is not relayed, but counted
		// and logged as what it was.
		err = *e
	}
	if err != nil {
		status := statusForError(err)
		writeProblem(ctx, problemFor(status))
		return status, err.Error(), false
	}
	if resp == nil {
		writeProblem(ctx, problemFor(http.StatusBadGateway))
		return http.StatusBadGateway, "the proxy pipeline returned no response", false
	}
	if resp == &c.presp {
		helmet = c.relay(ctx)
	} else {
		relayGeneric(ctx, resp)
	}
	return ctx.Response.StatusCode(), "", helmet
}

// relayGeneric writes a response that some other lura stage built (headers in
// Metadata, body in Io); the gateway's own backend takes the fast path instead.
func relayGeneric(ctx *fasthttp.RequestCtx, resp *proxy.Response) {
	for k, vs := range resp.Metadata.Headers {
		if isHopHeader(k) {
			continue
		}
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	status := resp.Metadata.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	ctx.SetStatusCode(status)
	if resp.Io != nil {
		ctx.SetBodyStream(resp.Io, -1)
	}
}

// finish sets the headers every answer carries, then logs and counts the request.
// serviceHeaders is true when the answer is a service's and already carries the
// helmet headers.
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, id []byte, start time.Time, ep *endpoint, status int, errText string, serviceHeaders bool) {
	h := &ctx.Response.Header
	h.SetCanonical(strRequestID, id)
	if !serviceHeaders {
		for _, sh := range securityHeaderBytes {
			h.SetCanonical(sh[0], sh[1])
		}
	}
	elapsed := time.Since(start)
	label, slot := "unmatched", -1
	method := metricMethod(ctx.Method())
	if ep != nil {
		label, slot, method = ep.label, ep.index, ep.method
	}
	g.metrics.observe(slot, method, label, status, elapsed)

	if g.access != nil {
		if !g.access.enabled(status) {
			return
		}
		var ip [64]byte
		g.access.write(&accessEntry{
			at: start.Add(elapsed), requestID: id, method: method, route: label,
			path: ctx.URI().PathOriginal(), status: status, elapsed: elapsed,
			bytes: len(ctx.Response.Body()), remote: appendRemoteIP(ip[:0], ctx), err: errText,
		})
		return
	}
	g.logRequest(ctx, id, start, elapsed, method, label, status, errText)
}

// logRequest writes the access-log line through the slog logger, for a gateway
// built without Options.AccessLog.
func (g *Gateway) logRequest(ctx *fasthttp.RequestCtx, id []byte, start time.Time, elapsed time.Duration, method, label string, status int, errText string) {
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	handler := g.logger.Handler()
	if !handler.Enabled(context.Background(), level) {
		return
	}
	// A record built here, not through Logger.LogAttrs, skips the caller lookup
	// (runtime.Callers) that slog makes for every line and the access log never
	// uses: the call site is always this one.
	r := slog.NewRecord(start.Add(elapsed), level, "request", 0)
	r.AddAttrs(
		slog.String("request_id", string(id)),
		slog.String("method", method),
		slog.String("route", label),
		slog.String("path", string(ctx.URI().PathOriginal())),
		slog.Int("status", status),
	)
	r.AddAttrs(
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", len(ctx.Response.Body())),
		slog.String("remote", remoteIP(ctx)),
	)
	if errText != "" {
		// Internal detail (dial errors, hosts) stays in the log, never in the response.
		r.AddAttrs(slog.String("error", errText))
	}
	_ = handler.Handle(context.Background(), r)
}

// strRequestID is the request id header name as fasthttp stores it.
var strRequestID = []byte(requestIDHeader)

// securityHeaderBytes are securityHeaders ready for SetCanonical.
var securityHeaderBytes = func() [][2][]byte {
	out := make([][2][]byte, len(securityHeaders))
	for i, sh := range securityHeaders {
		out[i] = [2][]byte{[]byte(sh[0]), []byte(sh[1])}
	}
	return out
}()

// requestID keeps a safe client-sent id (printable ASCII, at most 128 bytes) or
// makes a UUID, and leaves exactly one value in the request for the service.
func requestID(ctx *fasthttp.RequestCtx) []byte {
	h := &ctx.Request.Header
	id := h.Peek(requestIDHeader)
	if validRequestID(id) {
		if len(h.PeekAll(requestIDHeader)) == 1 {
			return id
		}
		id = append([]byte(nil), id...)
	} else {
		u := uuid.New()
		id = make([]byte, 36)
		encodeUUID(id, u)
	}
	h.Del(requestIDHeader)
	h.SetBytesV(requestIDHeader, id)
	return h.Peek(requestIDHeader)
}

// encodeUUID writes u in its canonical 36-character form.
func encodeUUID(dst []byte, u uuid.UUID) {
	const hexDigits = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hexDigits[b>>4], hexDigits[b&0xf]
		j += 2
	}
}

// validRequestID accepts short printable ASCII ids only, so a client cannot inject
// log lines or oversized values; the services apply the same rule.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// remoteIP is the peer address: the gateway trusts no forwarding header.
func remoteIP(ctx *fasthttp.RequestCtx) string {
	var buf [64]byte
	return string(appendRemoteIP(buf[:0], ctx))
}

// serveError answers what fasthttp refused before any handler ran: a body over
// 1 MiB, headers over the buffer, malformed requests or chunking, read timeouts.
// The answer is problem+json like every other gateway answer.
func (g *Gateway) serveError(ctx *fasthttp.RequestCtx, err error) {
	start := time.Now()
	var small *fasthttp.ErrSmallBuffer
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &small):
		status = http.StatusRequestHeaderFieldsTooLarge
	case isTimeout(err):
		status = http.StatusRequestTimeout
	}
	writeProblem(ctx, problemFor(status))
	ctx.SetConnectionClose()
	if lc, ok := ctx.Conn().(*limitConn); ok {
		lc.linger.Store(true)
	}
	// The request could not be read, so its id header cannot be trusted.
	u := uuid.New()
	id := make([]byte, 36)
	encodeUUID(id, u)
	g.logger.Warn("request refused by the HTTP parser", "request_id", string(id), "status", status, "error", err.Error())
	g.finish(ctx, id, start, nil, status, "", false)
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// callPool recycles the per-request state of proxied calls, so a call allocates
// nothing of its own beyond what lura's pipeline does.
var callPool = sync.Pool{New: func() any {
	c := &call{params: make(map[string]string, maxParams)}
	c.watch = time.AfterFunc(time.Hour, c.onWatch)
	c.watch.Stop()
	return c
}}

func acquireCall(ctx *fasthttp.RequestCtx, ep *endpoint, start time.Time) *call {
	c := callPool.Get().(*call)
	c.mu.Lock() // A late watch timer of the previous request reads rc under mu.
	c.rc = ctx
	c.mu.Unlock()
	c.ep = ep
	c.start = start
	c.deadline = start.Add(ep.timeout)
	return c
}

func releaseCall(c *call) {
	c.ep = nil
	c.err.Store(nil)
	c.preq = proxy.Request{}
	c.presp = proxy.Response{}
	clear(c.params)
	c.breq.Reset()
	c.bresp.Reset()
	c.scratch = c.scratch[:0]
	c.mu.Lock()
	c.rc = nil
	c.gen++
	c.done = nil
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	callPool.Put(c)
}
