package core

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// dsacker adds duplicate-SACK reports (RFC 2883) that gVisor's receiver
// never sends: the link notes each inbound TCP segment whose bytes the
// stack had already acknowledged, and the next pure ACK of that
// connection leaves followed by a copy whose first SACK block names the
// duplicate bytes. gVisor's sender reads such a block (rack.go): it grows
// RACK's reordering window and takes a tail-loss probe that drew one as
// spurious, so reordering stops costing spurious retransmissions and
// window cuts. See Config.DisableDSACK.
//
// A duplicate is only ever recognised below the highest ACK number the
// stack has sent on the connection, so a report is never wrong; segments
// that fail their checksums are never reported.
type dsacker struct {
	on atomic.Bool

	mu sync.Mutex
	// +checklocks:mu
	flows map[dsackKey]*dsackFlow

	sent atomic.Uint64
}

// maxDSACKFlows bounds the connections a link tracks; past it one is
// forgotten at random (it then merely sends no report until its next ACK).
const maxDSACKFlows = 4096

// maxDSACKDistance bounds how far below the acknowledged edge a duplicate
// may start, so that a stale entry (a 4-tuple reused without a SYN seen)
// never yields a report for sequence numbers of another connection.
const maxDSACKDistance = 1 << 30

// dsackKey names a connection from the stack's side.
type dsackKey struct {
	local, remote [16]byte
	lport, rport  uint16
}

// dsackFlow is what the link knows of one connection's receive side.
type dsackFlow struct {
	rcvNxt     seqnum.Value // highest ACK number the stack sent
	pending    bool         // a duplicate waits to be reported
	start, end seqnum.Value // the duplicate bytes
}

// tcpSegment is the parse of one IP packet carrying TCP, headers only.
type tcpSegment struct {
	net, tcp []byte
	v6       bool
	src, dst tcpip.Address
	payload  int // TCP payload bytes
}

// parseTCP parses an IPv4 (unfragmented) or IPv6 (no extension headers)
// packet carrying TCP; ok is false for anything else or a malformed one.
func parseTCP(b []byte) (s tcpSegment, ok bool) {
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		if len(b) < header.IPv4MinimumSize || ip.Protocol() != uint8(header.TCPProtocolNumber) || ip.More() || ip.FragmentOffset() != 0 {
			return s, false
		}
		hl, tl := int(ip.HeaderLength()), int(ip.TotalLength())
		if hl < header.IPv4MinimumSize || tl > len(b) || tl < hl+header.TCPMinimumSize {
			return s, false
		}
		s.net, s.tcp, s.src, s.dst = b[:hl], b[hl:tl], ip.SourceAddress(), ip.DestinationAddress()
	case header.IPv6Version:
		ip := header.IPv6(b)
		if len(b) < header.IPv6MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber {
			return s, false
		}
		tl := header.IPv6MinimumSize + int(ip.PayloadLength())
		if tl > len(b) || tl < header.IPv6MinimumSize+header.TCPMinimumSize {
			return s, false
		}
		s.net, s.tcp, s.src, s.dst, s.v6 = b[:header.IPv6MinimumSize], b[header.IPv6MinimumSize:tl], ip.SourceAddress(), ip.DestinationAddress(), true
	default:
		return s, false
	}
	off := int(header.TCP(s.tcp).DataOffset())
	if off < header.TCPMinimumSize || off > len(s.tcp) {
		return s, false
	}
	s.payload = len(s.tcp) - off
	return s, true
}

// key names the connection of a segment the stack sends (out) or
// receives (!out).
func (s *tcpSegment) key(out bool) dsackKey {
	t := header.TCP(s.tcp)
	var k dsackKey
	if out {
		copy(k.local[:], s.src.AsSlice())
		copy(k.remote[:], s.dst.AsSlice())
		k.lport, k.rport = t.SourcePort(), t.DestinationPort()
	} else {
		copy(k.local[:], s.dst.AsSlice())
		copy(k.remote[:], s.src.AsSlice())
		k.lport, k.rport = t.DestinationPort(), t.SourcePort()
	}
	return k
}

// checksumsValid reports whether the segment's IPv4 header checksum (if
// any) and its TCP checksum are right.
func (s *tcpSegment) checksumsValid() bool {
	if !s.v6 && !header.IPv4(s.net).IsChecksumValid() {
		return false
	}
	t := header.TCP(s.tcp)
	off := int(t.DataOffset())
	return t.IsChecksumValid(s.src, s.dst, checksum.Checksum(s.tcp[off:], 0), uint16(s.payload))
}

// inbound notes b, a packet about to be delivered to the stack, if it is
// a TCP segment whose bytes the stack has already acknowledged.
func (d *dsacker) inbound(b []byte) {
	s, ok := parseTCP(b)
	if !ok || s.payload == 0 {
		return
	}
	t := header.TCP(s.tcp)
	if t.Flags()&(header.TCPFlagSyn|header.TCPFlagRst) != 0 {
		return
	}
	seq := seqnum.Value(t.SequenceNumber())
	end := seq.Add(seqnum.Size(s.payload))
	k := s.key(false)
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.flows[k]
	if f == nil || !seq.LessThan(f.rcvNxt) || seq.Size(f.rcvNxt) > maxDSACKDistance {
		return
	}
	if !s.checksumsValid() {
		return
	}
	if f.rcvNxt.LessThan(end) {
		end = f.rcvNxt // a partial duplicate: report the part below the edge
	}
	f.pending, f.start, f.end = true, seq, end
}

// outbound notes pkt, a packet the stack sends, and returns the copy of
// it that carries a pending duplicate report, or nil. The caller owns the
// copy's reference.
func (d *dsacker) outbound(pkt *stack.PacketBuffer) *stack.PacketBuffer {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return nil
	}
	s := tcpSegment{net: pkt.NetworkHeader().Slice(), tcp: pkt.TransportHeader().Slice()}
	if len(s.tcp) < header.TCPMinimumSize {
		return nil
	}
	switch pkt.NetworkProtocolNumber {
	case header.IPv4ProtocolNumber:
		if len(s.net) < header.IPv4MinimumSize {
			return nil
		}
		s.src, s.dst = header.IPv4(s.net).SourceAddress(), header.IPv4(s.net).DestinationAddress()
	case header.IPv6ProtocolNumber:
		if len(s.net) != header.IPv6MinimumSize {
			return nil
		}
		s.src, s.dst, s.v6 = header.IPv6(s.net).SourceAddress(), header.IPv6(s.net).DestinationAddress(), true
	default:
		return nil
	}
	t := header.TCP(s.tcp)
	flags := t.Flags()
	if flags&header.TCPFlagAck == 0 {
		return nil
	}
	ack := seqnum.Value(t.AckNumber())
	k := s.key(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	if flags&header.TCPFlagRst != 0 {
		delete(d.flows, k)
		return nil
	}
	f := d.flows[k]
	if f == nil || flags&header.TCPFlagSyn != 0 {
		f = d.addLocked(k)
		f.rcvNxt = ack
		return nil
	}
	if f.rcvNxt.LessThan(ack) {
		f.rcvNxt = ack
	}
	if !f.pending || flags != header.TCPFlagAck || pkt.Data().Size() != 0 || pkt.GSOOptions.Type != stack.GSONone {
		return nil
	}
	f.pending = false
	return dsackCopy(&s, header.SACKBlock{Start: f.start, End: f.end})
}

// addLocked makes the entry for k, forgetting another if the table is
// full.
//
// +checklocks:d.mu
func (d *dsacker) addLocked(k dsackKey) *dsackFlow {
	if d.flows == nil {
		d.flows = make(map[dsackKey]*dsackFlow)
	}
	if len(d.flows) >= maxDSACKFlows {
		for old := range d.flows {
			delete(d.flows, old)
			break
		}
	}
	f := &dsackFlow{}
	d.flows[k] = f
	return f
}

// dsackCopy builds a copy of the pure ACK s whose options are s's
// timestamps (if any) and a SACK option whose first block is dup,
// followed by as many of s's own SACK blocks as fit, with the IP and TCP
// checksums computed in full.
func dsackCopy(s *tcpSegment, dup header.SACKBlock) *stack.PacketBuffer {
	t := header.TCP(s.tcp)
	opts := header.ParseTCPOptions(t.Options())
	blocks := append([]header.SACKBlock{dup}, opts.SACKBlocks...)
	var ob [header.TCPOptionsMaximumSize]byte
	n := 0
	if opts.TS {
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeTSOption(opts.TSVal, opts.TSEcr, ob[n:])
	}
	n += header.EncodeNOP(ob[n:])
	n += header.EncodeNOP(ob[n:])
	n += header.EncodeSACKBlocks(blocks, ob[n:])
	n += header.AddTCPOptionPadding(ob[:], n)
	tcpLen := header.TCPMinimumSize + n
	b := make([]byte, len(s.net)+tcpLen)
	copy(b, s.net)
	nt := header.TCP(b[len(s.net):])
	nt.Encode(&header.TCPFields{
		SrcPort: t.SourcePort(), DstPort: t.DestinationPort(),
		SeqNum: t.SequenceNumber(), AckNum: t.AckNumber(),
		DataOffset: uint8(tcpLen), Flags: t.Flags(),
		WindowSize: t.WindowSize(), UrgentPointer: t.UrgentPointer(),
	})
	copy(nt[header.TCPMinimumSize:], ob[:n])
	nt.SetChecksum(^nt.CalculateChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, s.src, s.dst, uint16(tcpLen))))
	proto := header.IPv4ProtocolNumber
	if s.v6 {
		proto = header.IPv6ProtocolNumber
		header.IPv6(b).SetPayloadLength(uint16(tcpLen))
	} else {
		ip := header.IPv4(b)
		ip.SetTotalLength(uint16(len(b)))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = proto, header.TCPProtocolNumber
	pkt.NetworkHeader().Consume(len(s.net))
	pkt.TransportHeader().Consume(tcpLen)
	return pkt
}

// sendDSACK queues, after pkt (just queued), the copy that carries a
// pending duplicate report for its connection, if any and if the queue
// has room. It reports whether it queued one.
//
// +checklocks:l.mu
func (l *linkEP) sendDSACK(pkt *stack.PacketBuffer) bool {
	c := l.dsack.outbound(pkt)
	if c == nil {
		return false
	}
	defer c.DecRef()
	if l.n == len(l.q) {
		return false
	}
	l.enqueueLocked(c)
	l.dsack.sent.Add(1)
	return true
}
