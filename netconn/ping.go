package netconn

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netname"
)

// PingConn is an ICMP echo socket of a netcore stack, like Linux's
// unprivileged ping sockets. It implements net.PacketConn, and net.Conn
// when dialled. A write carries one ICMP echo request message (type, code,
// checksum, identifier, sequence number, data; see EchoRequest), whose
// identifier and checksum the stack fills in; a read returns one echo reply
// message. Addresses are *net.IPAddr. It is safe for concurrent use.
type PingConn struct {
	dgram
}

var (
	_ net.PacketConn = (*PingConn)(nil)
	_ net.Conn       = (*PingConn)(nil)
)

// ICMP echo request types.
const (
	icmpv4EchoRequest = 8
	icmpv6EchoRequest = 128
)

// EchoRequest returns an ICMP echo request message (ICMPv6 if ipv6) with
// sequence number seq and data, for a PingConn to send. Its identifier and
// checksum are left zero: the stack fills them in.
func EchoRequest(ipv6 bool, seq uint16, data []byte) []byte {
	m := make([]byte, 8+len(data))
	m[0] = icmpv4EchoRequest
	if ipv6 {
		m[0] = icmpv6EchoRequest
	}
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	return m
}

// DialPing makes an ICMP echo socket connected to remote, from local (the
// zero Addr: the stack chooses). network is "ping4" or "ping6". Errors are
// *net.OpError with Op "dial".
func DialPing(ctx context.Context, ch core.Channel, network string, local, remote netip.Addr) (*PingConn, error) {
	c, err := openPing(ctx, ch, network, local, remote)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: ipAddrOrNil(local), Addr: ipAddrOrNil(remote), Err: err}
	}
	return c, nil
}

// ListenPing makes an unconnected ICMP echo socket on local (the zero or
// unspecified Addr: every address of network's family). network is "ping4"
// or "ping6". Errors are *net.OpError with Op "listen".
func ListenPing(ctx context.Context, ch core.Channel, network string, local netip.Addr) (*PingConn, error) {
	c, err := openPing(ctx, ch, network, local, netip.Addr{})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: ipAddrOrNil(local), Err: err}
	}
	return c, nil
}

func openPing(ctx context.Context, ch core.Channel, network string, local, remote netip.Addr) (*PingConn, error) {
	n, err := checkNetwork(network, netname.Ping, local, remote)
	if err != nil {
		return nil, err
	}
	if !local.IsValid() {
		local = n.Unspecified()
	}
	var to netip.AddrPort
	if remote.IsValid() {
		to = netip.AddrPortFrom(remote, 0)
	}
	h, bound, err := bindDgram(ctx, ch, core.PingOpen{Local: local}, to)
	if err != nil {
		return nil, err
	}
	return newPingConn(ch, h, network, bound.Addr(), remote), nil
}

func newPingConn(ch core.Channel, h core.Handle, network string, local, remote netip.Addr) *PingConn {
	c := &PingConn{}
	c.local = netip.AddrPortFrom(local, 0)
	if remote.IsValid() {
		c.remote = netip.AddrPortFrom(remote, 0)
	}
	c.sock = newSock(ch, h, network, ipAddrOrNil(local), ipAddrOrNil(remote))
	return c
}

// ipAddrOrNil returns a as a *net.IPAddr, or a nil net.Addr when a is the
// zero Addr.
func ipAddrOrNil(a netip.Addr) net.Addr {
	if !a.IsValid() {
		return nil
	}
	return &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
}

// Handle returns the engine handle of the socket.
func (c *PingConn) Handle() core.Handle { return c.h }

// LocalAddr returns the local address, a *net.IPAddr.
func (c *PingConn) LocalAddr() net.Addr { return c.src }

// RemoteAddr returns the peer's address (a *net.IPAddr), or nil when the
// socket is not dialled.
func (c *PingConn) RemoteAddr() net.Addr { return c.remoteAddr() }

// ReadFrom reads one echo reply message into b and returns its size (at
// most len(b)) and sender, a *net.IPAddr.
func (c *PingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.recv(b)
	if err != nil {
		return n, nil, c.opErr("read", err)
	}
	return n, ipAddrOrNil(from.Addr()), nil
}

// Read reads one echo reply message into b, as net.Conn does.
func (c *PingConn) Read(b []byte) (int, error) {
	n, _, err := c.recv(b)
	return n, c.opErr("read", err)
}

// WriteTo sends one echo request message to addr, a *net.IPAddr (a
// *net.UDPAddr's IP is also taken). It fails with net.ErrWriteToConnected
// on a dialled socket.
func (c *PingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	to, ok := pingTarget(addr)
	switch {
	case c.connected():
		return 0, c.opErrTo("write", addr, net.ErrWriteToConnected)
	case !ok:
		return 0, c.opErrTo("write", addr, syscall.EINVAL)
	}
	n, err := c.send(b, netip.AddrPortFrom(to, 0))
	return n, c.opErrTo("write", addr, err)
}

func pingTarget(addr net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := addr.(type) {
	case *net.IPAddr:
		if a != nil {
			ip = a.IP
		}
	case *net.UDPAddr:
		if a != nil {
			ip = a.IP
		}
	}
	to, ok := netip.AddrFromSlice(ip)
	return to.Unmap(), ok
}

// Write sends one echo request message to the dialled peer.
func (c *PingConn) Write(b []byte) (int, error) {
	n, err := c.send(b, netip.AddrPort{})
	return n, c.opErr("write", err)
}

// Close closes the socket. Every call blocked on it returns an error
// matching net.ErrClosed, as do later calls and a second Close.
func (c *PingConn) Close() error { return c.opErr("close", c.closeWith(core.CloseSocket{})) }
