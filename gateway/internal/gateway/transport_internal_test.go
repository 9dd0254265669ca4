package gateway

import (
	"net"
	"testing"
	"time"
)

// connPair returns a backendConn dialled to a loopback listener and the service's
// end of it.
func connPair(t testing.TB) (*backendConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); _ = peer.Close() })
	return newBackendConn(conn), peer.(*net.TCPConn)
}

// eventually retries cond for a second: a close travels through the loopback
// asynchronously.
func eventually(cond func() bool) bool {
	for range 100 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestIdleConnUsable checks the check made on every idle connection taken from the
// pool against what a service can do to it meanwhile.
func TestIdleConnUsable(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		bc, _ := connPair(t)
		if !bc.usable() {
			t.Fatal("an open idle connection counted as unusable")
		}
		// A deadline of the last call, now past, must not change the verdict.
		_ = bc.c.SetDeadline(time.Now().Add(-time.Second))
		if !bc.usable() {
			t.Fatal("an open idle connection with a past deadline counted as unusable")
		}
	})
	t.Run("closed by the service", func(t *testing.T) {
		bc, peer := connPair(t)
		_ = peer.Close()
		if !eventually(func() bool { return !bc.usable() }) {
			t.Fatal("a connection the service closed (FIN) counted as usable")
		}
	})
	t.Run("reset by the service", func(t *testing.T) {
		bc, peer := connPair(t)
		_ = peer.SetLinger(0)
		_ = peer.Close()
		if !eventually(func() bool { return !bc.usable() }) {
			t.Fatal("a connection the service reset (RST) counted as usable")
		}
	})
	t.Run("stray bytes", func(t *testing.T) {
		bc, peer := connPair(t)
		if _, err := peer.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if !eventually(func() bool { return !bc.usable() }) {
			t.Fatal("a connection holding an answer nobody asked for counted as usable")
		}
	})
}

// BenchmarkIdleConnUsable is the cost the check adds to a request that takes a
// pooled connection (one non-blocking recvfrom); it must not allocate.
func BenchmarkIdleConnUsable(b *testing.B) {
	bc, _ := connPair(b)
	b.ReportAllocs()
	for b.Loop() {
		if !bc.usable() {
			b.Fatal("open connection counted as unusable")
		}
	}
}
