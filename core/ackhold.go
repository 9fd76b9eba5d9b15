package core

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The reply ACK hold (ForwardConfig.ACKHold): gVisor acknowledges every
// data segment at once, so a 1-byte request costs a pure ACK (a device
// write, a wake-up of the outbound pump, the peer's receive path) that the
// reply, a few tens of microseconds later, would have carried anyway. The
// link holds back a pure ACK that acknowledges less than a full segment of
// new data (a request, not a stream: a stream's ACKs cover whole segments
// and are never held) for up to the hold; the connection's next segment
// that acknowledges as far (the reply, a FIN, a later ACK) drops it, and
// when the time is up it goes out as it was. It is the receiver's delayed
// ACK of RFC 1122 §4.2.3.2, bounded far below Linux's 40 ms: a peer that
// waits for the ACK (Nagle's algorithm holding its next small segment, a
// FIN_WAIT_1) waits at most the hold. Never held: duplicate ACKs and
// window updates (nothing new acknowledged), ACKs with SACK blocks, and a
// second ACK while one is held, which sends the held one first (ACKs are
// delayed, never thinned).

// maxACKFlows bounds the connections the hold tracks; past it one not
// holding an ACK is forgotten (its next ACK is then sent at once).
const maxACKFlows = 4096

// ackFlow is one connection's state: the highest ACK number it sent, and
// the ACK held back, if any.
type ackFlow struct {
	acked  seqnum.Value
	held   *stack.PacketBuffer
	heldAt time.Time
}

// ackHolder is the link's reply ACK hold. Its fields are guarded by the
// link's mu (it decides per packet in writePkts, under that lock, which
// keeps a held ACK and the segment that covers it in order).
type ackHolder struct {
	holdFor time.Duration // 0: off; set before the link carries packets
	flows   map[dsackKey]*ackFlow
	holding int // flows with a held ACK
	timer   dueTimer
	closed  bool

	held, covered uint64 // ACKs held; of them, dropped as covered
}

// ackSegment is what the hold reads of an outbound TCP segment.
type ackSegment struct {
	key   dsackKey
	ack   seqnum.Value
	flags header.TCPFlags
	pure  bool // ACK alone, no payload, no SACK blocks
	size  int  // payload bytes
}

// parseACKSegment reads pkt's connection and TCP header (see outTCP); ok
// is false for anything but a TCP segment with the ACK or RST flag.
func parseACKSegment(pkt *stack.PacketBuffer) (s ackSegment, ok bool) {
	seg, ok := outTCP(pkt)
	if !ok {
		return s, false
	}
	t := header.TCP(seg.tcp)
	s.key = seg.key(true)
	s.flags, s.ack, s.size = t.Flags(), seqnum.Value(t.AckNumber()), pkt.Data().Size()
	s.pure = s.flags == header.TCPFlagAck && s.size == 0 && len(header.ParseTCPOptions(t.Options()).SACKBlocks) == 0
	return s, s.flags&header.TCPFlagAck != 0 || s.flags&header.TCPFlagRst != 0
}

// holdACKLocked decides on pkt, an outbound packet: it reports whether
// the hold keeps it (with a reference of its own). Before that it drops a
// held ACK of the same connection that pkt covers (pkt acknowledges as
// far and is not held itself), or queues it, in order before pkt.
//
// +checklocks:l.mu
func (l *linkEP) holdACKLocked(pkt *stack.PacketBuffer) bool {
	a := &l.acks
	if a.holdFor <= 0 || a.closed {
		return false
	}
	s, ok := parseACKSegment(pkt)
	if !ok {
		return false
	}
	f := a.flows[s.key]
	end := s.flags&(header.TCPFlagRst|header.TCPFlagFin|header.TCPFlagSyn) != 0
	hold := f != nil && !end && s.pure && f.acked.LessThan(s.ack) && f.acked.Size(s.ack) < l.requestSize()
	if f != nil && f.held != nil {
		if !hold && s.flags&header.TCPFlagAck != 0 && !s.ack.LessThan(f.acked) {
			a.dropLocked(f)
			a.covered++
		} else {
			l.releaseHeldLocked(f)
		}
	}
	switch {
	case end:
		delete(a.flows, s.key)
		return false
	case f == nil:
		a.trackLocked(s)
		return false
	}
	if f.acked.LessThan(s.ack) {
		f.acked = s.ack
	}
	if !hold {
		return false
	}
	f.held, f.heldAt = pkt.IncRef(), time.Now()
	a.holding++
	a.held++
	a.timer.arm(f.heldAt.Add(a.holdFor), l.ackHoldFired)
	return true
}

// requestSize is the acknowledged advance under which a pure ACK is a
// request's (less than a full segment at the link's MTU).
func (l *linkEP) requestSize() seqnum.Size {
	return seqnum.Size(max(int(l.mtu.Load())-header.IPv6MinimumSize-header.TCPMinimumSize, 1))
}

// trackLocked starts tracking s's connection, forgetting one that holds
// nothing when the table is full.
func (a *ackHolder) trackLocked(s ackSegment) {
	if a.flows == nil {
		a.flows = make(map[dsackKey]*ackFlow)
	}
	if len(a.flows) >= maxACKFlows {
		for k, f := range a.flows {
			if f.held == nil {
				delete(a.flows, k)
				break
			}
		}
		if len(a.flows) >= maxACKFlows {
			return
		}
	}
	a.flows[s.key] = &ackFlow{acked: s.ack}
}

// dropLocked lets go of f's held ACK.
func (a *ackHolder) dropLocked(f *ackFlow) {
	f.held.DecRef()
	f.held = nil
	a.holding--
}

// ackHoldFired sends the held ACKs whose time is up.
func (l *linkEP) ackHoldFired() {
	l.mu.Lock()
	a := &l.acks
	a.timer.fired()
	sent := false
	if !a.closed {
		now := time.Now()
		var next time.Time
		for _, f := range a.flows {
			if f.held == nil {
				continue
			}
			due := f.heldAt.Add(a.holdFor)
			if !now.Before(due) {
				l.releaseHeldLocked(f)
				sent = true
			} else if next.IsZero() || due.Before(next) {
				next = due
			}
		}
		if !next.IsZero() {
			a.timer.arm(next, l.ackHoldFired)
		}
	}
	l.mu.Unlock()
	if sent && !l.holding.Load() {
		l.flushOrWake()
	}
}

// releaseHeldLocked queues f's held ACK (its reference) behind what is
// queued, or drops it, counted, when the queue is full.
//
// +checklocks:l.mu
func (l *linkEP) releaseHeldLocked(f *ackFlow) {
	p := f.held
	f.held = nil
	l.acks.holding--
	if l.n < len(l.q) && !l.sendClosed {
		l.putLocked(p)
		return
	}
	p.DecRef()
	l.drops.Add(1)
}

// stopACKHold drops every held ACK and stops the timer (the link closes).
func (l *linkEP) stopACKHold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &l.acks
	a.closed = true
	a.timer.stop()
	for _, f := range a.flows {
		if f.held != nil {
			a.dropLocked(f)
		}
	}
}

// ackHoldStats returns the ACKs held and, of them, covered.
func (l *linkEP) ackHoldStats() (held, covered uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks.held, l.acks.covered
}
