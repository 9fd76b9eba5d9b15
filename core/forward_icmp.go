package core

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// quotedTransport is how much of the transport header an ICMP error
// quotes: the ports, and TCP's sequence number (RFC 792's 64 bits).
const quotedTransport = 8

// packetHeaders copies a packet's IP header and the start of its
// transport header, as an ICMP error about it quotes them. An IPv6
// header's next header is set to the transport protocol (extension
// headers and fragments are not quoted), an IPv4 header's fragment
// fields cleared, so the receiver finds the socket the error is for.
func packetHeaders(pkt *stack.PacketBuffer) []byte {
	nh, th := pkt.NetworkHeader().Slice(), pkt.TransportHeader().Slice()
	th = th[:min(len(th), quotedTransport)]
	b := make([]byte, 0, len(nh)+quotedTransport)
	b = append(append(b, nh...), th...)
	switch header.IPVersion(b) {
	case header.IPv4Version:
		if len(nh) >= header.IPv4MinimumSize {
			ip := header.IPv4(b)
			ip.SetFlagsFragmentOffset(0, 0)
		}
	case header.IPv6Version:
		if len(nh) >= header.IPv6MinimumSize {
			ip := header.IPv6(b)
			ip.SetNextHeader(uint8(pkt.TransportProtocolNumber))
			ip.SetPayloadLength(uint16(len(th)))
		}
	}
	return b
}

// sendUnreachable sends the client (remote) an ICMP or ICMPv6 port
// unreachable about the packet whose headers are hdr, from its original
// destination (local). Any goroutine: gVisor queues it on the link.
func (f *forwarder) sendUnreachable(hdr []byte, local, remote netip.AddrPort) {
	var pkt []byte
	proto := netProto(local.Addr())
	if proto == header.IPv4ProtocolNumber {
		pkt = icmp4Unreachable(hdr, local.Addr(), remote.Addr())
	} else {
		pkt = icmp6Unreachable(hdr, local.Addr(), remote.Addr())
	}
	_ = f.ns.s.WriteRawPacket(nicID, proto, buffer.MakeWithData(pkt)) // a full queue drops it, as any packet
}

func icmp4Unreachable(quote []byte, src, dst netip.Addr) []byte {
	n := header.IPv4MinimumSize + header.ICMPv4MinimumSize + len(quote)
	b := make([]byte, n)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(n), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(src.Unmap().As4()), DstAddr: tcpip.AddrFrom4(dst.Unmap().As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	icmp := header.ICMPv4(b[header.IPv4MinimumSize:])
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(header.ICMPv4PortUnreachable)
	copy(icmp[header.ICMPv4MinimumSize:], quote)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	return b
}

func icmp6Unreachable(quote []byte, src, dst netip.Addr) []byte {
	plen := header.ICMPv6DstUnreachableMinimumSize + len(quote)
	b := make([]byte, header.IPv6MinimumSize+plen)
	s, d := tcpip.AddrFrom16(src.As16()), tcpip.AddrFrom16(dst.As16())
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength: uint16(plen), TransportProtocol: header.ICMPv6ProtocolNumber, HopLimit: 64,
		SrcAddr: s, DstAddr: d,
	})
	icmp := header.ICMPv6(b[header.IPv6MinimumSize:])
	icmp.SetType(header.ICMPv6DstUnreachable)
	icmp.SetCode(header.ICMPv6PortUnreachable)
	copy(icmp[header.ICMPv6DstUnreachableMinimumSize:], quote)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: s, Dst: d}))
	return b
}

// echoFilter is the NIC's link endpoint in forwarding mode without
// ForwardConfig.AnswerEcho: it drops echo requests to addresses that are
// not the stack's own before gVisor, promiscuous, would answer them.
type echoFilter struct {
	nested.Endpoint
	f *forwarder
}

func newEchoFilter(lower stack.LinkEndpoint, f *forwarder) *echoFilter {
	e := &echoFilter{f: f}
	e.Endpoint.Init(lower, e)
	return e
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (e *echoFilter) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if dst, ok := echoRequestTo(proto, pkt); ok && !e.f.isOwn(dst) {
		e.f.st.echoDropped.Add(1)
		return
	}
	e.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// echoRequestTo reports whether pkt (not parsed yet) is an ICMP or ICMPv6
// echo request, and its destination. It only looks at the headers.
func echoRequestTo(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) (netip.Addr, bool) {
	d := pkt.Data()
	switch proto {
	case header.IPv4ProtocolNumber:
		b, ok := d.PullUp(min(d.Size(), header.IPv4MinimumSize))
		if !ok || len(b) < header.IPv4MinimumSize || header.IPv4(b).TransportProtocol() != header.ICMPv4ProtocolNumber {
			return netip.Addr{}, false
		}
		hl := int(header.IPv4(b).HeaderLength())
		if b, ok = d.PullUp(hl + 1); !ok || header.IPv4(b).FragmentOffset() != 0 || header.ICMPv4Type(b[hl]) != header.ICMPv4Echo {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4(header.IPv4(b).DestinationAddress().As4()), true
	case header.IPv6ProtocolNumber:
		b, ok := d.PullUp(header.IPv6MinimumSize + 1)
		if !ok || header.IPv6(b).TransportProtocol() != header.ICMPv6ProtocolNumber || header.ICMPv6Type(b[header.IPv6MinimumSize]) != header.ICMPv6EchoRequest {
			return netip.Addr{}, false
		}
		return netip.AddrFrom16(header.IPv6(b).DestinationAddress().As16()), true
	}
	return netip.Addr{}, false
}
