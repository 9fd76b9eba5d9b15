package dialer_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/netconn"
)

// listen and listenPacket stand in for package listener's Listen and
// ListenPacket until it lands.
func listen(ch core.Channel, network, address string) (net.Listener, error) {
	ap, err := parseAddrPort(address)
	if err != nil {
		return nil, err
	}
	return netconn.ListenTCP(context.Background(), ch, network, ap, 0)
}

func listenPacket(ch core.Channel, network, address string) (net.PacketConn, error) {
	ap, err := parseAddrPort(address)
	if err != nil {
		return nil, err
	}
	return netconn.ListenUDP(context.Background(), ch, network, ap)
}

func parseAddrPort(address string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if host == "" {
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
	}
	a, err := netip.ParseAddr(host)
	return netip.AddrPortFrom(a, uint16(p)), err
}
