package core

import (
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Neighbor is one entry of the stack's neighbour cache on MediumEthernet
// (what "ip neigh" shows): an IP address on the link and its MAC.
type Neighbor struct {
	// Addr is the neighbour's IPv4 or IPv6 address, without a zone.
	Addr netip.Addr
	// MAC is its Ethernet address; zero while it is being resolved.
	MAC MAC
	// State is the entry's state (NUD, RFC 4861 section 7.3.2). It is
	// ignored in Config.StaticNeighbors, whose entries are
	// NeighborStatic.
	State NeighborState
}

// NeighborState is a neighbour entry's reachability state, as Linux's
// "nud" states.
type NeighborState uint8

// The neighbour states, gVisor's and Linux's (RFC 4861 section 7.3.2).
const (
	NeighborUnknown     NeighborState = iota
	NeighborIncomplete                // being resolved
	NeighborReachable                 // confirmed recently
	NeighborStale                     // not confirmed recently; used, then probed
	NeighborDelay                     // used while stale; a probe follows
	NeighborProbe                     // being probed
	NeighborStatic                    // set by hand, never resolved (Linux's "permanent")
	NeighborUnreachable               // resolution failed
)

var neighborStateNames = [...]string{"UNKNOWN", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "FAILED"}

// String returns the state's name as "ip neigh" prints it (REACHABLE,
// STALE, PERMANENT for a static entry, FAILED for an unreachable one).
func (s NeighborState) String() string {
	if int(s) < len(neighborStateNames) {
		return neighborStateNames[s]
	}
	return fmt.Sprintf("NeighborState(%d)", uint8(s))
}

// neighborState maps gVisor's state to netcore's.
func neighborState(s stack.NeighborState) NeighborState {
	switch s {
	case stack.Incomplete:
		return NeighborIncomplete
	case stack.Reachable:
		return NeighborReachable
	case stack.Stale:
		return NeighborStale
	case stack.Delay:
		return NeighborDelay
	case stack.Probe:
		return NeighborProbe
	case stack.Static:
		return NeighborStatic
	case stack.Unreachable:
		return NeighborUnreachable
	}
	return NeighborUnknown
}

// MaxNeighbors is the most entries the neighbour cache holds per IP
// version (gVisor's stack.NeighborCacheSize): past it the least recently
// used dynamic entry is evicted, so an ARP or NDP flood from many
// addresses cannot grow it. Static entries count toward it too but are
// never evicted.
const MaxNeighbors = stack.NeighborCacheSize

// Neighbors returns the stack's neighbour cache, IPv4 entries first, each
// family's in no particular order. It is nil on MediumIP, and after Close.
// It may be called from any goroutine (gVisor locks its cache).
func (ns *Netstack) Neighbors() []Neighbor {
	if ns.cfg.Medium != MediumEthernet {
		return nil
	}
	var out []Neighbor
	for _, proto := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		entries, err := ns.s.Neighbors(nicID, proto)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := Neighbor{Addr: fromTCPAddr(e.Addr), State: neighborState(e.State)}
			copy(n.MAC[:], e.LinkAddr)
			out = append(out, n)
		}
	}
	return out
}

// fromTCPAddr converts a gVisor address to a netip.Addr.
func fromTCPAddr(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

// addStaticNeighbors adds Config.StaticNeighbors to the NIC.
func (ns *Netstack) addStaticNeighbors(neighbors []Neighbor) error {
	for _, n := range neighbors {
		a := n.Addr.Unmap()
		if !a.IsValid() || a.Zone() != "" || n.MAC.IsZero() {
			return fmt.Errorf("netcore: bad static neighbour %v at %v: %w", n.Addr, n.MAC, ErrInvalid)
		}
		if err := ns.s.AddStaticNeighbor(nicID, netProto(a), tcpAddr(a), n.MAC.linkAddr()); err != nil {
			return fmt.Errorf("netcore: static neighbour %v: %w", a, fromTCPIP(err))
		}
	}
	return nil
}

// checkMedium refuses an unknown medium, and Ethernet settings that do
// not fit the medium. It runs after withDefaults.
func (c Config) checkMedium() error {
	switch {
	case c.Medium != MediumIP && c.Medium != MediumEthernet:
		return fmt.Errorf("netcore: medium %v not supported: %w", c.Medium, ErrInvalid)
	case c.Medium == MediumEthernet && c.MAC.IsGroup():
		return fmt.Errorf("netcore: Config.MAC %v is a group address: %w", c.MAC, ErrInvalid)
	case c.Medium == MediumIP && len(c.StaticNeighbors) > 0:
		return fmt.Errorf("netcore: Config.StaticNeighbors needs MediumEthernet: %w", ErrInvalid)
	}
	return nil
}

// networkProtocols are gVisor's network protocols for medium m: IPv4 and
// IPv6, plus ARP on Ethernet, where IPv6 also runs NDP (address
// resolution, neighbour unreachability detection). IPv6 addresses are
// usable at once, as on MediumIP (no duplicate address detection, which
// would hold a new address tentative for a second), and the stack sends no
// router solicitations: its routes and addresses are the Config's.
func networkProtocols(m Medium) []stack.NetworkProtocolFactory {
	if m != MediumEthernet {
		return []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol}
	}
	ndp := ipv6.DefaultNDPConfigurations()
	ndp.MaxRtrSolicitations = 0
	ndp.HandleRAs = ipv6.HandlingRAsDisabled
	dad := stack.DefaultDADConfigurations()
	dad.DupAddrDetectTransmits = 0
	v6 := ipv6.NewProtocolWithOptions(ipv6.Options{NDPConfigs: ndp, DADConfigs: dad})
	return []stack.NetworkProtocolFactory{ipv4.NewProtocol, v6, arp.NewProtocol}
}
