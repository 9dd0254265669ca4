package gateway

import (
	"errors"
	"net"
	"syscall"
)

// clientGone blocks until conn is readable or its read deadline passes and reports
// whether the peer closed it (end of stream or reset). It peeks without
// consuming, so a pipelined next request stays for fasthttp to read.
func clientGone(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var buf [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			return false // Nothing yet: wait until the connection is readable.
		case err != nil, n == 0:
			gone = true
		}
		return true
	})
	return gone
}
