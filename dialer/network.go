package dialer

import (
	"net"
	"net/netip"
)

// netKind is the transport of a network name.
type netKind uint8

const (
	kindTCP netKind = iota + 1
	kindUDP
	kindPing
)

// parseNetwork splits a network name into its transport and IP family
// (4, 6, or 0 for either).
func parseNetwork(network string) (kind netKind, family int, ok bool) {
	switch network {
	case "tcp", "udp":
		return kindOf(network), 0, true
	case "tcp4", "udp4":
		return kindOf(network[:3]), 4, true
	case "tcp6", "udp6":
		return kindOf(network[:3]), 6, true
	case "ping4":
		return kindPing, 4, true
	case "ping6":
		return kindPing, 6, true
	}
	return 0, 0, false
}

func kindOf(transport string) netKind {
	if transport == "tcp" {
		return kindTCP
	}
	return kindUDP
}

// familyOf returns 4 or 6.
func familyOf(ip netip.Addr) int {
	if ip.Unmap().Is4() {
		return 4
	}
	return 6
}

// ipNetwork is the lookup network ("ip", "ip4", "ip6") for a family.
func ipNetwork(family int) string {
	switch family {
	case 4:
		return "ip4"
	case 6:
		return "ip6"
	}
	return "ip"
}

// netAddr turns an address into the net.Addr type of kind's conns, or nil
// for the zero AddrPort.
func netAddr(kind netKind, ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return nil
	}
	switch kind {
	case kindTCP:
		return net.TCPAddrFromAddrPort(ap)
	case kindUDP:
		return net.UDPAddrFromAddrPort(ap)
	}
	return &net.IPAddr{IP: ap.Addr().AsSlice(), Zone: ap.Addr().Zone()}
}

// sourceAddr is LocalAddr as the net.Addr that errors carry.
func (d *Dialer) sourceAddr(network string) net.Addr {
	kind, _, _ := parseNetwork(network)
	return netAddr(kind, d.LocalAddr)
}
