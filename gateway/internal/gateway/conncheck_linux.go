package gateway

import (
	"errors"
	"syscall"
)

// peekFD peeks one byte of the socket without waiting or consuming it and records
// what it found in peekState; it runs under raw.Control on an idle connection no
// one else reads.
//
// A Go read with a deadline in the past would not do: the runtime fails it with a
// timeout before asking the kernel, so it would call every connection alive.
func (bc *backendConn) peekFD(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), bc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		bc.peekState = peekNothing
	case err != nil, n == 0:
		bc.peekState = peekClosed
	default:
		bc.peekState = peekData
	}
}
