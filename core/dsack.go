package core

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// dsacker fixes up, on the link, two things gVisor's TCP receiver gets
// wrong when a segment arrives whose bytes the stack has already
// acknowledged (a retransmission that was not needed, or a packet the
// network duplicated). The connection's next pure ACK is replaced by a
// copy that
//   - reports the duplicate bytes in its first SACK block (DSACK, RFC
//     2883), which gVisor never sends and its sender reads (rack.go): it
//     grows RACK's reordering window and takes a tail-loss probe so
//     reported as spurious, without a window cut; see Config.DisableDSACK;
//   - echoes the duplicate's timestamp where it is later than gVisor's
//     echo, as RFC 7323 §4.3 has it (see ackCopy): after a timeout whose
//     ACK had been lost, the sender then samples the retransmission's
//     round trip instead of the whole timeout.
//
// A duplicate is only ever recognised below the highest ACK number the
// stack has sent on the connection, so a report is never wrong; segments
// that fail their checksums are never reported.
//
// The same table serves fixSYNACKLocked. Only reports can be turned off.
type dsacker struct {
	on atomic.Bool // duplicate reports are sent

	mu sync.Mutex
	// +checklocks:mu
	flows map[dsackKey]*dsackFlow

	// probeOn turns on recovery probes (see dsack_probe.go); send hands
	// one to the link, with d.mu not held.
	probeOn atomic.Bool
	send    func(*stack.PacketBuffer)
	// ctl is the link's window control (see repair.go).
	ctl windowCtl
	// +checklocks:mu
	active map[*dsackFlow]struct{} // connections a probe may be due on
	// +checklocks:mu
	timer dueTimer // for the earliest probe or held ACK
	// +checklocks:mu
	kept int // segments kept for probes
	// holdFor is how long an ACK reporting a gap is held (0: not).
	holdFor atomic.Int64
	// +checklocks:mu
	holding map[*dsackFlow]struct{} // connections with a held ACK
	// +checklocks:mu
	closed bool

	sent         atomic.Uint64 // ACKs that carried a report
	probesSent   atomic.Uint64 // recovery probes sent
	stallProbes  atomic.Uint64 // probe rounds sent outside recovery
	acksHeld     atomic.Uint64 // gap-reporting ACKs held back
	echoesFixed  atomic.Uint64 // ACKs whose timestamp echo was fixed
	synACKsFixed atomic.Uint64 // SYN-ACKs whose echo was moved
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
	known      bool         // rcvNxt is set
	rcvNxt     seqnum.Value // highest ACK number the stack sent
	syns       int          // SYNs the stack sent (an active open)
	synTSVal   uint32       // their timestamp (gVisor keeps the first's)
	synAt      time.Time    // when it sent the first
	lastSynAt  time.Time    // and the last
	pending    bool         // a duplicate waits to be reported
	start, end seqnum.Value // the duplicate bytes
	echo       bool         // a duplicate's timestamp waits to be echoed
	echoVal    uint32       // the newest such timestamp
	snd        *probeState  // the send side, once the stack sent data
	// An ACK reporting a gap, held back (see dsack_hold.go).
	held     *stack.PacketBuffer
	heldAt   time.Time
	released *stack.PacketBuffer // the held ACK on its way out
	holding  bool                // in dsacker.holding
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
// a TCP segment whose bytes the stack has already acknowledged (a
// duplicate to report, when reports are on). It returns the packet to
// deliver: b, a fixed copy of a SYN-ACK (see fixSYNACKLocked), a copy
// the window control changed, or nil: none (see windowCtl.received). The IP
// packet starts at b[off:], behind a link header of off bytes.
func (d *dsacker) inbound(b []byte, off int) []byte {
	if off > len(b) {
		return b
	}
	s, ok := parseTCP(b[off:])
	if !ok {
		return b
	}
	if b = d.ctl.received(b, off, &s); b == nil {
		return nil // not handed over (see windowCtl.received)
	}
	t := header.TCP(s.tcp)
	if t.Flags()&(header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst) == header.TCPFlagSyn|header.TCPFlagAck {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.fixSYNACKLocked(b, off, &s)
	}
	if t.Flags()&(header.TCPFlagSyn|header.TCPFlagRst|header.TCPFlagAck) == header.TCPFlagAck {
		d.noteACK(&s)
	}
	if t.Flags()&header.TCPFlagRst != 0 {
		d.noteReset(&s)
		return b
	}
	if s.payload == 0 || t.Flags()&(header.TCPFlagSyn|header.TCPFlagRst) != 0 {
		return b
	}
	seq := seqnum.Value(t.SequenceNumber())
	end := seq.Add(seqnum.Size(s.payload))
	k := s.key(false)
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.flows[k]
	if f == nil || !f.known || !seq.LessThan(f.rcvNxt) || seq.Size(f.rcvNxt) > maxDSACKDistance {
		return b
	}
	if !s.checksumsValid() {
		return b
	}
	if f.rcvNxt.LessThan(end) {
		end = f.rcvNxt // a partial duplicate: report the part below the edge
	}
	if d.on.Load() {
		f.pending, f.start, f.end = true, seq, end
	}
	if o := header.ParseTCPOptions(t.Options()); o.TS && (!f.echo || tsNewer(o.TSVal, f.echoVal)) {
		f.echo, f.echoVal = true, o.TSVal
	}
	return b
}

// inboundTrusted notes b, an inbound IP packet that goes to the stack whole
// as checksum-validated (a TCP super-segment a TUN read, see
// deliverValidated), which inbound does not see: its acknowledgement, so
// that the recovery probes do not take the bytes it acknowledges for
// outstanding (a peer that sends while it receives acknowledges in its
// data, which a TUN hands over as super-segments). Its TCP checksum is
// partial (the device vouched for the packet), so none is checked.
func (d *dsacker) inboundTrusted(b []byte) {
	if !d.probeOn.Load() {
		return
	}
	s, ok := parseTCP(b)
	if !ok || header.TCP(s.tcp).Flags()&(header.TCPFlagSyn|header.TCPFlagRst|header.TCPFlagAck) != header.TCPFlagAck {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.flows[s.key(false)]; f != nil && f.snd != nil {
		d.ackedLocked(f, header.TCP(s.tcp), time.Now())
	}
}

// noteReset forgets the connection a reset that arrived ends, as one the
// stack sends does (see outbound): its kept segments would otherwise wait
// for an acknowledgement that never comes, and the connection draw stall
// probes (answered with resets) for minutes, each timer round walking it
// among the others. A reset whose checksums fail is ignored. One the
// stack then refuses costs nothing lasting: the next segment the stack
// sends makes the entry again.
func (d *dsacker) noteReset(s *tcpSegment) {
	k := s.key(false)
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.flows[k]
	if f == nil || !s.checksumsValid() {
		return
	}
	d.dropHeldLocked(f)
	d.forgetLocked(f)
	delete(d.flows, k)
}

// tsNewer reports whether timestamp a is later than b (RFC 7323's
// modular comparison).
func tsNewer(a, b uint32) bool { return int32(a-b) > 0 }

// outTCP parses the headers of pkt, a TCP segment the stack sends (over
// IPv6 without extension headers, as gVisor sends TCP); false for
// anything else. Only the packet's writer calls it, before the packet is
// queued (see hdrLens).
func outTCP(pkt *stack.PacketBuffer) (s tcpSegment, ok bool) {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return s, false
	}
	s = tcpSegment{net: pkt.NetworkHeader().Slice(), tcp: pkt.TransportHeader().Slice()}
	if len(s.tcp) < header.TCPMinimumSize {
		return s, false
	}
	switch pkt.NetworkProtocolNumber {
	case header.IPv4ProtocolNumber:
		if len(s.net) < header.IPv4MinimumSize {
			return s, false
		}
		s.src, s.dst = header.IPv4(s.net).SourceAddress(), header.IPv4(s.net).DestinationAddress()
	case header.IPv6ProtocolNumber:
		if len(s.net) != header.IPv6MinimumSize {
			return s, false
		}
		s.src, s.dst, s.v6 = header.IPv6(s.net).SourceAddress(), header.IPv6(s.net).DestinationAddress(), true
	default:
		return s, false
	}
	return s, true
}

// outbound notes pkt, a packet the stack sends. For a pure ACK of a
// connection on which a duplicate arrived it returns the ACK to send
// instead (see ackCopy), or nil to send pkt. The caller owns the
// replacement's reference.
func (d *dsacker) outbound(pkt *stack.PacketBuffer) (repl *stack.PacketBuffer, held bool) {
	s, ok := outTCP(pkt)
	if !ok {
		return nil, false
	}
	t := header.TCP(s.tcp)
	flags := t.Flags()
	k := s.key(true)
	d.ctl.sent(k, t, pkt)
	d.mu.Lock()
	defer d.mu.Unlock()
	if flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn {
		d.noteSYNLocked(k, t)
		return nil, false
	}
	if flags&header.TCPFlagAck == 0 {
		return nil, false
	}
	ack := seqnum.Value(t.AckNumber())
	if flags&header.TCPFlagRst != 0 {
		d.dropHeldLocked(d.flows[k])
		d.forgetLocked(d.flows[k])
		delete(d.flows, k)
		return nil, false
	}
	f := d.flows[k]
	if f == nil || flags&header.TCPFlagSyn != 0 {
		f = d.addLocked(k)
	}
	if !f.known || f.rcvNxt.LessThan(ack) {
		f.rcvNxt, f.known = ack, true
	}
	if flags&header.TCPFlagSyn == 0 && (pkt.Data().Size() > 0 || flags&header.TCPFlagFin != 0) && d.probeOn.Load() && !d.closed {
		d.noteSentLocked(f, pkt, t, time.Now())
	} else if f.snd != nil {
		f.snd.noteHeader(t, time.Now())
	}
	if d.holdLocked(f, pkt, t, flags) {
		return nil, true
	}
	if (!f.pending && !f.echo) || flags != header.TCPFlagAck || pkt.Data().Size() != 0 || pkt.GSOOptions.Type != stack.GSONone {
		return nil, false
	}
	var dup *header.SACKBlock
	if f.pending {
		dup = &header.SACKBlock{Start: f.start, End: f.end}
	}
	echo, fix := f.echoVal, f.echo
	f.pending, f.echo = false, false
	if dup == nil {
		if o := header.ParseTCPOptions(t.Options()); !o.TS || !tsNewer(echo, o.TSEcr) {
			return nil, false // nothing to change
		}
	}
	c, fixed := ackCopy(&s, pkt.LinkHeader().Slice(), dup, echo, fix)
	if dup != nil {
		d.sent.Add(1)
	}
	if fixed {
		d.echoesFixed.Add(1)
	}
	return c, false
}

// addLocked makes the entry for k, forgetting another if the table is
// full.
//
// +checklocks:d.mu
func (d *dsacker) addLocked(k dsackKey) *dsackFlow {
	if d.flows == nil {
		d.flows = make(map[dsackKey]*dsackFlow)
	}
	d.forgetLocked(d.flows[k])
	d.dropHeldLocked(d.flows[k])
	if len(d.flows) >= maxDSACKFlows {
		for old, f := range d.flows {
			d.forgetLocked(f)
			d.dropHeldLocked(f)
			delete(d.flows, old)
			break
		}
	}
	f := &dsackFlow{}
	d.flows[k] = f
	return f
}

// ackCopy builds the replacement of the pure ACK s, behind the same link
// header (Ethernet's on MediumEthernet, none on MediumIP): the same segment
// with, when dup is set, a SACK option whose first block is *dup (a
// DSACK, RFC 2883) followed by as many of s's own SACK blocks as fit
// (with timestamps, two of gVisor's three), and, when fix is set and echo
// is later than s's timestamp echo, echo as the echo: the timestamp of
// the duplicate segment that drew the ACK. That is what RFC 7323 (§4.3)
// echoes: a segment at or below the acknowledged edge updates TS.Recent.
// gVisor's receiver does not take it from a duplicate, so after a
// retransmission timeout whose ACK had been lost the sender's RTT sample
// spans the whole timeout (docs/gvisor-upstream.md §2); with the
// duplicate's timestamp it is the retransmission's round trip. The IP and
// TCP checksums are computed in full. fixed reports whether the echo
// changed.
func ackCopy(s *tcpSegment, link []byte, dup *header.SACKBlock, echo uint32, fix bool) (pkt *stack.PacketBuffer, fixed bool) {
	t := header.TCP(s.tcp)
	opts := header.ParseTCPOptions(t.Options())
	blocks := opts.SACKBlocks
	if dup != nil {
		blocks = append([]header.SACKBlock{*dup}, blocks...)
	}
	if fix && opts.TS && tsNewer(echo, opts.TSEcr) {
		opts.TSEcr, fixed = echo, true
	}
	var ob [header.TCPOptionsMaximumSize]byte
	n := encodeACKOptions(&ob, opts, blocks)
	tcpLen := header.TCPMinimumSize + n
	frame := make([]byte, len(link)+len(s.net)+tcpLen)
	copy(frame, link)
	b := frame[len(link):]
	copy(b, s.net)
	nt := header.TCP(b[len(s.net):])
	nt.Encode(&header.TCPFields{
		SrcPort: t.SourcePort(), DstPort: t.DestinationPort(),
		SeqNum: t.SequenceNumber(), AckNum: t.AckNumber(),
		DataOffset: uint8(tcpLen), Flags: t.Flags(),
		WindowSize: t.WindowSize(), UrgentPointer: t.UrgentPointer(),
	})
	copy(nt[header.TCPMinimumSize:], ob[:n])
	sealACK(b, s, tcpLen)
	proto := header.IPv4ProtocolNumber
	if s.v6 {
		proto = header.IPv6ProtocolNumber
	}
	pkt = stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = proto, header.TCPProtocolNumber
	pkt.LinkHeader().Consume(len(link))
	pkt.NetworkHeader().Consume(len(s.net))
	pkt.TransportHeader().Consume(tcpLen)
	return pkt, fixed
}

// noteSYNLocked notes a SYN the stack sends (an active open): a new
// connection on k, or a retransmission of its SYN.
//
// +checklocks:d.mu
func (d *dsacker) noteSYNLocked(k dsackKey, t header.TCP) {
	f := d.flows[k]
	if f == nil || f.known {
		f = d.addLocked(k)
	}
	now := time.Now()
	if f.syns == 0 {
		f.synAt = now
		f.synTSVal = header.ParseTCPOptions(t.Options()).TSVal
	}
	f.lastSynAt = now
	f.syns++
}

// fixSYNACKLocked works around gVisor's first RTT sample after a
// retransmitted handshake. gVisor retransmits a SYN with the first one's
// timestamp, and its listener retransmits its SYN-ACK on its own timer
// echoing the timestamp of the first SYN it got; the connecting side
// takes the SYN-ACK's echo as an RTT sample, so the sample is the time
// since the first SYN, about a second (the SYN retry timer) on any path,
// and its retransmission timeout starts at seconds (RFC 7323 App. G
// smoothing then keeps it there). So the link delivers, instead of such a
// SYN-ACK, a copy whose echo is moved forward on the SYN's timestamp
// clock (milliseconds, as gVisor's): when the stack sent more than one
// SYN, by the time from the first SYN to the last, so that the sample is
// the time since the last SYN (the round trip if the SYN-ACK answers it,
// less if it does not); when it sent one and the SYN-ACK comes a SYN
// retry timeout (1 s) or more after it (the listener's retransmission
// overtook the SYN's), to 1 ms before now: 1 ms, at the floor. Either way
// the RTO starts at gVisor's minimum and the first data samples the path.
// A SYN-ACK that fails its checksums, or echoes another timestamp, is
// left alone.
//
// +checklocks:d.mu
func (d *dsacker) fixSYNACKLocked(b []byte, off int, s *tcpSegment) []byte {
	f := d.flows[s.key(false)]
	if f == nil || f.syns == 0 {
		return b
	}
	var ahead time.Duration
	switch since := time.Since(f.synAt); {
	case f.syns > 1:
		ahead = f.lastSynAt.Sub(f.synAt)
	case since >= tcp.InitialRTO:
		ahead = since - time.Millisecond
	default:
		return b
	}
	t := header.TCP(s.tcp)
	opts := t.Options()
	o := header.ParseTCPOptions(opts)
	if !o.TS || o.TSEcr != f.synTSVal || ahead < time.Millisecond || !s.checksumsValid() {
		return b
	}
	at := tsEcrOffset(opts)
	if at < 0 {
		return b
	}
	c := append([]byte(nil), b...)
	cs, _ := parseTCP(c[off:])
	ct := header.TCP(cs.tcp)
	binary.BigEndian.PutUint32(ct[header.TCPMinimumSize+at:], f.synTSVal+uint32(ahead/time.Millisecond))
	ct.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, cs.src, cs.dst, uint16(len(cs.tcp)))
	ct.SetChecksum(^checksum.Checksum(cs.tcp, xsum))
	d.synACKsFixed.Add(1)
	return c
}

// tsEcrOffset returns where in opts the timestamp option's echo field
// starts, or -1.
func tsEcrOffset(opts []byte) int {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case header.TCPOptionEOL:
			return -1
		case header.TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return -1
		}
		if opts[i] == header.TCPOptionTS && opts[i+1] == header.TCPOptionTSLength {
			return i + 6
		}
		i += int(opts[i+1])
	}
	return -1
}

// linkHeaderLen is the length of the link header in front of each inbound
// packet from a device: Ethernet's on MediumEthernet (inboundProto has
// checked it), none on MediumIP.
func (l *linkEP) linkHeaderLen() int {
	if l.eth.on {
		return EthernetHeaderLen
	}
	return 0
}

// encodeACKOptions writes the options of a rebuilt ACK into ob: the
// timestamps of opts (if it has them) and blocks as a SACK option (if
// any), each behind two NOPs, then padding; it returns their length.
func encodeACKOptions(ob *[header.TCPOptionsMaximumSize]byte, opts header.TCPOptions, blocks []header.SACKBlock) int {
	n := 0
	if opts.TS {
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeTSOption(opts.TSVal, opts.TSEcr, ob[n:])
	}
	if len(blocks) > 0 {
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeSACKBlocks(blocks, ob[n:])
	}
	return n + header.AddTCPOptionPadding(ob[:], n)
}

// sealACK completes b, a rebuilt ACK of s (its IP header, then a TCP
// header and options of tcpLen bytes, no payload): the TCP checksum, the
// IP length and, on IPv4, the header checksum.
func sealACK(b []byte, s *tcpSegment, tcpLen int) {
	nt := header.TCP(b[len(s.net):])
	nt.SetChecksum(^nt.CalculateChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, s.src, s.dst, uint16(tcpLen))))
	if s.v6 {
		header.IPv6(b).SetPayloadLength(uint16(tcpLen))
		return
	}
	ip := header.IPv4(b)
	ip.SetTotalLength(uint16(len(b)))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
}
