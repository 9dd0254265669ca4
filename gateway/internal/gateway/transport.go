package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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

// peekAfter is how long a connection must have sat in the pool before get peeks
// at its socket (see usable). One that served a request less than a second ago
// has not hit any service's idle timeout, so the only way it can be closed is the
// service dying, and the retry rule of RoundTrip covers that: the request fails
// before any answer byte, is sent again on another connection, and the failure
// empties the pool so that the other dead connections of a restarted service are
// not tried one by one (TestServiceRestartOnSameAddressGivesNoErrors). Skipping
// the peek saves one system call in five on a busy gateway.
const peekAfter = time.Second

// maxBackendAttempts bounds the attempts of one idempotent call whose connection
// fails before the service answers: the first one and two more, each on another
// connection (a failed one is closed). The endpoint timeout bounds them all.
const maxBackendAttempts = 3

// errNoAnswer replaces io.EOF when a new connection closes before the service's
// first answer byte: fasthttp.HostClient sends any request again on io.EOF, which
// for a POST is only safe on a reused connection (see RoundTrip).
var errNoAnswer = errors.New("gateway: the service closed a new connection without answering")

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
	tls      bool

	// raw is the TCP socket under c (nil where there is none), which peerClosed
	// peeks at; peek is the method value given to raw.Control, made once per
	// connection so that checking an idle connection allocates nothing.
	raw       syscall.RawConn
	peek      func(fd uintptr)
	peekState peekState
	peekBuf   [1]byte
}

// peekState is what peeking at an idle connection's socket found.
type peekState uint8

const (
	peekNothing peekState = iota // nothing to read: the connection is open
	peekData                     // bytes nobody asked for are waiting
	peekClosed                   // end of stream or an error: the peer closed or reset it
)

// newBackendConn wraps a dialled connection.
func newBackendConn(conn net.Conn) *backendConn {
	bc := &backendConn{
		c:  conn,
		br: bufio.NewReaderSize(conn, 8<<10),
		bw: bufio.NewWriterSize(conn, 8<<10),
	}
	under := conn
	if tc, ok := conn.(*tls.Conn); ok {
		bc.tls = true
		under = tc.NetConn()
	}
	if sc, ok := under.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			bc.raw = raw
			bc.peek = bc.peekFD
		}
	}
	return bc
}

// usable reports whether an idle connection can carry a request: the service has
// not closed or reset it (a service that was restarted, or killed, or that timed
// the connection out), and it has sent nothing unasked, which on a plain HTTP/1.1
// connection is a stray answer (a 408 before closing, say) that would be read as
// the next request's. A TLS connection may hold records that are not data (a
// session ticket), so waiting bytes alone do not condemn it. The check is one
// non-blocking peek on the socket, about a microsecond; it leaves a small race (a
// close arriving right after it) to the retry rule of RoundTrip.
func (bc *backendConn) usable() bool {
	if bc.br.Buffered() > 0 {
		return false
	}
	if bc.raw == nil {
		return true
	}
	bc.peekState = peekNothing
	if err := bc.raw.Control(bc.peek); err != nil {
		return false
	}
	return bc.peekState == peekNothing || (bc.peekState == peekData && bc.tls)
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

// RoundTrip sends req on a pooled (or new) connection and reads resp.
//
// retry tells HostClient.Do that the connection failed before the service's first
// answer byte (and not by timeout, cancellation or an oversized answer), so the
// request may go again on another connection; HostClient.RetryIf
// (retryIdempotent) then allows it for idempotent methods. For the others (POST,
// PATCH) fasthttp sends again only when the error is io.EOF, which RoundTrip
// returns for exactly one case: a reused keep-alive connection that the service
// closed or reset before answering. A service closes an idle keep-alive
// connection only between requests, so that one was not processed: the close
// raced the pool's check, or came from a restart within peekAfter. One case is
// left that looks the same and is not: a service killed while it handled the
// request, after committing and before answering (a panic is not one: the
// services' recover middleware answers 500); that POST is sent again. A new
// connection that fails, or any connection once an answer has begun, is not
// retried for them: the service may have acted on the request, and a second POST
// would create a second comment.
func (t *transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	c := callOf(req)
	bc, reused, err := t.get(c.start)
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
	answered := false
	if err == nil {
		if req.Header.IsHead() {
			resp.SkipBody = true
		}
		// The first byte is read apart to tell "no answer at all" from a broken
		// one; ReadLimitBody then finds it buffered.
		if _, err = bc.br.Peek(1); err == nil {
			answered = true
			err = resp.ReadLimitBody(bc.br, hc.MaxResponseBodySize)
		}
	}
	aborted := c.detach()
	if err != nil {
		t.discard(bc)
		switch {
		case aborted, answered:
			return false, err
		case isTimeout(err):
			return false, fasthttp.ErrTimeout
		case reused:
			// The service closed a pooled connection: it restarted, or timed
			// the connection out, and then the others are as dead.
			t.closeIdle()
			return true, io.EOF
		case errors.Is(err, io.EOF):
			return true, errNoAnswer
		default:
			return true, err
		}
	}
	if aborted || req.ConnectionClose() || resp.ConnectionClose() {
		t.discard(bc)
	} else {
		t.put(bc, c.start)
	}
	return false, nil
}

// get returns an idle connection that has not outlived the idle timeout and that
// the service has not closed (see usable; checked only after peekAfter), or dials.
// now is the start of the request (a few microseconds ago).
func (t *transport) get(now time.Time) (bc *backendConn, reused bool, err error) {
	t.mu.Lock()
	for len(t.idle) > 0 {
		bc = t.idle[len(t.idle)-1]
		t.idle[len(t.idle)-1] = nil
		t.idle = t.idle[:len(t.idle)-1]
		t.mu.Unlock()
		idle := now.Sub(bc.lastUsed)
		if idle < peekAfter && bc.br.Buffered() == 0 || idle < backendIdleTimeout && bc.usable() {
			return bc, true, nil
		}
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
	return newBackendConn(conn), false, nil
}

// put returns a healthy connection to the pool, or closes it when the pool is full.
// used is when the request it served started: earlier than its last use, so the
// connection looks idle longer than it was, which errs towards checking it
// (peekAfter) and closing it (backendIdleTimeout), never towards trusting it.
func (t *transport) put(bc *backendConn, used time.Time) {
	bc.lastUsed = used
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
