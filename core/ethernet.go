package core

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// EthernetHeaderLen is the length of an Ethernet II header (destination,
// source, ethertype; no VLAN tag, no FCS): a frame on MediumEthernet is
// this much longer than the IP packet it carries.
const EthernetHeaderLen = header.EthernetMinimumSize

// MAC is a 48-bit Ethernet (EUI-48) address. Unlike net.HardwareAddr it is
// comparable and immutable; the zero MAC means "unset".
type MAC [6]byte

// ParseMAC parses an EUI-48 address in one of the forms net.ParseMAC takes
// ("02:00:5e:10:00:01", "02-00-5e-10-00-01", "0200.5e10.0001"). It fails
// with an error matching ErrInvalid for anything else, EUI-64 included.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, fmt.Errorf("netcore: bad MAC %q: %w", s, ErrInvalid)
	}
	return MAC(hw), nil
}

// MustParseMAC is ParseMAC that panics on an error, for tests and
// constants.
func MustParseMAC(s string) MAC {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// String returns m in the colon form "02:00:5e:10:00:01".
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// IsZero reports whether m is the zero (unset) MAC.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsGroup reports whether m is a group (multicast or broadcast) address:
// the low bit of its first byte is set.
func (m MAC) IsGroup() bool { return m[0]&1 != 0 }

// linkAddr is m as gVisor's link address.
func (m MAC) linkAddr() tcpip.LinkAddress { return tcpip.LinkAddress(m[:]) }

// randomMAC returns a random locally administered unicast MAC (the "02"
// bit set, the group bit clear), as the kernel gives a TAP or veth
// without one.
func randomMAC() MAC {
	var m MAC
	_, _ = rand.Read(m[:]) // crypto/rand.Read never fails
	m[0] = m[0]&^1 | 2
	return m
}

// ErrMediumMismatch means a device carries another medium than the
// stack's (Config.Medium): AttachDevice refuses it and PollDeviceIO panics
// with it. The error returned also matches ErrInvalid and syscall.EINVAL.
var ErrMediumMismatch = errnoError("netcore: device medium does not match the stack's", syscall.EINVAL)

// A LinkMediumDevice is a Device (or PollDevice) that says which medium it
// carries. A device that is not one carries MediumIP (TUN devices,
// WireGuard); a device that carries Ethernet frames must be one, or the
// stack refuses it. PipeDev says it with its Medium field.
type LinkMediumDevice interface {
	// LinkMedium returns the device's medium; AttachDevice asks once.
	LinkMedium() Medium
}

// mediumOf returns the medium dev carries (see LinkMediumDevice).
func mediumOf(dev any) Medium {
	switch d := dev.(type) {
	case *PipeDev:
		return d.Medium
	case LinkMediumDevice:
		return d.LinkMedium()
	}
	return MediumIP
}

// mediumError is the error for a device of medium dev on a stack of
// medium stack.
func mediumError(what string, dev, stack Medium) error {
	return fmt.Errorf("netcore: %s carries medium %v, the stack %v: %w (%w)", what, dev, stack, ErrMediumMismatch, ErrInvalid)
}

// ethState is the link's Ethernet side on MediumEthernet.
type ethState struct {
	on   bool // MediumEthernet: set by New, before the link is shared
	mac  MAC
	addr tcpip.LinkAddress // mac as gVisor's string, made once (each conversion allocates)
	// otherHosts keeps frames for other MACs (forwarding or promiscuous
	// mode); by default they are dropped and counted.
	otherHosts atomic.Bool

	otherHost, runt, oversized, unknownType atomic.Uint64
}

// keepsOtherHosts reports whether cfg makes the stack take frames for
// other MACs instead of dropping them: forwarding mode, whose stack stands
// for every host of its prefixes (a bridge or a tap in promiscuous mode
// hands it their frames), as the "unless forwarding" asks. The one
// place a Config field switches the Ethernet filter.
func (c Config) keepsOtherHosts() bool { return c.Forward != nil }

// frameVerdict is what the inbound filter decides about a frame.
type frameVerdict uint8

const (
	frameOK frameVerdict = iota
	frameRunt
	frameOversized
	frameUnknownType
	frameOtherHost
)

// check decides about an inbound frame b of which max bytes are allowed
// (0: no bound) and returns its network protocol if it is to be delivered.
// A frame is kept if it is long enough for its header and at most max
// long, carries IPv4, IPv6 or ARP, and is for this stack's MAC, broadcast
// or multicast (gVisor's IP layers then drop multicast groups the stack
// did not join, as the kernel's NIC filter would), or for any MAC while
// otherHosts is set.
func (e *ethState) check(b []byte, max int) (tcpip.NetworkProtocolNumber, frameVerdict) {
	if len(b) < EthernetHeaderLen {
		return 0, frameRunt
	}
	if max > 0 && len(b) > max {
		return 0, frameOversized
	}
	proto := tcpip.NetworkProtocolNumber(binary.BigEndian.Uint16(b[12:14]))
	switch proto {
	case header.IPv4ProtocolNumber, header.IPv6ProtocolNumber, header.ARPProtocolNumber:
	default:
		return 0, frameUnknownType
	}
	if dst := MAC(b[:6]); dst != e.mac && !dst.IsGroup() && !e.otherHosts.Load() {
		return 0, frameOtherHost
	}
	return proto, frameOK
}

// count records a dropped frame.
func (e *ethState) count(v frameVerdict) {
	switch v {
	case frameRunt:
		e.runt.Add(1)
	case frameOversized:
		e.oversized.Add(1)
	case frameUnknownType:
		e.unknownType.Add(1)
	case frameOtherHost:
		e.otherHost.Add(1)
	}
}

// accept is check and count: it returns the frame's protocol and whether
// to deliver it.
func (e *ethState) accept(b []byte, max int) (tcpip.NetworkProtocolNumber, bool) {
	proto, v := e.check(b, max)
	if v != frameOK {
		e.count(v)
		return 0, false
	}
	return proto, true
}

// stats adds the frame counters to st.
func (e *ethState) stats(st *Stats) {
	st.FramesOtherHost, st.FramesRunt = e.otherHost.Load(), e.runt.Load()
	st.FramesOversized, st.FramesUnknownType = e.oversized.Load(), e.unknownType.Load()
}

// maxFrame is the longest inbound frame the link takes from a device: the
// MTU plus the header, or a 64 KiB super-segment plus the header from a
// device that offloads (a joined stack).
func (l *linkEP) maxFrame() int {
	if l.offload.Load() || l.off.gso.Load() {
		return 0xffff + EthernetHeaderLen
	}
	return int(l.mtu.Load())
}

// inboundProto returns the network protocol of inbound packet b from a
// device, or false (counted) if it is to be dropped: by its IP version on
// MediumIP, by the Ethernet filter (ethState.check) on MediumEthernet.
func (l *linkEP) inboundProto(b []byte) (tcpip.NetworkProtocolNumber, bool) {
	if l.eth.on {
		return l.eth.accept(b, l.maxFrame())
	}
	switch header.IPVersion(b) {
	case header.IPv4Version:
		return header.IPv4ProtocolNumber, true
	case header.IPv6Version:
		return header.IPv6ProtocolNumber, true
	}
	l.invalidIn.Add(1)
	return 0, false
}

// acceptPeer reports whether a joined peer's outbound packet is to be
// delivered: on MediumEthernet only frames for this stack's MAC (or a
// group) are.
func (l *linkEP) acceptPeer(pkt *stack.PacketBuffer) bool {
	if !l.eth.on {
		return true
	}
	hdr := pkt.LinkHeader().Slice()
	_, ok := l.eth.accept(hdr, 0)
	return ok
}

// ethernetFrameLen is the link's MTU for an IP MTU on medium m: gVisor's
// ethernet endpoint hands the IP layer its link's MTU minus the header.
func ethernetFrameLen(m Medium, mtu int) int {
	if m == MediumEthernet {
		return mtu + EthernetHeaderLen
	}
	return mtu
}

// wrapEthernet puts gVisor's Ethernet endpoint in front of link on
// MediumEthernet: it adds the header to outbound packets (from the
// neighbour gVisor resolved) and parses it off inbound ones.
func wrapEthernet(m Medium, link stack.LinkEndpoint) stack.LinkEndpoint {
	if m != MediumEthernet {
		return link
	}
	return ethernet.New(link)
}
