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
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n)}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// limitConn frees its slot once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
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
	c.once.Do(c.release)
	return err
}

// SyscallConn exposes the raw connection, which the client watcher peeks at.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
