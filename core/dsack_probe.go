package core

import (
	"sort"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The link's recovery probe works around gVisor arming no tail-loss probe
// in loss recovery (rack.go shouldSchedulePTO): there, when a
// retransmission is lost, or the ACK for it, nothing clocks the sender
// until its retransmission timeout, which then collapses its window to one
// segment (and doubles on each further loss). At 30% loss that was 9-24
// timeouts per MiB. So the link watches each connection's send side:
// the data segments (and FIN) its stack sends, keeping a reference to each
// wire-sized one until it is acknowledged (up to maxProbeSegs per
// connection and maxProbeSegsLink in all), and the ACKs that come back
// (checksums checked). From an ACK that reports a gap (a SACK block above
// its acknowledgement), or the stack's retransmission of the lowest
// unacknowledged segment, until what was
// sent by then is acknowledged and no gap is reported (RFC 6675's recovery
// point), the connection is in recovery; then, when nothing
// new has been acknowledged, nor the lowest unacknowledged segment sent
// again, for timeout (twice the link's smoothed RTT of the connection,
// from segments sent once, at least minProbeTimeout), the link sends that
// segment once more itself, with the stack's newest acknowledgement,
// window and timestamps (the timestamp moved on by the milliseconds since),
// so that the receiver's ACK clocks the sender on and its RTT sample is the
// probe's round trip. Where the peer's SACK blocks (kept per segment as
// they arrive) show more holes below the highest SACKed byte, the same
// round resends each hole's segment too (up to maxProbeHoles): gVisor's
// RACK takes a retransmission for lost only once a segment the stack sent
// after it is delivered, which a window of a few segments in recovery
// seldom sends, so a lost retransmission of a higher hole stalls as the
// lowest does, and probing the lowest alone repaired the holes one round
// at a time. Each further probe of the same stall waits twice as
// long, up to maxProbesPerStall.
//
// Outside recovery, or once those are spent, a connection whose data (or
// FIN) stays unacknowledged with nothing acknowledged nor the lowest
// segment resent for a while gets the same probe (a stall probe), each
// further one waiting twice as long (64 times the first at most), until
// maxStallProbes. The first waits four of the link's RTTs, at least
// minStallProbeTimeout, while two segments or more are unacknowledged (no
// delayed ACK holds back two: Linux acknowledges every second full
// segment), else stallProbeTimeout. It does a tail-loss probe's work
// where gVisor's own probe or its ACK was lost, before gVisor's 200 ms
// timeout, which would cut the window to one segment: at 30% loss it took
// the timeouts from 8-12 to 0-5 over 20 seeds of 1 MiB. And it unsticks a stall:
// gVisor can be left with data outstanding and no timer armed. Seen at
// 30% loss, about one 1 MiB transfer in three hundred: the sender in
// FIN-WAIT-1, congestion state open, no timeout and nothing sent for
// 29 s, the receiver's link holding nothing. The likely path
// (docs/gvisor-upstream.md §1): SetPipe (snd.go) counts no segment
// without payload, so a lone FIN is not outstanding in SACK recovery; a
// tail-loss probe timer that fires with a probe already out sends
// nothing, and postXmit arms no retransmission timer while nothing is
// outstanding.
//
// One timer per link (time.AfterFunc, also
// the ACK hold's, see dsack_hold.go) fires for the earliest; it sends with
// no lock held, and stop ends it. Config.DisableRecoveryProbes turns
// probes off.

const (
	// maxProbeSegs bounds the segments the link keeps for one connection.
	maxProbeSegs = 1024
	// maxProbeSegsLink bounds those it keeps for all connections.
	maxProbeSegsLink = 8192
	// minProbeTimeout is the floor of the time without progress before a
	// probe.
	minProbeTimeout = 2 * time.Millisecond
	// maxProbesPerStall bounds the probes sent while nothing is acked.
	maxProbesPerStall = 6
	// maxProbeHoles bounds the segments one probe round resends.
	maxProbeHoles = 16
	// stallProbeTimeout is the wait without progress before a stall
	// probe (outside recovery).
	stallProbeTimeout = time.Second
	// minStallProbeTimeout is the floor of a stall probe's wait on a
	// connection the link has an RTT of.
	minStallProbeTimeout = 20 * time.Millisecond
	// maxStallProbes bounds the stall probes of one stall.
	maxStallProbes = 10
)

// probeState is what the link knows of one connection's send side.
type probeState struct {
	known     bool         // una and nxt are set
	una, nxt  seqnum.Value // highest ACK number received, highest end sent
	segs      []probeSeg   // kept segments above una, by sequence number
	recovery  bool         // the connection is in recovery (see above)
	recoverTo seqnum.Value // until una reaches it: nxt at the last gap or retransmission
	sackHigh  seqnum.Value // highest SACKed end above una (una: none)
	lastEvent time.Time    // when una advanced or the segment at una was sent
	probes    int          // probes sent since una advanced
	srtt      time.Duration
	active    bool // in dsacker.active
	// The stack's newest segment's fields, which a probe carries (its
	// acknowledgement is the link's, dsackFlow.rcvNxt).
	sentStamp

	// recoveryProbes: a probe of this stall was sent in recovery.
	recoveryProbes bool
}

// probeSeg is one data segment the stack sent, kept for a probe.
type probeSeg struct {
	seq, end seqnum.Value
	pkt      *stack.PacketBuffer
	hdr      hdrLens // pkt's, read when kept
	sentAt   time.Time
	resent   bool
	sacked   bool // a SACK block of the peer covered it
}

// noteSentLocked notes the data segment pkt (header t) the stack sends on
// f.
//
// +checklocks:d.mu
func (d *dsacker) noteSentLocked(f *dsackFlow, pkt *stack.PacketBuffer, t header.TCP, now time.Time) {
	if f.snd == nil {
		f.snd = &probeState{}
	}
	ps := f.snd
	seq := seqnum.Value(t.SequenceNumber())
	end := seq.Add(seqnum.Size(pkt.Data().Size()))
	if t.Flags()&header.TCPFlagFin != 0 {
		end++ // a FIN takes a sequence number
	}
	if !ps.known || (len(ps.segs) == 0 && ps.una == ps.nxt && ps.nxt.LessThan(seq)) {
		ps.una, ps.nxt, ps.known = seq, seq, true
	}
	ps.noteHeader(t, now)
	resent := seq.LessThan(ps.nxt)
	if resent {
		// The lowest segment sent again (a timeout's or a fast
		// retransmission) starts recovery; a tail-loss probe of a
		// higher one does not.
		if seq.LessThanEq(ps.una) && ps.una.LessThan(end) {
			ps.recovery, ps.recoverTo = true, ps.nxt
			ps.lastEvent = now
		}
	} else {
		if ps.una == ps.nxt {
			ps.lastEvent = now
		}
		ps.nxt = end
	}
	if pkt.GSOOptions.Type == stack.GSONone {
		d.keepLocked(ps, probeSeg{seq: seq, end: end, pkt: pkt, hdr: hdrLensOf(pkt), sentAt: now, resent: resent})
	} // a super-segment is never kept: a probe is one wire-sized segment
	d.armLocked(f)
}

// keepLocked keeps a reference to s's packet in ps, in order, replacing
// an earlier transmission of the same bytes; past the bounds it keeps
// nothing.
//
// +checklocks:d.mu
func (d *dsacker) keepLocked(ps *probeState, s probeSeg) {
	i := len(ps.segs)
	for i > 0 && s.seq.LessThan(ps.segs[i-1].seq) {
		i--
	}
	if i > 0 && ps.segs[i-1].seq == s.seq {
		old := &ps.segs[i-1]
		if old.end.LessThanEq(s.end) {
			old.pkt.DecRef()
			s.resent = true
			*old = s
			old.pkt = s.pkt.IncRef()
		}
		return
	}
	if len(ps.segs) >= maxProbeSegs || d.kept >= maxProbeSegsLink {
		return
	}
	s.pkt = s.pkt.IncRef()
	ps.segs = append(ps.segs, probeSeg{})
	copy(ps.segs[i+1:], ps.segs[i:])
	ps.segs[i] = s
	d.kept++
}

// ackedLocked notes an ACK (header t) that arrived for f's connection.
//
// +checklocks:d.mu
func (d *dsacker) ackedLocked(f *dsackFlow, t header.TCP, now time.Time) {
	ps := f.snd
	ack := seqnum.Value(t.AckNumber())
	if ps.una.LessThan(ack) && ack.LessThanEq(ps.nxt) {
		ps.una, ps.lastEvent, ps.probes, ps.recoveryProbes = ack, now, 0, false
		n := 0
		for _, s := range ps.segs {
			if s.end.LessThanEq(ack) {
				if s.end == ack && !s.resent {
					ps.sample(now.Sub(s.sentAt))
				}
				s.pkt.DecRef()
				n++
				continue
			}
			break
		}
		d.kept -= n
		ps.segs = append(ps.segs[:0], ps.segs[n:]...)
	}
	gap := ps.noteSACK(t)
	if gap {
		ps.recovery, ps.recoverTo = true, ps.nxt
	}
	if ps.una == ps.nxt || (!gap && !ps.una.LessThan(ps.recoverTo)) {
		ps.recovery = false
	}
	d.armLocked(f)
}

// noteSACK marks the kept segments t's SACK blocks cover and moves
// ps.sackHigh, and reports whether t reports a gap (a block above una,
// not a DSACK report).
func (ps *probeState) noteSACK(t header.TCP) (gap bool) {
	if ps.sackHigh.LessThan(ps.una) {
		ps.sackHigh = ps.una
	}
	for _, b := range header.ParseTCPOptions(t.Options()).SACKBlocks {
		if !ps.una.LessThan(b.Start) || ps.nxt.LessThan(b.End) {
			continue
		}
		gap = true
		if ps.sackHigh.LessThan(b.End) {
			ps.sackHigh = b.End
		}
		// ps.segs is in sequence order: start at the first at or above
		// the block.
		i := sort.Search(len(ps.segs), func(i int) bool { return b.Start.LessThanEq(ps.segs[i].seq) })
		for ; i < len(ps.segs) && ps.segs[i].end.LessThanEq(b.End); i++ {
			ps.segs[i].sacked = true
		}
	}
	return gap
}

// sample smooths an RTT sample into ps.srtt (RFC 6298's weights).
func (ps *probeState) sample(rtt time.Duration) {
	if ps.srtt == 0 {
		ps.srtt = rtt
		return
	}
	ps.srtt += (rtt - ps.srtt) / 8
}

// timeout is how long ps waits without progress before its next probe:
// a recovery probe's while in recovery and fewer than maxProbesPerStall
// were sent, else a stall probe's.
func (ps *probeState) timeout() time.Duration {
	if ps.inRecoveryProbes() {
		return max(2*ps.srtt, minProbeTimeout) << ps.probes
	}
	t := stallProbeTimeout
	if ps.srtt > 0 && len(ps.segs) >= 2 { // a delayed ACK covers one segment at most
		t = max(4*ps.srtt, minStallProbeTimeout)
	}
	return t << min(ps.stallProbes(), 6)
}

// inRecoveryProbes reports whether ps's next probe is a recovery probe.
func (ps *probeState) inRecoveryProbes() bool {
	return ps.recovery && ps.probes < maxProbesPerStall
}

// stallProbes is how many of ps's probes of this stall were stall probes
// (the first maxProbesPerStall of a recovery are recovery probes).
func (ps *probeState) stallProbes() int {
	if ps.recoveryProbes {
		return max(ps.probes-maxProbesPerStall, 0)
	}
	return ps.probes
}

// hasSACKAbove reports whether t carries a SACK block above una (not a
// DSACK report).
func hasSACKAbove(t header.TCP, una seqnum.Value) bool {
	for _, b := range header.ParseTCPOptions(t.Options()).SACKBlocks {
		if una.LessThan(b.Start) {
			return true
		}
	}
	return false
}

// armLocked adds f to the connections a probe may be due on, or removes
// it, and arms the timer for the earliest probe.
//
// +checklocks:d.mu
func (d *dsacker) armLocked(f *dsackFlow) {
	ps := f.snd
	want := ps.una != ps.nxt && !ps.spent() && d.probeOn.Load() && !d.closed
	switch {
	case want && !ps.active:
		if d.active == nil {
			d.active = make(map[*dsackFlow]struct{})
		}
		d.active[f] = struct{}{}
		ps.active = true
	case !want && ps.active:
		delete(d.active, f)
		ps.active = false
		return
	case !want:
		return
	}
	d.armAtLocked(ps.lastEvent.Add(ps.timeout()))
}

// spent reports whether ps sent all the probes a stall may have.
func (ps *probeState) spent() bool {
	return !ps.inRecoveryProbes() && ps.stallProbes() >= maxStallProbes
}

// armAtLocked makes the timer fire at at, or earlier.
//
// +checklocks:d.mu
func (d *dsacker) armAtLocked(at time.Time) {
	d.timer.arm(at, d.fire)
}

// fire sends the probes that are due and arms the timer for the next.
func (d *dsacker) fire() {
	d.mu.Lock()
	d.timer.fired()
	if d.closed {
		d.mu.Unlock()
		return
	}
	now := time.Now()
	var probes []*stack.PacketBuffer
	var next time.Time
	for f := range d.active {
		ps := f.snd
		at := ps.lastEvent.Add(ps.timeout())
		if !now.Before(at) {
			if ps.inRecoveryProbes() {
				ps.recoveryProbes = true
			} else {
				d.stallProbes.Add(1)
			}
			probes = d.probesLocked(f, now, probes)
			ps.probes++
			ps.lastEvent = now
			if ps.spent() {
				delete(d.active, f)
				ps.active = false
				continue
			}
			at = now.Add(ps.timeout())
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	probes, next = d.releaseDueLocked(now, probes, next)
	if !next.IsZero() {
		d.timer.arm(next, d.fire)
	}
	send := d.send
	d.mu.Unlock()
	for _, p := range probes {
		if send != nil {
			send(p)
		}
		p.DecRef()
	}
}

// probesLocked appends to out the probes of one round on f: its kept
// segment that holds una, and each kept segment below the highest SACKed
// byte that no SACK block covered, maxProbeHoles at most.
//
// +checklocks:d.mu
func (d *dsacker) probesLocked(f *dsackFlow, now time.Time, out []*stack.PacketBuffer) []*stack.PacketBuffer {
	ps := f.snd
	n := 0
	for i := range ps.segs {
		s := &ps.segs[i]
		lowest := s.seq.LessThanEq(ps.una) && ps.una.LessThan(s.end)
		if !lowest && (s.sacked || !s.end.LessThanEq(ps.sackHigh)) {
			continue
		}
		if p := d.probeLocked(f, s, now); p != nil {
			out = append(out, p)
			if n++; n >= maxProbeHoles {
				break
			}
		}
	}
	return out
}

// probeLocked builds a probe of f: a copy of its kept segment s, with the
// stack's newest acknowledgement, window and timestamps, or nil if s
// does not parse.
//
// +checklocks:d.mu
func (d *dsacker) probeLocked(f *dsackFlow, s *probeSeg, now time.Time) *stack.PacketBuffer {
	pkt := f.snd.stampedCopy(s.pkt, s.hdr, f.rcvNxt, f.known, now)
	if pkt != nil {
		d.probesSent.Add(1)
	}
	return pkt
}

// forgetLocked drops what the link keeps of f's send side.
//
// +checklocks:d.mu
func (d *dsacker) forgetLocked(f *dsackFlow) {
	if f == nil || f.snd == nil {
		return
	}
	for _, s := range f.snd.segs {
		s.pkt.DecRef()
	}
	d.kept -= len(f.snd.segs)
	f.snd.segs = nil
	if f.snd.active {
		delete(d.active, f)
		f.snd.active = false
	}
}

// stop ends probes and drops every kept segment: the link is closing.
func (d *dsacker) stop() {
	d.ctl.stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.timer.stop()
	for _, f := range d.flows {
		d.forgetLocked(f)
		d.dropHeldLocked(f)
	}
}

// noteACK notes an ACK the stack receives, if the link watches its
// connection's send side and the segment's checksums are right.
func (d *dsacker) noteACK(s *tcpSegment) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.flows[s.key(false)]
	if f == nil || f.snd == nil || !s.checksumsValid() {
		return
	}
	d.ackedLocked(f, header.TCP(s.tcp), time.Now())
}
