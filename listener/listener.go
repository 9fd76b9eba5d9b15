// Package listener listens for TCP connections and UDP or ICMP echo
// datagrams on a netcore stack, with the signatures of Go's net.Listen,
// net.ListenPacket and net.ListenConfig.
//
// Addresses are "host:port" with a literal IP host (host names are not
// resolved here; use the dialer package's resolver first). An empty host
// listens on every address of the stack: "tcp" and "udp" listen on "::",
// which takes IPv4 too, "tcp4" and "udp4" on 0.0.0.0. Port 0 picks an
// ephemeral port; Addr or LocalAddr tells which.
//
// A Forwarder serves a stack in forwarding mode (core.Config.Forward):
// every TCP connection and UDP flow addressed to any IP of its prefixes,
// each with its original destination, for a transparent proxy, a subnet
// router or a tun2socks.
package listener

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/netname"
	"github.com/netcore-go/netcore/netconn"
)

// Listen listens for TCP connections on address of the stack behind ch.
// network is "tcp", "tcp4" or "tcp6". The listener is a *netconn.Listener.
// Errors are *net.OpError with Op "listen", wrapping net.UnknownNetworkError
// for a wrong network or *net.AddrError for a malformed address.
func Listen(ch core.Channel, network, address string) (net.Listener, error) {
	var lc ListenConfig
	return lc.Listen(context.Background(), ch, network, address)
}

// ListenPacket opens a datagram socket on address of the stack behind ch.
// network is "udp", "udp4" or "udp6" (a *netconn.UDPConn), or "ping4" or
// "ping6" (a *netconn.PingConn; address is a literal IP with no port, or
// empty). Errors are as for Listen.
func ListenPacket(ch core.Channel, network, address string) (net.PacketConn, error) {
	var lc ListenConfig
	return lc.ListenPacket(context.Background(), ch, network, address)
}

// ListenConfig holds listening options; its zero value is Go's default.
type ListenConfig struct {
	// Backlog bounds the connections waiting for Accept. Zero or negative
	// means the stack's maximum (core.Config.MaxBacklog).
	Backlog int

	// KeepAlive is the idle time before keep-alive probes start on
	// accepted connections, as net.ListenConfig.KeepAlive: zero means 15s,
	// negative leaves keep-alive off. The probes' interval and count are
	// Go's defaults (15s, 9). It is ignored when KeepAliveConfig.Enable is
	// set.
	KeepAlive time.Duration

	// KeepAliveConfig, when Enable is set, is applied to every accepted
	// connection (see netconn.TCPConn.SetKeepAliveConfig).
	KeepAliveConfig net.KeepAliveConfig
}

// Listen is like the package's Listen, with ctx bounding the setup.
func (lc *ListenConfig) Listen(ctx context.Context, ch core.Channel, network, address string) (net.Listener, error) {
	ap, err := parse(network, address, netname.TCP)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ln, err := netconn.ListenTCP(ctx, ch, network, ap, lc.Backlog)
	if err != nil {
		return nil, err
	}
	if ka, ok := lc.keepAlive(); ok {
		ln.SetAcceptKeepAlive(ka)
	}
	return ln, nil
}

// keepAlive returns the keep-alive configuration for accepted
// connections, as Go's net.ListenConfig decides it.
func (lc *ListenConfig) keepAlive() (net.KeepAliveConfig, bool) {
	switch {
	case lc.KeepAliveConfig.Enable:
		return lc.KeepAliveConfig, true
	case lc.KeepAlive < 0:
		return net.KeepAliveConfig{}, false
	}
	return net.KeepAliveConfig{Enable: true, Idle: lc.KeepAlive}, true
}

// ListenPacket is like the package's ListenPacket, with ctx bounding the
// setup.
func (lc *ListenConfig) ListenPacket(ctx context.Context, ch core.Channel, network, address string) (net.PacketConn, error) {
	if n, _ := netname.Parse(network); n.Transport == netname.Ping {
		return listenPing(ctx, ch, network, address)
	}
	ap, err := parse(network, address, netname.UDP)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	c, err := netconn.ListenUDP(ctx, ch, network, ap)
	if err != nil {
		return nil, err // not c: a nil *UDPConn in a net.PacketConn is not nil
	}
	return c, nil
}

func listenPing(ctx context.Context, ch core.Channel, network, address string) (net.PacketConn, error) {
	var a netip.Addr
	if address != "" {
		var err error
		if a, err = parseHost(address, address); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
	}
	c, err := netconn.ListenPing(ctx, ch, network, a)
	if err != nil {
		return nil, err // not c: a nil *PingConn in a net.PacketConn is not nil
	}
	return c, nil
}

// parse checks that network is one of transport's and parses address as
// a literal "host:port".
func parse(network, address string, transport netname.Transport) (netip.AddrPort, error) {
	n, ok := netname.Parse(network)
	if !ok || n.Transport != transport {
		return netip.AddrPort{}, net.UnknownNetworkError(network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: address}
	}
	var a netip.Addr
	if host != "" {
		if a, err = parseHost(host, address); err != nil {
			return netip.AddrPort{}, err
		}
	}
	if a.IsValid() && !n.Fits(a) {
		return netip.AddrPort{}, &net.AddrError{Err: "no suitable address found", Addr: address}
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// parseHost parses a literal IP; host names are not resolved.
func parseHost(host, address string) (netip.Addr, error) {
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return netip.Addr{}, &net.AddrError{Err: "not a literal IP address (host names are not resolved)", Addr: address}
	case a.Zone() != "":
		return netip.Addr{}, &net.AddrError{Err: "IPv6 zones are not supported", Addr: address}
	}
	return a, nil
}
