package netconn

import (
	"context"
	"net"
	"net/netip"
	"syscall"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netname"
)

// UDPConn is a UDP socket of a netcore stack. It implements
// net.PacketConn, and net.Conn when connected (made by DialUDP, or
// NewUDPConn with a remote address). A datagram longer than the read
// buffer fills it and the rest is discarded, as with Go's net package. It
// is safe for concurrent use.
type UDPConn struct {
	dgram
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

// NewUDPConn wraps a UDP socket handle h (from core.UDPBound) of the stack
// behind ch; remote is the connected peer, or the zero AddrPort when the
// socket is unconnected. The UDPConn owns h from now on.
func NewUDPConn(ch core.Channel, h core.Handle, local, remote netip.AddrPort) *UDPConn {
	return newUDPConn(ch, h, "udp", local, remote)
}

func newUDPConn(ch core.Channel, h core.Handle, network string, local, remote netip.AddrPort) *UDPConn {
	c := &UDPConn{}
	c.local, c.remote = local, remote
	var dst net.Addr
	if remote.IsValid() {
		dst = net.UDPAddrFromAddrPort(remote)
	}
	c.sock = newSock(ch, h, network, net.UDPAddrFromAddrPort(local), dst)
	return c
}

// DialUDP makes a UDP socket connected to remote, bound to local (the zero
// AddrPort: any address, an ephemeral port). network is "udp", "udp4" or
// "udp6". Errors are *net.OpError with Op "dial".
func DialUDP(ctx context.Context, ch core.Channel, network string, local, remote netip.AddrPort) (*UDPConn, error) {
	c, err := openUDP(ctx, ch, network, local, remote)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: udpAddrOrNil(local), Addr: net.UDPAddrFromAddrPort(remote), Err: err}
	}
	return c, nil
}

// ListenUDP makes an unconnected UDP socket bound to local (port 0: an
// ephemeral port; an unspecified or zero address: every address, "::"
// taking IPv4 too unless network is "udp4"). Errors are *net.OpError with
// Op "listen"; a port in use matches syscall.EADDRINUSE.
func ListenUDP(ctx context.Context, ch core.Channel, network string, local netip.AddrPort) (*UDPConn, error) {
	c, err := openUDP(ctx, ch, network, local, netip.AddrPort{})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.UDPAddrFromAddrPort(local), Err: err}
	}
	return c, nil
}

func openUDP(ctx context.Context, ch core.Channel, network string, local, remote netip.AddrPort) (*UDPConn, error) {
	n, err := checkNetwork(network, netname.UDP, local.Addr(), remote.Addr())
	if err != nil {
		return nil, err
	}
	if remote.Addr().IsValid() && netname.FamilyOf(remote.Addr()) == 4 {
		n.Family = 4 // an unspecified local address binds IPv4 for an IPv4 peer
	}
	local = withUnspecified(n, local)
	h, bound, err := bindDgram(ctx, ch, core.UDPBind{Local: local}, remote)
	if err != nil {
		return nil, err
	}
	return newUDPConn(ch, h, network, bound, remote), nil
}

// udpAddrOrNil returns ap as a *net.UDPAddr, or a nil net.Addr when ap is
// the zero AddrPort.
func udpAddrOrNil(ap netip.AddrPort) net.Addr {
	if !ap.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// Handle returns the engine handle of the socket.
func (c *UDPConn) Handle() core.Handle { return c.h }

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr { return c.src }

// RemoteAddr returns the connected peer's address (a *net.UDPAddr), or nil
// when the socket is unconnected.
func (c *UDPConn) RemoteAddr() net.Addr { return c.remoteAddr() }

// ReadFromUDPAddrPort reads one datagram into b and returns its size (at
// most len(b)) and sender.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.recv(b)
	return n, from, c.opErr("read", err)
}

// ReadFromUDP is ReadFromUDPAddrPort with a *net.UDPAddr. Consecutive
// datagrams from one sender share one *net.UDPAddr (which saves an
// allocation per datagram); treat it as read-only.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.recvFrom(b)
	if err != nil {
		return n, nil, c.opErr("read", err)
	}
	return n, from, nil
}

// ReadFrom implements net.PacketConn; the address is a *net.UDPAddr,
// shared by consecutive datagrams from one sender as with ReadFromUDP.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.recvFrom(b)
	if err != nil {
		return n, nil, c.opErr("read", err)
	}
	return n, from, nil
}

// Read reads one datagram into b, as net.Conn does.
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// WriteToUDPAddrPort sends b as one datagram to addr. It fails with
// net.ErrWriteToConnected on a connected socket.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	n, err := c.writeTo(b, addr)
	if err != nil {
		return n, c.opErrTo("write", net.UDPAddrFromAddrPort(addr), err)
	}
	return n, nil
}

// writeTo is WriteToUDPAddrPort without the error's wrapping (whose
// address costs an allocation, made only on failure).
func (c *UDPConn) writeTo(b []byte, addr netip.AddrPort) (int, error) {
	if c.connected() {
		return 0, net.ErrWriteToConnected
	}
	if !addr.IsValid() {
		return 0, syscall.EINVAL
	}
	return c.send(b, addr)
}

// WriteToUDP is WriteToUDPAddrPort with a *net.UDPAddr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, c.opErrTo("write", nil, syscall.EINVAL)
	}
	n, err := c.writeTo(b, addr.AddrPort())
	return n, c.opErrTo("write", addr, err)
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok || a == nil {
		return 0, c.opErrTo("write", addr, syscall.EINVAL)
	}
	n, err := c.writeTo(b, a.AddrPort())
	return n, c.opErrTo("write", addr, err)
}

// Write sends b as one datagram to the connected peer, as net.Conn does.
// On an unconnected socket it fails (ENOTCONN).
func (c *UDPConn) Write(b []byte) (int, error) {
	n, err := c.send(b, netip.AddrPort{})
	return n, c.opErr("write", err)
}

// Close closes the socket. Every call blocked on it returns an error
// matching net.ErrClosed, as do later calls and a second Close.
func (c *UDPConn) Close() error { return c.opErr("close", c.closeWith(core.CloseSocket{})) }

// SetReadBuffer sets the size of the socket's receive buffer.
func (c *UDPConn) SetReadBuffer(bytes int) error { return c.setBuffer(core.OptRecvBuffer, bytes) }

// SetWriteBuffer sets the size of the socket's send buffer.
func (c *UDPConn) SetWriteBuffer(bytes int) error { return c.setBuffer(core.OptSendBuffer, bytes) }
