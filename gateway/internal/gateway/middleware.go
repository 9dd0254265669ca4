package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// requestIDHeader carries the request id end to end: client, gateway, service.
const requestIDHeader = "X-Request-Id"

// requestIDKey is the gin context key holding the request id.
const requestIDKey = "gateway.requestID"

// requestID makes sure every request has a sane id: a client-sent one is kept, a
// missing or unsafe one is replaced by a fresh UUID. The id goes to the service (the
// header is in every endpoint's input_headers) and back to the client.
func (g *Gateway) requestID(c *gin.Context) {
	id := c.Request.Header.Get(requestIDHeader)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Request.Header.Set(requestIDHeader, id) // Also collapses repeated headers.
	c.Set(requestIDKey, id)

	w := &headerWriter{ResponseWriter: c.Writer, id: id}
	c.Writer = w
	c.Next()
	// Nothing written yet (a bodiless 204, say): gin sends the header after this
	// middleware returns, so fix it up now.
	w.finalize()
}

// validRequestID accepts short printable ASCII ids only, so a client cannot inject
// log lines or oversized values; the services apply the same rule.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestIDOf returns the id the requestID middleware stored.
func requestIDOf(c *gin.Context) string { return c.GetString(requestIDKey) }

// headerWriter fixes the response headers once, just before they are sent: exactly
// one X-Request-Id (the service echoes it too, and lura relays the service's headers
// with Add), and no X-KrakenD headers, which only reveal the gateway's software.
type headerWriter struct {
	gin.ResponseWriter
	id   string
	done bool
}

// finalize fixes the headers unless they are already fixed or sent.
func (w *headerWriter) finalize() {
	if w.done || w.Written() {
		return
	}
	w.done = true
	h := w.Header()
	h.Del("X-Krakend")
	h.Del("X-Krakend-Completed")
	h.Set(requestIDHeader, w.id)
}

// WriteHeaderNow sends the header after fixing it.
func (w *headerWriter) WriteHeaderNow() {
	w.finalize()
	w.ResponseWriter.WriteHeaderNow()
}

// Write sends the header, if not yet sent, and then b.
func (w *headerWriter) Write(b []byte) (int, error) {
	w.finalize()
	return w.ResponseWriter.Write(b)
}

// WriteString sends the header, if not yet sent, and then s.
func (w *headerWriter) WriteString(s string) (int, error) {
	w.finalize()
	return w.ResponseWriter.WriteString(s)
}

// Flush sends the header, if not yet sent, and flushes buffered data.
func (w *headerWriter) Flush() {
	w.finalize()
	w.ResponseWriter.Flush()
}

// copyBuffers recycles the buffers that relay response bodies; lura copies each
// service response with io.Copy, which would otherwise allocate 32 KiB per request.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadFrom relays a body through a pooled buffer.
func (w *headerWriter) ReadFrom(r io.Reader) (int64, error) {
	w.finalize()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{w.ResponseWriter}, r, *buf)
}

// writerOnly hides every method but Write, so io.CopyBuffer uses the buffer given.
type writerOnly struct{ io.Writer }

// observe writes one access-log line per request and records it in the metrics.
func (g *Gateway) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)

	status := c.Writer.Status()
	route, ok := g.routes[c.FullPath()]
	if !ok {
		route = "unmatched"
	}
	method := metricMethod(c.Request.Method)
	g.metrics.observe(method, route, status, elapsed)

	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestIDOf(c)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.String("remote", c.ClientIP()),
	}
	if err := c.Errors.Last(); err != nil {
		// Internal detail (dial errors, hosts) stays in the log, never in the response.
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	g.logger.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// problems turns an error reported by lura's endpoint handler (which has already
// set the status through statusForError, but writes no body) into problem+json.
func (g *Gateway) problems(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	writeProblem(c, problemFor(c.Writer.Status()))
}

// recoverer answers a panicking handler with a 500 problem and logs the stack.
func (g *Gateway) recoverer(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler { //nolint:errorlint // Sentinel compared as net/http does.
			panic(r)
		}
		g.logger.ErrorContext(c.Request.Context(), "panic while handling request",
			"request_id", requestIDOf(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		writeProblem(c, problemFor(http.StatusInternalServerError))
	}()
	c.Next()
}

// limitBody enforces the 1 MiB request body limit: a larger declared Content-Length
// is refused at once, and a body without one (chunked) is cut off at the limit, in
// which case the proxy fails with *http.MaxBytesError and statusForError says 413.
func limitBody(c *gin.Context) {
	r := c.Request
	if r.ContentLength > maxBodyBytes {
		writeProblem(c, problemFor(http.StatusRequestEntityTooLarge))
		return
	}
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	orig := r.Body
	r.Body = http.MaxBytesReader(c.Writer, orig, maxBodyBytes)
	c.Next()
	// Give net/http its own body back before an outer middleware writes a problem:
	// the server only notices unread request data (and closes the connection
	// instead of reusing it) when it sees its own body type.
	r.Body = orig
}

// checkParams refuses path parameters that would change the service URL lura builds
// from them: encoded characters, '?', '#', or dot segments. It replaces lura's own
// check, which answers in plain text.
func checkParams(c *gin.Context) {
	for _, p := range c.Params {
		v := p.Value
		decoded, err := url.PathUnescape(v)
		if err != nil || decoded != v || strings.ContainsAny(v, "?#") || v == "." || v == ".." {
			writeProblem(c, problemFor(http.StatusBadRequest))
			return
		}
	}
}
