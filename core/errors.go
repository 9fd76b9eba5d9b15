package core

import (
	"errors"
	"net"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Errors returned in replies. Each matches with errors.Is; the ones that have
// a POSIX meaning also match the syscall.Errno (for example ErrConnRefused
// matches syscall.ECONNREFUSED).
var (
	// ErrClosed is returned for every request once the stack is closed, and
	// for commands on a socket that was closed. It is net.ErrClosed.
	ErrClosed = net.ErrClosed
	// ErrBadHandle means the handle does not name a live socket of this
	// stack: it is stale (its socket was closed), foreign (from another
	// stack) or was never issued.
	ErrBadHandle = errnoError("netcore: stale, foreign or unknown handle", syscall.EBADF)
	// ErrWrongKind means the command does not apply to the handle's socket
	// kind (a TCP command on a UDP socket, Accept on a stream).
	ErrWrongKind = errnoError("netcore: command does not apply to this socket kind", syscall.ENOTSOCK)
	// ErrQueueFull is returned by RequestNonblocking when the command queue
	// has no room. The command was not taken.
	ErrQueueFull = errnoError("netcore: command queue full", syscall.EAGAIN)
	// ErrTooManySockets means Config.MaxSockets sockets are open.
	ErrTooManySockets = errnoError("netcore: too many sockets", syscall.EMFILE)
	// ErrEmptyBuffer is returned for a zero-length TCP send or receive, or a
	// receive with no buffer: the engine never parks such a request.
	ErrEmptyBuffer = errnoError("netcore: zero-length buffer", syscall.EINVAL)
	// ErrInvalidAddr means an address is malformed or unusable here (port 0
	// as a destination, an unspecified remote address).
	ErrInvalidAddr = errnoError("netcore: invalid address", syscall.EINVAL)
	// ErrAddrFamily means the address's IP version does not match the
	// socket's.
	ErrAddrFamily = errnoError("netcore: address family mismatch", syscall.EAFNOSUPPORT)
	// ErrMessageTooLong means a datagram or raw packet is too large.
	ErrMessageTooLong = errnoError("netcore: message too long", syscall.EMSGSIZE)
	// ErrNotConnected means a send without a destination on an unconnected
	// socket, or an address query on one.
	ErrNotConnected = errnoError("netcore: socket not connected", syscall.ENOTCONN)
	// ErrUnknownCommand means the command's type is not one the engine knows.
	ErrUnknownCommand = errnoError("netcore: unknown command", syscall.EOPNOTSUPP)
	// ErrCanceled is the engine's answer to a request that was cancelled
	// while parked. Channel.Request turns it into the context's error.
	ErrCanceled = errors.New("netcore: request canceled")
	// ErrNoStack is returned by the zero Channel, which belongs to no
	// stack.
	ErrNoStack = errnoError("netcore: channel of no stack", syscall.EBADF)
	// ErrTimeout is returned by WaitForCmd when no command came in time.
	ErrTimeout = errnoError("netcore: timed out", syscall.ETIMEDOUT)
)

// Errors mapped from gVisor; each wraps the syscall.Errno named.
var (
	ErrConnRefused  = errnoError("connection refused", syscall.ECONNREFUSED)
	ErrConnReset    = errnoError("connection reset by peer", syscall.ECONNRESET)
	ErrConnAborted  = errnoError("connection aborted", syscall.ECONNABORTED)
	ErrAddrInUse    = errnoError("address already in use", syscall.EADDRINUSE)
	ErrAddrNotAvail = errnoError("cannot assign requested address", syscall.EADDRNOTAVAIL)
	ErrNetUnreach   = errnoError("network is unreachable", syscall.ENETUNREACH)
	ErrHostUnreach  = errnoError("no route to host", syscall.EHOSTUNREACH)
	ErrTimedOut     = errnoError("connection timed out", syscall.ETIMEDOUT)
	ErrBrokenPipe   = errnoError("broken pipe", syscall.EPIPE)
	ErrInvalid      = errnoError("invalid argument", syscall.EINVAL)
	ErrNoBufs       = errnoError("no buffer space available", syscall.ENOBUFS)
	ErrNotPermitted = errnoError("operation not permitted", syscall.EPERM)
	ErrProtoUnsup   = errnoError("protocol not supported", syscall.EPROTONOSUPPORT)
)

// Error is an engine error that wraps a syscall.Errno, so that
// errors.Is(err, syscall.ECONNREFUSED) holds for ErrConnRefused.
type Error struct {
	msg   string
	errno syscall.Errno
}

func errnoError(msg string, errno syscall.Errno) *Error { return &Error{msg: msg, errno: errno} }

// Error implements error.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the syscall.Errno the error stands for.
func (e *Error) Unwrap() error { return e.errno }

// Timeout reports whether the error is a timeout, as net.Error does.
func (e *Error) Timeout() bool { return e.errno == syscall.ETIMEDOUT }

// Temporary reports whether retrying may succeed.
func (e *Error) Temporary() bool { return e.errno == syscall.EAGAIN || e.Timeout() }

// fromTCPIP maps a gVisor error to netcore's. Unknown errors keep gVisor's
// text and wrap EIO.
func fromTCPIP(err tcpip.Error) error {
	if err == nil {
		return nil
	}
	switch err.(type) {
	case *tcpip.ErrConnectionRefused:
		return ErrConnRefused
	case *tcpip.ErrConnectionReset:
		return ErrConnReset
	case *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		return ErrConnAborted
	case *tcpip.ErrPortInUse, *tcpip.ErrDuplicateAddress:
		return ErrAddrInUse
	case *tcpip.ErrBadLocalAddress, *tcpip.ErrNoPortAvailable:
		return ErrAddrNotAvail
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		return ErrNetUnreach
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		return ErrHostUnreach
	case *tcpip.ErrTimeout:
		return ErrTimedOut
	case *tcpip.ErrClosedForSend:
		return ErrBrokenPipe
	case *tcpip.ErrClosedForReceive:
		return ErrClosed
	case *tcpip.ErrNotConnected, *tcpip.ErrDestinationRequired:
		return ErrNotConnected
	case *tcpip.ErrMessageTooLong:
		return ErrMessageTooLong
	case *tcpip.ErrInvalidEndpointState, *tcpip.ErrInvalidOptionValue, *tcpip.ErrBadAddress:
		return ErrInvalid
	case *tcpip.ErrNoBufferSpace:
		return ErrNoBufs
	case *tcpip.ErrNotPermitted:
		return ErrNotPermitted
	case *tcpip.ErrUnknownProtocol:
		return ErrProtoUnsup
	case *tcpip.ErrAddressFamilyNotSupported:
		return ErrAddrFamily
	}
	return errnoError("netcore: "+err.String(), syscall.EIO)
}
