package core

import (
	"encoding/binary"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// GSOKind says what a packet handed to an OffloadDevice is.
type GSOKind uint8

const (
	// GSONone is a single wire-sized packet.
	GSONone GSOKind = iota
	// GSOTCPv4 is an IPv4 TCP super-segment: one IP and TCP header
	// followed by payload that SplitGSO cuts into MSS-sized segments.
	GSOTCPv4
	// GSOTCPv6 is the same over IPv6.
	GSOTCPv6
)

// GSO is the segmentation metadata of one packet handed to an
// OffloadDevice, as a NIC with TCP segmentation offload receives it.
type GSO struct {
	// Kind says whether the packet is a super-segment.
	Kind GSOKind
	// L3Len is the length of the IP header.
	L3Len int
	// HdrLen is the length of the IP and TCP headers together; the
	// payload starts there.
	HdrLen int
	// MSS is the most payload bytes in one segment.
	MSS int
	// NeedsCsum says the transport checksum is not final: SplitGSO
	// computes it (always for super-segments; for a GSONone packet only
	// when set).
	NeedsCsum bool
	// CsumStart is where the checksummed transport data starts, and
	// CsumOffset where its checksum field lies, counted from CsumStart.
	CsumStart, CsumOffset int
}

// OffloadDevice is a Device that takes TCP super-segments, as a NIC with
// TSO does, and whose inbound packets the stack may coalesce, as GRO does.
// When one is attached the stack hands it packets of up to 64 KiB with
// WritePacketsGSO instead of WritePackets; it must cut them into wire-sized
// packets (SplitGSO does that) before anything sees them that needs them.
// Inbound TCP segments read from it are validated and coalesced per batch.
// An OffloadDevice that is also a GSODevice gets all this only while its
// WantsGSO reports true; a PullDevice needs no WritePacketsGSO (see
// GSODevice).
type OffloadDevice interface {
	Device
	// WritePacketsGSO is WritePackets with the segmentation metadata of
	// each packet: gso[i] describes pkts[i]. To spare a copy it may keep
	// a packet's slice if it puts another slice in its place, pkts[i],
	// which the stack then owns (and may reuse); it must keep nothing
	// else after it returns.
	WritePacketsGSO(pkts [][]byte, gso []GSO) (int, error)
}

// A GSODevice is a Device that says whether it wants TCP super-segments:
// whether the stack, once it is attached, hands it TCP segments of up to
// 64 KiB (host GSO, as to a NIC with TSO) and validates and coalesces the
// TCP segments it delivers from it (GRO, whether the stack reads them or
// the device pushes them through a Receiver). A device that wants them
// must be able to take them: a PullDevice, whose Source cuts them into
// wire-sized segments in the reader's buffers, or an OffloadDevice, whose
// WritePacketsGSO gets them whole; AttachDevice refuses any other with
// ErrInvalid. A device that is not a GSODevice wants them if it is an
// OffloadDevice. tundev.Virtual is one: wireguard-go's reads cut them.
type GSODevice interface {
	Device
	// WantsGSO reports whether the device wants TCP super-segments (and
	// GRO). AttachDevice asks once.
	WantsGSO() bool
}

// wantsGSO reports whether dev wants TCP super-segments and GRO.
func wantsGSO(dev Device) bool {
	if g, ok := dev.(GSODevice); ok {
		return g.WantsGSO()
	}
	_, ok := dev.(OffloadDevice)
	return ok
}

// takesGSO reports whether dev can take TCP super-segments: through its
// Source (a PullDevice) or WritePacketsGSO (an OffloadDevice).
func takesGSO(dev Device) bool {
	_, pull := dev.(PullDevice)
	_, off := dev.(OffloadDevice)
	return pull || off
}

// Errors of SplitGSO.
var (
	// ErrBadGSO means a packet does not match its GSO metadata.
	ErrBadGSO = errnoError("netcore: packet does not match its GSO metadata", syscall.EINVAL)
	// ErrGSOBuffers means SplitGSO was given too few or too small
	// buffers for the segments.
	ErrGSOBuffers = errnoError("netcore: too few or too small buffers for GSO segments", syscall.ENOBUFS)
)

// udpChecksumOffset is where a UDP header's checksum field lies.
const udpChecksumOffset = 6

// Segments returns how many wire packets SplitGSO makes of a packet of
// pktLen bytes described by g.
func (g GSO) Segments(pktLen int) int {
	if g.Kind == GSONone || g.MSS <= 0 || pktLen <= g.HdrLen {
		return 1
	}
	return (pktLen - g.HdrLen + g.MSS - 1) / g.MSS
}

// SplitGSO writes the wire packets of pkt, described by g, into out: packet
// i into out[i][:sizes[i]]; it returns how many. A super-segment is cut
// into MSS-sized TCP segments with their own IP lengths, IPv4 IDs (counting
// up from the original's) and header checksums, sequence numbers, flags
// (CWR only on the first, FIN and PSH only on the last) and full TCP
// checksums. Any other packet is copied, and its TCP or UDP checksum
// completed when g.NeedsCsum is set. pkt is not modified. It fails with
// ErrBadGSO or ErrGSOBuffers, writing nothing meaningful.
func SplitGSO(pkt []byte, g GSO, out [][]byte, sizes []int) (int, error) {
	if len(out) == 0 || len(sizes) < len(out) {
		return 0, ErrGSOBuffers
	}
	parts := [][]byte{pkt}
	if g.Kind == GSONone {
		return finishPacket(parts, len(pkt), g, out[0], sizes)
	}
	if err := g.check(pkt, len(pkt)); err != nil {
		return 0, err
	}
	n := g.Segments(len(pkt))
	if n > len(out) {
		return 0, ErrGSOBuffers
	}
	for i := range n {
		if len(out[i]) < g.segmentSize(i, len(pkt)) {
			return 0, ErrGSOBuffers
		}
	}
	for i := range n {
		sizes[i] = g.segment(out[i], pkt[:g.HdrLen], parts, len(pkt), i, n)
	}
	return n, nil
}

// segmentSize is the length of segment i of a super-segment of total bytes.
func (g GSO) segmentSize(i, total int) int {
	start := g.HdrLen + i*g.MSS
	return g.HdrLen + min(start+g.MSS, total) - start
}

// check reports whether a packet of total bytes that starts with pkt (its
// headers at least) is a TCP super-segment that g describes.
func (g GSO) check(pkt []byte, total int) error {
	if g.MSS <= 0 || g.L3Len <= 0 || g.HdrLen < g.L3Len+header.TCPMinimumSize || total < g.HdrLen || len(pkt) < g.HdrLen {
		return ErrBadGSO
	}
	if g.HdrLen+g.MSS > 0xffff {
		return ErrBadGSO
	}
	switch g.Kind {
	case GSOTCPv4:
		ip := header.IPv4(pkt)
		if g.L3Len < header.IPv4MinimumSize || header.IPVersion(pkt) != header.IPv4Version ||
			int(ip.HeaderLength()) != g.L3Len || ip.Protocol() != uint8(header.TCPProtocolNumber) {
			return ErrBadGSO
		}
	case GSOTCPv6:
		if g.L3Len != header.IPv6MinimumSize || header.IPVersion(pkt) != header.IPv6Version ||
			header.IPv6(pkt).NextHeader() != uint8(header.TCPProtocolNumber) {
			return ErrBadGSO
		}
	default:
		return ErrBadGSO
	}
	if int(header.TCP(pkt[g.L3Len:]).DataOffset()) != g.HdrLen-g.L3Len {
		return ErrBadGSO
	}
	return nil
}

// segment writes segment i of n of a super-segment of total bytes, whose
// headers are hdr and whose bytes are parts (laid end to end), into b and
// returns its length.
func (g GSO) segment(b, hdr []byte, parts [][]byte, total, i, n int) int {
	start := g.HdrLen + i*g.MSS
	end := min(start+g.MSS, total)
	size := g.HdrLen + end - start
	b = b[:size]
	copy(b, hdr[:g.HdrLen])
	copyRange(b[g.HdrLen:], parts, start)
	var src, dst tcpip.Address
	if g.Kind == GSOTCPv4 {
		ip := header.IPv4(b)
		ip.SetTotalLength(uint16(size))
		ip.SetID(ip.ID() + uint16(i))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	} else {
		ip := header.IPv6(b)
		ip.SetPayloadLength(uint16(size - header.IPv6MinimumSize))
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	}
	tcp := header.TCP(b[g.L3Len:])
	tcp.SetSequenceNumber(tcp.SequenceNumber() + uint32(start-g.HdrLen))
	flags := tcp.Flags()
	if i > 0 {
		flags &^= header.TCPFlagCwr
	}
	if i < n-1 {
		flags &^= header.TCPFlagFin | header.TCPFlagPsh
	}
	tcp.SetFlags(uint8(flags))
	setTransportChecksum(b, g.L3Len, header.TCPChecksumOffset, header.TCPProtocolNumber, src, dst)
	return size
}

// finishPacket copies a packet of total bytes that is not a super-segment,
// parts laid end to end, into b and completes its TCP or UDP checksum if g
// asks for it.
func finishPacket(parts [][]byte, total int, g GSO, b []byte, sizes []int) (int, error) {
	if len(b) < total {
		return 0, ErrGSOBuffers
	}
	b = b[:total]
	copyRange(b, parts, 0)
	if g.NeedsCsum {
		if err := finishChecksum(b, g); err != nil {
			return 0, err
		}
	}
	sizes[0] = total
	return 1, nil
}

// copyRange fills dst from the bytes of parts, laid end to end, starting
// at off.
func copyRange(dst []byte, parts [][]byte, off int) {
	for _, p := range parts {
		if off >= len(p) {
			off -= len(p)
			continue
		}
		n := copy(dst, p[off:])
		dst, off = dst[n:], 0
		if len(dst) == 0 {
			return
		}
	}
}

// finishChecksum computes the TCP or UDP checksum of packet b in place.
func finishChecksum(b []byte, g GSO) error {
	var src, dst tcpip.Address
	var proto tcpip.TransportProtocolNumber
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		if len(b) < header.IPv4MinimumSize || int(ip.HeaderLength()) != g.CsumStart {
			return ErrBadGSO
		}
		src, dst, proto = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
	case header.IPv6Version:
		ip := header.IPv6(b)
		if len(b) < header.IPv6MinimumSize || g.CsumStart != header.IPv6MinimumSize {
			return ErrBadGSO
		}
		src, dst, proto = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
	default:
		return ErrBadGSO
	}
	switch {
	case proto == header.TCPProtocolNumber && g.CsumOffset == header.TCPChecksumOffset &&
		len(b) >= g.CsumStart+header.TCPMinimumSize:
	case proto == header.UDPProtocolNumber && g.CsumOffset == udpChecksumOffset &&
		len(b) >= g.CsumStart+header.UDPMinimumSize:
	default:
		return ErrBadGSO
	}
	setTransportChecksum(b, g.CsumStart, g.CsumOffset, proto, src, dst)
	return nil
}

// setTransportChecksum computes the checksum of the transport data
// b[start:] (with the pseudo-header) into the field at start+offset.
func setTransportChecksum(b []byte, start, offset int, proto tcpip.TransportProtocolNumber, src, dst tcpip.Address) {
	field := b[start+offset : start+offset+2]
	field[0], field[1] = 0, 0
	xsum := header.PseudoHeaderChecksum(proto, src, dst, uint16(len(b)-start))
	xsum = ^checksum.Checksum(b[start:], xsum)
	if xsum == 0 && proto == header.UDPProtocolNumber {
		xsum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(field, xsum)
}

// gsoOf converts a gVisor packet's GSO options into a GSO.
func gsoOf(pkt *stack.PacketBuffer) GSO {
	o := pkt.GSOOptions
	var kind GSOKind
	switch o.Type {
	case stack.GSOTCPv4:
		kind = GSOTCPv4
	case stack.GSOTCPv6:
		kind = GSOTCPv6
	default:
		return GSO{}
	}
	l3 := len(pkt.NetworkHeader().Slice())
	return GSO{
		Kind:       kind,
		L3Len:      l3,
		HdrLen:     l3 + len(pkt.TransportHeader().Slice()),
		MSS:        int(o.MSS),
		NeedsCsum:  o.NeedsCsum,
		CsumStart:  l3,
		CsumOffset: int(o.CsumOffset),
	}
}
