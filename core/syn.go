package core

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The link's early handshake retries work around a handshake's timers at
// heavy loss: gVisor (as Linux, RFC 6298) resends a SYN after 1 s, then
// 2, 4, 8 s, and its listener answers a resent SYN with no SYN-ACK (the
// SYN lies outside the window of its half-open connection: it sends a bare
// ACK, which the connecting side ignores) but resends its SYN-ACK on its
// own timer. At 30% loss each way a SYN and its SYN-ACK both arrive about
// half the time, so a handshake that waits 1+2+4 s is common. So:
//   - the connecting stack's link sends a copy of its stack's SYN when no
//     SYN-ACK came within Config.SYNRetry (250 ms), and again each
//     SYNRetry, up to synCopies after each SYN its stack sends (gVisor's
//     doubling timer goes on beneath: at most synCopies copies per second
//     of it). That is more aggressive than RFC 6298's 1 s initial timeout,
//     on purpose and bounded; the copies carry a timestamp moved on by the
//     time since the stack's first SYN (on the stack's millisecond
//     clock), so that the SYN-ACK that answers one echoes it and the first
//     RTT sample is that copy's round trip;
//   - the listening stack's link answers a resent SYN of a connection its
//     stack sent a SYN-ACK on with a copy of that SYN-ACK (echoing the
//     resent SYN's timestamp, as Linux does, its own moved on likewise):
//     one SYN-ACK per SYN received, at most synReplays per connection,
//     none for a SYN it has not seen twice, so a SYN flood draws no more
//     than it does without (and spoofed sources, each SYN a new
//     connection, none at all).
//
// Both forget a connection once its handshake is over (a SYN-ACK, an ACK
// or a reset arrives, or the stack sends a reset), and track at most
// maxSYNConns connections (past it a new one is not tracked: its
// handshake runs on gVisor's timers alone). Stacks joined by JoinPipe,
// which lose nothing, never retry.

const (
	// defaultSYNRetry is Config.SYNRetry's default.
	defaultSYNRetry = 250 * time.Millisecond
	// synCopies bounds the copies sent after each SYN of the stack.
	synCopies = 3
	// synReplays bounds the SYN-ACK copies sent per connection.
	synReplays = 4
	// maxSYNConns bounds the handshakes tracked per link.
	maxSYNConns = 1024
	// synForget is how long a handshake is tracked at most.
	synForget = 75 * time.Second
)

// synRetrier is a link's early handshake retries (see above).
type synRetrier struct {
	every atomic.Int64 // Config.SYNRetry; 0: off
	n     atomic.Int32 // len(conns), read without mu
	// send hands a copy to the link, with mu not held; the caller keeps
	// its reference.
	send func(*stack.PacketBuffer)

	mu sync.Mutex
	// +checklocks:mu
	conns map[dsackKey]*synConn
	// +checklocks:mu
	timer dueTimer
	// +checklocks:mu
	closed bool

	resent, replayed atomic.Uint64
}

// synConn is one handshake the link tracks.
type synConn struct {
	listen bool   // the stack answered a SYN: b is its SYN-ACK
	b      []byte // the stack's SYN or SYN-ACK, IP packet (behind link)
	link   int    // bytes of link header in front of b's IP packet
	// The stack's timestamp clock: tsVal at tsAt (its first segment).
	tsVal  uint32
	tsAt   time.Time
	ts     bool
	synSeq seqnum.Value // listen: the peer's SYN's sequence number
	due    time.Time    // connecting: when the next copy goes
	left   int          // copies (replays) left
	mine   *stack.PacketBuffer
	at     time.Time
}

// on reports whether retries are on.
func (r *synRetrier) on() bool { return r.every.Load() > 0 }

// outbound notes pkt, a packet the stack sends.
func (r *synRetrier) outbound(pkt *stack.PacketBuffer) {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return
	}
	t := header.TCP(pkt.TransportHeader().Slice())
	if len(t) < header.TCPMinimumSize {
		return
	}
	flags := t.Flags()
	if flags&(header.TCPFlagSyn|header.TCPFlagRst) == 0 && r.n.Load() == 0 {
		return
	}
	s, ok := outSegment(pkt)
	if !ok {
		return
	}
	k := s.key(true)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	c := r.conns[k]
	if c != nil && c.mine == pkt {
		c.mine = nil // a copy of ours on its way out
		return
	}
	switch {
	case flags&header.TCPFlagRst != 0:
		r.forgetLocked(k)
	case flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn:
		c = r.trackLocked(k, c, pkt, &s, false, now)
		if c != nil {
			c.left, c.due = synCopies, now.Add(time.Duration(r.every.Load()))
			r.armLocked(c.due)
		}
	case flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn|header.TCPFlagAck:
		if c = r.trackLocked(k, c, pkt, &s, true, now); c != nil {
			c.synSeq = seqnum.Value(t.AckNumber()).Add(^seqnum.Size(0)) // ack - 1
		}
	case c != nil && !c.listen:
		r.forgetLocked(k) // the handshake is over
	}
}

// outSegment parses the headers of pkt, an outbound TCP packet without
// payload (see outTCP).
func outSegment(pkt *stack.PacketBuffer) (s tcpSegment, ok bool) {
	s, ok = outTCP(pkt)
	return s, ok && pkt.Data().Size() == 0
}

// trackLocked keeps a copy of pkt (headers s), the stack's SYN or SYN-ACK
// on k, in k's entry (made if c is nil and the table has room), which it
// returns (nil if none).
//
// +checklocks:r.mu
func (r *synRetrier) trackLocked(k dsackKey, c *synConn, pkt *stack.PacketBuffer, s *tcpSegment, listen bool, now time.Time) *synConn {
	if c != nil && c.listen != listen {
		r.forgetLocked(k)
		c = nil
	}
	if c == nil {
		if len(r.conns) >= maxSYNConns {
			r.expireLocked(now)
		}
		if len(r.conns) >= maxSYNConns {
			return nil
		}
		if r.conns == nil {
			r.conns = make(map[dsackKey]*synConn)
		}
		o := header.ParseTCPOptions(header.TCP(s.tcp).Options())
		c = &synConn{listen: listen, tsVal: o.TSVal, ts: o.TS, tsAt: now, at: now, left: synReplays}
		r.conns[k] = c
		r.n.Store(int32(len(r.conns)))
	}
	link := pkt.LinkHeader().Slice()
	c.link = len(link)
	c.b = append(append(append(c.b[:0], link...), s.net...), s.tcp...)
	return c
}

// expireLocked forgets handshakes tracked longer than synForget (run
// when the table is full).
//
// +checklocks:r.mu
func (r *synRetrier) expireLocked(now time.Time) {
	for k, c := range r.conns {
		if now.Sub(c.at) > synForget {
			delete(r.conns, k)
		}
	}
	r.n.Store(int32(len(r.conns)))
}

// forgetLocked forgets k's handshake.
//
// +checklocks:r.mu
func (r *synRetrier) forgetLocked(k dsackKey) {
	delete(r.conns, k)
	r.n.Store(int32(len(r.conns)))
}

// inbound notes b, an inbound packet whose IP packet starts at b[off:]:
// it ends a tracked handshake, or, a SYN resent to a listening stack that
// answered it, draws a copy of the SYN-ACK, which it returns (the caller
// sends it and owns its reference, then calls sent).
func (r *synRetrier) inbound(b []byte, off int) (*stack.PacketBuffer, dsackKey) {
	if r.n.Load() == 0 || off > len(b) {
		return nil, dsackKey{}
	}
	s, ok := parseTCP(b[off:])
	if !ok {
		return nil, dsackKey{}
	}
	t := header.TCP(s.tcp)
	flags := t.Flags()
	k := s.key(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.conns[k]
	if c == nil || r.closed {
		return nil, k
	}
	switch {
	case flags&header.TCPFlagRst != 0 || (!c.listen && flags&header.TCPFlagSyn != 0):
		r.forgetLocked(k) // refused, or the SYN-ACK came
	case c.listen && flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn:
		if seqnum.Value(t.SequenceNumber()) != c.synSeq || c.left <= 0 || !s.checksumsValid() {
			return nil, k
		}
		c.left--
		echo := header.ParseTCPOptions(t.Options())
		p := c.copyLocked(time.Now(), echo.TSVal, echo.TS)
		c.mine = p
		r.replayed.Add(1)
		return p, k
	case c.listen && flags&header.TCPFlagAck != 0:
		r.forgetLocked(k) // the handshake's ACK came
	}
	return nil, k
}

// copyLocked builds a copy of c's segment with its timestamp moved on to
// now on the stack's clock and, when echo is set, echoing tsEcr.
func (c *synConn) copyLocked(now time.Time, tsEcr uint32, echo bool) *stack.PacketBuffer {
	frame := append([]byte(nil), c.b...)
	s, ok := parseTCP(frame[c.link:])
	if ok && c.ts {
		opts := header.TCP(s.tcp).Options()
		if at := tsEcrOffset(opts); at >= 4 {
			val := c.tsVal + uint32(now.Sub(c.tsAt)/time.Millisecond)
			binary.BigEndian.PutUint32(opts[at-4:], val)
			if echo {
				binary.BigEndian.PutUint32(opts[at:], tsEcr)
			}
		}
		t := header.TCP(s.tcp)
		t.SetChecksum(0)
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, s.src, s.dst, uint16(len(s.tcp)))
		t.SetChecksum(^checksum.Checksum(s.tcp, xsum))
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	pkt.NetworkProtocolNumber, pkt.TransportProtocolNumber = header.IPv4ProtocolNumber, header.TCPProtocolNumber
	if s.v6 {
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	}
	pkt.LinkHeader().Consume(c.link)
	pkt.NetworkHeader().Consume(len(s.net))
	pkt.TransportHeader().Consume(len(s.tcp))
	return pkt
}

// armLocked makes the timer fire at at, or earlier.
//
// +checklocks:r.mu
func (r *synRetrier) armLocked(at time.Time) {
	r.timer.arm(at, r.fire)
}

// fire sends the SYN copies that are due and arms the timer for the next.
func (r *synRetrier) fire() {
	r.mu.Lock()
	r.timer.fired()
	if r.closed {
		r.mu.Unlock()
		return
	}
	now := time.Now()
	every := time.Duration(r.every.Load())
	var out []*stack.PacketBuffer
	var next time.Time
	var keys []dsackKey
	for k, c := range r.conns {
		if c.listen || c.left <= 0 {
			continue
		}
		if !now.Before(c.due) {
			p := c.copyLocked(now, 0, false)
			c.mine = p
			out = append(out, p)
			keys = append(keys, k)
			c.left--
			c.due = now.Add(every)
		}
		if c.left > 0 && (next.IsZero() || c.due.Before(next)) {
			next = c.due
		}
	}
	if !next.IsZero() {
		r.armLocked(next)
	}
	send := r.send
	r.mu.Unlock()
	for i, p := range out {
		r.resent.Add(1)
		send(p)
		r.sent(keys[i], p)
		p.DecRef()
	}
}

// sent forgets p, a copy sent on k, as the copy on its way out: the link
// saw it go, or dropped it (its buffer may be reused for another packet).
func (r *synRetrier) sent(k dsackKey, p *stack.PacketBuffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.conns[k]; c != nil && c.mine == p {
		c.mine = nil
	}
}

// stop ends the retries: the link is closing.
func (r *synRetrier) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.timer.stop()
	r.conns = nil
	r.n.Store(0)
}

// synRetry is the interval of the link's early SYN copies: 0 for off.
func (c Config) synRetry() time.Duration {
	switch {
	case c.SYNRetry < 0:
		return 0
	case c.SYNRetry == 0:
		return defaultSYNRetry
	}
	return c.SYNRetry
}

// synInbound passes b, an inbound packet, to the handshake retries, and
// sends the SYN-ACK copy they answer it with, if any.
func (l *linkEP) synInbound(b []byte) {
	if p, k := l.syn.inbound(b, l.linkHeaderLen()); p != nil {
		l.sendProbe(p)
		l.syn.sent(k, p)
		p.DecRef()
	}
}
