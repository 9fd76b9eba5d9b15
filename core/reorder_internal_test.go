package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// reoHarness feeds a reorderer segments of one connection (stack local,
// peer remote) and records what it lets out, in order.
type reoHarness struct {
	t    *testing.T
	c    dsackCase
	r    *reorderer
	now  time.Time
	out  chan seqnum.Value // sequence numbers delivered, in order
	flow *reoFlow
}

func newReoHarness(t *testing.T, c dsackCase, longest time.Duration) *reoHarness {
	h := &reoHarness{t: t, c: c, r: &reorderer{}, now: time.Now(), out: make(chan seqnum.Value, 4096)}
	h.r.longest.Store(int64(longest))
	h.r.deliver = h.record
	t.Cleanup(h.r.stop)
	h.in(999, 0, header.TCPFlagSyn, 0)
	h.r.mu.Lock()
	for _, f := range h.r.flows {
		h.flow = f
	}
	h.r.mu.Unlock()
	return h
}

// record notes delivered packets.
func (h *reoHarness) record(pkts []reoPacket) {
	for _, p := range pkts {
		s, ok := parseTCP(p.b)
		if !ok {
			h.t.Errorf("delivered a packet that is not TCP: %x", p.b)
			continue
		}
		h.out <- seqnum.Value(header.TCP(s.tcp).SequenceNumber())
	}
}

// in hands the reorderer a segment of n payload bytes at seq with
// timestamp ts (none if 0) and delivers what it lets out.
func (h *reoHarness) in(seq uint32, n int, flags header.TCPFlags, ts uint32) {
	var opts []byte
	if ts != 0 {
		opts = tsOpt(ts, 1)
	}
	b := h.c.segment(false, flags, seq, 1, opts, make([]byte, n))
	v, f, rel := h.r.inbound(b, 0, header.IPv4ProtocolNumber, h.now)
	switch v {
	case reoPass:
		h.record([]reoPacket{{b: b}})
		return
	case reoKept:
		return
	case reoRelease:
		h.record([]reoPacket{{b: b}})
	}
	h.record(rel)
	h.r.drain(f, h.record)
}

// learned makes the connection's extent d, as if learned now.
func (h *reoHarness) learned(d time.Duration) {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.flow.winAt, h.flow.cur, h.flow.extent, h.flow.nCur = h.now, d, d, reorderMinEvidence
}

// expect checks that exactly seqs were delivered since the last call, in
// that order.
func (h *reoHarness) expect(seqs ...seqnum.Value) {
	h.t.Helper()
	for _, want := range seqs {
		select {
		case got := <-h.out:
			if got != want {
				h.t.Fatalf("delivered seq %d; want %d (of %v)", got, want, seqs)
			}
		case <-time.After(time.Minute):
			h.t.Fatalf("seq %d not delivered in a minute", want)
		}
	}
	select {
	case got := <-h.out:
		h.t.Fatalf("delivered seq %d too; want only %v", got, seqs)
	default:
	}
}

// TestReorderHold: once reordering was learned, segments above a gap are
// kept and go in, in order, when it fills, with the filler first; what is
// in order passes at once; a retransmission below the edge passes. IPv4
// and IPv6.
func TestReorderHold(t *testing.T) {
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			h := newReoHarness(t, c, time.Hour)
			h.expect(999)
			h.learned(time.Minute) // the timer never fires during the test
			h.in(1000, 100, header.TCPFlagAck, 5)
			h.expect(1000)
			h.in(1200, 100, header.TCPFlagAck, 5) // 1100 is late
			h.in(1300, 100, header.TCPFlagAck, 5)
			h.expect()
			h.in(1100, 100, header.TCPFlagAck, 5)
			h.expect(1100, 1200, 1300)
			h.in(1050, 100, header.TCPFlagAck, 6) // below the edge
			h.expect(1050)
			if h.r.held.Load() != 2 || h.r.filled.Load() != 1 || h.r.expired.Load() != 0 {
				t.Fatalf("held %d, filled %d, expired %d; want 2, 1, 0", h.r.held.Load(), h.r.filled.Load(), h.r.expired.Load())
			}
		})
	}
}

// TestReorderHoldOff: with nothing learned a gap goes through at once (a
// loss is reported as soon as without the hold).
func TestReorderHoldOff(t *testing.T) {
	h := newReoHarness(t, dsackCases[0], time.Hour)
	h.expect(999)
	h.in(1000, 100, header.TCPFlagAck, 5)
	h.in(1200, 100, header.TCPFlagAck, 5)
	h.in(1100, 100, header.TCPFlagAck, 7) // the retransmission
	h.expect(1000, 1200, 1100)
	if h.r.held.Load() != 0 {
		t.Fatalf("held %d; want 0", h.r.held.Load())
	}
}

// TestReorderLearn: a gap let through whose bytes arrive twice, one copy
// sent no later than the segment that showed the gap (by its timestamp),
// turns the hold on, with the first copy's arrival as the extent; two
// copies both sent later (retransmissions of a lost segment) do not.
func TestReorderLearn(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, next uint32 // the copies' timestamps; the gap showed at 10
		want        time.Duration
	}{
		{"late original first", 10, 12, 3 * time.Millisecond},
		{"retransmission first", 12, 10, 4 * time.Millisecond},
		{"two retransmissions", 11, 12, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newReoHarness(t, dsackCases[0], time.Hour)
			h.in(1000, 100, header.TCPFlagAck, 10)
			h.in(1200, 100, header.TCPFlagAck, 10) // shows the gap at 1100
			h.now = h.now.Add(3 * time.Millisecond)
			h.in(1100, 100, header.TCPFlagAck, tc.first)
			h.now = h.now.Add(time.Millisecond)
			h.in(1100, 100, header.TCPFlagAck, tc.next)
			h.r.mu.Lock()
			got := h.flow.extent
			h.r.mu.Unlock()
			if got != tc.want {
				t.Fatalf("extent %v; want %v", got, tc.want)
			}
			// One piece of evidence does not turn the hold on; three do.
			h.r.mu.Lock()
			hold, n := h.flow.hold(time.Hour), h.flow.nCur
			h.r.mu.Unlock()
			if hold != 0 {
				t.Fatalf("hold %v after %d pieces of evidence; want 0", hold, n)
			}
			if tc.want == 0 {
				return
			}
			for seq := uint32(1300); seq < 1300+2*300; seq += 300 {
				h.in(seq+200, 100, header.TCPFlagAck, 20) // shows the gap at seq
				h.now = h.now.Add(time.Millisecond)
				h.in(seq, 100, header.TCPFlagAck, 20) // late
				h.in(seq, 100, header.TCPFlagAck, 21) // and retransmitted
				h.in(seq+100, 100, header.TCPFlagAck, 21)
			}
			h.r.mu.Lock()
			hold, n = h.flow.hold(time.Hour), h.flow.nCur
			h.r.mu.Unlock()
			if hold == 0 {
				t.Fatalf("hold 0 after %d pieces of evidence; want on", n)
			}
		})
	}
}

// TestReorderHoldBounded: a connection keeps at most maxReorderSegs
// segments above a gap; the next lets everything through, in order, and
// nothing stays kept.
func TestReorderHoldBounded(t *testing.T) {
	h := newReoHarness(t, dsackCases[0], time.Hour)
	h.expect(999)
	h.learned(time.Minute) // the timer never fires during the test
	h.in(1000, 10, header.TCPFlagAck, 5)
	h.expect(1000)
	var want []seqnum.Value
	for i := range maxReorderSegs + 1 {
		seq := uint32(1020 + 10*i) // 1010 is missing
		h.in(seq, 10, header.TCPFlagAck, 5)
		want = append(want, seqnum.Value(seq))
	}
	h.expect(want...)
	h.r.mu.Lock()
	kept, segs := h.r.kept, len(h.flow.segs)
	h.r.mu.Unlock()
	if kept != 0 || segs != 0 || h.r.held.Load() != maxReorderSegs {
		t.Fatalf("kept %d (connection %d), held %d; want 0, 0, %d", kept, segs, h.r.held.Load(), maxReorderSegs)
	}
}

// TestReorderHoldExpires: a gap that does not fill is let through by the
// timer when its hold is up, what was kept in order.
func TestReorderHoldExpires(t *testing.T) {
	h := newReoHarness(t, dsackCases[1], 2*time.Millisecond)
	h.expect(999)
	h.learned(time.Millisecond)
	h.now = time.Now()
	h.in(1000, 100, header.TCPFlagAck, 5)
	h.in(1200, 100, header.TCPFlagAck, 5)
	h.in(1300, 100, header.TCPFlagAck, 5)
	h.expect(1000, 1200, 1300) // the last two wait for the timer
	if h.r.held.Load() != 2 || h.r.expired.Load() != 1 {
		t.Fatalf("held %d, expired %d; want 2 and 1", h.r.held.Load(), h.r.expired.Load())
	}
}

// BenchmarkReorderInOrder is the hold's cost per in-order segment (the
// common case): parse, look up, pass.
func BenchmarkReorderInOrder(b *testing.B) {
	c := dsackCases[0]
	var r reorderer
	r.longest.Store(int64(defaultReorderHold))
	defer r.stop()
	r.inbound(c.segment(false, header.TCPFlagSyn, 999, 0, nil, nil), 0, header.IPv4ProtocolNumber, time.Now())
	pkts := make([][]byte, 1024)
	for i := range pkts {
		pkts[i] = c.segment(false, header.TCPFlagAck, uint32(1000+1448*i), 1, tsOpt(5, 1), make([]byte, 1448))
	}
	now := time.Now()
	i := 0
	for b.Loop() {
		p := pkts[i%len(pkts)]
		header.TCP(p[header.IPv4MinimumSize:]).SetSequenceNumber(uint32(1000 + 1448*i))
		if v, _, _ := r.inbound(p, 0, header.IPv4ProtocolNumber, now); v != reoPass {
			b.Fatalf("verdict %d; want pass", v)
		}
		i++
	}
}

// TestReorderHoldExpiresOnArrival: a gap whose hold is up when the next
// segment arrives (before the timer) goes through before that segment.
func TestReorderHoldExpiresOnArrival(t *testing.T) {
	h := newReoHarness(t, dsackCases[0], time.Hour)
	h.expect(999)
	h.learned(time.Minute)
	h.in(1000, 100, header.TCPFlagAck, 5)
	h.in(1200, 100, header.TCPFlagAck, 5) // 1100 is lost
	h.expect(1000)
	h.now = h.now.Add(time.Hour) // the hold is up
	h.in(1300, 100, header.TCPFlagAck, 6)
	h.expect(1200, 1300)
}
