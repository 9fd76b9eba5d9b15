package core

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ctlSegment builds an IPv4 TCP segment from 10.0.0.2:80 to 10.0.0.1:1234
// (an inbound one for the stack at 10.0.0.1) with a right checksum.
func ctlSegment(flags header.TCPFlags, seq, ack uint32, wnd uint16, opts []byte) []byte {
	src := tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
	dst := tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	tcpLen := header.TCPMinimumSize + len(opts)
	b := make([]byte, header.IPv4MinimumSize+tcpLen)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	t := header.TCP(b[header.IPv4MinimumSize:])
	t.Encode(&header.TCPFields{SrcPort: 80, DstPort: 1234, SeqNum: seq, AckNum: ack, DataOffset: uint8(tcpLen), Flags: flags, WindowSize: wnd})
	copy(t[header.TCPMinimumSize:], opts)
	t.SetChecksum(^checksum.Checksum(t, header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))))
	return b
}

// ctlTestFlow is a controlled flow whose SYNs were seen with window
// scales ours and peer's, that sent [1000, 1000+inflight) and measured
// a path of bw bytes/s and rtt.
func ctlTestFlow(ours, peer int, inflight uint32, bw float64, rtt time.Duration) *ctlFlow {
	f := &ctlFlow{ourSYN: true, peerSYN: true, ourWS: ours, peerWS: peer, mss: 1448, known: true,
		una: 1000, nxt: seqnum.Value(1000 + inflight), minRTT: rtt}
	f.bw[0] = bw
	return f
}

// TestWindowControlLower checks the window the link hands gVisor: twice
// the measured path in the peer's scale (rounded up), never above the
// peer's window, never below what is in flight or the floor, the TCP
// checksum right after the change, and the original bytes untouched.
func TestWindowControlLower(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ours, peer  int
		inflight    uint32
		bw          float64
		rtt         time.Duration
		field, want uint16 // the peer's window field, and the one delivered
	}{
		// 50 MB/s × 10 ms × 2 = 1,000,000 bytes; scale 7: 7813 (rounded up).
		{"path", 7, 7, 1000, 50e6, 10 * time.Millisecond, 30000, 7813},
		{"peer's smaller", 7, 7, 1000, 50e6, 10 * time.Millisecond, 5000, 5000},
		// The round trip's floor, 2 ms: 50 MB/s × 2 ms × 2 = 200,000
		// bytes, 1563 in scale 7.
		{"rtt floor", 7, 7, 1000, 50e6, 100 * time.Microsecond, 30000, 1563},
		// The segments' floor: 10 × 1448 bytes, 114 in scale 7.
		{"segments", 7, 7, 1000, 1e3, time.Millisecond, 30000, 114},
		// 600,000 bytes in flight keep the right edge: 4688 in scale 7.
		{"in flight", 7, 7, 600000, 1e6, time.Millisecond, 30000, 4688},
		// No scale on our side: none on either (RFC 7323 §2.2).
		{"unscaled", -1, 7, 1000, 1e6, 10 * time.Millisecond, 65535, 20000},
		// 10 MB/s × 10 ms × 2 = 200,000 bytes: 50000 in scale 2.
		{"scale 2", 2, 2, 1000, 10e6, 10 * time.Millisecond, 65535, 50000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ctlTestFlow(tc.ours, tc.peer, tc.inflight, tc.bw, tc.rtt)
			b := ctlSegment(header.TCPFlagAck, 1, 1000, tc.field, nil)
			orig := append([]byte(nil), b...)
			s, ok := parseTCP(b)
			if !ok {
				t.Fatal("parseTCP failed")
			}
			var w windowCtl
			wnd, ok := f.window(0)
			if !ok {
				t.Fatal("no window")
			}
			w.mu.Lock()
			got := w.lower(b, 0, &s, f, wnd)
			w.mu.Unlock()
			gs, ok := parseTCP(got)
			if !ok {
				t.Fatal("parseTCP of the result failed")
			}
			if w := header.TCP(gs.tcp).WindowSize(); w != tc.want {
				t.Errorf("window field %d; want %d (%d bytes allowed)", w, tc.want, wnd)
			}
			if !gs.checksumsValid() {
				t.Error("checksums of the lowered ACK are wrong")
			}
			if string(b) != string(orig) {
				t.Error("the original packet was changed")
			}
			if lowered := w.clamped.Load(); (lowered == 1) != (tc.want != tc.field) {
				t.Errorf("clamped = %d", lowered)
			}
		})
	}
}

// payloadPkt is a packet of n payload bytes, no headers.
func payloadPkt(n int) *stack.PacketBuffer {
	return stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, n))})
}

// TestWindowControlFlow runs a flow's bookkeeping: the SYNs' window
// scales, records of sent data, the rate and round-trip samples of the
// ACKs, and a retransmitted segment that gives no round-trip sample.
func TestWindowControlFlow(t *testing.T) {
	var w windowCtl
	w.on.Store(true)
	local, remote := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	var k dsackKey
	copy(k.local[:], local.AsSlice())
	copy(k.remote[:], remote.AsSlice())
	k.lport, k.rport = 1234, 80
	syn := header.TCP(make([]byte, header.TCPMinimumSize+4))
	syn.Encode(&header.TCPFields{SeqNum: 999, DataOffset: header.TCPMinimumSize + 4, Flags: header.TCPFlagSyn})
	header.EncodeWSOption(7, syn[header.TCPMinimumSize:])
	syn[header.TCPMinimumSize+3] = header.TCPOptionNOP
	w.sent(k, syn, payloadPkt(0))
	time.Sleep(2 * time.Millisecond) // the handshake's round trip is a sample too
	synack := ctlSegment(header.TCPFlagSyn|header.TCPFlagAck, 0, 1000, 65535, []byte{header.TCPOptionWS, 3, 5, header.TCPOptionNOP})
	s, _ := parseTCP(synack)
	w.received(synack, 0, &s)
	w.mu.Lock()
	f := w.flows[k]
	w.mu.Unlock()
	if f == nil || !f.ourSYN || !f.peerSYN || f.ourWS != 7 || f.peerWS != 5 {
		t.Fatalf("flow after the handshake: %+v", f)
	}
	data := header.TCP(make([]byte, header.TCPMinimumSize))
	for i := range 10 {
		data.Encode(&header.TCPFields{SeqNum: uint32(1000 + 1000*i), DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
		w.sent(k, data, payloadPkt(1000))
	}
	data.Encode(&header.TCPFields{SeqNum: 1000, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
	w.sent(k, data, payloadPkt(1000)) // the first segment again
	time.Sleep(2 * time.Millisecond)
	for _, ack := range []uint32{2000, 11000} {
		a := ctlSegment(header.TCPFlagAck, 1, ack, 65535, nil)
		s, _ := parseTCP(a)
		w.received(a, 0, &s)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if f.n != 0 || f.delivered != 10000 || f.una != 11000 || f.mss != 1000 {
		t.Errorf("records %d, delivered %d, una %d, mss %d; want 0, 10000, 11000, 1000", f.n, f.delivered, f.una, f.mss)
	}
	if f.minRTT < 2*time.Millisecond || f.maxBW() <= 0 {
		t.Errorf("minRTT %v (want ≥ 2ms: the resent segment gives none, the last does), maxBW %v", f.minRTT, f.maxBW())
	}
}

// ctlTestKey is the connection ctlSegment's packets belong to, from the
// stack's side.
func ctlTestKey() dsackKey {
	var k dsackKey
	copy(k.local[:], netip.MustParseAddr("10.0.0.1").AsSlice())
	copy(k.remote[:], netip.MustParseAddr("10.0.0.2").AsSlice())
	k.lport, k.rport = 1234, 80
	return k
}

// TestWindowControlHandshakeRTT checks the first round-trip sample: the
// handshake's, from our SYN to the peer's SYN-ACK (an active open) or
// from our SYN-ACK to the peer's ACK of it (a passive one), and none when
// our SYN was sent twice (Karn: the answer may be to either).
func TestWindowControlHandshakeRTT(t *testing.T) {
	const pause = 3 * time.Millisecond
	for _, tc := range []struct {
		name     string
		active   bool
		synsSent int
		want     bool // a sample of at least pause
		ts       bool // the SYNs carry timestamps, the answer echoes the last
	}{
		{"active", true, 1, true, false},
		{"active, SYN sent twice", true, 2, false, false},
		{"active, SYN sent twice, timestamps", true, 2, true, true},
		{"passive", false, 1, true, false},
		{"passive, SYN-ACK sent twice", false, 2, false, false},
		{"passive, SYN-ACK sent twice, timestamps", false, 2, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w windowCtl
			w.on.Store(true)
			k := ctlTestKey()
			if !tc.active {
				peerSYN := ctlSegment(header.TCPFlagSyn, 0, 0, 65535, nil)
				s, _ := parseTCP(peerSYN)
				w.received(peerSYN, 0, &s)
			}
			flags := header.TCPFlagSyn
			if !tc.active {
				flags |= header.TCPFlagAck
			}
			for i := range tc.synsSent {
				syn := header.TCP(make([]byte, header.TCPMinimumSize+len(tsOption(0))))
				syn.Encode(&header.TCPFields{SeqNum: 999, AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: flags})
				if tc.ts {
					syn.Encode(&header.TCPFields{SeqNum: 999, AckNum: 1, DataOffset: uint8(len(syn)), Flags: flags})
					copy(syn[header.TCPMinimumSize:], tsOption(uint32(100+i)))
				}
				w.sent(k, syn, payloadPkt(0))
			}
			time.Sleep(pause)
			var opts []byte
			if tc.ts {
				opts = tsOption(0)
				binary.BigEndian.PutUint32(opts[8:], uint32(100+tc.synsSent-1)) // TSecr: the last SYN
			}
			answer := ctlSegment(header.TCPFlagSyn|header.TCPFlagAck, 0, 1000, 65535, opts)
			if !tc.active {
				answer = ctlSegment(header.TCPFlagAck, 1, 1000, 65535, opts)
			}
			s, _ := parseTCP(answer)
			w.received(answer, 0, &s)
			w.mu.Lock()
			defer w.mu.Unlock()
			f := w.flows[k]
			if f == nil || !f.ourSYN || !f.peerSYN {
				t.Fatalf("flow after the handshake: %+v", f)
			}
			if got := f.minRTT >= pause && f.srtt == f.minRTT; got != tc.want {
				t.Errorf("minRTT %v, srtt %v; want a sample of at least %v: %v", f.minRTT, f.srtt, pause, tc.want)
			}
			if !tc.want && f.minRTT != 0 {
				t.Errorf("minRTT %v; want none", f.minRTT)
			}
		})
	}
}

// tsOption is a TCP timestamp option (two NOPs first) with TSval val and
// TSecr 0.
func tsOption(val uint32) []byte {
	o := []byte{header.TCPOptionNOP, header.TCPOptionNOP, header.TCPOptionTS, header.TCPOptionTSLength, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(o[4:], val)
	return o
}

// TestWindowControlBounded checks that a flow keeps at most
// maxCtlRecords records and the link at most maxCtlFlows flows.
func TestWindowControlBounded(t *testing.T) {
	f := &ctlFlow{ourWS: -1, peerWS: -1}
	now := time.Now()
	for i := range 3 * maxCtlRecords {
		f.noteSent(seqnum.Value(i*100), seqnum.Value(i*100+100), now)
	}
	if f.n != maxCtlRecords || len(f.recs) > maxCtlRecords {
		t.Errorf("records %d (ring %d); want at most %d", f.n, len(f.recs), maxCtlRecords)
	}
	var w windowCtl
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range 2 * maxCtlFlows {
		w.flowLocked(dsackKey{lport: uint16(i)}, true)
	}
	if len(w.flows) > maxCtlFlows {
		t.Errorf("flows %d; want at most %d", len(w.flows), maxCtlFlows)
	}
}

// TestChecksumReplace compares the incremental checksum update with a
// full computation.
func TestChecksumReplace(t *testing.T) {
	b := []byte{0x45, 0x00, 0x12, 0x34, 0xff, 0xff, 0x00, 0x01, 0xab, 0xcd}
	sum := ^checksum.Checksum(b, 0)
	for _, nw := range []uint16{0, 1, 0xffff, 0x8000, 0x1234} {
		c := append([]byte(nil), b...)
		old := uint16(c[4])<<8 | uint16(c[5])
		c[4], c[5] = byte(nw>>8), byte(nw)
		if got, want := checksumReplace(sum, old, nw), ^checksum.Checksum(c, 0); got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
			t.Errorf("new word %#x: %#x; want %#x", nw, got, want)
		}
	}
}

// TestHideSACK checks the ACK the loss repair hands gVisor: the SACK
// blocks above the acknowledgement gone, a DSACK report kept (and one
// added in front when asked), the window field set, the timestamps and
// checksums right, the original untouched.
func TestHideSACK(t *testing.T) {
	var ob [header.TCPOptionsMaximumSize]byte
	n := header.EncodeNOP(ob[:])
	n += header.EncodeNOP(ob[n:])
	n += header.EncodeTSOption(7, 9, ob[n:])
	n += header.EncodeNOP(ob[n:])
	n += header.EncodeNOP(ob[n:])
	n += header.EncodeSACKBlocks([]header.SACKBlock{{Start: 500, End: 600}, {Start: 2000, End: 3000}}, ob[n:])
	b := ctlSegment(header.TCPFlagAck, 1, 1000, 30000, ob[:n])
	orig := append([]byte(nil), b...)
	s, _ := parseTCP(b)
	for _, tc := range []struct {
		name string
		dup  *header.SACKBlock
		want []header.SACKBlock
	}{
		{"strip", nil, []header.SACKBlock{{Start: 500, End: 600}}},
		{"dsack", &header.SACKBlock{Start: 800, End: 900}, []header.SACKBlock{{Start: 800, End: 900}, {Start: 500, End: 600}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hideSACK(b, 0, &s, 1000, 1234, tc.dup)
			cs, ok := parseTCP(c)
			if !ok || !cs.checksumsValid() {
				t.Fatal("the copy does not parse or its checksums are wrong")
			}
			ct := header.TCP(cs.tcp)
			o := header.ParseTCPOptions(ct.Options())
			if ct.WindowSize() != 1234 || ct.AckNumber() != 1000 || !o.TS || o.TSVal != 7 || o.TSEcr != 9 {
				t.Errorf("window %d ack %d ts %v %d/%d", ct.WindowSize(), ct.AckNumber(), o.TS, o.TSVal, o.TSEcr)
			}
			if fmt.Sprint(o.SACKBlocks) != fmt.Sprint(tc.want) {
				t.Errorf("SACK blocks %v; want %v", o.SACKBlocks, tc.want)
			}
		})
	}
	if string(b) != string(orig) {
		t.Error("the original packet was changed")
	}
}

// TestRepairLost checks RACK's rule on the link's scoreboard: a segment
// is lost once a segment sent after it is SACKed and a round trip and the
// reordering window have passed; a hole the link does not hold, or one
// repaired repairMaxTries times, passes to gVisor.
func TestRepairLost(t *testing.T) {
	t0 := time.Now()
	var r repairState
	for i := range 5 {
		r.keep(payloadPkt(100), seqnum.Value(1000+100*i), seqnum.Value(1100+100*i), seqnum.Value(1000+100*i), t0.Add(time.Duration(i)*time.Millisecond), false)
	}
	defer r.drop()
	high, any, newly, _ := r.mark([]header.SACKBlock{{Start: 1300, End: 1500}}, 1000)
	if !any || high != 1500 || newly != 200 {
		t.Fatalf("mark: high %d any %v newly %d", high, any, newly)
	}
	if lost, pass := r.lost(1000, high, t0.Add(5*time.Millisecond), 10*time.Millisecond, time.Millisecond, 30*time.Millisecond); len(lost) != 0 || pass {
		t.Errorf("before a round trip: lost %v pass %v; want none", lost, pass)
	}
	lost, pass := r.lost(1000, high, t0.Add(20*time.Millisecond), 10*time.Millisecond, time.Millisecond, 30*time.Millisecond)
	if fmt.Sprint(lost) != "[0 1 2]" || pass {
		t.Errorf("after a round trip: lost %v pass %v; want [0 1 2] (1300-1500 SACKed), false", lost, pass)
	}
	r.segs[0].tries = repairMaxTries
	if _, pass := r.lost(1000, high, t0.Add(20*time.Millisecond), 10*time.Millisecond, time.Millisecond, 30*time.Millisecond); !pass {
		t.Error("a segment repaired repairMaxTries times does not pass")
	}
	r.segs[0].tries = 0
	if _, pass := r.lost(900, high, t0.Add(20*time.Millisecond), 10*time.Millisecond, time.Millisecond, 30*time.Millisecond); !pass {
		t.Error("a hole below the kept segments does not pass")
	}
	if got := r.sackedBytes(); got != 200 {
		t.Errorf("sackedBytes %d; want 200", got)
	}
	r.keep(payloadPkt(100), 1400, 1500, 1500, t0, false) // 1400-1500 sent again
	r.release(1400)                                      // 1300-1400 acknowledged
	if got := r.sackedBytes(); got != 0 {
		t.Errorf("sackedBytes %d after a resend and a release; want 0", got)
	}
}

// TestRepairBounded checks that a connection keeps at most
// maxRepairBytes of payload, and that a retransmission of the stack's
// highest segment is taken for a tail-loss probe.
func TestRepairBounded(t *testing.T) {
	var r repairState
	defer r.drop()
	now := time.Now()
	const seg = 1400
	for i := range maxRepairBytes/seg + 100 {
		r.keep(payloadPkt(seg), seqnum.Value(i*seg), seqnum.Value(i*seg+seg), seqnum.Value(i*seg), now, false)
	}
	if r.bytes > maxRepairBytes || len(r.segs) != maxRepairBytes/seg {
		t.Errorf("kept %d bytes in %d segments; want at most %d", r.bytes, len(r.segs), maxRepairBytes)
	}
	nxt := seqnum.Value((maxRepairBytes/seg + 100) * seg)
	r.keep(payloadPkt(seg), nxt-seg, nxt, nxt, now, false)
	if !r.spurious || r.spurStart != nxt-seg || r.spurEnd != nxt {
		t.Errorf("the highest segment sent again: spurious %v %d-%d", r.spurious, r.spurStart, r.spurEnd)
	}
}

// repairTestFlow runs an active open on w (repair on) whose SYNs permit
// SACK when sack is set, with a handshake of at least 3 ms, and sends one
// data segment of 1000 bytes: a flow the repair acts on.
func repairTestFlow(t *testing.T, w *windowCtl, sack bool) dsackKey {
	t.Helper()
	w.on.Store(true)
	w.repairOn.Store(true)
	k := ctlTestKey()
	var opts []byte
	if sack {
		opts = []byte{header.TCPOptionSACKPermitted, 2, header.TCPOptionNOP, header.TCPOptionNOP}
	}
	syn := header.TCP(make([]byte, header.TCPMinimumSize+len(opts)))
	syn.Encode(&header.TCPFields{SeqNum: 999, DataOffset: uint8(len(syn)), Flags: header.TCPFlagSyn})
	copy(syn[header.TCPMinimumSize:], opts)
	w.sent(k, syn, payloadPkt(0))
	time.Sleep(3 * time.Millisecond)
	synack := ctlSegment(header.TCPFlagSyn|header.TCPFlagAck, 0, 1000, 65535, opts)
	s, _ := parseTCP(synack)
	w.received(synack, 0, &s)
	data := header.TCP(make([]byte, header.TCPMinimumSize))
	data.Encode(&header.TCPFields{SeqNum: 1000, AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
	w.sent(k, data, payloadPkt(1000))
	return k
}

// TestLossRepairDropsCopies checks that the link hands gVisor no copy of
// the pure ACK before it (the peer's link sends each twice) on a
// connection with SACK, and every ACK without SACK (where a copy is a
// duplicate ACK that counts).
func TestLossRepairDropsCopies(t *testing.T) {
	for _, sack := range []bool{true, false} {
		t.Run(fmt.Sprintf("sack=%v", sack), func(t *testing.T) {
			var w windowCtl
			defer w.stop()
			repairTestFlow(t, &w, sack)
			var delivered []bool
			for _, wnd := range []uint16{30000, 30000, 30001, 30001} {
				a := ctlSegment(header.TCPFlagAck, 1, 1000, wnd, nil)
				s, _ := parseTCP(a)
				delivered = append(delivered, w.received(a, 0, &s) != nil)
			}
			want := "[true false true false]"
			if !sack {
				want = "[true true true true]"
			}
			if got := fmt.Sprint(delivered); got != want {
				t.Errorf("ACKs handed over %s; want %s", got, want)
			}
			if got, want := w.dupsDropped.Load(), map[bool]uint64{true: 2}[sack]; got != want {
				t.Errorf("dupsDropped %d; want %d", got, want)
			}
		})
	}
}

// TestLossRepairThinsACKs checks that while a hole is open the link hands
// gVisor a hidden ACK only once the window's right edge has moved
// repairThinSegs segments past the last one handed over, and any ACK
// that moves the cumulative acknowledgement.
func TestLossRepairThinsACKs(t *testing.T) {
	var w windowCtl
	defer w.stop()
	k := repairTestFlow(t, &w, true)
	data := header.TCP(make([]byte, header.TCPMinimumSize))
	for i := 1; i < 12; i++ {
		data.Encode(&header.TCPFields{SeqNum: uint32(1000 + 1000*i), AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
		w.sent(k, data, payloadPkt(1000))
	}
	ackWith := func(ack, sackEnd uint32, wnd uint16, dsack ...header.SACKBlock) bool {
		var ob [header.TCPOptionsMaximumSize]byte
		n := header.EncodeNOP(ob[:])
		n += header.EncodeNOP(ob[n:])
		n += header.EncodeSACKBlocks(append(dsack, header.SACKBlock{Start: 2000, End: seqnum.Value(sackEnd)}), ob[n:])
		a := ctlSegment(header.TCPFlagAck, 1, ack, wnd, ob[:n])
		s, _ := parseTCP(a)
		return w.received(a, 0, &s) != nil
	}
	time.Sleep(3 * time.Millisecond) // the SACKs' round trip keeps the repair on
	var handed []bool
	for i := range 9 { // 1000 is missing; 2000-3000 SACKed, then one more each
		handed = append(handed, ackWith(1000, uint32(3000+1000*i), uint16(30000+1000*i)))
	}
	// A DSACK report (the first block within the second) is handed over
	// whatever the edge.
	handed = append(handed, ackWith(1000, 11000, 39000, header.SACKBlock{Start: 2000, End: 3000}))
	handed = append(handed, ackWith(2000, 12000, 40000)) // the hole filled
	if got, want := fmt.Sprint(handed), "[true false false false true false false false true true true]"; got != want {
		t.Errorf("ACKs handed over %s; want %s", got, want)
	}
	if got := w.thinned.Load(); got != 6 {
		t.Errorf("thinned %d; want 6", got)
	}
}
