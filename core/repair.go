package core

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// windowCtl is the link's window control (Config.WindowControl): a
// congestion controller of the link's own for the TCP connections its
// stack sends on, which limits gVisor's data in flight through the one
// input gVisor's sender takes from outside, the peer's advertised window.
//
// gVisor's Reno leaves slow start only on a loss: on a path with a rate
// limit and a deep queue its window doubles far past the path and the
// queue, one flight loses hundreds of segments, its recovery ends in a
// retransmission timeout, and it restarts with a slow-start threshold of a
// few hundred segments and grows one segment per round trip
// (docs/gvisor-upstream.md §4; 5 ms each way at 500 Mbit/s: cwnd 5,264 at
// 0.2 s, 126 queue drops, a timeout, ssthresh 203, then about 80 segments
// a second). So the link measures each connection's path as BBR does: the
// delivery rate of every cumulative ACK (bytes newly acknowledged over the
// longer of their send and ACK intervals), its maximum over the last
// ctlBWRounds round trips, and the minimum round trip of its own send and
// ACK times over ctlMinRTTWindow; and it lowers the window of the ACKs it
// hands gVisor to ctlGainNum/ctlGainDen of that bandwidth-delay product
// (with a round trip of at least ctlRTTFloor, and at least ctlMinSegs
// segments). The window it hands gVisor is never above the
// peer's own, never zero, and never below what is in flight (the right
// edge never falls below the highest byte sent); the bytes the ACK's SACK
// blocks report are added to it, as they are no longer in flight. It is
// encoded with the window scale the peer's SYN gave (both SYNs must be seen, or the
// link leaves the connection alone).
//
// gVisor's window is then the smaller of its Reno window and the link's:
// the link can only hold gVisor back, never push it past Reno, so a loss
// still halves the window as before (it is no less safe than Reno on any
// bottleneck). When the minimum round trip has stood for ctlMinRTTWindow
// the link drains the path for ctlProbeRTTTime (a window of
// ctlProbeRTTSegs segments), as BBR's ProbeRTT, so that a queue the
// window itself keeps standing is not taken for the path's delay.
//
// It needs wire-sized or GSO segments whose TCP checksums are right; an
// ACK whose checksum fails is neither measured nor changed.
type windowCtl struct {
	on atomic.Bool

	mu sync.Mutex
	// +checklocks:mu
	flows map[dsackKey]*ctlFlow

	clamped   atomic.Uint64 // ACKs whose window the link lowered
	probeRTTs atomic.Uint64 // ProbeRTT periods entered

	// repairOn turns on the loss repair (repair_hide.go); send hands a
	// repair to the link, with mu not held. timer is the repair timer;
	// closed is set by stop.
	repairOn atomic.Bool
	send     func(*stack.PacketBuffer)
	timer    dueTimer      // +checklocks:mu
	closed   bool          // +checklocks:mu
	repaired atomic.Uint64 // segments the link sent again
	hidden   atomic.Uint64 // ACKs handed over without their SACK blocks
	passed   atomic.Uint64 // losses left to gVisor
	dsacks   atomic.Uint64 // tail-loss probes reported as duplicates
	// dupsDropped counts pure ACKs not handed over: copies of the one
	// before (the peer's link repeats each, Config.SingleACKs).
	dupsDropped atomic.Uint64
	thinned     atomic.Uint64 // hidden ACKs not handed over (see thin)
}

const (
	// maxCtlFlows bounds the connections the link controls; past it one
	// is forgotten at random (it then runs on Reno alone).
	maxCtlFlows = 4096
	// maxCtlRecords bounds the send records kept per connection (one per
	// segment or super-segment sent, until acknowledged); past it
	// segments are sent unrecorded and give no sample.
	maxCtlRecords = 4096
	// ctlMinRTTWindow is how long a minimum round trip stands (BBR's).
	ctlMinRTTWindow = 10 * time.Second
	// ctlProbeRTTTime is how long the link drains the path to measure its
	// round trip anew, with a window of ctlProbeRTTSegs segments.
	ctlProbeRTTTime = 200 * time.Millisecond
	ctlProbeRTTSegs = 4
	// ctlBWRounds is how many round trips the bandwidth maximum spans.
	ctlBWRounds = 10
	// ctlGainNum/ctlGainDen is the window's gain over the estimated
	// bandwidth-delay product (BBR's cwnd gain, 2): without pacing the
	// window alone lets the delivery rate grow, and it is no larger in
	// startup, because a larger one (BBR's 2.89) overfills a queue as deep
	// as the path.
	ctlGainNum, ctlGainDen = 2, 1
	// ctlRTTFloor is the least round trip the window is sized by: on a
	// path of well under a millisecond (in memory, on one machine) the
	// product is a few segments, and a goroutine that waits for a CPU
	// would then starve the sender. At 500 Mbit/s it is 250 KB.
	ctlRTTFloor = 2 * time.Millisecond
	// ctlMinSegs is the least window, in segments (gVisor's initial
	// window).
	ctlMinSegs = 10
	// ctlFullRounds is how many rounds without growth of the bandwidth
	// by a quarter tell the pipe is full (BBR's).
	ctlFullRounds = 3
	// ctlDefaultMSS is the segment size assumed until one is seen.
	ctlDefaultMSS = 1460
)

// ctlRecord is one segment (or super-segment) of new data sent: what
// BBR's rate sample keeps per packet.
type ctlRecord struct {
	end                 seqnum.Value
	sentAt, deliveredAt time.Time // when sent; the flow's deliveredAt then
	firstSentAt         time.Time // the flow's firstSentAt then
	delivered           uint64    // the flow's delivered bytes then
	resent              bool      // some of its bytes were sent again
}

// ctlFlow is what the link knows of one connection's send side.
type ctlFlow struct {
	ourSYN, peerSYN bool // the SYN of each side was seen
	ourWS, peerWS   int  // their window scale option (-1: none)
	ourSACK         bool // SACK permitted, by our SYN
	peerSACK        bool // and by the peer's
	iss, peerISS    seqnum.Value
	synAt           time.Time // our SYN's send time, until acknowledged (zero if sent again)
	synOpen         bool      // our SYN is not acknowledged yet
	synTS           [6]synSend
	synN            int // of synTS, the SYN's transmissions that carried a timestamp

	known    bool // una and nxt are set
	una, nxt seqnum.Value
	mss      int // the largest wire-sized payload sent (0: none yet)

	recs       []ctlRecord // ring of unacknowledged records
	head, n    int
	delivered  uint64    // bytes cumulatively acknowledged
	deliverdAt time.Time // when delivered last grew
	firstSent  time.Time // send time of the last record acknowledged

	minRTT   time.Duration
	minRTTAt time.Time
	srtt     time.Duration        // smoothed (RFC 6298's gain of 1/8)
	bw       [ctlBWRounds]float64 // the maximum delivery rate of each recent round, bytes/s
	round    uint64
	roundEnd seqnum.Value

	probeRTT      bool
	probeRTTUntil time.Time

	// fullBW is the bandwidth the pipe was last seen to grow to, and
	// fullRounds the rounds since, without growth by a quarter; past
	// ctlFullRounds the pipe is full (BBR's startup exit).
	fullBW     float64
	fullRounds int

	rep *repairState // the loss repair, if on
}

// flowLocked returns k's flow, making it (forgetting another at random
// past maxCtlFlows) when make is set.
//
// +checklocks:w.mu
func (w *windowCtl) flowLocked(k dsackKey, mk bool) *ctlFlow {
	if f := w.flows[k]; f != nil || !mk {
		return f
	}
	if w.flows == nil {
		w.flows = make(map[dsackKey]*ctlFlow)
	}
	if len(w.flows) >= maxCtlFlows {
		for old := range w.flows {
			w.forgetLocked(old)
			break
		}
	}
	f := &ctlFlow{ourWS: -1, peerWS: -1}
	w.flows[k] = f
	return f
}

// sent notes pkt, a TCP segment (header t) the stack sends on k.
func (w *windowCtl) sent(k dsackKey, t header.TCP, pkt *stack.PacketBuffer) {
	if !w.on.Load() {
		return
	}
	payload, gso := pkt.Data().Size(), pkt.GSOOptions.Type != stack.GSONone
	flags := t.Flags()
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case flags&header.TCPFlagRst != 0:
		w.forgetLocked(k)
		return
	case flags&header.TCPFlagSyn != 0:
		seq := seqnum.Value(t.SequenceNumber())
		if f := w.flows[k]; flags&header.TCPFlagAck == 0 && (f == nil || !f.ourSYN || f.iss != seq) {
			w.forgetLocked(k) // an active open: a new connection (not its SYN again)
		}
		f := w.flowLocked(k, true)
		f.noteSYN(t, seq, now)
		o := header.ParseSynOptions(t.Options(), flags&header.TCPFlagAck != 0)
		f.ourWS, f.ourSACK = o.WS, o.SACKPermitted
		return
	}
	f := w.flowLocked(k, false)
	if f == nil {
		return
	}
	if f.rep == nil && w.repairOn.Load() {
		f.rep = &repairState{}
	}
	if f.rep != nil {
		f.rep.noteHeader(t, now)
	}
	if payload == 0 && flags&header.TCPFlagFin == 0 {
		return
	}
	seq := seqnum.Value(t.SequenceNumber())
	end := seq.Add(seqnum.Size(payload))
	if flags&header.TCPFlagFin != 0 {
		end++
	}
	nxt := f.nxt
	if !f.known {
		nxt = seq
	}
	f.noteSent(seq, end, now)
	if !gso && payload > f.mss {
		f.mss = payload
	}
	if f.rep != nil && payload > 0 {
		f.rep.keep(pkt, seq, seq.Add(seqnum.Size(payload)), nxt, now, gso)
	}
}

// noteSYN notes our SYN (or SYN-ACK) t, of sequence number seq, sent at
// now: the first one starts the handshake's round trip. One sent again
// (the same seq: the link's copy, Config.SYNRetry, or gVisor's timer)
// leaves the handshake without a sample (Karn) unless the SYNs carry
// timestamps: then each copy's TSval and send time are kept, and the
// answer's TSecr tells which one it answers.
func (f *ctlFlow) noteSYN(t header.TCP, seq seqnum.Value, now time.Time) {
	if f.ourSYN && f.iss == seq {
		f.synAt = time.Time{}
	} else {
		f.iss, f.synAt, f.synN = seq, now, 0
		f.synOpen = true
	}
	f.ourSYN = true
	if o := header.ParseSynOptions(t.Options(), t.Flags()&header.TCPFlagAck != 0); o.TS && f.synN < len(f.synTS) {
		f.synTS[f.synN] = synSend{val: o.TSVal, at: now}
		f.synN++
	}
}

// synSend is one transmission of our SYN: its TSval and send time.
type synSend struct {
	val uint32
	at  time.Time
}

// synAcked takes the handshake's round trip as the first round-trip
// sample when t, a segment from the peer at now, is the first to
// acknowledge our SYN: from the SYN sent once, or from the copy whose
// TSval t's TSecr echoes. On a path with delay the loss repair then acts
// from the first flight on (a loss there that reached gVisor would end
// its slow start at a few segments).
func (f *ctlFlow) synAcked(t header.TCP, now time.Time, w *windowCtl) {
	if !f.synOpen || t.Flags()&header.TCPFlagAck == 0 || seqnum.Value(t.AckNumber()) != f.iss.Add(1) {
		return
	}
	f.synOpen = false
	at := f.synAt
	if f.synN > 1 {
		at = time.Time{}
		if o := header.ParseTCPOptions(t.Options()); o.TS {
			for _, c := range f.synTS[:f.synN] {
				if c.val == o.TSEcr && c.at.After(at) {
					at = c.at // (copies within a tick: the latest)
				}
			}
		}
	}
	f.synAt = time.Time{}
	if !at.IsZero() {
		f.sampleRTT(now.Sub(at), now, w)
	}
}

// forgetLocked drops k's flow and what it keeps.
//
// +checklocks:w.mu
func (w *windowCtl) forgetLocked(k dsackKey) {
	if f := w.flows[k]; f != nil && f.rep != nil {
		f.rep.drop()
	}
	delete(w.flows, k)
}

// noteSent notes the bytes [seq, end) sent at now.
func (f *ctlFlow) noteSent(seq, end seqnum.Value, now time.Time) {
	if !f.known {
		f.una, f.nxt, f.known = seq, seq, true
	}
	if seq.LessThan(f.nxt) {
		f.markResent(seq, end)
		if f.nxt.LessThan(end) {
			f.nxt = end
		}
		return
	}
	if f.una == f.nxt {
		f.firstSent, f.deliverdAt = now, now // nothing in flight: a new flight
	}
	f.nxt = end
	if f.n == maxCtlRecords {
		return
	}
	if f.n == len(f.recs) {
		f.grow()
	}
	f.recs[(f.head+f.n)%len(f.recs)] = ctlRecord{end: end, sentAt: now, deliveredAt: f.deliverdAt, firstSentAt: f.firstSent, delivered: f.delivered}
	f.n++
}

// grow doubles the record ring.
func (f *ctlFlow) grow() {
	nr := make([]ctlRecord, max(2*len(f.recs), 64))
	for i := 0; i < f.n; i++ {
		nr[i] = f.recs[(f.head+i)%len(f.recs)]
	}
	f.recs, f.head = nr, 0
}

// markResent marks the records whose bytes [seq, end) overlap: their
// round trip would span the loss (Karn).
func (f *ctlFlow) markResent(seq, end seqnum.Value) {
	start := f.una
	for i := 0; i < f.n; i++ {
		r := &f.recs[(f.head+i)%len(f.recs)]
		if seq.LessThan(r.end) && start.LessThan(end) {
			r.resent = true
		}
		if end.LessThanEq(r.end) {
			return
		}
		start = r.end
	}
}

// received notes a TCP segment s that arrives for the stack and returns
// the packet to deliver: b, a copy whose window the link lowered, or nil
// (none: a copy of the pure ACK before it, see repairState.again). The IP
// packet starts at b[off:].
func (w *windowCtl) received(b []byte, off int, s *tcpSegment) []byte {
	if !w.on.Load() {
		return b
	}
	w.mu.Lock()
	b, repairs := w.receivedLocked(b, off, s, time.Now())
	send := w.send
	w.mu.Unlock()
	for _, p := range repairs {
		if send != nil {
			send(p)
		}
		p.DecRef()
	}
	return b
}

// receivedLocked is received; it returns the repairs to send too.
//
// +checklocks:w.mu
func (w *windowCtl) receivedLocked(b []byte, off int, s *tcpSegment, now time.Time) ([]byte, []*stack.PacketBuffer) {
	t := header.TCP(s.tcp)
	flags := t.Flags()
	k := s.key(false)
	switch {
	case flags&header.TCPFlagRst != 0:
		w.forgetLocked(k)
		return b, nil
	case flags&header.TCPFlagSyn != 0:
		seq := seqnum.Value(t.SequenceNumber())
		if f := w.flows[k]; flags&header.TCPFlagAck == 0 && (f == nil || !f.peerSYN || f.peerISS != seq) {
			w.forgetLocked(k) // a passive open (not the peer's SYN again)
		}
		f := w.flowLocked(k, true)
		o := header.ParseSynOptions(t.Options(), flags&header.TCPFlagAck != 0)
		f.peerSYN, f.peerISS, f.peerWS, f.peerSACK = true, seq, o.WS, o.SACKPermitted
		f.synAcked(t, now, w)
		return b, nil
	case flags&header.TCPFlagAck == 0:
		return b, nil
	}
	f := w.flowLocked(k, false)
	if f != nil {
		f.synAcked(t, now, w)
	}
	if f == nil || !f.known || !f.ourSYN || !f.peerSYN || !s.checksumsValid() {
		return b, nil
	}
	ack := seqnum.Value(t.AckNumber())
	repair := f.rep != nil && flags == header.TCPFlagAck && s.payload == 0
	if repair && f.ourSACK && f.peerSACK && f.rep.again(s.tcp[:t.DataOffset()]) {
		w.dupsDropped.Add(1)
		return nil, nil
	}
	var sb sackSeen
	var sackedBelow uint64
	if repair && !ack.LessThan(f.una) && ack.LessThanEq(f.nxt) {
		// SACKed bytes are delivered (BBR's rate counts them): once
		// here, and not again when the cumulative ACK covers them.
		sb.blocks = header.ParseTCPOptions(t.Options()).SACKBlocks
		var newly uint64
		var sentAt time.Time
		sb.high, sb.any, newly, sentAt = f.rep.mark(sb.blocks, ack)
		if newly > 0 {
			f.delivered, f.deliverdAt = f.delivered+newly, now
		}
		if !sentAt.IsZero() {
			f.sampleRTT(now.Sub(sentAt), now, w) // delivered now, SACKed
		}
		sackedBelow = f.rep.sackedBelow(ack)
	}
	if f.una.LessThan(ack) && ack.LessThanEq(f.nxt) {
		f.acked(ack, now, w, sackedBelow)
	}
	if f.una != ack {
		return b, nil // an old ACK: left alone
	}
	if f.rep != nil && !repair {
		f.rep.release(ack)
	}
	if repair {
		return w.repairLocked(b, off, s, f, ack, now, sb)
	}
	wnd, ok := f.window(sackedAbove(t, ack))
	if !ok {
		return b, nil
	}
	return w.lower(b, off, s, f, wnd), nil
}

// sackedAbove is the bytes t's SACK blocks report above ack: delivered,
// so no longer in flight (gVisor's sender counts them out of its pipe,
// and the link lets its window grow by them).
func sackedAbove(t header.TCP, ack seqnum.Value) uint64 {
	var n uint64
	for _, b := range header.ParseTCPOptions(t.Options()).SACKBlocks {
		if ack.LessThan(b.Start) && b.Start.LessThan(b.End) && ack.Size(b.End) <= maxDSACKDistance {
			n += uint64(b.Start.Size(b.End))
		}
	}
	return n
}

// acked takes the cumulative ACK ack, above una, at now (sacked of its
// bytes were counted delivered when SACKed): the rate and round-trip
// samples of the newest record it covers, and the round count.
func (f *ctlFlow) acked(ack seqnum.Value, now time.Time, w *windowCtl, sacked uint64) {
	f.delivered += uint64(f.una.Size(ack)) - min(sacked, uint64(f.una.Size(ack)))
	f.una, f.deliverdAt = ack, now
	var last *ctlRecord
	for f.n > 0 && f.recs[f.head].end.LessThanEq(ack) {
		last = &f.recs[f.head]
		f.head = (f.head + 1) % len(f.recs)
		f.n--
	}
	if f.round == 0 || f.roundEnd.LessThanEq(ack) {
		f.round++
		f.roundEnd = f.nxt
		f.notePipe()
		if f.rep == nil || !f.rep.test.on {
			f.bw[f.round%ctlBWRounds] = 0
		} // (the loss repair's test, at gain 1, does not age the maximum)
	}
	if last == nil {
		return
	}
	r := *last
	f.firstSent = r.sentAt
	if !r.resent && sacked == 0 {
		// (Bytes SACKed before were delivered then, and sampled.)
		f.sampleRTT(now.Sub(r.sentAt), now, w)
	}
	interval := max(r.sentAt.Sub(r.firstSentAt), now.Sub(r.deliveredAt))
	if interval <= 0 || interval < f.minRTT {
		return // too short to measure a rate by (BBR's rule)
	}
	rate := float64(f.delivered-r.delivered) / interval.Seconds()
	if i := f.round % ctlBWRounds; rate > f.bw[i] {
		f.bw[i] = rate
	}
}

// notePipe notes a new round: whether the maximum bandwidth grew by a
// quarter since the last growth.
func (f *ctlFlow) notePipe() {
	if bw := f.maxBW(); bw >= f.fullBW*5/4 {
		f.fullBW, f.fullRounds = bw, 0
	} else {
		f.fullRounds++
	}
}

// pipeFull reports whether the bandwidth stopped growing (BBR's full
// pipe: ctlFullRounds rounds without growth by a quarter).
func (f *ctlFlow) pipeFull() bool {
	return f.fullRounds >= ctlFullRounds
}

// roundSegs is the segments the path holds: the estimated
// bandwidth-delay product (with the round trip of at least ctlRTTFloor)
// over the segment size.
func (f *ctlFlow) roundSegs() int {
	return int(f.maxBW() * max(f.minRTT, ctlRTTFloor).Seconds() / float64(f.segSize()))
}

// sampleRTT takes a round-trip sample: a new minimum, or, once the
// minimum has stood ctlMinRTTWindow, a ProbeRTT period whose samples make
// the next one.
func (f *ctlFlow) sampleRTT(rtt time.Duration, now time.Time, w *windowCtl) {
	if f.srtt == 0 {
		f.srtt = rtt
	} else {
		f.srtt += (rtt - f.srtt) / 8
	}
	switch {
	case f.minRTT == 0 || rtt <= f.minRTT:
		f.minRTT, f.minRTTAt = rtt, now
	case now.Sub(f.minRTTAt) > ctlMinRTTWindow && !f.probeRTT:
		f.probeRTT, f.probeRTTUntil = true, now.Add(ctlProbeRTTTime)
		f.minRTT, f.minRTTAt = rtt, now
		w.probeRTTs.Add(1)
	}
	if f.probeRTT && !now.Before(f.probeRTTUntil) {
		f.probeRTT = false
	}
}

// maxBW is the highest delivery rate of the last ctlBWRounds rounds.
func (f *ctlFlow) maxBW() float64 {
	m := 0.0
	for _, r := range f.bw {
		m = max(m, r)
	}
	return m
}

// window is the window the link lets gVisor have past una, in bytes, and
// whether it has one yet (a rate and a round trip measured): the target
// in flight plus sacked, the bytes above una the peer holds (SACKed, so no
// longer in flight), and never less than what was sent.
func (f *ctlFlow) window(sacked uint64) (uint64, bool) {
	bw := f.maxBW()
	if f.minRTT == 0 || bw == 0 {
		return 0, false
	}
	var target uint64
	mss := uint64(f.mss)
	if mss == 0 {
		mss = ctlDefaultMSS
	}
	gainNum, gainDen := uint64(ctlGainNum), uint64(ctlGainDen)
	if f.rep != nil && f.rep.test.on {
		gainNum, gainDen = 1, 1 // the loss repair's test (repair_verdict.go)
	}
	if f.probeRTT {
		target = ctlProbeRTTSegs * mss
	} else {
		rtt := max(f.minRTT, ctlRTTFloor)
		target = max(uint64(bw*rtt.Seconds())*gainNum/gainDen, ctlMinSegs*mss)
	}
	return max(target+sacked, uint64(f.una.Size(f.nxt)), mss), true
}

// field is the window field that allows wnd bytes in f's peer's window
// scale (rounded up), or the peer's own field when that is no larger.
func (f *ctlFlow) field(peer uint16, wnd uint64) uint16 {
	shift := 0
	if f.ourWS >= 0 && f.peerWS >= 0 {
		shift = f.peerWS
	}
	want := (wnd + 1<<shift - 1) >> shift
	if want == 0 || want >= uint64(peer) {
		return peer
	}
	return uint16(want)
}

// lower returns b with its TCP window lowered to wnd bytes (see field),
// or b itself when the peer's window is no larger. The copy's TCP
// checksum is updated for the one field it changes.
//
// +checklocks:w.mu
func (w *windowCtl) lower(b []byte, off int, s *tcpSegment, f *ctlFlow, wnd uint64) []byte {
	t := header.TCP(s.tcp)
	want := f.field(t.WindowSize(), wnd)
	if want == t.WindowSize() {
		return b
	}
	c := append([]byte(nil), b...)
	at := off + len(s.net)
	ct := header.TCP(c[at : at+len(s.tcp)])
	old := ct.WindowSize()
	binary.BigEndian.PutUint16(ct[header.TCPWinSizeOffset:], uint16(want))
	ct.SetChecksum(checksumReplace(ct.Checksum(), old, uint16(want)))
	w.clamped.Add(1)
	return c
}

// checksumReplace updates an Internet checksum for one 16-bit word of the
// data changed from old to new (RFC 1624, eqn. 3).
func checksumReplace(sum, old, new uint16) uint16 {
	x := uint32(^sum) + uint32(^old) + uint32(new)
	x = x&0xffff + x>>16
	x = x&0xffff + x>>16
	return ^uint16(x)
}

// stop forgets every connection: the link is closing.
func (w *windowCtl) stop() {
	w.mu.Lock()
	w.closed = true
	w.timer.stop()
	for k := range w.flows {
		w.forgetLocked(k)
	}
	w.flows = nil
	w.mu.Unlock()
}
