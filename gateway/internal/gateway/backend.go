package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/proxy"
	"github.com/valyala/fasthttp"
)

// maxResponseBytes bounds a service's answer held in memory; the largest list page
// of the API (100 items) is far below it.
const maxResponseBytes = 8 << 20

// errNotGatewayCall means a backend proxy ran outside the gateway's handler, which
// only a wiring mistake can cause.
var errNotGatewayCall = errors.New("gateway: backend called without the gateway's request state")

// backendClient is the pooled keep-alive client of one service base URL.
type backendClient struct {
	hc *fasthttp.HostClient
	tr *transport
	// probe serves readiness checks, on fasthttp's own transport: hc's transport
	// expects every request to belong to a call.
	probe *fasthttp.HostClient
	// base is scheme://host:port plus the base URL's path, to which lura's
	// generated path is appended.
	base []byte
}

// clientFor returns the client of a base URL, creating it on first use; all the
// endpoints of a service share one connection pool.
func (g *Gateway) clientFor(base string) (*backendClient, error) {
	g.clientsMu.Lock()
	defer g.clientsMu.Unlock()
	if c, ok := g.clients[base]; ok {
		return c, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", base, err)
	}
	tls := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if tls {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	tr := newTransport(addr, tls)
	c := &backendClient{
		hc: &fasthttp.HostClient{
			Addr:      addr,
			IsTLS:     tls,
			Transport: tr,
			// A request whose connection fails before any answer byte goes
			// again on another connection, up to maxBackendAttempts in all,
			// when retryIdempotent allows it (see transport.RoundTrip for POST
			// and PATCH); the endpoint timeout bounds the whole call anyway.
			MaxIdemponentCallAttempts: maxBackendAttempts,
			RetryIf:                   retryIdempotent,
			MaxResponseBodySize:       maxResponseBytes,
			// The path goes out exactly as lura built it.
			DisablePathNormalizing:   true,
			NoDefaultUserAgentHeader: true,
		},
		tr: tr,
		probe: &fasthttp.HostClient{
			Addr: addr, IsTLS: tls, MaxConns: 16, NoDefaultUserAgentHeader: true,
			MaxIdemponentCallAttempts: 1,
		},
		base: []byte(u.Scheme + "://" + addr + trimSlash(u.EscapedPath())),
	}
	g.clients[base] = c
	return c, nil
}

// retryIdempotent is the HostClient's RetryIf: the methods RFC 9110 (section
// 9.2.2) calls idempotent, which a client may send again after a connection
// failure because doing them twice does what doing them once does. fasthttp's
// default list lacks DELETE and OPTIONS, so a DELETE on a connection that a
// restarted service had reset was a 502. POST and PATCH are not listed: fasthttp
// then retries them only on io.EOF, which the transport reserves for the case
// where the service cannot have processed them.
func retryIdempotent(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodPut, fasthttp.MethodDelete:
		return true
	}
	return false
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// backendFactory is lura's BackendFactory for the gateway: the last stage of every
// pipeline, a fasthttp.HostClient call. It reads the client's headers, query and
// body straight from the fasthttp request (so lura's Request carries only the
// method, the path it generated and the parameters) and leaves the service's
// answer in the call state, which the handler relays without copying it into maps.
func (g *Gateway) backendFactory() proxy.BackendFactory {
	return func(b *config.Backend) proxy.Proxy {
		if len(b.Host) != 1 {
			return failing(fmt.Errorf("backend %s: want exactly one host, got %v", b.URLPattern, b.Host))
		}
		bc, err := g.clientFor(b.Host[0])
		if err != nil {
			return failing(err)
		}
		return func(ctx context.Context, r *proxy.Request) (*proxy.Response, error) {
			c, ok := ctx.(*call)
			if !ok {
				if c, ok = ctx.Value(callKey{}).(*call); !ok {
					return nil, errNotGatewayCall
				}
			}
			return c.do(bc, r)
		}
	}
}

// failing is a proxy that always returns err (a configuration error found while
// building the pipeline, reported at request time as lura does).
func failing(err error) proxy.Proxy {
	return func(context.Context, *proxy.Request) (*proxy.Response, error) { return nil, err }
}

// callKey finds the call state in a context that a lura stage might have wrapped.
type callKey struct{}

// call is the state of one proxied request, pooled. It is also the context given
// to lura's pipeline: its deadline is the endpoint timeout, enforced by the
// fasthttp client through DoDeadline, and it is cancelled when the client goes
// away. Done allocates its channel (and a deadline timer) only when a stage asks
// for it, which the stages of a pass-through pipeline never do: a request costs no
// context allocations and no goroutine.
type call struct {
	rc       *fasthttp.RequestCtx
	ep       *endpoint
	start    time.Time // when the request arrived
	deadline time.Time

	err   atomic.Pointer[error]
	mu    sync.Mutex // guards gen, done, timer and bconn
	gen   uint64     // incremented on every reuse
	done  chan struct{}
	timer *time.Timer
	bconn *backendConn // the service connection while a round trip is on it

	// watch fires when the call has taken longer than watchDelay and starts
	// watching the client connection; watching ends before the call is released.
	watch        *time.Timer
	watching     sync.WaitGroup
	watchActive  bool // guarded by mu
	watchRunning bool // guarded by mu

	params  map[string]string
	preq    proxy.Request
	presp   proxy.Response
	breq    fasthttp.Request
	bresp   fasthttp.Response
	scratch []byte
	ip      []byte
	args    fasthttp.Args
}

var _ context.Context = (*call)(nil)

// Deadline is the endpoint timeout.
func (c *call) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns a channel closed on cancellation or at the deadline.
func (c *call) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err.Load() != nil {
			close(c.done)
		} else {
			gen := c.gen
			c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(gen, context.DeadlineExceeded) })
		}
	}
	return c.done
}

// Err is context.Canceled after the client left, DeadlineExceeded after the
// endpoint timeout, else nil.
func (c *call) Err() error {
	if e := c.err.Load(); e != nil {
		return *e
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value returns the call itself for callKey.
func (c *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c
	}
	return nil
}

// cancel records err and closes Done, unless the call has meanwhile been recycled
// for another request (gen differs) or was already cancelled; it reports whether
// it cancelled.
func (c *call) cancel(gen uint64, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.err.CompareAndSwap(nil, &err) {
		return false
	}
	if c.done != nil {
		close(c.done)
	}
	return true
}

// do sends the request lura built to the service and keeps the answer in c.bresp.
func (c *call) do(bc *backendClient, r *proxy.Request) (*proxy.Response, error) {
	in := &c.rc.Request
	req := &c.breq
	c.scratch = append(append(c.scratch[:0], bc.base...), r.Path...)
	if q := c.rc.URI().QueryString(); len(q) > 0 {
		if c.ep.queryAll {
			c.scratch = append(append(c.scratch, '?'), q...)
		} else {
			c.scratch = c.filterQuery(c.scratch)
		}
	}
	req.SetRequestURIBytes(c.scratch)
	req.Header.SetMethod(r.Method)
	for _, name := range c.ep.headers {
		for _, v := range in.Header.PeekAll(string(name)) {
			req.Header.AddBytesKV(name, v)
		}
	}
	// The peer address replaces whatever a client claimed.
	c.ip = appendRemoteIP(c.ip[:0], c.rc)
	req.Header.SetBytesV("X-Forwarded-For", c.ip)
	if body := in.Body(); len(body) > 0 {
		req.SetBodyRaw(body)
	}
	if err := bc.hc.DoDeadline(req, &c.bresp, c.deadline); err != nil {
		if e := c.err.Load(); e != nil {
			return nil, fmt.Errorf("%w (backend call: %w)", *e, err)
		}
		return nil, err
	}
	c.presp.Metadata.StatusCode = c.bresp.StatusCode()
	c.presp.IsComplete = true
	return &c.presp, nil
}

// filterQuery appends "?" and the query parameters the endpoint lists.
func (c *call) filterQuery(dst []byte) []byte {
	c.args.Reset()
	c.rc.QueryArgs().VisitAll(func(k, v []byte) {
		for _, allowed := range c.ep.queryKeys {
			if bytes.Equal(k, allowed) {
				c.args.AddBytesKV(k, v)
				return
			}
		}
	})
	if c.args.Len() == 0 {
		return dst
	}
	return c.args.AppendBytes(append(dst, '?'))
}

// relay copies the service's answer to the client: status, end-to-end headers and
// the body, whose buffer is swapped rather than copied. It reports whether the
// service sent its security headers (marked by X-Content-Type-Options, which
// helmet always sets), so the gateway adds its own only when it did not.
func (c *call) relay(ctx *fasthttp.RequestCtx) (helmet bool) {
	src, dst := &c.bresp, &ctx.Response
	dst.SetStatusCode(src.StatusCode())
	named := src.Header.Peek(fasthttp.HeaderConnection)
	src.Header.VisitAll(func(k, v []byte) {
		if isHopHeader(string(k)) || (len(named) > 0 && namedInConnection(named, k)) {
			return
		}
		if string(k) == "X-Content-Type-Options" {
			helmet = true
		}
		dst.Header.AddBytesKV(k, v)
	})
	body := src.SwapBody(nil)
	src.SwapBody(dst.SwapBody(body))
	return helmet
}

// isHopHeader reports headers that describe one connection (RFC 9110, section
// 7.6.1), that the gateway sets itself, or that only reveal the gateway's software.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Content-Length", "Date", "X-Request-Id", "X-Krakend", "X-Krakend-Completed":
		return true
	}
	return false
}

// namedInConnection reports whether the Connection header value lists key.
func namedInConnection(conn, key []byte) bool {
	for len(conn) > 0 {
		var tok []byte
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			tok, conn = conn[:i], conn[i+1:]
		} else {
			tok, conn = conn, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), key) {
			return true
		}
	}
	return false
}

// appendRemoteIP appends the peer's IP address without allocating.
func appendRemoteIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().AppendTo(dst)
		}
	}
	return append(dst, ctx.RemoteAddr().String()...)
}
