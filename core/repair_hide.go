package core

import (
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The link's loss repair (Config.LossRepair) rides on its window control
// (repair.go): with the link's window holding gVisor's data in flight near
// twice the path, gVisor's Reno need not see a random loss at all. So the
// link keeps a reference to each wire-sized data segment its stack sends
// (up to maxRepairBytes of payload per connection; gVisor's send buffer
// holds the same bytes until they are acknowledged anyway) and keeps a
// SACK scoreboard of its own. A kept segment is lost, as RACK (RFC 8985)
// has it, when a segment sent after it was delivered (SACKed or
// acknowledged) and a round trip and a reordering window
// (max(minRTT/4, repairReoWnd)) have passed since it was sent; the link
// then sends it again itself, at once, with the stack's newest
// acknowledgement, window and timestamps (the ACK that fills the hole
// then samples the repair's round trip, not the loss's), and hands gVisor
// the ACK without its SACK blocks above the cumulative acknowledgement,
// with the window the link allows plus the bytes the scoreboard holds
// SACKed. With SACK, an ACK that brings no new SACK information is no
// duplicate (RFC 6675; gVisor's isDupAck), so gVisor's sender marks
// nothing lost and its window is not cut; the ACK that covers the repaired
// hole moves it on as if nothing had been lost. A repair lost again is
// found lost again the same way (its send time is the repair's).
//
// The link never acknowledges anything for the peer, so no byte depends on
// it: gVisor keeps every byte until the peer acknowledges it, and its
// recovery and retransmission timeout stay the fallback. The link leaves a
// loss to gVisor (it hands gVisor every ACK as it came, until what was
// sent by then is acknowledged: "passing") when the lost segment is not
// kept, when it was repaired repairMaxTries times, or when the link's
// congestion decision (repair_verdict.go) finds the losses stop once its
// window is lowered to the path itself: they are congestion, and gVisor's
// Reno backs off as without LossRepair (its window then stays the limit
// until it grows back). Losses that do not stop there are random and
// hidden at any share. ACKs that carry data are never changed.

const (
	// maxRepairBytes bounds the payload kept per connection; segments
	// sent past it are not kept, and a loss among them passes.
	maxRepairBytes = 4 << 20
	// repairMaxTries bounds the link's repairs of one segment.
	repairMaxTries = 8
	// repairReoWnd is the least reordering window: a segment is not lost
	// before this long past a round trip.
	repairReoWnd = time.Millisecond
	// repairMaxWait bounds how long the link waits for a repair before it
	// sends it again: below gVisor's least retransmission timeout.
	repairMaxWait = 150 * time.Millisecond
	// repairShareWindow is how many segments sent the share of repairs
	// (repair_verdict.go) spans: past it both counts are halved.
	repairShareWindow = 4096
	// repairThinSegs is how far, in segments, a hidden ACK that does not
	// move the cumulative acknowledgement must move the window's right
	// edge past the last one handed to gVisor to be handed over itself.
	repairThinSegs = 4
)

// repairSeg is one kept data segment.
type repairSeg struct {
	seq, end seqnum.Value
	pkt      *stack.PacketBuffer
	hdr      hdrLens   // pkt's, read when kept
	sentAt   time.Time // its last transmission
	sacked   bool
	resent   bool // sent more than once (by the stack or the link)
	tries    int  // the link's repairs of it
}

// repairState is a connection's loss repair: the kept segments and the
// stack's newest header fields.
type repairState struct {
	segs      []repairSeg // by sequence number, above una
	bytes     int
	sacked    uint64    // of them, the payload the scoreboard holds SACKed
	rackXmit  time.Time // the newest send time of a delivered segment
	passing   bool      // gVisor recovers a loss: ACKs go unchanged
	passUntil seqnum.Value
	sent      int // new segments sent, for the share
	repairs   int // of them found lost (and repaired)
	// test is the congestion decision (repair_verdict.go); tests and
	// congestions count its tests and its verdicts of congestion.
	test               lossTest
	tests, congestions int
	// ours are the link's repairs on their way out: sent tells them from
	// the stack's own retransmissions.
	ours []*stack.PacketBuffer
	// spurious is the newest retransmission of the stack's own (its
	// tail-loss probe) while the link hides losses: the first ACK that
	// covers it reports it to gVisor as a duplicate (DSACK), else gVisor
	// takes the probe for the repair of a loss and cuts its window.
	spurious           bool
	spurStart, spurEnd seqnum.Value
	// handedACK and handedEdge are the acknowledgement and window edge
	// of the last hidden ACK handed to gVisor, if handedOK (see thin).
	handedOK              bool
	handedACK, handedEdge seqnum.Value
	// last is the TCP header of the connection's last pure ACK (options
	// included; lastLen bytes), which again compares the next with.
	last    [header.TCPHeaderMaximumSize]byte
	lastLen int
	// The stack's newest segment's fields, which a repair carries.
	sentStamp
}

// again reports whether t, the TCP header of a pure ACK of a connection
// that uses SACK, is a copy of the one before, byte for byte (the peer's
// link repeats every pure ACK, Config.SingleACKs), and else notes it. A
// copy brings gVisor nothing (with SACK an ACK without new SACK
// information is no duplicate, RFC 6675) but costs its sender a walk of
// all it has in flight (RACK's loss detection, per ACK), and at a loss
// the peer acknowledges every segment: the copies are most of the ACKs.
func (r *repairState) again(t []byte) bool {
	if r.lastLen == len(t) && string(r.last[:r.lastLen]) == string(t) {
		return true
	}
	r.lastLen = copy(r.last[:], t)
	return false
}

// keep notes the data segment pkt, [seq, end), sent at now: a new one is
// kept (within the bounds), a retransmission of a kept one updates its
// send time.
func (r *repairState) keep(pkt *stack.PacketBuffer, seq, end, nxt seqnum.Value, now time.Time, gso bool) {
	if i := slices.Index(r.ours, pkt); i >= 0 {
		r.ours = slices.Delete(r.ours, i, i+1)
	} else if !r.passing && seq.LessThan(nxt) && end == nxt {
		// The stack sent its highest segment again: its tail-loss probe
		// (a recovery probe of the link's is of the lowest).
		r.spurious, r.spurStart, r.spurEnd = true, seq, end
	}
	i := r.find(seq)
	if i < len(r.segs) && r.segs[i].seq == seq {
		if r.segs[i].sacked {
			r.sacked -= uint64(seq.Size(r.segs[i].end))
		}
		r.segs[i].sentAt, r.segs[i].sacked, r.segs[i].resent = now, false, true
		return
	}
	if r.sent++; r.sent >= repairShareWindow {
		r.sent, r.repairs = r.sent/2, r.repairs/2
	}
	r.test.noteSent(seq, end)
	if gso || i != len(r.segs) || r.bytes+int(seq.Size(end)) > maxRepairBytes {
		return // a super-segment, out of order, or past the bound: not kept
	}
	r.segs = append(r.segs, repairSeg{seq: seq, end: end, pkt: pkt.IncRef(), hdr: hdrLensOf(pkt), sentAt: now})
	r.bytes += int(seq.Size(end))
}

// find returns the index of the first kept segment that ends after seq.
func (r *repairState) find(seq seqnum.Value) int {
	lo, hi := 0, len(r.segs)
	for lo < hi {
		m := (lo + hi) / 2
		if r.segs[m].end.LessThanEq(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// release drops the kept segments below ack, noting the newest send time
// among them.
func (r *repairState) release(ack seqnum.Value) {
	n := 0
	for n < len(r.segs) && r.segs[n].end.LessThanEq(ack) {
		s := &r.segs[n]
		if s.sentAt.After(r.rackXmit) {
			r.rackXmit = s.sentAt
		}
		r.bytes -= int(s.seq.Size(s.end))
		if s.sacked {
			r.sacked -= uint64(s.seq.Size(s.end))
		}
		s.pkt.DecRef()
		n++
	}
	if n > 0 {
		clear(r.segs[:n])
		r.segs = append(r.segs[:0], r.segs[n:]...)
	}
}

// drop releases every kept segment.
func (r *repairState) drop() {
	for _, s := range r.segs {
		s.pkt.DecRef()
	}
	r.segs, r.bytes, r.sacked = nil, 0, 0
}

// mark takes the SACK blocks above una into the scoreboard and returns
// the end of the highest one (una if none), whether any block is above
// una, the payload newly SACKed, and the send time of the newest segment
// sent once among it (zero if none): its round trip ends now.
func (r *repairState) mark(blocks []header.SACKBlock, una seqnum.Value) (high seqnum.Value, any bool, newly uint64, sentAt time.Time) {
	high = una
	for _, b := range blocks {
		if !una.LessThan(b.Start) || !b.Start.LessThan(b.End) || una.Size(b.End) > maxDSACKDistance {
			continue // a DSACK report, or malformed
		}
		any = true
		if high.LessThan(b.End) {
			high = b.End
		}
		for i := r.find(b.Start); i < len(r.segs) && r.segs[i].end.LessThanEq(b.End); i++ {
			s := &r.segs[i]
			if s.seq.LessThan(b.Start) {
				continue
			}
			if s.sacked {
				continue
			}
			if s.sentAt.After(r.rackXmit) {
				r.rackXmit = s.sentAt
			}
			s.sacked = true
			newly += uint64(s.seq.Size(s.end))
			r.sacked += uint64(s.seq.Size(s.end))
			if s.tries == 0 && !s.resent && s.sentAt.After(sentAt) {
				sentAt = s.sentAt
			}
		}
	}
	return high, any, newly, sentAt
}

// sackedBelow is the payload of the kept segments below ack that the
// scoreboard holds SACKed (delivered before ack covered them).
func (r *repairState) sackedBelow(ack seqnum.Value) uint64 {
	var n uint64
	for _, s := range r.segs {
		if ack.LessThan(s.end) {
			break
		}
		if s.sacked {
			n += uint64(s.seq.Size(s.end))
		}
	}
	return n
}

// sackedBytes is the payload of the kept segments the scoreboard holds
// SACKed.
func (r *repairState) sackedBytes() uint64 {
	return r.sacked
}

// lost returns the kept segments below high that RACK takes for lost at
// now (rtt: the minimum round trip, reo: the reordering window, again: how
// long a repair may take), and whether the link must pass (a hole it does
// not hold, or one it repaired too often).
func (r *repairState) lost(una, high seqnum.Value, now time.Time, rtt, reo, again time.Duration) (lost []int, pass bool) {
	next := una
	for i := range r.segs {
		s := &r.segs[i]
		if !s.seq.LessThan(high) {
			break
		}
		if next.LessThan(s.seq) {
			return nil, true // a hole the link does not hold
		}
		next = s.end
		if s.sacked || now.Sub(s.sentAt) < rtt+reo {
			continue
		}
		// RACK's rule; a repair not delivered in two round trips is lost
		// again, whatever was sent after it (the repair timer's rule).
		if !s.sentAt.Before(r.rackXmit) && (s.tries == 0 || now.Sub(s.sentAt) < again) {
			continue
		}
		if s.tries >= repairMaxTries {
			return nil, true
		}
		lost = append(lost, i)
	}
	if next.LessThan(high) && len(r.segs) == 0 {
		return nil, true
	}
	return lost, false
}

// repairCopy builds the repair of kept segment s: a copy with the stack's
// newest acknowledgement, window and timestamps (the timestamp moved on by
// the milliseconds since), or nil.
func (r *repairState) repairCopy(s *repairSeg, now time.Time) *stack.PacketBuffer {
	return r.stampedCopy(s.pkt, s.hdr, r.ack, r.hasHdr, now)
}

// hideSACK returns a copy of the pure ACK b (the IP packet at b[off:],
// parsed as s) without its SACK blocks above ack, with window field wnd,
// and with dup, if set, as a DSACK report in front.
func hideSACK(b []byte, off int, s *tcpSegment, ack seqnum.Value, wnd uint16, dup *header.SACKBlock) []byte {
	t := header.TCP(s.tcp)
	opts := header.ParseTCPOptions(t.Options())
	var keep []header.SACKBlock
	if dup != nil {
		keep = append(keep, *dup)
	}
	for _, blk := range opts.SACKBlocks {
		if !ack.LessThan(blk.Start) {
			keep = append(keep, blk) // a DSACK report stays
		}
	}
	var ob [header.TCPOptionsMaximumSize]byte
	n := encodeACKOptions(&ob, opts, keep)
	tcpLen := header.TCPMinimumSize + n
	c := make([]byte, off+len(s.net)+tcpLen)
	copy(c, b[:off+len(s.net)])
	nt := header.TCP(c[off+len(s.net):])
	nt.Encode(&header.TCPFields{
		SrcPort: t.SourcePort(), DstPort: t.DestinationPort(),
		SeqNum: t.SequenceNumber(), AckNum: t.AckNumber(),
		DataOffset: uint8(tcpLen), Flags: t.Flags(),
		WindowSize: wnd, UrgentPointer: t.UrgentPointer(),
	})
	copy(nt[header.TCPMinimumSize:], ob[:n])
	sealACK(c[off:], s, tcpLen)
	return c
}

// sackSeen is what an ACK's SACK blocks told the scoreboard.
type sackSeen struct {
	blocks []header.SACKBlock
	high   seqnum.Value
	any    bool
}

// repairLocked takes the pure ACK b (parsed as s, acknowledging ack, at
// or above f.una) of a connection with loss repair: it returns the ACK to
// hand gVisor and the repairs to send.
//
// +checklocks:w.mu
func (w *windowCtl) repairLocked(b []byte, off int, s *tcpSegment, f *ctlFlow, ack seqnum.Value, now time.Time, sb sackSeen) ([]byte, []*stack.PacketBuffer) {
	r := f.rep
	t := header.TCP(s.tcp)
	r.release(ack)
	blocks, high, any := sb.blocks, sb.high, sb.any
	if r.passing && !ack.LessThan(r.passUntil) {
		r.passing = false
	}
	congested := r.congested(now, ack, f.nxt, f.pipeFull(), f.roundSegs())
	handed := r.handedOK // the last ACK handed over was a hidden one
	r.handedOK = false   // until thin notes this one
	wnd, ok := f.window(r.sackedBytes())
	var dup *header.SACKBlock
	if r.spurious && !ack.LessThan(r.spurEnd) {
		r.spurious = false
		if !r.passing && (len(blocks) == 0 || ack.LessThan(blocks[0].Start)) {
			dup = &header.SACKBlock{Start: r.spurStart, End: r.spurEnd}
		}
	}
	if r.passing {
		if any && r.passUntil.LessThan(f.nxt) {
			r.passUntil = f.nxt // holes above join gVisor's recovery
		}
		if !ok {
			return b, nil
		}
		return w.lower(b, off, s, f, wnd), nil
	}
	if !any {
		field := t.WindowSize()
		if ok {
			field = f.field(field, wnd)
		}
		if dup != nil {
			w.dsacks.Add(1)
			return hideSACK(b, off, s, ack, field, dup), nil
		}
		return w.lower(b, off, s, f, wnd), nil
	}
	reo := max(f.minRTT/4, repairReoWnd)
	lost, pass := r.lost(ack, high, now, f.minRTT, reo, f.repairWait(reo))
	if pass || congested {
		r.passing, r.passUntil = true, f.nxt
		w.passed.Add(1)
		if !ok {
			return b, nil
		}
		return w.lower(b, off, s, f, wnd), nil
	}
	out := r.repairLost(lost, now)
	w.repaired.Add(uint64(len(out)))
	if len(out) > 0 {
		w.armLocked(now.Add(f.repairWait(reo)))
	}
	field := t.WindowSize()
	if ok {
		field = f.field(field, wnd)
	}
	if dup == nil && !reportsDSACK(blocks, ack) && r.thin(handed, ack, f.edge(ack, field), f.segSize()) {
		w.thinned.Add(1)
		return nil, out
	}
	w.hidden.Add(1)
	if dup != nil {
		w.dsacks.Add(1)
	}
	return hideSACK(b, off, s, ack, field, dup), out
}

// thin reports whether the link need not hand gVisor a hidden ACK of ack
// whose window reaches edge: the last ACK handed over was a hidden one
// (handed) with the same ack and an edge less than repairThinSegs
// segments (of mss bytes) lower.
// Such an ACK tells gVisor nothing (its SACK blocks are hidden) but that
// it may send a segment or two more, and costs gVisor's sender a walk of
// all it has in flight (RACK's loss detection, per ACK); while a hole is
// open the peer acknowledges every segment. Else it notes the ACK as
// handed over.
func (r *repairState) thin(handed bool, ack, edge seqnum.Value, mss int) bool {
	if handed && r.handedACK == ack && edge.LessThan(r.handedEdge.Add(seqnum.Size(repairThinSegs*mss))) {
		r.handedOK = true // (the one handed over still is)
		return true
	}
	r.handedOK, r.handedACK, r.handedEdge = true, ack, edge
	return false
}

// reportsDSACK reports whether an ACK's SACK blocks start with a DSACK
// report (RFC 2883 §4: a first block below the acknowledgement, or within
// the second block), which gVisor's sender reads and the link never
// thins away.
func reportsDSACK(blocks []header.SACKBlock, ack seqnum.Value) bool {
	if len(blocks) == 0 {
		return false
	}
	b := blocks[0]
	if b.Start.LessThan(ack) {
		return true
	}
	return len(blocks) > 1 && !b.Start.LessThan(blocks[1].Start) && b.End.LessThanEq(blocks[1].End)
}

// edge is the right edge of a window field wnd from ack, in the peer's
// window scale.
func (f *ctlFlow) edge(ack seqnum.Value, wnd uint16) seqnum.Value {
	shift := 0
	if f.ourWS >= 0 && f.peerWS >= 0 {
		shift = f.peerWS
	}
	return ack.Add(seqnum.Size(uint32(wnd) << shift))
}

// segSize is the flow's segment size: the largest seen, or
// ctlDefaultMSS.
func (f *ctlFlow) segSize() int {
	if f.mss == 0 {
		return ctlDefaultMSS
	}
	return f.mss
}

// repairLost builds the repairs of the kept segments at the indexes lost
// and notes them sent at now.
func (r *repairState) repairLost(lost []int, now time.Time) []*stack.PacketBuffer {
	var out []*stack.PacketBuffer
	for _, i := range lost {
		seg := &r.segs[i]
		if p := r.repairCopy(seg, now); p != nil {
			out = append(out, p)
			r.ours = append(r.ours, p)
		}
		if seg.tries == 0 {
			r.repairs++ // a loss (a repair lost again is not another)
			r.test.noteLost(seg.seq)
		}
		seg.tries++
		seg.sentAt = now
	}
	return out
}

// repairWait is how long a repair may take before the link sends it
// again: twice the smoothed round trip and the reordering window, but no
// more than repairMaxWait (gVisor's retransmission timeout is 200 ms or
// more).
func (f *ctlFlow) repairWait(reo time.Duration) time.Duration {
	return min(2*max(f.srtt, f.minRTT)+reo, repairMaxWait)
}

// armLocked makes the repair timer fire at at, or earlier.
//
// +checklocks:w.mu
func (w *windowCtl) armLocked(at time.Time) {
	if w.closed {
		return
	}
	w.timer.arm(at, w.fire)
}

// fire is the repair timer: it sends again the repairs that were not
// delivered in two round trips (nothing sent after them may be there to
// show them lost), and arms itself while repairs are outstanding.
func (w *windowCtl) fire() {
	w.mu.Lock()
	w.timer.fired()
	if w.closed {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	var out []*stack.PacketBuffer
	var next time.Time
	for _, f := range w.flows {
		r := f.rep
		if r == nil || r.passing || len(r.segs) == 0 {
			continue
		}
		reo := max(f.minRTT/4, repairReoWnd)
		lost, pass := r.lost(f.una, r.highSACK(f.una), now, f.minRTT, reo, f.repairWait(reo))
		if pass {
			continue // the next ACK passes it
		}
		if o := r.repairLost(lost, now); len(o) > 0 {
			out = append(out, o...)
		}
		if at, ok := r.nextRepairDue(f.repairWait(reo)); ok && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	w.repaired.Add(uint64(len(out)))
	if !next.IsZero() {
		w.armLocked(next)
	}
	send := w.send
	w.mu.Unlock()
	for _, p := range out {
		if send != nil {
			send(p)
		}
		p.DecRef()
	}
}

// highSACK is the end of the highest kept segment the scoreboard holds
// SACKed, or una.
func (r *repairState) highSACK(una seqnum.Value) seqnum.Value {
	for i := len(r.segs) - 1; i >= 0; i-- {
		if r.segs[i].sacked {
			return r.segs[i].end
		}
	}
	return una
}

// nextRepairDue is when the oldest outstanding repair is due again
// (after wait), if one is outstanding.
func (r *repairState) nextRepairDue(wait time.Duration) (time.Time, bool) {
	var at time.Time
	for _, s := range r.segs {
		if s.tries > 0 && !s.sacked && (at.IsZero() || s.sentAt.Before(at)) {
			at = s.sentAt
		}
	}
	return at.Add(wait), !at.IsZero()
}
