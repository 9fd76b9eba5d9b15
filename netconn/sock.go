package netconn

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netcore-go/netcore/core"
)

// sock is what every netconn type shares: the engine channel and handle,
// the addresses that go into errors, one deadline per direction and the
// closed state.
type sock struct {
	ch     core.Channel
	h      core.Handle
	net    string
	src    net.Addr // OpError.Source: the local address (nil for listeners)
	dst    net.Addr // OpError.Addr: the remote address, or a listener's own
	rd, wd *deadline
	closed atomic.Bool
}

func newSock(ch core.Channel, h core.Handle, network string, src, dst net.Addr) sock {
	rd, wd := newDeadlines()
	return sock{ch: ch, h: h, net: network, src: src, dst: dst, rd: rd, wd: wd}
}

// opErr wraps err in the *net.OpError every exported method returns. It
// leaves nil and io.EOF alone.
func (s *sock) opErr(op string, err error) error {
	return s.opErrTo(op, s.dst, err)
}

// opErrTo is opErr with an explicit OpError.Addr (a datagram's destination).
func (s *sock) opErrTo(op string, addr net.Addr, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: s.net, Source: s.src, Addr: addr, Err: err}
}

// mapErr turns an engine or deadline error into the one Go's net package
// would give: after a local Close everything is net.ErrClosed, and an
// expired deadline is os.ErrDeadlineExceeded.
func (s *sock) mapErr(err error) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case s.closed.Load():
		return net.ErrClosed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return os.ErrDeadlineExceeded
	}
	return err
}

// ready reports why a call in direction d cannot start: the conn is closed
// or the deadline has passed.
func (s *sock) ready(d *deadline) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	return s.mapErr(d.check())
}

// request sends cmd for the socket, with d as the context, and maps the
// error.
func (s *sock) request(d *deadline, cmd core.Command) (core.Response, error) {
	resp, err := s.ch.Request(d, s.h, cmd)
	return resp, s.mapErr(err)
}

// SetDeadline sets the read and write deadlines, as net.Conn does. Calls
// already blocked see the new deadline; the zero time clears it.
func (s *sock) SetDeadline(t time.Time) error {
	if s.closed.Load() {
		return s.opErr("set", net.ErrClosed)
	}
	s.rd.set(t)
	s.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline for reads, including reads already
// blocked; the zero time clears it.
func (s *sock) SetReadDeadline(t time.Time) error {
	if s.closed.Load() {
		return s.opErr("set", net.ErrClosed)
	}
	s.rd.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for writes, including writes already
// blocked; the zero time clears it. A write cut by the deadline reports
// how many bytes went out.
func (s *sock) SetWriteDeadline(t time.Time) error {
	if s.closed.Load() {
		return s.opErr("set", net.ErrClosed)
	}
	s.wd.set(t)
	return nil
}

// closeWith closes the socket once, with cmd (core.CloseSocket or core.Abort).
// It wakes every blocked call first. A second call fails with
// net.ErrClosed; a stack that is already closed is not an error.
func (s *sock) closeWith(cmd core.Command) error {
	if !s.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	s.rd.close()
	s.wd.close()
	_, err := s.ch.Request(context.Background(), s.h, cmd)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, core.ErrBadHandle) {
		return nil
	}
	return err
}

// setOpt sets a socket option, for the Set* methods.
func (s *sock) setOpt(opt core.SockOpt, v int64) error {
	if s.closed.Load() {
		return s.opErr("set", net.ErrClosed)
	}
	_, err := s.ch.Request(context.Background(), s.h, core.SetSockOpt{Opt: opt, Value: v})
	return s.opErr("set", s.mapErr(err))
}

// setBuffer sets SO_RCVBUF or SO_SNDBUF.
func (s *sock) setBuffer(opt core.SockOpt, bytes int) error {
	if bytes < 0 {
		return s.opErr("set", syscall.EINVAL)
	}
	return s.setOpt(opt, int64(bytes))
}

// closeHandle frees a handle the caller will not wrap (an error path).
func closeHandle(ch core.Channel, h core.Handle) {
	ch.Request(context.Background(), h, core.CloseSocket{})
}
