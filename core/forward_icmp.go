package core

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
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
	b := ipv4Packet(src, dst, header.ICMPv4ProtocolNumber, header.ICMPv4MinimumSize+len(quote))
	icmp := header.ICMPv4(b[header.IPv4MinimumSize:])
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(header.ICMPv4PortUnreachable)
	copy(icmp[header.ICMPv4MinimumSize:], quote)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	return b
}

func icmp6Unreachable(quote []byte, src, dst netip.Addr) []byte {
	b, s, d := ipv6Packet(src, dst, header.ICMPv6DstUnreachableMinimumSize+len(quote))
	icmp := header.ICMPv6(b[header.IPv6MinimumSize:])
	icmp.SetType(header.ICMPv6DstUnreachable)
	icmp.SetCode(header.ICMPv6PortUnreachable)
	copy(icmp[header.ICMPv6DstUnreachableMinimumSize:], quote)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: s, Dst: d}))
	return b
}

// echoPacket is gVisor's handler for ICMP and ICMPv6 messages no socket
// took. An echo request to an address that is not the stack's own is
// answered here, from that address, with AnswerEcho (gVisor's IPv4 never
// answers for the temporary addresses of a promiscuous NIC), and dropped
// without; others get gVisor's usual handling.
func (f *forwarder) echoPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	dst, src := addrPort(id.LocalAddress, 0).Addr(), addrPort(id.RemoteAddress, 0).Addr()
	msg := stack.PayloadSince(pkt.TransportHeader())
	defer msg.Release()
	b := msg.AsSlice()
	if !isEchoRequest(pkt.NetworkProtocolNumber, b) || f.isOwn(dst) {
		return false
	}
	if !f.cfg.forwards(dst) {
		f.st.echoDropped.Add(1)
		return true
	}
	switch {
	case f.offerEcho(b, dst, src):
	case f.cfg.AnswerEcho && !f.takesEcho():
		f.sendEchoReply(b, dst, src)
	default:
		f.st.echoDropped.Add(1)
	}
	return true
}

// takesEcho reports whether the open forwarder takes echo requests.
func (f *forwarder) takesEcho() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open && f.echo && !f.closing
}

// offerEcho hands the echo request msg (dst its destination, src its
// sender) to the engine, for the open forwarder if it takes them and
// fewer than MaxPendingEcho wait; false if it does not take it.
func (f *forwarder) offerEcho(msg []byte, dst, src netip.Addr) bool {
	if !f.takesEcho() || !reserve(&f.echoes, MaxPendingEcho) {
		return false
	}
	it := fwdItem{proto: FlowEcho, local: netip.AddrPortFrom(dst, 0), remote: netip.AddrPortFrom(src, 0), hdr: append([]byte(nil), msg...)}
	if !f.push(it) {
		f.echoes.Add(-1)
		return false
	}
	return true
}

// echoReply applies a ForwardEchoReply.
func (f *forwarder) echoReply(c ForwardEchoReply) error {
	if c.Drop {
		f.st.echoDropped.Add(1)
		return nil
	}
	from, to := c.From.Unmap(), c.To.Unmap()
	if !from.IsValid() || from.Is4() != to.Is4() || !f.cfg.forwards(from) {
		return ErrInvalid
	}
	proto := header.IPv6ProtocolNumber
	if from.Is4() {
		proto = header.IPv4ProtocolNumber
	}
	if !isEchoRequest(proto, c.Request) {
		return ErrInvalid
	}
	f.sendEchoReply(c.Request, from, to)
	return nil
}

func isEchoRequest(proto tcpip.NetworkProtocolNumber, b []byte) bool {
	if len(b) < header.ICMPv4MinimumSize {
		return false
	}
	if proto == header.IPv4ProtocolNumber {
		return header.ICMPv4(b).Type() == header.ICMPv4Echo
	}
	return header.ICMPv6(b).Type() == header.ICMPv6EchoRequest
}

// sendEchoReply answers the echo request req (its ICMP message) from src
// to dst.
func (f *forwarder) sendEchoReply(req []byte, src, dst netip.Addr) {
	if src.Is4() {
		b := ipv4Packet(src, dst, header.ICMPv4ProtocolNumber, len(req))
		icmp := header.ICMPv4(b[header.IPv4MinimumSize:])
		copy(icmp, req)
		icmp.SetType(header.ICMPv4EchoReply)
		icmp.SetChecksum(0)
		icmp.SetChecksum(^checksum.Checksum(icmp, 0))
		_ = f.ns.s.WriteRawPacket(nicID, header.IPv4ProtocolNumber, buffer.MakeWithData(b))
		return
	}
	b, s, d := ipv6Packet(src, dst, len(req))
	icmp := header.ICMPv6(b[header.IPv6MinimumSize:])
	copy(icmp, req)
	icmp.SetType(header.ICMPv6EchoReply)
	icmp.SetChecksum(0)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: s, Dst: d}))
	_ = f.ns.s.WriteRawPacket(nicID, header.IPv6ProtocolNumber, buffer.MakeWithData(b))
}

// ipv4Packet returns an IPv4 packet from src to dst with room for a
// payload of n bytes of proto after its header.
func ipv4Packet(src, dst netip.Addr, proto tcpip.TransportProtocolNumber, n int) []byte {
	b := make([]byte, header.IPv4MinimumSize+n)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(proto),
		SrcAddr: tcpip.AddrFrom4(src.Unmap().As4()), DstAddr: tcpip.AddrFrom4(dst.Unmap().As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	return b
}

// ipv6Packet returns an IPv6 packet from src to dst with room for an ICMPv6
// message of n bytes, and the addresses in gVisor's form.
func ipv6Packet(src, dst netip.Addr, n int) ([]byte, tcpip.Address, tcpip.Address) {
	b := make([]byte, header.IPv6MinimumSize+n)
	s, d := tcpip.AddrFrom16(src.As16()), tcpip.AddrFrom16(dst.As16())
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength: uint16(n), TransportProtocol: header.ICMPv6ProtocolNumber, HopLimit: 64,
		SrcAddr: s, DstAddr: d,
	})
	return b, s, d
}
