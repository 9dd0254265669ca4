package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// defaultMaxClientConns bounds the client connections served at once. Each costs
// up to 32 KiB of buffers while a request is on it, so 4096 caps that at 128 MiB.
// Beyond the limit, connections wait in the kernel's accept backlog instead of
// being answered with fasthttp's plain-text 503.
const defaultMaxClientConns = 4096

// limitListener accepts at most n connections at a time; Accept blocks until one
// closes.
type limitListener struct {
	net.Listener
	sem chan struct{}

	// mu guards silent: the open connections that have not received a byte yet.
	mu     sync.Mutex
	silent map[*limitConn]struct{}
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), silent: map[*limitConn]struct{}{}}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	lc := &limitConn{Conn: c, accepted: time.Now(), ln: l}
	l.mu.Lock()
	l.silent[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

// unusedConnGrace is how old a connection that never sent a byte must be before a
// shutdown closes it, as net/http's Shutdown does with StateNew connections older
// than 5 s: younger, its first request may still be on its way.
const unusedConnGrace = 5 * time.Second

// closeSilent closes the connections accepted at least olderThan ago that have not
// received a single byte: they carry no request, and fasthttp's Shutdown, which
// closes only connections idle after a request, would otherwise wait for its read
// timeout (TestShutdownClosesConnectionsThatNeverSentAByte).
func (l *limitListener) closeSilent(olderThan time.Duration) {
	var old []*limitConn
	l.mu.Lock()
	for c := range l.silent {
		if time.Since(c.accepted) >= olderThan && !c.used.Load() {
			old = append(old, c)
		}
	}
	l.mu.Unlock()
	for _, c := range old {
		_ = c.Close()
	}
}

// forget drops c from the silent set.
func (l *limitListener) forget(c *limitConn) {
	l.mu.Lock()
	delete(l.silent, c)
	l.mu.Unlock()
}

// limitConn frees its slot once, on the first Close.
type limitConn struct {
	net.Conn
	once     sync.Once
	ln       *limitListener
	accepted time.Time
	// used is set by the first read that returns data; the connection then leaves
	// its listener's silent set.
	used atomic.Bool
	// linger asks Close to drain what the client is still sending first.
	linger atomic.Bool
}

// Lingering bounds: how long and how much a refused request may still send.
const (
	lingerTimeout = 2 * time.Second
	lingerMax     = 4 << 20
)

// Close closes the connection and frees the slot. After a refused request (a body
// over the limit, say) the client may still be sending: closing at once would
// reset the connection, and a reset destroys the answer in the client's receive
// buffer before it is read. So the gateway first ends its side (FIN) and reads
// and drops what still arrives, for at most 2 s and 4 MiB, as net/http, nginx and
// Apache do.
func (c *limitConn) Close() error {
	if c.linger.Load() {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.Conn, lingerMax)
	}
	err := c.Conn.Close()
	c.once.Do(func() {
		if !c.used.Load() {
			c.ln.forget(c)
		}
		<-c.ln.sem
	})
	return err
}

// Read reads from the connection; the first data it returns marks the connection
// used (one atomic load per read after that).
func (c *limitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.used.Load() && c.used.CompareAndSwap(false, true) {
		c.ln.forget(c)
	}
	return n, err
}

// SyscallConn exposes the raw connection, which the client watcher peeks at.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
