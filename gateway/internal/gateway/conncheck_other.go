//go:build !linux

package gateway

// peekFD is not implemented outside Linux: an idle connection counts as open, and
// a closed one is left to RoundTrip's retry rule.
func (bc *backendConn) peekFD(uintptr) { bc.peekState = peekNothing }
