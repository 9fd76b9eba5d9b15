package netconn

import (
	"context"
	"net"
	"net/netip"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netname"
)

// DialTCP connects to remote from local (the zero AddrPort lets the stack
// choose the address and an ephemeral port) over the stack behind ch.
// network is "tcp", "tcp4" or "tcp6". Errors are *net.OpError with Op
// "dial"; a refused connection matches syscall.ECONNREFUSED. If ctx ends
// first, the error matches ctx.Err() and no socket is left behind.
func DialTCP(ctx context.Context, ch core.Channel, network string, local, remote netip.AddrPort) (*TCPConn, error) {
	return dialTCPOpErr(ctx, ch, network, local, remote, core.KeepAlive{})
}

// DialTCPKeepAlive is DialTCP with keep-alive configured as
// SetKeepAliveConfig(ka) would (Go's defaults for zero fields), but in the
// connect request itself: the conn costs no extra round trip. With
// ka.Enable false it is DialTCP (the stack's default: probes off).
func DialTCPKeepAlive(ctx context.Context, ch core.Channel, network string, local, remote netip.AddrPort, ka net.KeepAliveConfig) (*TCPConn, error) {
	return dialTCPOpErr(ctx, ch, network, local, remote, keepAliveCmd(ka))
}

func dialTCPOpErr(ctx context.Context, ch core.Channel, network string, local, remote netip.AddrPort, ka core.KeepAlive) (*TCPConn, error) {
	c, err := dialTCP(ctx, ch, network, local, remote, ka)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: tcpAddrOrNil(local), Addr: net.TCPAddrFromAddrPort(remote), Err: err}
	}
	return c, nil
}

func dialTCP(ctx context.Context, ch core.Channel, network string, local, remote netip.AddrPort, ka core.KeepAlive) (*TCPConn, error) {
	if _, err := checkNetwork(network, netname.TCP, local.Addr(), remote.Addr()); err != nil {
		return nil, err
	}
	c, err := ch.Connect(ctx, core.TCPConnect{Local: local, Remote: remote, KeepAlive: ka})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil { // the reply raced in after ctx ended
		ch.Request(context.Background(), c.Handle, core.Abort{})
		return nil, err
	}
	return newTCPConn(ch, c.Handle, network, c.Local, c.Remote), nil
}

// checkNetwork parses network, checks that it is one of transport's and
// that the valid ones of addrs fit its family.
func checkNetwork(network string, transport netname.Transport, addrs ...netip.Addr) (netname.Network, error) {
	n, ok := netname.Parse(network)
	if !ok || n.Transport != transport {
		return n, net.UnknownNetworkError(network)
	}
	for _, a := range addrs {
		if a.IsValid() && !n.Fits(a) {
			return n, &net.AddrError{Err: "address family does not match network " + network, Addr: a.String()}
		}
	}
	return n, nil
}

// tcpAddrOrNil returns ap as a *net.TCPAddr, or a nil net.Addr when ap is
// the zero AddrPort.
func tcpAddrOrNil(ap netip.AddrPort) net.Addr {
	if !ap.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}
