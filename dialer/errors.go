package dialer

import (
	"context"
	"errors"
	"net"
	"os"
)

// timeoutError is the error of a dial that ran out of time, as net's
// errTimeout: its text is "i/o timeout", Timeout reports true, and it
// matches both os.ErrDeadlineExceeded and context.DeadlineExceeded.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Is matches os.ErrDeadlineExceeded and context.DeadlineExceeded.
func (timeoutError) Is(err error) bool {
	return err == os.ErrDeadlineExceeded || err == context.DeadlineExceeded
}

// canceledError is the error of a dial whose context was cancelled, as
// net's errCanceled: it matches context.Canceled.
type canceledError struct{}

func (canceledError) Error() string     { return "operation was canceled" }
func (canceledError) Is(err error) bool { return err == context.Canceled }
func (canceledError) Timeout() bool     { return false }
func (canceledError) Temporary() bool   { return false }

var (
	errTimeout  error = timeoutError{}
	errCanceled error = canceledError{}
	// errNoChannel is returned by a Dialer whose Channel was never set.
	errNoChannel = errors.New("dialer: Dialer.Channel is not set")
	// errNoDNSServers is the resolver's dial error when DNSServers is empty.
	errNoDNSServers = errors.New("dialer: no DNS servers configured")
	// errNoSuitableAddress: no address of the wanted family.
	errNoSuitableAddress = "no suitable address found"
	// errMissingAddress: nothing to dial.
	errMissingAddress = errors.New("missing address")
)

// mapErr turns context errors into net's timeout and cancel errors, keeping
// any other error (a *net.DNSError too) as it is.
func mapErr(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return err // already says what happened, Timeout included
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return errTimeout
	case errors.Is(err, context.Canceled):
		return errCanceled
	}
	return err
}

// opError wraps err once as net.Dialer does. An error that already is a
// *net.OpError (from netconn) keeps its addresses; its context errors are
// mapped so that timeouts and cancellations look like net's.
func opError(network string, source, addr net.Addr, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		cp := *op
		cp.Err = mapErr(op.Err)
		return &cp
	}
	return &net.OpError{Op: "dial", Net: network, Source: source, Addr: addr, Err: mapErr(err)}
}
