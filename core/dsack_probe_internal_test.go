package core

import (
	"bytes"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestRecoveryProbe: after an ACK that reports a gap, with nothing new
// acknowledged, the link sends the lowest unacknowledged segment again:
// the same bytes with the stack's newest ACK number and timestamp echo, a
// timestamp no older than the stack's last, both checksums right. ACKs
// release the kept segments; a super-segment is never kept but moves the
// edge. IPv4 and IPv6.
func TestRecoveryProbe(t *testing.T) {
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000) }
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			d, sent := probingDsacker(t, 8)
			for i := range 3 {
				d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, uint32(1000*(i+1)), 5000, tsOpt(100, 7), payload(i))))
			}
			d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, 4000, 6000, tsOpt(101, 8), nil)))
			gap := header.SACKBlock{Start: 3000, End: 4000}
			d.inbound0(c.segment(false, header.TCPFlagAck, 5000, 2000, tsSACK(gap), nil))
			var b []byte
			select {
			case b = <-sent:
			case <-time.After(time.Minute):
				t.Fatal("no probe in a minute")
			}
			s, ok := parseTCP(b)
			if !ok || !s.checksumsValid() {
				t.Fatalf("probe is not a valid TCP packet (parsed %v): %x", ok, b)
			}
			pt := header.TCP(s.tcp)
			o := header.ParseTCPOptions(pt.Options())
			switch {
			case pt.SequenceNumber() != 2000 || !bytes.Equal(pt[pt.DataOffset():], payload(1)):
				t.Fatalf("probe carries seq %d, %d bytes; want seq 2000, the second segment's 1000", pt.SequenceNumber(), s.payload)
			case pt.AckNumber() != 6000 || !o.TS || o.TSEcr != 8 || tsNewer(101, o.TSVal):
				t.Fatalf("probe: ack %d, TS %v %d/%d; want the newest ack 6000, echo 8, a value of 101 or later", pt.AckNumber(), o.TS, o.TSVal, o.TSEcr)
			}
			d.inbound0(c.segment(false, header.TCPFlagAck, 5000, 4000, tsOpt(112, 101), nil))
			gso := outPacket(t, c.segment(true, header.TCPFlagAck, 4000, 6000, tsOpt(102, 8), payload(3)))
			gso.GSOOptions.Type = stack.GSOTCPv4
			d.outbound1(gso)
			d.mu.Lock()
			f := d.flows[dsackKeyOf(c)]
			kept, nxt := d.kept, f.snd.nxt
			d.mu.Unlock()
			if kept != 0 || nxt != 5000 {
				t.Fatalf("after the ACK of all kept and a super-segment: %d kept, nxt %d; want 0 and 5000", kept, nxt)
			}
			d.inbound0(c.segment(false, header.TCPFlagAck, 5000, 5000, tsOpt(113, 102), nil))
			d.mu.Lock()
			una, active := f.snd.una, len(d.active)
			d.mu.Unlock()
			if una != seqnum.Value(5000) || active != 0 {
				t.Fatalf("after the super-segment's ACK: una %d, %d probing; want 5000, 0", una, active)
			}
		})
	}
}

// dsackKeyOf is the key of c's connection.
func dsackKeyOf(c dsackCase) dsackKey {
	var k dsackKey
	copy(k.local[:], c.local.AsSlice())
	copy(k.remote[:], c.remote.AsSlice())
	k.lport, k.rport = 80, 4000
	return k
}

// BenchmarkProbePerSegment is the link's cost for one data segment sent
// and its ACK received, with recovery probes on (the segment kept and
// released) and off.
func BenchmarkProbePerSegment(b *testing.B) {
	c := dsackCases[0]
	for _, on := range []bool{true, false} {
		b.Run(map[bool]string{true: "probes", false: "off"}[on], func(b *testing.B) {
			var d dsacker
			d.probeOn.Store(on)
			b.Cleanup(d.stop)
			payload := make([]byte, 1448)
			seq := uint32(1000)
			b.ReportAllocs()
			for b.Loop() {
				pkt := outPacketNoCleanup(c.segment(true, header.TCPFlagAck, seq, 5000, tsOpt(100, 7), payload))
				d.outbound1(pkt)
				pkt.DecRef()
				seq += uint32(len(payload))
				d.inbound0(c.segment(false, header.TCPFlagAck, 5000, seq, tsOpt(112, 100), nil))
			}
		})
	}
}

// outPacketNoCleanup is outPacket whose reference the caller releases.
func outPacketNoCleanup(b []byte) *stack.PacketBuffer {
	s, _ := parseTCP(b)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = header.IPv4ProtocolNumber, header.TCPProtocolNumber
	pkt.NetworkHeader().Consume(len(s.net))
	pkt.TransportHeader().Consume(int(header.TCP(s.tcp).DataOffset()))
	return pkt
}

// TestRecoveryProbeHoles: when the peer's SACK blocks show more than one
// hole, a probe round resends each hole's kept segment (the lowest
// unacknowledged one and the one between the blocks), not the segments
// the blocks cover: gVisor's RACK cannot tell a lost retransmission of a
// higher hole either, so probing the lowest alone repaired the holes one
// round at a time. IPv4 and IPv6.
func TestRecoveryProbeHoles(t *testing.T) {
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000) }
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			d, sent := probingDsacker(t, 64)
			for i := range 5 { // 1000-2000 ... 5000-6000
				d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, uint32(1000*(i+1)), 5000, tsOpt(100, 7), payload(i))))
			}
			// 1000-2000 arrived; 3000-4000 and 5000-6000 are SACKed:
			// 2000-3000 and 4000-5000 are the holes.
			d.inbound0(c.segment(false, header.TCPFlagAck, 5000, 2000,
				tsSACK(header.SACKBlock{Start: 5000, End: 6000}, header.SACKBlock{Start: 3000, End: 4000}), nil))
			got := map[uint32]bool{}
			for range 2 {
				select {
				case b := <-sent:
					s, ok := parseTCP(b)
					if !ok || !s.checksumsValid() {
						t.Fatalf("probe is not a valid TCP packet (parsed %v): %x", ok, b)
					}
					got[header.TCP(s.tcp).SequenceNumber()] = true
				case <-time.After(time.Minute):
					t.Fatal("no probe in a minute")
				}
			}
			if len(got) != 2 || !got[2000] || !got[4000] {
				t.Fatalf("first two probes carry seqs %v; want 2000 and 4000 (the two holes)", got)
			}
			if n := d.probesSent.Load(); n < 2 {
				t.Fatalf("probesSent %d; want at least 2", n)
			}
		})
	}
}

// TestStallProbe: outside recovery (no gap reported, nothing resent), when
// the stack's data stays unacknowledged and the stack sends nothing for
// stallProbeTimeout, the link sends the lowest unacknowledged segment
// again (counted in stallProbes): gVisor can leave a connection with data
// or a FIN unacknowledged and no timer armed (its pipe counts segments
// its scoreboard takes for lost as not in flight, so none is outstanding
// when recovery ends: docs/gvisor-upstream.md §1), which otherwise waits
// forever. IPv4 and IPv6.
func TestStallProbe(t *testing.T) {
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000) }
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			d, sent := probingDsacker(t, 64)
			for i := range 2 { // 1000-2000, 2000-3000
				d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, uint32(1000*(i+1)), 5000, tsOpt(100, 7), payload(i))))
			}
			d.inbound0(c.segment(false, header.TCPFlagAck, 5000, 2000, tsOpt(112, 100), nil))
			select {
			case b := <-sent:
				s, ok := parseTCP(b)
				if !ok || !s.checksumsValid() {
					t.Fatalf("probe is not a valid TCP packet (parsed %v): %x", ok, b)
				}
				pt := header.TCP(s.tcp)
				if pt.SequenceNumber() != 2000 || !bytes.Equal(pt[pt.DataOffset():], payload(1)) {
					t.Fatalf("probe carries seq %d; want 2000, the unacknowledged segment", pt.SequenceNumber())
				}
			case <-time.After(time.Minute):
				t.Fatal("no probe of the stalled segment in a minute")
			}
			if n := d.stallProbes.Load(); n != 1 {
				t.Fatalf("stallProbes %d; want 1", n)
			}
		})
	}
}

// TestStallProbeTimeout: a stall probe waits four of the link's RTTs (at
// least minStallProbeTimeout) while two or more segments are
// unacknowledged, which no delayed ACK explains, and stallProbeTimeout
// for one segment or before any RTT sample; each further probe of the
// stall waits twice as long. In recovery the recovery probes' wait comes
// first.
func TestStallProbeTimeout(t *testing.T) {
	two, one := make([]probeSeg, 2), make([]probeSeg, 1)
	for _, c := range []struct {
		name string
		ps   probeState
		want time.Duration
	}{
		{"two segments, 1 ms", probeState{srtt: time.Millisecond, segs: two}, minStallProbeTimeout},
		{"two segments, 10 ms", probeState{srtt: 10 * time.Millisecond, segs: two}, 40 * time.Millisecond},
		{"two segments, second probe", probeState{srtt: 10 * time.Millisecond, segs: two, probes: 1}, 80 * time.Millisecond},
		{"one segment", probeState{srtt: time.Millisecond, segs: one}, stallProbeTimeout},
		{"no RTT yet", probeState{segs: two}, stallProbeTimeout},
		{"recovery", probeState{srtt: time.Millisecond, segs: two, recovery: true}, 2 * time.Millisecond},
		{"recovery probes spent", probeState{srtt: time.Millisecond, segs: two, recovery: true, recoveryProbes: true, probes: maxProbesPerStall}, minStallProbeTimeout},
	} {
		if got := c.ps.timeout(); got != c.want {
			t.Errorf("%s: timeout %v; want %v", c.name, got, c.want)
		}
	}
}

// probingDsacker returns a dsacker with recovery probes on whose sent
// packets come out of the channel (room for n), stopped at t's end.
func probingDsacker(t *testing.T, n int) (*dsacker, <-chan []byte) {
	sent := make(chan []byte, n)
	d := new(dsacker)
	d.probeOn.Store(true)
	d.send = func(p *stack.PacketBuffer) { sent <- packetBytes(p) }
	t.Cleanup(d.stop)
	return d, sent
}

// TestProbeForgetsReset: a reset that arrives for a connection with data
// unacknowledged ends what the link keeps of it (its kept segments, its
// place among the connections a probe may be due on), as a reset the
// stack sends does; before, it stayed there, drawing stall probes for
// minutes (a forwarded connection whose client closed with bytes still
// coming ends so), and every timer round walked it. A reset with a bad
// checksum changes nothing. IPv4 and IPv6.
func TestProbeForgetsReset(t *testing.T) {
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := probingDsacker(t, 64)
			d.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, 1000, 5000, tsOpt(100, 7), make([]byte, 1000))))
			state := func() (active, kept, flows int) {
				d.mu.Lock()
				defer d.mu.Unlock()
				return len(d.active), d.kept, len(d.flows)
			}
			if a, k, f := state(); a != 1 || k != 1 || f != 1 {
				t.Fatalf("after a data segment: %d active, %d kept, %d flows; want 1, 1, 1", a, k, f)
			}
			bad := c.segment(false, header.TCPFlagRst, 5000, 0, nil, nil)
			bad[len(bad)-header.TCPMinimumSize+header.TCPChecksumOffset] ^= 0xff
			d.inbound0(bad)
			if a, k, f := state(); a != 1 || k != 1 || f != 1 {
				t.Fatalf("after a corrupt reset: %d active, %d kept, %d flows; want 1, 1, 1", a, k, f)
			}
			d.inbound0(c.segment(false, header.TCPFlagRst, 5000, 0, nil, nil))
			if a, k, f := state(); a != 0 || k != 0 || f != 0 {
				t.Fatalf("after the reset: %d active, %d kept, %d flows; want 0, 0, 0", a, k, f)
			}
		})
	}
}

// TestProbeSeesACKInValidatedSegment: the acknowledgement a peer sends in
// its data, in a super-segment a TUN hands over whole as
// checksum-validated (its TCP checksum partial), reaches the link's probe
// state as one in a checked packet does; before, only the checked path
// saw ACKs, so a peer sending while it received left the stack's bytes
// outstanding to the link, which then probed them.
func TestProbeSeesACKInValidatedSegment(t *testing.T) {
	c := dsackCases[0]
	l := newLinkEP(1500, 16)
	l.dsack.probeOn.Store(true)
	var disp stubDispatcher
	l.Attach(&disp)
	t.Cleanup(l.close)
	for i := range 2 { // 1000-2000, 2000-3000
		l.dsack.outbound1(outPacket(t, c.segment(true, header.TCPFlagAck, uint32(1000*(i+1)), 5000, tsOpt(100, 7), make([]byte, 1000))))
	}
	state := func() (active, kept int) {
		l.dsack.mu.Lock()
		defer l.dsack.mu.Unlock()
		return len(l.dsack.active), l.dsack.kept
	}
	if a, k := state(); a != 1 || k != 2 {
		t.Fatalf("after two data segments: %d active, %d kept; want 1, 2", a, k)
	}
	seg := c.segment(false, header.TCPFlagAck, 5000, 3000, tsOpt(112, 100), make([]byte, 4000))
	header.TCP(seg[header.IPv4MinimumSize:]).SetChecksum(0x1234) // partial, as the kernel leaves it
	var g groPath
	l.deliverGROValidated(&g, [][]byte{seg}, []bool{true})
	if disp.n != 1 {
		t.Fatalf("%d packets delivered; want 1", disp.n)
	}
	if a, k := state(); a != 0 || k != 0 {
		t.Fatalf("after the peer's data acknowledging all: %d active, %d kept; want 0, 0", a, k)
	}
}
