// Package netname parses the network names of Go's net package that
// netcore's adapters take ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6",
// "ping4", "ping6") into a transport and an IP family, for dialer, listener
// and netconn alike.
package netname

import "net/netip"

// Transport is the transport a network name names.
type Transport uint8

const (
	// TCP is "tcp", "tcp4" and "tcp6".
	TCP Transport = iota + 1
	// UDP is "udp", "udp4" and "udp6".
	UDP
	// Ping is "ping4" and "ping6" (ICMP echo).
	Ping
)

// Network is a parsed network name.
type Network struct {
	// Transport is the network's transport.
	Transport Transport
	// Family is 4 or 6 for a network of one IP family, 0 for either.
	Family int
}

// Parse parses a network name; ok is false for a name it does not know.
func Parse(name string) (n Network, ok bool) {
	switch name {
	case "tcp":
		return Network{TCP, 0}, true
	case "tcp4":
		return Network{TCP, 4}, true
	case "tcp6":
		return Network{TCP, 6}, true
	case "udp":
		return Network{UDP, 0}, true
	case "udp4":
		return Network{UDP, 4}, true
	case "udp6":
		return Network{UDP, 6}, true
	case "ping4":
		return Network{Ping, 4}, true
	case "ping6":
		return Network{Ping, 6}, true
	}
	return Network{}, false
}

// Fits reports whether a belongs to n's family (IPv4-mapped addresses
// count as IPv4; a network of either family takes any).
func (n Network) Fits(a netip.Addr) bool {
	return n.Family == 0 || FamilyOf(a) == n.Family
}

// Unspecified is the unspecified address of n's family: "0.0.0.0" for an
// IPv4 network, else "::" (which takes IPv4 too).
func (n Network) Unspecified() netip.Addr {
	if n.Family == 4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// FamilyOf returns a's IP family, 4 or 6 (IPv4-mapped addresses count as
// IPv4).
func FamilyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// IPNetwork is the name-lookup network ("ip", "ip4", "ip6") of a family
// (4, 6 or 0 for either).
func IPNetwork(family int) string {
	switch family {
	case 4:
		return "ip4"
	case 6:
		return "ip6"
	}
	return "ip"
}
