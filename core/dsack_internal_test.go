package core

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// dsackCase is one address family of the DSACK tests: the stack is local,
// its peer remote.
type dsackCase struct {
	name          string
	local, remote netip.Addr
}

var dsackCases = []dsackCase{
	{"v4", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")},
	{"v6", netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")},
}

// segment builds a checksummed IP packet carrying one TCP segment from src
// to dst, ports 80 (local) and 4000 (remote) in the right order.
func (c dsackCase) segment(out bool, flags header.TCPFlags, seq, ack uint32, opts []byte, payload []byte) []byte {
	src, dst, sport, dport := c.remote, c.local, uint16(4000), uint16(80)
	if out {
		src, dst, sport, dport = c.local, c.remote, 80, 4000
	}
	tcpLen := header.TCPMinimumSize + len(opts) + len(payload)
	ipLen := header.IPv4MinimumSize
	if src.Is6() {
		ipLen = header.IPv6MinimumSize
	}
	b := make([]byte, ipLen+tcpLen)
	s, d := tcpip.AddrFromSlice(src.AsSlice()), tcpip.AddrFromSlice(dst.AsSlice())
	if src.Is6() {
		header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(tcpLen), TransportProtocol: header.TCPProtocolNumber, HopLimit: 64, SrcAddr: s, DstAddr: d})
	} else {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: s, DstAddr: d})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	t := header.TCP(b[ipLen:])
	t.Encode(&header.TCPFields{SrcPort: sport, DstPort: dport, SeqNum: seq, AckNum: ack, DataOffset: uint8(header.TCPMinimumSize + len(opts)), Flags: flags, WindowSize: 5000})
	copy(t[header.TCPMinimumSize:], opts)
	copy(t[header.TCPMinimumSize+len(opts):], payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, s, d, uint16(tcpLen))
	t.SetChecksum(^t.CalculateChecksum(checksum.Checksum(payload, xsum)))
	return b
}

// outPacket makes b the packet buffer gVisor would hand the link: headers
// parsed, no payload beyond them.
func outPacket(tb testing.TB, b []byte) *stack.PacketBuffer {
	tb.Helper()
	s, ok := parseTCP(b)
	if !ok {
		tb.Fatalf("not a TCP packet: %x", b)
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = header.IPv4ProtocolNumber, header.TCPProtocolNumber
	if s.v6 {
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	}
	pkt.NetworkHeader().Consume(len(s.net))
	pkt.TransportHeader().Consume(int(header.TCP(s.tcp).DataOffset()))
	tb.Cleanup(pkt.DecRef)
	return pkt
}

// tsSACK is the options of an ACK with timestamps and the given SACK
// blocks, laid out as gVisor lays them out.
func tsSACK(blocks ...header.SACKBlock) []byte {
	var b [header.TCPOptionsMaximumSize]byte
	n := header.EncodeNOP(b[:])
	n += header.EncodeNOP(b[n:])
	n += header.EncodeTSOption(111, 222, b[n:])
	if len(blocks) > 0 {
		n += header.EncodeNOP(b[n:])
		n += header.EncodeNOP(b[n:])
		n += header.EncodeSACKBlocks(blocks, b[n:])
	}
	return b[:n]
}

// TestDSACKReport: a segment the stack had acknowledged draws, after its
// next pure ACK, a copy of that ACK whose first SACK block names the
// duplicate bytes, the ACK's timestamps and SACK blocks kept (as many as
// fit), both checksums right; IPv4 and IPv6.
func TestDSACKReport(t *testing.T) {
	const rcvNxt = 10000
	data := make([]byte, 1000)
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			var d dsacker
			d.on.Store(true)
			if d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(), nil))) != nil {
				t.Fatal("report without a duplicate")
			}
			// A segment above the edge is no duplicate; one below it is.
			d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt, 1, nil, data))
			if d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(), nil))) != nil {
				t.Fatal("report for a segment above the acknowledged edge")
			}
			d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt-2000, 1, nil, data))
			// Data segments carry no report; the next pure ACK does.
			if d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck|header.TCPFlagPsh, 1, rcvNxt, tsSACK(), data[:10]))) != nil {
				t.Fatal("report on a data segment")
			}
			own := []header.SACKBlock{{Start: 20000, End: 21000}, {Start: 30000, End: 31000}, {Start: 40000, End: 41000}}
			ack := c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(own...), nil)
			cp := d.outbound1(outPacket(t, ack))
			if cp == nil {
				t.Fatal("no report after a duplicate")
			}
			defer cp.DecRef()
			got := packetBytes(cp)
			s, ok := parseTCP(got)
			if !ok || !s.checksumsValid() {
				t.Fatalf("report is not a valid TCP packet (parsed %v): %x", ok, got)
			}
			if s.v6 != c.local.Is6() || s.src != tcpip.AddrFromSlice(c.local.AsSlice()) || s.payload != 0 {
				t.Fatalf("report: v6 %v, source %v, %d payload bytes", s.v6, s.src, s.payload)
			}
			nt, ot := header.TCP(s.tcp), header.TCP(ack[len(s.net):])
			if nt.SequenceNumber() != ot.SequenceNumber() || nt.AckNumber() != ot.AckNumber() || nt.WindowSize() != ot.WindowSize() || nt.Flags() != header.TCPFlagAck {
				t.Fatalf("report changed the ACK: seq %d ack %d win %d flags %v", nt.SequenceNumber(), nt.AckNumber(), nt.WindowSize(), nt.Flags())
			}
			o := header.ParseTCPOptions(nt.Options())
			want := []header.SACKBlock{{Start: rcvNxt - 2000, End: rcvNxt - 1000}, own[0], own[1]}
			if !o.TS || o.TSVal != 111 || o.TSEcr != 222 || len(o.SACKBlocks) != len(want) {
				t.Fatalf("report options: TS %v %d %d, SACK %v; want TS 111 222, SACK %v", o.TS, o.TSVal, o.TSEcr, o.SACKBlocks, want)
			}
			for i := range want {
				if o.SACKBlocks[i] != want[i] {
					t.Fatalf("SACK blocks %v, want %v", o.SACKBlocks, want)
				}
			}
			if d.outbound1(outPacket(t, ack)) != nil {
				t.Fatal("a duplicate reported twice")
			}
		})
	}
}

// TestDSACKPartialAndCorrupt: a segment straddling the acknowledged edge
// is reported up to the edge; one that fails its checksum, or that belongs
// to no connection the stack acknowledged on, is never reported.
func TestDSACKPartialAndCorrupt(t *testing.T) {
	const rcvNxt = 10000
	data := make([]byte, 1000)
	c := dsackCases[0]
	var d dsacker
	d.on.Store(true)
	pureACK := func() *stack.PacketBuffer {
		return outPacket(t, c.segment(true, header.TCPFlagAck, 1, rcvNxt, nil, nil))
	}
	d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt-500, 1, nil, data))
	if d.outbound1(pureACK()) != nil {
		t.Fatal("report for a connection the stack never acknowledged on")
	}
	bad := c.segment(false, header.TCPFlagAck, rcvNxt-2000, 1, nil, data)
	bad[len(bad)-1] ^= 1
	d.inbound0(bad)
	if cp := d.outbound1(pureACK()); cp != nil {
		cp.DecRef()
		t.Fatal("report for a corrupted segment")
	}
	d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt-500, 1, nil, data))
	cp := d.outbound1(pureACK())
	if cp == nil {
		t.Fatal("no report for a partial duplicate")
	}
	defer cp.DecRef()
	s, _ := parseTCP(packetBytes(cp))
	o := header.ParseTCPOptions(header.TCP(s.tcp).Options())
	if want := (header.SACKBlock{Start: rcvNxt - 500, End: rcvNxt}); len(o.SACKBlocks) != 1 || o.SACKBlocks[0] != want || o.TS {
		t.Fatalf("report: SACK %v TS %v, want [%v] and no TS", o.SACKBlocks, o.TS, want)
	}
}

// tsOpt is a timestamp option alone (NOP, NOP, TS).
func tsOpt(val, ecr uint32) []byte {
	var b [12]byte
	n := header.EncodeNOP(b[:])
	n += header.EncodeNOP(b[n:])
	header.EncodeTSOption(val, ecr, b[n:])
	return b[:]
}

// TestDSACKEcho: the ACK after a duplicate echoes the duplicate's
// timestamp where it is later than gVisor's echo (RFC 7323 §4.3), with
// DSACK reports on or off; an older one changes nothing.
func TestDSACKEcho(t *testing.T) {
	const rcvNxt = 10000
	data := make([]byte, 1000)
	c := dsackCases[0]
	for _, on := range []bool{true, false} {
		var d dsacker
		d.on.Store(on)
		ack := func() *stack.PacketBuffer {
			return outPacket(t, c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(), nil)) // TSecr 222
		}
		d.outbound1(ack())
		d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt-1000, 1, tsOpt(100, 5), data)) // older than 222
		if cp := d.outbound1(ack()); cp != nil && !on {
			t.Fatalf("reports off: an older duplicate's timestamp replaced the ACK")
		} else if cp != nil {
			cp.DecRef()
		}
		d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt-1000, 1, tsOpt(500, 5), data))
		cp := d.outbound1(ack())
		if cp == nil {
			t.Fatalf("reports %v: no replacement after a duplicate with a later timestamp", on)
		}
		s, ok := parseTCP(packetBytes(cp))
		cp.DecRef()
		if !ok || !s.checksumsValid() {
			t.Fatal("replacement is not a valid TCP packet")
		}
		o := header.ParseTCPOptions(header.TCP(s.tcp).Options())
		if !o.TS || o.TSVal != 111 || o.TSEcr != 500 || (len(o.SACKBlocks) == 1) != on {
			t.Fatalf("reports %v: TS %v %d %d, SACK %v; want TS 111 500 and a DSACK block only with reports", on, o.TS, o.TSVal, o.TSEcr, o.SACKBlocks)
		}
	}
}

// BenchmarkDSACKPerPacket is the link's cost per packet on a connection
// with no duplicates: one inbound data segment and one outbound ACK.
func BenchmarkDSACKPerPacket(b *testing.B) {
	c := dsackCases[0]
	var d dsacker
	d.on.Store(true)
	data := c.segment(false, header.TCPFlagAck, 10000, 1, tsOpt(1, 1), make([]byte, 1448))
	ack := outPacket(b, c.segment(true, header.TCPFlagAck, 1, 10000, tsSACK(), nil))
	d.outbound1(ack)
	b.ReportAllocs()
	for b.Loop() {
		d.inbound0(data)
		if d.outbound1(ack) != nil {
			b.Fatal("report without a duplicate")
		}
	}
}

// TestSYNACKEcho: a SYN-ACK that echoes the SYN's timestamp is delivered
// as it came on a prompt handshake, and with the echo moved forward on
// the SYN's clock after a retransmitted one: to the last SYN, or to 1 ms
// before now when the SYN-ACK came a second or more after the only SYN.
func TestSYNACKEcho(t *testing.T) {
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			var d dsacker
			syn := outPacket(t, c.segment(true, header.TCPFlagSyn, 1, 0, tsOpt(1000, 0), nil))
			synack := c.segment(false, header.TCPFlagSyn|header.TCPFlagAck, 500, 2, tsOpt(7, 1000), nil)
			echo := func(b []byte) uint32 {
				s, ok := parseTCP(b)
				if !ok || !s.checksumsValid() {
					t.Fatalf("not a valid TCP packet: %x", b)
				}
				return header.ParseTCPOptions(header.TCP(s.tcp).Options()).TSEcr
			}
			d.outbound1(syn)
			if got := echo(d.inbound0(synack)); got != 1000 {
				t.Fatalf("prompt handshake: echo %d, want 1000", got)
			}
			f := d.flows[(&tcpSegment{}).keyOf(t, c, syn)]
			f.synAt = f.synAt.Add(-1500 * time.Millisecond) // the SYN-ACK came 1.5 s on
			if got := echo(d.inbound0(synack)); got < 1000+1499 || got > 1000+1600 {
				t.Fatalf("late SYN-ACK to one SYN: echo %d, want about %d", got, 1000+1499)
			}
			d.outbound1(syn) // retransmitted, 1.5 s after the first
			if got := echo(d.inbound0(synack)); got < 1000+1500 || got > 1000+1600 {
				t.Fatalf("SYN-ACK after two SYNs: echo %d, want about %d", got, 1000+1500)
			}
			if other := c.segment(false, header.TCPFlagSyn|header.TCPFlagAck, 500, 2, tsOpt(7, 999), nil); echo(d.inbound0(other)) != 999 {
				t.Fatal("a SYN-ACK echoing another timestamp was changed")
			}
			if n := d.synACKsFixed.Load(); n != 2 {
				t.Fatalf("synACKsFixed %d, want 2", n)
			}
		})
	}
}

// keyOf is the connection key of the packet the stack sends, pkt.
func (*tcpSegment) keyOf(t *testing.T, c dsackCase, pkt *stack.PacketBuffer) dsackKey {
	s, ok := parseTCP(packetBytes(pkt))
	if !ok {
		t.Fatal("not a TCP packet")
	}
	return s.key(true)
}

// inbound0 is inbound for a packet with no link header (MediumIP).
func (d *dsacker) inbound0(b []byte) []byte { return d.inbound(b, 0) }

// TestDSACKEthernet: on MediumEthernet the replacement ACK keeps the
// frame's Ethernet header, and an inbound duplicate is found behind it.
func TestDSACKEthernet(t *testing.T) {
	const rcvNxt = 10000
	c := dsackCases[0]
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00} // dst, src, IPv4
	frame := func(ip []byte) []byte { return append(append([]byte(nil), eth...), ip...) }
	outFrame := func(ip []byte) *stack.PacketBuffer {
		s, _ := parseTCP(ip)
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame(ip))})
		pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = header.IPv4ProtocolNumber, header.TCPProtocolNumber
		pkt.LinkHeader().Consume(len(eth))
		pkt.NetworkHeader().Consume(len(s.net))
		pkt.TransportHeader().Consume(int(header.TCP(s.tcp).DataOffset()))
		t.Cleanup(pkt.DecRef)
		return pkt
	}
	var d dsacker
	d.on.Store(true)
	ack := func() *stack.PacketBuffer {
		return outFrame(c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(), nil))
	}
	d.outbound1(ack())
	d.inbound(frame(c.segment(false, header.TCPFlagAck, rcvNxt-1000, 1, nil, make([]byte, 1000))), len(eth))
	cp := d.outbound1(ack())
	if cp == nil {
		t.Fatal("no report for a duplicate behind an Ethernet header")
	}
	defer cp.DecRef()
	got := packetBytes(cp)
	if !bytes.Equal(got[:len(eth)], eth) || !bytes.Equal(cp.LinkHeader().Slice(), eth) {
		t.Fatalf("replacement's link header %x, want %x", got[:min(len(got), len(eth))], eth)
	}
	s, ok := parseTCP(got[len(eth):])
	if !ok || !s.checksumsValid() {
		t.Fatal("replacement is not a valid TCP packet behind its header")
	}
	if o := header.ParseTCPOptions(header.TCP(s.tcp).Options()); len(o.SACKBlocks) != 1 || o.SACKBlocks[0] != (header.SACKBlock{Start: rcvNxt - 1000, End: rcvNxt}) {
		t.Fatalf("SACK blocks %v", o.SACKBlocks)
	}
}

// outbound1 is outbound for tests of segments it never holds.
func (d *dsacker) outbound1(pkt *stack.PacketBuffer) *stack.PacketBuffer {
	c, _ := d.outbound(pkt)
	return c
}

// stubDispatcher counts the packets a link hands its stack.
type stubDispatcher struct{ n int }

func (d *stubDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {
	d.n++
}

func (*stubDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// TestDSACKGRO: a duplicate that arrives on the receive-offload path (a
// device that wants GSO: its TCP segments are coalesced) is reported in
// the next pure ACK, as on the plain path.
func TestDSACKGRO(t *testing.T) {
	const rcvNxt = 10000
	c := dsackCases[0]
	l := newLinkEP(1500, 16)
	l.dsack.on.Store(true)
	var disp stubDispatcher
	l.Attach(&disp)
	t.Cleanup(l.close)
	l.dsack.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(), nil)))
	var g groPath
	l.deliverGRO(&g, [][]byte{c.segment(false, header.TCPFlagAck, rcvNxt-1000, 1, nil, make([]byte, 1000))})
	if disp.n != 1 {
		t.Fatalf("%d packets delivered; want 1", disp.n)
	}
	cp := l.dsack.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, 1, rcvNxt, tsSACK(), nil)))
	if cp == nil {
		t.Fatal("no DSACK report after a duplicate on the GRO path")
	}
	defer cp.DecRef()
	s, _ := parseTCP(packetBytes(cp))
	o := header.ParseTCPOptions(header.TCP(s.tcp).Options())
	if want := (header.SACKBlock{Start: rcvNxt - 1000, End: rcvNxt}); len(o.SACKBlocks) == 0 || o.SACKBlocks[0] != want {
		t.Fatalf("SACK blocks %v; want first %v", o.SACKBlocks, want)
	}
}
