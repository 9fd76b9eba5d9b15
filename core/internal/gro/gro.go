// Package gro is the stack's receive offload: a Coalescer validates the
// TCP segments of each batch a device delivers and merges in-order runs of
// one flow into single large packets before gVisor sees them, as a NIC
// driver's GRO does. It is fed a batch of packets and empties itself into a
// Sink, which core's link implements.
package gro

import (
	"bytes"
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// A Sink takes the packets a Coalescer delivers, one at a time, in order.
// A packet whose RXChecksumValidated is set had its IP and TCP checksums
// checked by the Coalescer (a merged one carries its first segment's,
// stale, TCP checksum), so the sink must have gVisor trust it; any other
// gVisor must check. The Coalescer releases its reference to the packet
// when DeliverNetworkPacket returns. A stack.NetworkDispatcher is a Sink.
type Sink interface {
	DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer)
}

// maxRuns is how many flows a coalescer keeps a run open for at once.
const maxRuns = 8

// maxCoalesced is the largest packet a coalescer builds: the most an IP
// length field (and one pooled gVisor chunk) holds.
const maxCoalesced = 0xffff

// A Coalescer merges runs of in-order TCP segments of one flow, read in one
// batch, into single large packets before gVisor sees them: the GRO a NIC
// driver does. Unlike gVisor's own GRO, which chains one chunk per segment,
// it copies each payload once into one large buffer, so gVisor (and the
// reader after it) handles one packet and one chunk per run instead of one
// per segment. Only segments whose checksums were verified are merged, and
// a merged packet is delivered as validated.
//
// A run is any number of segments with identical IP and TCP headers except
// for lengths, IPv4 ID and checksums, each starting where the last ended,
// carrying data, and flagged ACK or ACK|PSH (PSH ends the run). Everything
// else is delivered alone, after the run of its flow, so a flow's order is
// kept.
//
// With LinkLen set, every packet starts with a link header of that many
// bytes (an Ethernet header) before its IP header: segments join a run
// only if their link headers are identical, and a merged packet carries
// its first segment's.
//
// The zero value is ready to use; a Coalescer holds nothing between
// batches and is not safe for concurrent use.
type Coalescer struct {
	// LinkLen is the length of the link header in front of each packet's
	// IP header. Set it before the first Add.
	LinkLen int

	runs [maxRuns]run
	next int  // the slot to evict when all are taken
	sink Sink // the batch's sink, while Add runs
}

// run is one open run. It refers to its first segment in the batch's
// buffers until a second one joins; only then are views allocated: a small
// one for the headers and a large one for the payload. Keeping them apart
// matters: gVisor's IP layer holds a reference to the header's chunk while
// it reads the header again, which copies a shared chunk whole (copy on
// write); a 64-byte chunk is cheap to copy, a 64 KiB one is not.
type run struct {
	frame  []byte       // the first segment, link header included, while it is alone
	first  []byte       // its IP packet (frame past the link header)
	hdr    *buffer.View // the link, IP and TCP headers once there are two or more
	link   int          // the link header's length
	data   *buffer.View // the payload once there are two or more
	proto  tcpip.NetworkProtocolNumber
	hdrLen int    // IP and TCP headers
	next   uint32 // the sequence number the next segment must have
	closed bool   // ended by PSH
}

// segInfo is what parseValidTCP learns about a segment.
type segInfo struct {
	proto  tcpip.NetworkProtocolNumber
	l3Len  int
	hdrLen int
	end    int // end of the segment in its buffer
}

// Add takes a batch of packets and delivers everything to sink, open runs
// included; it returns how many packets it took, and how many it dropped
// for an unknown IP version. It keeps none of pkts.
func (c *Coalescer) Add(pkts [][]byte, sink Sink) (taken, invalid int) {
	c.sink = sink
	defer func() { c.sink = nil }()
	rest := 0
	for _, b := range pkts {
		rest += len(b)
	}
	for _, b := range pkts {
		rest -= len(b)
		if len(b) < c.LinkLen {
			invalid++
			continue
		}
		proto, ok := networkProto(b[c.LinkLen:])
		if !ok {
			invalid++
			continue
		}
		taken++
		c.add(b, proto, rest)
	}
	c.flush()
	return taken, invalid
}

// add takes the next packet of the batch, frame (link header and IP
// packet); rest is the number of bytes of the packets after it (a bound on
// what may still join a run).
func (c *Coalescer) add(frame []byte, proto tcpip.NetworkProtocolNumber, rest int) {
	l := c.LinkLen
	b := frame[l:]
	info, valid := parseValidTCP(b)
	if !valid {
		if claimsTCP(b, proto) {
			c.flush() // a TCP packet gVisor must check: keep every flow's order
		}
		c.emitBytes(frame, proto, false)
		return
	}
	b, frame = b[:info.end], frame[:l+info.end]
	slot := c.find(frame, info)
	if slot >= 0 {
		r := &c.runs[slot]
		if r.accepts(b, info) {
			r.append(b, info, rest)
			return
		}
		c.flushRun(r)
	}
	if !mergeable(b, info) {
		c.emitBytes(frame, info.proto, true)
		return
	}
	if slot < 0 {
		slot = c.free()
	}
	c.runs[slot] = run{frame: frame, first: b, link: l, proto: info.proto, hdrLen: info.hdrLen, next: nextSeq(b, info),
		closed: header.TCP(b[info.l3Len:]).Flags()&header.TCPFlagPsh != 0}
}

// find returns the slot of the open run of frame's flow (same link header,
// addresses and ports), or -1.
func (c *Coalescer) find(frame []byte, info segInfo) int {
	l := c.LinkLen
	for i := range c.runs {
		r := &c.runs[i]
		if r.proto == info.proto && sameFlow(r.header(), frame[l:], info) && bytes.Equal(r.linkHeader(), frame[:l]) {
			return i
		}
	}
	return -1
}

// free returns an empty slot, flushing the oldest-placed run if none is.
func (c *Coalescer) free() int {
	for i := range c.runs {
		if c.runs[i].proto == 0 {
			return i
		}
	}
	i := c.next
	c.next = (c.next + 1) % maxRuns
	c.flushRun(&c.runs[i])
	return i
}

// flush delivers every open run.
func (c *Coalescer) flush() {
	for i := range c.runs {
		if c.runs[i].proto != 0 {
			c.flushRun(&c.runs[i])
		}
	}
}

// flushRun delivers r and empties its slot.
func (c *Coalescer) flushRun(r *run) {
	if r.hdr == nil {
		c.emitBytes(r.frame, r.proto, true)
	} else {
		finishMerged(r.hdr.AsSlice()[r.link:], r.size(), r.proto)
		payload := buffer.MakeWithView(r.data)
		payload.Prepend(r.hdr)
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
		c.emitPacket(pkt, r.proto, true)
	}
	*r = run{}
}

// emitBytes delivers packet b alone.
func (c *Coalescer) emitBytes(b []byte, proto tcpip.NetworkProtocolNumber, validated bool) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	c.emitPacket(pkt, proto, validated)
}

// emitPacket delivers pkt, marked validated or not.
func (c *Coalescer) emitPacket(pkt *stack.PacketBuffer, proto tcpip.NetworkProtocolNumber, validated bool) {
	pkt.NetworkProtocolNumber = proto
	pkt.RXChecksumValidated = validated
	c.sink.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// header is the first segment's IP and TCP headers.
func (r *run) header() []byte {
	if r.hdr != nil {
		return r.hdr.AsSlice()[r.link:]
	}
	return r.first[:r.hdrLen]
}

// linkHeader is the first segment's link header.
func (r *run) linkHeader() []byte {
	if r.hdr != nil {
		return r.hdr.AsSlice()[:r.link]
	}
	return r.frame[:r.link]
}

// size is the length of the run's IP packet so far.
func (r *run) size() int {
	if r.hdr != nil {
		return r.hdr.Size() - r.link + r.data.Size()
	}
	return len(r.first)
}

// accepts reports whether segment b continues r.
func (r *run) accepts(b []byte, info segInfo) bool {
	if r.closed || info.hdrLen != r.hdrLen || !mergeable(b, info) ||
		header.TCP(b[info.l3Len:]).SequenceNumber() != r.next ||
		r.size()+len(b)-info.hdrLen > maxCoalesced {
		return false
	}
	h := r.header()
	tcp, rtcp := b[info.l3Len:info.hdrLen], h[info.l3Len:]
	// Acknowledgment, data offset, window and options must match; flags
	// may differ in PSH only.
	if !bytes.Equal(tcp[8:13], rtcp[8:13]) || !bytes.Equal(tcp[14:16], rtcp[14:16]) ||
		!bytes.Equal(tcp[header.TCPMinimumSize:], rtcp[header.TCPMinimumSize:]) {
		return false
	}
	return sameIPFields(h, b, info)
}

// append adds segment b's payload to r.
func (r *run) append(b []byte, info segInfo, rest int) {
	if r.hdr == nil {
		r.hdr = buffer.NewViewWithData(r.frame[:r.link+r.hdrLen])
		r.data = buffer.NewView(min(maxCoalesced, len(r.first)+len(b)+rest) - 2*r.hdrLen)
		r.data.Write(r.first[r.hdrLen:])
		r.first, r.frame = nil, nil
	}
	r.data.Write(b[info.hdrLen:])
	r.next += uint32(len(b) - info.hdrLen)
	if header.TCP(b[info.l3Len:]).Flags()&header.TCPFlagPsh != 0 {
		r.closed = true
		tcp := header.TCP(r.hdr.AsSlice()[r.link+info.l3Len:])
		tcp.SetFlags(uint8(tcp.Flags() | header.TCPFlagPsh))
	}
}

// finishMerged sets the IP length (and IPv4 header checksum) in the
// headers h of a merged packet of size bytes. Its TCP checksum is left
// stale: the packet is delivered as validated, each segment having been
// checked.
func finishMerged(h []byte, size int, proto tcpip.NetworkProtocolNumber) {
	if proto == header.IPv4ProtocolNumber {
		ip := header.IPv4(h)
		ip.SetTotalLength(uint16(size))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		return
	}
	header.IPv6(h).SetPayloadLength(uint16(size - header.IPv6MinimumSize))
}

// claimsTCP reports whether packet b, of network protocol proto, has a
// header long enough to say it carries TCP, and says so.
func claimsTCP(b []byte, proto tcpip.NetworkProtocolNumber) bool {
	switch proto {
	case header.IPv4ProtocolNumber:
		return len(b) >= header.IPv4MinimumSize && header.IPv4(b).TransportProtocol() == header.TCPProtocolNumber
	case header.IPv6ProtocolNumber:
		return len(b) >= header.IPv6MinimumSize && header.IPv6(b).TransportProtocol() == header.TCPProtocolNumber
	}
	return false
}

// mergeable reports whether segment b may be part of a run: it carries
// data and no flag but ACK and PSH, and no IPv4 options.
func mergeable(b []byte, info segInfo) bool {
	return len(b) > info.hdrLen && (info.proto == header.IPv6ProtocolNumber || info.l3Len == header.IPv4MinimumSize) &&
		header.TCP(b[info.l3Len:]).Flags()&^header.TCPFlagPsh == header.TCPFlagAck
}

// nextSeq is the sequence number that follows segment b.
func nextSeq(b []byte, info segInfo) uint32 {
	return header.TCP(b[info.l3Len:]).SequenceNumber() + uint32(len(b)-info.hdrLen)
}

// sameFlow reports whether run headers h (whose IP header has no options)
// and segment b have the same addresses and ports.
func sameFlow(h, b []byte, info segInfo) bool {
	l3 := header.IPv4MinimumSize
	if info.proto == header.IPv4ProtocolNumber {
		if !bytes.Equal(h[12:20], b[12:20]) {
			return false
		}
	} else if l3 = header.IPv6MinimumSize; !bytes.Equal(h[8:40], b[8:40]) {
		return false
	}
	return binary.BigEndian.Uint32(h[l3:]) == binary.BigEndian.Uint32(b[info.l3Len:])
}

// sameIPFields reports whether the IP fields other than lengths, IPv4 ID
// and checksum of h and b are equal.
func sameIPFields(h, b []byte, info segInfo) bool {
	if info.proto == header.IPv4ProtocolNumber {
		// Version, header length, TOS; flags, fragment offset, TTL, protocol.
		return bytes.Equal(h[0:2], b[0:2]) && bytes.Equal(h[6:10], b[6:10])
	}
	// Version, traffic class, flow label; next header, hop limit.
	return bytes.Equal(h[0:4], b[0:4]) && bytes.Equal(h[6:8], b[6:8])
}

// networkProto is the network protocol of IP packet b.
func networkProto(b []byte) (tcpip.NetworkProtocolNumber, bool) {
	switch header.IPVersion(b) {
	case header.IPv4Version:
		return header.IPv4ProtocolNumber, true
	case header.IPv6Version:
		return header.IPv6ProtocolNumber, true
	}
	return 0, false
}

// parseValidTCP reports whether b is an unfragmented TCP segment with
// valid IP header and TCP checksums, and where its parts lie.
func parseValidTCP(b []byte) (segInfo, bool) {
	var info segInfo
	var src, dst tcpip.Address
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		if !ip.IsValid(len(b)) || !ip.IsChecksumValid() || ip.TransportProtocol() != header.TCPProtocolNumber ||
			ip.More() || ip.FragmentOffset() != 0 {
			return info, false
		}
		info = segInfo{proto: header.IPv4ProtocolNumber, l3Len: int(ip.HeaderLength()), end: int(ip.TotalLength())}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	case header.IPv6Version:
		ip := header.IPv6(b)
		if len(b) < header.IPv6MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber {
			return info, false
		}
		info = segInfo{proto: header.IPv6ProtocolNumber, l3Len: header.IPv6MinimumSize,
			end: header.IPv6MinimumSize + int(ip.PayloadLength())}
		if info.end > len(b) {
			return info, false
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return info, false
	}
	seg := b[info.l3Len:info.end]
	if len(seg) < header.TCPMinimumSize {
		return info, false
	}
	off := int(header.TCP(seg).DataOffset())
	if off < header.TCPMinimumSize || off > len(seg) {
		return info, false
	}
	info.hdrLen = info.l3Len + off
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(seg)))
	return info, checksum.Checksum(seg, xsum) == 0xffff
}
