package dialer

import (
	"net"
	"net/netip"

	"github.com/netcore-go/netcore/internal/netname"
)

// netAddr turns an address into the net.Addr type of kind's conns, or nil
// for the zero AddrPort.
func netAddr(kind netname.Transport, ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return nil
	}
	switch kind {
	case netname.TCP:
		return net.TCPAddrFromAddrPort(ap)
	case netname.UDP:
		return net.UDPAddrFromAddrPort(ap)
	}
	return &net.IPAddr{IP: ap.Addr().AsSlice(), Zone: ap.Addr().Zone()}
}

// sourceAddr is LocalAddr as the net.Addr that errors carry.
func (d *Dialer) sourceAddr(network string) net.Addr {
	n, _ := netname.Parse(network)
	return netAddr(n.Transport, d.LocalAddr)
}
