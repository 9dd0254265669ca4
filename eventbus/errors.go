package eventbus

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// transientError marks a failure of the infrastructure (a database or
// network outage, a timeout) rather than of the message.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// permanentError marks a failure that retrying cannot fix by waiting.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Transient wraps err so that subscribers retry it without counting it
// toward dead-lettering: the message is fine, the infrastructure is not.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// Permanent wraps err so that it counts toward dead-lettering even if it
// looks like an infrastructure error (for example a timeout a poison
// message causes every time).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsTransient reports whether err is the infrastructure's fault: wrapped
// with Transient, a deadline, a network error, a broken database
// connection, or an error whose driver says it is a network error or
// temporary. Errors wrapped with Permanent never are. Subscribers retry
// transient failures indefinitely (with backoff) and count only the others
// toward dead-lettering, so an outage of a consumer's database does not
// send a window of events to the dead-letter stream
// (suite case TransientFailuresAreNotDeadLettered, run by TestSuiteRedis, TestSuiteMiniredis and the memory suite).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var p permanentError
	if errors.As(err, &p) {
		return false
	}
	var tr transientError
	if errors.As(err, &tr) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var labelled interface{ HasErrorLabel(string) bool } // the MongoDB driver's errors
	if errors.As(err, &labelled) && (labelled.HasErrorLabel("NetworkError") || labelled.HasErrorLabel("RetryableWriteError")) {
		return true
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	// The MongoDB driver reports an unreachable server as a server
	// selection error that wraps no standard error.
	return strings.Contains(err.Error(), "server selection error") || strings.Contains(err.Error(), "connection refused")
}
