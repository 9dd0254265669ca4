package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Connection pool limits towards one service. The idle timeout stays below the
// services' own (120 s), so the gateway never reuses a connection the service is
// about to close, which for a POST would be a 502 instead of a retry.
const (
	maxBackendConns    = 2048
	maxIdleBackendConn = 512
	backendIdleTimeout = 90 * time.Second
	backendDialTimeout = 3 * time.Second
)

// errTooManyBackendConns is returned when a service already has maxBackendConns
// connections open: clients cannot make the gateway open connections without limit.
var errTooManyBackendConns = errors.New("gateway: too many connections open to the service")

// transport is the fasthttp.HostClient transport of one service. It does what
// fasthttp's default transport does (pooled keep-alive connections, one request
// written and one response read per round trip) and one thing it cannot: a call
// whose client went away can abort its connection mid-request, so the service sees
// the request cancelled instead of working on for nobody. fasthttp's own pool does
// not expose which connection serves which request, hence this pool.
type transport struct {
	addr string
	dial func(addr string) (net.Conn, error)

	mu   sync.Mutex
	idle []*backendConn // most recently used last
	open atomic.Int32
}

// backendConn is a pooled connection with its buffers.
type backendConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

// newTransport dials addr, with TLS when useTLS (server name from addr).
func newTransport(addr string, useTLS bool) *transport {
	host, _, _ := net.SplitHostPort(addr)
	return &transport{addr: addr, dial: func(addr string) (net.Conn, error) {
		conn, err := fasthttp.DialTimeout(addr, backendDialTimeout)
		if err != nil || !useTLS {
			return conn, err
		}
		return tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}), nil
	}}
}

// callOf returns the call whose breq is req. Every request sent through a
// service's HostClient is the breq of a call (readiness probes use a separate
// client), so the pointer arithmetic below always lands on a live call.
func callOf(req *fasthttp.Request) *call {
	//nolint:gosec // G103: container-of on a field of a struct this package owns, see above.
	return (*call)(unsafe.Add(unsafe.Pointer(req), -int(unsafe.Offsetof(call{}.breq))))
}

// RoundTrip sends req on a pooled (or new) connection and reads resp. retry tells
// HostClient.Do that the failure may be a stale keep-alive connection, worth one
// more attempt on another.
func (t *transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	c := callOf(req)
	bc, reused, err := t.get()
	if err != nil {
		return false, err
	}
	if !c.attach(bc) {
		t.discard(bc)
		return false, c.Err()
	}
	if err := bc.c.SetDeadline(c.deadline); err != nil {
		c.detach()
		t.discard(bc)
		return reused, err
	}
	err = req.Write(bc.bw)
	if err == nil {
		err = bc.bw.Flush()
	}
	if err == nil {
		if req.Header.IsHead() {
			resp.SkipBody = true
		}
		err = resp.ReadLimitBody(bc.br, hc.MaxResponseBodySize)
	}
	aborted := c.detach()
	if err != nil {
		t.discard(bc)
		if aborted {
			return false, err
		}
		if isTimeout(err) {
			return false, fasthttp.ErrTimeout
		}
		return reused && !errors.Is(err, fasthttp.ErrBodyTooLarge), err
	}
	if aborted || req.ConnectionClose() || resp.ConnectionClose() {
		t.discard(bc)
	} else {
		t.put(bc)
	}
	return false, nil
}

// get returns an idle connection that has not outlived the idle timeout, or dials.
func (t *transport) get() (bc *backendConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for len(t.idle) > 0 {
		bc = t.idle[len(t.idle)-1]
		t.idle[len(t.idle)-1] = nil
		t.idle = t.idle[:len(t.idle)-1]
		if now.Sub(bc.lastUsed) < backendIdleTimeout {
			t.mu.Unlock()
			return bc, true, nil
		}
		t.mu.Unlock()
		t.discard(bc)
		t.mu.Lock()
	}
	t.mu.Unlock()
	if t.open.Add(1) > maxBackendConns {
		t.open.Add(-1)
		return nil, false, errTooManyBackendConns
	}
	conn, err := t.dial(t.addr)
	if err != nil {
		t.open.Add(-1)
		return nil, false, err
	}
	return &backendConn{
		c:  conn,
		br: bufio.NewReaderSize(conn, 8<<10),
		bw: bufio.NewWriterSize(conn, 8<<10),
	}, false, nil
}

// put returns a healthy connection to the pool, or closes it when the pool is full.
func (t *transport) put(bc *backendConn) {
	bc.lastUsed = time.Now()
	t.mu.Lock()
	if len(t.idle) < maxIdleBackendConn {
		t.idle = append(t.idle, bc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.discard(bc)
}

// discard closes a connection that must not be reused.
func (t *transport) discard(bc *backendConn) {
	_ = bc.c.Close()
	t.open.Add(-1)
}

// closeIdle closes every idle connection.
func (t *transport) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, bc := range idle {
		t.discard(bc)
	}
}

// attach records the connection serving the call; false if the call is already
// cancelled.
func (c *call) attach(bc *backendConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err.Load() != nil {
		return false
	}
	c.bconn = bc
	return true
}

// detach forgets the connection and reports whether the call was cancelled while
// it was attached (then the connection's deadline was cut and it must be closed).
func (c *call) detach() (aborted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bconn = nil
	return c.err.Load() != nil
}

// abortBackend cuts the deadline of the connection serving the call, which makes
// the transport's pending read or write fail at once and close the connection:
// the service sees its request go away.
func (c *call) abortBackend(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && c.bconn != nil {
		_ = c.bconn.c.SetDeadline(time.Now())
	}
}
