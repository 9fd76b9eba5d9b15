package netconn

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netname"
)

// Listener is a TCP listener of a netcore stack. It implements
// net.Listener and, like *net.TCPListener, has SetDeadline and AcceptTCP.
// It is safe for concurrent use.
type Listener struct {
	s     sock // its rd is the Accept deadline
	local netip.AddrPort
	// acceptCmd is the TCPAccept every Accept sends when set (by
	// SetAcceptKeepAlive).
	acceptCmd atomic.Pointer[core.TCPAccept]
}

var _ net.Listener = (*Listener)(nil)

// ListenTCP listens on local (port 0: an ephemeral port; an unspecified
// address: every address of the stack, and "::" takes IPv4 too). network is
// "tcp", "tcp4" or "tcp6"; backlog <= 0 means the stack's maximum. Errors
// are *net.OpError with Op "listen"; a port in use matches
// syscall.EADDRINUSE.
func ListenTCP(ctx context.Context, ch core.Channel, network string, local netip.AddrPort, backlog int) (*Listener, error) {
	l, err := listenTCP(ctx, ch, network, local, backlog)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.TCPAddrFromAddrPort(local), Err: err}
	}
	return l, nil
}

func listenTCP(ctx context.Context, ch core.Channel, network string, local netip.AddrPort, backlog int) (*Listener, error) {
	n, err := checkNetwork(network, netname.TCP, local.Addr())
	if err != nil {
		return nil, err
	}
	local = withUnspecified(n, local)
	resp, err := ch.Request(ctx, core.NoHandle, core.TCPListen{Local: local, Backlog: backlog})
	if err != nil {
		return nil, err
	}
	r := resp.(core.TCPListening)
	if err := ctx.Err(); err != nil {
		closeHandle(ch, r.Handle)
		return nil, err
	}
	l := &Listener{local: r.Local}
	l.s = newSock(ch, r.Handle, network, nil, net.TCPAddrFromAddrPort(r.Local))
	return l, nil
}

// withUnspecified fills an invalid address with the unspecified one of
// n's family: "::" (dual stack) unless n is an IPv4 network.
func withUnspecified(n netname.Network, ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().IsValid() {
		return ap
	}
	return netip.AddrPortFrom(n.Unspecified(), ap.Port())
}

// Handle returns the engine handle of the listener.
func (l *Listener) Handle() core.Handle { return l.s.h }

// Addr returns the listener's address, a *net.TCPAddr.
func (l *Listener) Addr() net.Addr { return l.s.dst }

// AddrPort returns the listener's address as a netip.AddrPort.
func (l *Listener) AddrPort() netip.AddrPort { return l.local }

// Accept waits for the next connection and returns it as a *TCPConn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP waits for the next connection. It fails with an error matching
// os.ErrDeadlineExceeded once the deadline passes, and net.ErrClosed after
// Close (which wakes a blocked AcceptTCP).
func (l *Listener) AcceptTCP() (*TCPConn, error) {
	c, err := l.accept()
	if err != nil {
		return nil, l.s.opErr("accept", err)
	}
	return c, nil
}

func (l *Listener) accept() (*TCPConn, error) {
	if err := l.s.ready(l.s.rd); err != nil {
		return nil, err
	}
	var cmd core.TCPAccept
	if p := l.acceptCmd.Load(); p != nil {
		cmd = *p // keep-alive set inside the engine, best effort as Go's net does
	}
	a, err := l.s.ch.Accept(l.s.rd, l.s.h, cmd) // neither command nor reply boxed
	if err != nil {
		return nil, l.s.mapErr(err)
	}
	return newTCPConn(l.s.ch, a.Handle, l.s.net, a.Local, a.Remote), nil
}

// SetDeadline sets the deadline for Accept, including calls already
// blocked; the zero time clears it.
func (l *Listener) SetDeadline(t time.Time) error {
	if l.s.closed.Load() {
		return l.s.opErr("set", net.ErrClosed)
	}
	l.s.rd.set(t)
	return nil
}

// SetAcceptKeepAlive sets the keep-alive configuration applied to every
// connection Accept returns from now on, as net.ListenConfig's
// KeepAliveConfig does. By default none is applied and accepted streams
// keep the stack's default (keep-alive off).
func (l *Listener) SetAcceptKeepAlive(cfg net.KeepAliveConfig) {
	l.acceptCmd.Store(&core.TCPAccept{KeepAlive: keepAliveCmd(cfg)})
}

// Close stops listening; connections not yet accepted are reset. A blocked
// Accept returns an error matching net.ErrClosed, as do later calls and a
// second Close.
func (l *Listener) Close() error {
	return l.s.opErr("close", l.s.closeWith(core.CloseSocket{}))
}
