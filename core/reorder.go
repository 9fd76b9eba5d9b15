package core

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The link's reorder hold works around RACK's reordering window in
// gVisor's sender, which its millisecond RTT keeps at about 1 ms or less
// whatever DSACK reports (docs/gvisor-upstream.md §3): on a fast path a
// packet that a network holds back a millisecond counts as lost, is sent
// again and the window is cut. So the receiving stack's link puts the
// packets back in order before its gVisor sees them: a TCP segment that
// arrives above the next sequence number the link expects on its
// connection is kept (a copy) until the gap below it fills, then the
// filler and everything kept that it makes contiguous go in, in order; if
// the gap has not filled when its hold is up (a real loss), what is kept
// goes in as it is and gVisor acknowledges it with SACK as without a hold.
// gVisor so sees no reordering and sends no SACK for it, and the ACK clock
// keeps going: every segment the gap holds back is acknowledged
// cumulatively once it fills (an ACK held instead, Config.SACKHold, stops
// the clock).
//
// The hold is adaptive, per connection: the link learns the connection's
// reordering extent, the longest time a gap took to fill with the sender's
// first copy over the last one or two reorderWindows, and holds a gap for
// 5/4 of it plus reorderMargin, at most Config.ReorderHold. A gap that
// fills while it is held is measured directly (unless the filler is a
// retransmission: sent after the segment that showed the gap, by their
// timestamps, or of bytes let through before); a gap let through (before
// anything was learned, or after its hold was up) is remembered
// (reorderHoles per connection), and when its bytes arrive twice, one copy
// sent no later than the segment that showed the gap, that copy was the
// late first one (see noteFill). Nothing learned, nothing is held: on a
// path that loses packets but does not reorder them the hold stays off and
// a loss is reported as soon as without it. The hold needs
// reorderMinEvidence pieces of evidence, and goes off while more gaps ran
// out than there is evidence. Evidence beyond Config.ReorderHold is
// ignored (it cannot be used, and a retransmission repeated after a
// timeout looks the same).
//
// Bounded: at most maxReorderSegs segments are kept per connection and
// maxReorderSegsLink per link (past either, the connection's kept segments
// go in at once), and maxReorderFlows connections are tracked. One timer
// per link (time.AfterFunc) lets out what is due. Segments of one
// connection go into gVisor in order: while one goroutine delivers a
// connection's released segments, another's segments of that connection
// are queued behind them. Only segments delivered one by one
// (linkEP.deliver) are held: not those of a joined peer (JoinPipe loses
// and reorders nothing), nor those a device hands over through receive
// offloads (GRO).

const (
	// maxReorderSegs bounds the segments kept for one connection.
	maxReorderSegs = 512
	// maxReorderSegsLink bounds those kept for all connections of a link.
	maxReorderSegsLink = 4096
	// maxReorderFlows bounds the connections a link tracks.
	maxReorderFlows = 4096
	// reorderHoles is how many gaps let through a connection remembers.
	reorderHoles = 8
	// reorderMargin is added to a connection's extent to make its hold.
	reorderMargin = 250 * time.Microsecond
	// reorderWindow is how long evidence of reordering counts: the extent
	// is the longest of the current window's and the last one's.
	reorderWindow = time.Second
	// reorderMinEvidence is how many pieces of evidence of reordering
	// the current and the last window must hold before the connection
	// holds gaps: reordering gives hundreds a second, while two
	// retransmissions of a lost segment, the first within the
	// millisecond of the segment that showed the gap, rarely look like
	// one (see noteFill).
	reorderMinEvidence = 3
	// minReorderExtent is the extent below which a connection holds none.
	minReorderExtent = 50 * time.Microsecond
	// maxReorderJump bounds how far above the expected sequence number a
	// segment may start, or end, to be held or to move the expectation
	// (a corrupted or stale segment is passed on as it is).
	maxReorderJump = 1 << 24
	// defaultReorderHold is Config.ReorderHold's default.
	defaultReorderHold = 8 * time.Millisecond
)

// reorderer is a link's reorder hold (see above).
type reorderer struct {
	// longest is the longest hold (Config.ReorderHold); 0: off.
	longest atomic.Int64
	// deliver hands a released packet to the stack from the timer, with
	// no lock held; set once by the link.
	deliver func(pkts []reoPacket)

	mu sync.Mutex
	// +checklocks:mu
	flows map[dsackKey]*reoFlow
	// +checklocks:mu
	kept int // segments kept, all connections
	// +checklocks:mu
	timer dueTimer
	// +checklocks:mu
	closed bool

	held, filled, expired atomic.Uint64
}

// reoPacket is one inbound packet kept (a copy) or let out.
type reoPacket struct {
	b     []byte // the packet, behind its link header
	proto tcpip.NetworkProtocolNumber
	seq   seqnum.Value
	end   seqnum.Value
	at    time.Time // when it arrived
	ts    segTS     // its timestamp
}

// segTS is a segment's timestamp (TSval), if it has one.
type segTS struct {
	val uint32
	ok  bool
}

// tsOf returns the timestamp of the TCP header t.
func tsOf(t header.TCP) segTS {
	opts := t.Options()
	// gVisor's and Linux's layout: NOP, NOP, timestamps.
	if len(opts) >= 12 && opts[0] == header.TCPOptionNOP && opts[1] == header.TCPOptionNOP &&
		opts[2] == header.TCPOptionTS && opts[3] == header.TCPOptionTSLength {
		return segTS{val: binary.BigEndian.Uint32(opts[4:]), ok: true}
	}
	o := header.ParseTCPOptions(opts)
	return segTS{val: o.TSVal, ok: o.TS}
}

// notNewer reports whether a was sent no later than b, by their
// timestamps (false without both).
func (a segTS) notNewer(b segTS) bool { return a.ok && b.ok && !tsNewer(a.val, b.val) }

// reoHole is a gap a connection let through to the stack.
type reoHole struct {
	start, end seqnum.Value
	at         time.Time // when it showed
	ts         segTS     // the timestamp of the segment that showed it
	fills      int       // copies of its first bytes that arrived since
	first      time.Time // when the first did
	old        bool      // one of them was sent before the segment that showed it
}

// reoFlow is what the link knows of one connection's receive side.
type reoFlow struct {
	known  bool
	nxt    seqnum.Value // the next sequence number expected
	segs   []reoPacket  // kept, by sequence number, all above nxt
	gapAt  time.Time    // when the gap below segs[0] showed
	gapTS  segTS        // the timestamp of the segment that showed it
	holes  [reorderHoles]reoHole
	hole   int           // next slot in holes
	extent time.Duration // the reordering extent learned: max(prev, cur)
	// The longest evidence of the current window (from winAt) and of the
	// one before.
	cur, prev time.Duration
	// nCur and nPrev count the evidence of those windows, eCur and
	// ePrev the gaps whose hold ran out.
	nCur, nPrev, eCur, ePrev int
	winAt                    time.Time
	// busy is set while a goroutine delivers this connection's released
	// segments; others queue theirs in out, which it delivers too.
	busy bool
	out  []reoPacket
}

// reoVerdict is what the link does with an inbound packet.
type reoVerdict int

const (
	reoPass        reoVerdict = iota // deliver it now
	reoKept                          // kept (or queued behind a deliverer): done
	reoRelease                       // deliver it, then the released ones
	reoReleaseOnly                   // deliver the released ones (it is among them, or kept)
)

// on reports whether the hold is on.
func (r *reorderer) on() bool { return r.longest.Load() > 0 }

// hold is how long f holds a gap, with longest the configured bound:
// none until there are reorderMinEvidence pieces of evidence in the
// current and the last window, nor while more gaps ran out in them than
// there is evidence (a path that loses, where something looked like
// reordering once: each loss then costs the hold).
func (f *reoFlow) hold(longest time.Duration) time.Duration {
	n := f.nCur + f.nPrev
	if f.extent < minReorderExtent || n < reorderMinEvidence || f.eCur+f.ePrev > n {
		return 0
	}
	return min(longest, f.extent+f.extent/4+reorderMargin)
}

// learn takes d, measured at now, as evidence of f's reordering extent:
// the longest of the evidence of the last one or two reorderWindows
// (used once there are reorderMinEvidence pieces of it).
func (f *reoFlow) learn(d, longest time.Duration, now time.Time) {
	if d > longest || d <= 0 {
		return
	}
	f.age(now)
	f.cur = max(f.cur, d)
	f.nCur++
	f.extent = max(f.prev, f.cur)
}

// age starts a new window of evidence once the current one is over.
func (f *reoFlow) age(now time.Time) {
	if now.Sub(f.winAt) < reorderWindow {
		return
	}
	if now.Sub(f.winAt) < 2*reorderWindow {
		f.prev, f.nPrev, f.ePrev = f.cur, f.nCur, f.eCur
	} else {
		f.prev, f.nPrev, f.ePrev = 0, 0, 0
	}
	f.cur, f.nCur, f.eCur, f.winAt = 0, 0, 0, now
	f.extent = f.prev
}

// inbound decides on b, an inbound packet whose IP packet starts at
// b[off:]. For reoRelease the caller delivers b, then rel, for
// reoReleaseOnly rel alone, and then calls drain(f) (f is busy until
// then); for reoKept it is done with b.
func (r *reorderer) inbound(b []byte, off int, proto tcpip.NetworkProtocolNumber, now time.Time) (v reoVerdict, f *reoFlow, rel []reoPacket) {
	if off > len(b) {
		return reoPass, nil, nil
	}
	s, ok := parseTCP(b[off:])
	if !ok {
		return reoPass, nil, nil
	}
	t := header.TCP(s.tcp)
	flags := t.Flags()
	seq := seqnum.Value(t.SequenceNumber())
	k := s.key(false)
	longest := time.Duration(r.longest.Load())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return reoPass, nil, nil
	}
	f = r.flows[k]
	switch {
	case flags&header.TCPFlagRst != 0:
		return r.resetLocked(k, f, b, proto)
	case flags&header.TCPFlagSyn != 0:
		f = r.addLocked(k, f)
		f.known, f.nxt = true, seq.Add(1)
		return reoPass, nil, nil
	}
	size := seqnum.Size(s.payload)
	if flags&header.TCPFlagFin != 0 {
		size++
	}
	if size == 0 {
		return r.queueIfBusyLocked(f, b, proto)
	}
	if f == nil {
		f = r.addLocked(k, nil)
	}
	end := seq.Add(size)
	ts := tsOf(t)
	if !f.known {
		f.known, f.nxt = true, seq
	}
	if far(f.nxt, seq, end) {
		return r.queueIfBusyLocked(f, b, proto) // stale or corrupted: leave it to gVisor
	}
	rel = r.expireLocked(f, now, longest, nil)
	if seq.LessThanEq(f.nxt) {
		return r.inOrderLocked(f, b, proto, seq, end, ts, now, longest, rel)
	}
	return r.aboveLocked(f, b, proto, seq, end, ts, now, longest, rel)
}

// far reports whether the segment [seq, end) lies further than
// maxReorderJump below or above nxt.
func far(nxt, seq, end seqnum.Value) bool {
	if seq.LessThan(nxt) {
		return seq.Size(nxt) > maxReorderJump
	}
	return nxt.Size(end) > maxReorderJump
}

// inOrderLocked takes a segment [seq, end) at or below f.nxt: it is
// delivered, and with it what it makes contiguous.
//
// +checklocks:r.mu
func (r *reorderer) inOrderLocked(f *reoFlow, b []byte, proto tcpip.NetworkProtocolNumber, seq, end seqnum.Value, ts segTS, now time.Time, longest time.Duration, rel []reoPacket) (reoVerdict, *reoFlow, []reoPacket) {
	expired := len(rel) // let out by their hold's end: they go before b
	if seq.LessThan(f.nxt) {
		f.noteFill(seq, end, ts, now, longest)
	}
	if f.nxt.LessThan(end) {
		if len(f.segs) > 0 {
			// A gap held filled late by the sender's first copy: not a
			// retransmission (sent after the segment that showed the
			// gap, or of bytes the stack has already reported missing).
			if (!tsNewer(ts.val, f.gapTS.val) || !ts.ok || !f.gapTS.ok) && !f.reported(f.nxt) {
				f.learn(now.Sub(f.gapAt), longest, now)
			}
			r.filled.Add(1)
		}
		f.nxt = end
		rel = r.popLocked(f, rel)
	}
	if f.busy {
		f.out = append(f.out, rel[:expired]...)
		f.out = append(f.out, reoPacket{b: clone(b), proto: proto})
		f.out = append(f.out, rel[expired:]...)
		return reoKept, f, nil
	}
	if len(rel) == 0 {
		return reoPass, f, nil
	}
	f.busy = true
	if expired == 0 {
		return reoRelease, f, rel
	}
	out := append(make([]reoPacket, 0, len(rel)+1), rel[:expired]...)
	out = append(out, reoPacket{b: clone(b), proto: proto})
	return reoReleaseOnly, f, append(out, rel[expired:]...)
}

// aboveLocked takes a segment [seq, end) above f.nxt: a gap below it.
//
// +checklocks:r.mu
func (r *reorderer) aboveLocked(f *reoFlow, b []byte, proto tcpip.NetworkProtocolNumber, seq, end seqnum.Value, ts segTS, now time.Time, longest time.Duration, rel []reoPacket) (reoVerdict, *reoFlow, []reoPacket) {
	hold := f.hold(longest)
	if hold <= 0 || len(f.segs) >= maxReorderSegs || r.kept >= maxReorderSegsLink {
		// Let the gap through: what is kept goes first, in order.
		rel = r.flushLocked(f, now, rel)
		f.addHole(f.nxt, seq, now, ts)
		f.nxt = end
		if f.busy {
			f.out = append(f.out, rel...)
			f.out = append(f.out, reoPacket{b: clone(b), proto: proto})
			return reoKept, f, nil
		}
		if len(rel) == 0 {
			return reoPass, f, nil
		}
		// b goes after rel: keep it as the last of them.
		rel = append(rel, reoPacket{b: clone(b), proto: proto})
		f.busy = true
		return reoReleaseOnly, f, rel
	}
	if len(f.segs) == 0 {
		f.gapAt, f.gapTS = now, ts
	}
	f.insert(reoPacket{b: clone(b), proto: proto, seq: seq, end: end, at: now, ts: ts})
	r.kept++
	r.held.Add(1)
	r.armLocked(f.gapAt.Add(hold))
	if len(rel) > 0 {
		if f.busy {
			f.out = append(f.out, rel...)
			return reoKept, f, nil
		}
		f.busy = true
		return reoReleaseOnly, f, rel
	}
	return reoKept, f, nil
}

// queueIfBusyLocked passes b, or queues it behind f's deliverer.
//
// +checklocks:r.mu
func (r *reorderer) queueIfBusyLocked(f *reoFlow, b []byte, proto tcpip.NetworkProtocolNumber) (reoVerdict, *reoFlow, []reoPacket) {
	if f != nil && f.busy {
		f.out = append(f.out, reoPacket{b: clone(b), proto: proto})
		return reoKept, f, nil
	}
	return reoPass, nil, nil
}

// resetLocked forgets k's connection on a reset; what it kept goes first.
//
// +checklocks:r.mu
func (r *reorderer) resetLocked(k dsackKey, f *reoFlow, b []byte, proto tcpip.NetworkProtocolNumber) (reoVerdict, *reoFlow, []reoPacket) {
	if f == nil {
		return reoPass, nil, nil
	}
	rel := r.flushLocked(f, time.Time{}, nil)
	delete(r.flows, k)
	if !f.busy && len(rel) == 0 {
		return reoPass, nil, nil
	}
	// The reset goes after what was kept.
	rel = append(rel, reoPacket{b: clone(b), proto: proto})
	if f.busy {
		f.out = append(f.out, rel...)
		return reoKept, f, nil
	}
	f.busy = true
	return reoReleaseOnly, f, rel
}

// addLocked makes the entry for k, replacing f (its kept segments are
// dropped: a new connection on the same 4-tuple) and forgetting another
// if the table is full.
//
// +checklocks:r.mu
func (r *reorderer) addLocked(k dsackKey, f *reoFlow) *reoFlow {
	if f != nil {
		r.kept -= len(f.segs)
		f.segs = nil
		if !f.busy {
			return f.reset()
		}
	}
	if r.flows == nil {
		r.flows = make(map[dsackKey]*reoFlow)
	}
	if len(r.flows) >= maxReorderFlows {
		for old, o := range r.flows {
			if len(o.segs) == 0 && !o.busy {
				delete(r.flows, old)
				break
			}
		}
	}
	nf := &reoFlow{}
	if len(r.flows) < maxReorderFlows {
		r.flows[k] = nf
	}
	return nf
}

// reset clears f for a new connection.
func (f *reoFlow) reset() *reoFlow {
	*f = reoFlow{}
	return f
}

// insert keeps p in f.segs, in sequence order.
func (f *reoFlow) insert(p reoPacket) {
	i := len(f.segs)
	for i > 0 && p.seq.LessThan(f.segs[i-1].seq) {
		i--
	}
	f.segs = append(f.segs, reoPacket{})
	copy(f.segs[i+1:], f.segs[i:])
	f.segs[i] = p
}

// popLocked moves the kept segments that f.nxt has reached to rel,
// moving f.nxt on, and notes when the gap below the rest showed.
//
// +checklocks:r.mu
func (r *reorderer) popLocked(f *reoFlow, rel []reoPacket) []reoPacket {
	n := 0
	for n < len(f.segs) && f.segs[n].seq.LessThanEq(f.nxt) {
		if f.nxt.LessThan(f.segs[n].end) {
			f.nxt = f.segs[n].end
		}
		rel = append(rel, f.segs[n])
		n++
	}
	if n == 0 {
		return rel
	}
	r.kept -= n
	rest := copy(f.segs, f.segs[n:])
	clear(f.segs[rest:])
	f.segs = f.segs[:rest]
	if rest > 0 {
		f.gapAt, f.gapTS = f.segs[0].at, f.segs[0].ts
		for _, s := range f.segs[1:] {
			if s.at.Before(f.gapAt) {
				f.gapAt, f.gapTS = s.at, s.ts
			}
		}
	}
	return rel
}

// expireLocked moves to rel the kept segments of f whose gap's hold is up
// at now, noting each such gap.
//
// +checklocks:r.mu
func (r *reorderer) expireLocked(f *reoFlow, now time.Time, longest time.Duration, rel []reoPacket) []reoPacket {
	for len(f.segs) > 0 && !now.Before(f.gapAt.Add(f.hold(longest))) {
		r.expired.Add(1)
		f.age(now)
		f.eCur++
		f.addHole(f.nxt, f.segs[0].seq, f.gapAt, f.segs[0].ts)
		f.nxt = f.segs[0].seq
		rel = r.popLocked(f, rel)
	}
	return rel
}

// flushLocked moves every kept segment of f to rel, noting the gaps.
//
// +checklocks:r.mu
func (r *reorderer) flushLocked(f *reoFlow, now time.Time, rel []reoPacket) []reoPacket {
	for len(f.segs) > 0 {
		f.addHole(f.nxt, f.segs[0].seq, f.gapAt, f.segs[0].ts)
		f.nxt = f.segs[0].seq
		rel = r.popLocked(f, rel)
	}
	return rel
}

// addHole remembers the gap [start, end) let through, which showed at at,
// by a segment of timestamp ts.
func (f *reoFlow) addHole(start, end seqnum.Value, at time.Time, ts segTS) {
	if !start.LessThan(end) {
		return
	}
	f.holes[f.hole] = reoHole{start: start, end: end, at: at, ts: ts}
	f.hole = (f.hole + 1) % reorderHoles
}

// reported reports whether seq lies in a gap f let through (which its
// stack has reported missing, so that the sender retransmits it).
func (f *reoFlow) reported(seq seqnum.Value) bool {
	for _, h := range f.holes {
		if h.start != h.end && h.start.LessThanEq(seq) && seq.LessThan(h.end) {
			return true
		}
	}
	return false
}

// noteFill notes a segment [seq, end), of timestamp ts, below f.nxt: if
// it starts a gap let through whose first bytes arrived once already, one
// of the two copies may have been the sender's first, late, and the other
// its retransmission. A copy sent after the segment that showed the gap
// (a newer timestamp) is a retransmission; one sent no later, at the
// timestamps' millisecond, may be the late first copy, and its arrival is
// taken for the extent (the later one if both may be). Two
// retransmissions of a lost segment (gVisor's and a recovery probe) so
// count as evidence only when the first was sent within the millisecond
// of the segment that showed the gap, and then as an extent that short.
// Without timestamps the first copy's arrival is taken.
func (f *reoFlow) noteFill(seq, end seqnum.Value, ts segTS, now time.Time, longest time.Duration) {
	for i := range f.holes {
		h := &f.holes[i]
		if h.start == h.end || !seq.LessThanEq(h.start) || !h.start.LessThan(end) {
			continue
		}
		old := ts.notNewer(h.ts)
		if h.fills++; h.fills == 1 {
			h.first, h.old = now, old
			continue
		}
		switch {
		case !h.ts.ok || !ts.ok:
			f.learn(h.first.Sub(h.at), longest, now)
		case old:
			f.learn(now.Sub(h.at), longest, now)
		case h.old:
			f.learn(h.first.Sub(h.at), longest, now)
		}
		*h = reoHole{}
	}
}

// armLocked makes the timer fire at at, or earlier.
//
// +checklocks:r.mu
func (r *reorderer) armLocked(at time.Time) {
	r.timer.arm(at, r.fire)
}

// fire lets out what is due and arms the timer for the next.
func (r *reorderer) fire() {
	r.mu.Lock()
	r.timer.fired()
	if r.closed {
		r.mu.Unlock()
		return
	}
	now := time.Now()
	longest := time.Duration(r.longest.Load())
	var mine []*reoFlow
	var rel []reoPacket
	next := time.Time{}
	for _, f := range r.flows {
		if len(f.segs) == 0 {
			continue
		}
		out := r.expireLocked(f, now, longest, nil)
		if len(f.segs) > 0 {
			if at := f.gapAt.Add(f.hold(longest)); next.IsZero() || at.Before(next) {
				next = at
			}
		}
		switch {
		case len(out) == 0:
		case f.busy:
			f.out = append(f.out, out...)
		default:
			f.busy = true
			mine = append(mine, f)
			rel = append(rel, out...)
		}
	}
	if !next.IsZero() {
		r.armLocked(next)
	}
	r.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	r.deliver(rel)
	for _, f := range mine {
		r.drain(f, r.deliver)
	}
}

// drain delivers, through deliver, what was queued behind f's deliverer
// (the caller), then marks f not busy.
func (r *reorderer) drain(f *reoFlow, deliver func([]reoPacket)) {
	for {
		r.mu.Lock()
		out := f.out
		f.out = nil
		if len(out) == 0 || r.closed {
			f.busy = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		deliver(out)
	}
}

// stop drops every kept segment: the link is closing.
func (r *reorderer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.timer.stop()
	r.flows, r.kept = nil, 0
}

// clone copies b.
func clone(b []byte) []byte { return append([]byte(nil), b...) }

// reorderInbound passes b (of proto, for gVisor's dispatcher d) through
// the reorder hold and delivers what it lets out; it reports whether it
// took b.
func (l *linkEP) reorderInbound(d stack.NetworkDispatcher, proto tcpip.NetworkProtocolNumber, b []byte) bool {
	v, f, rel := l.reorder.inbound(b, l.linkHeaderLen(), proto, time.Now())
	switch v {
	case reoPass:
		return false
	case reoKept:
		return true
	case reoRelease:
		l.deliverTo(d, proto, b)
	}
	deliver := func(pkts []reoPacket) {
		for _, p := range pkts {
			l.deliverTo(d, p.proto, p.b)
		}
	}
	deliver(rel)
	l.reorder.drain(f, deliver)
	return true
}

// deliverReleased delivers packets the reorder hold's timer let out, as a
// PushDevice's Receive does: they are dropped once the link is closed.
func (l *linkEP) deliverReleased(pkts []reoPacket) {
	l.inMu.RLock()
	defer l.inMu.RUnlock()
	if l.inClosed || l.in.enter(true) != nil {
		return
	}
	defer l.in.leave()
	l.dispMu.RLock()
	d := l.dispatcher
	l.dispMu.RUnlock()
	if d == nil {
		return
	}
	for _, p := range pkts {
		l.deliverTo(d, p.proto, p.b)
	}
}

// reorderHold is the bound of the link's reorder hold: 0 for off.
func (c Config) reorderHold() time.Duration {
	switch {
	case c.ReorderHold < 0:
		return 0
	case c.ReorderHold == 0:
		return defaultReorderHold
	}
	return c.ReorderHold
}
