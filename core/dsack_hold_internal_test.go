package core

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestSACKHold: with a hold set, a pure ACK that reports a gap is held
// back; the stack's next ACK that covers the gap drops it (it never goes
// out), a newer gap-reporting ACK replaces it, and the newest goes out
// once the hold is up; an ACK with a DSACK report, and any ACK without a
// hold set, goes out at once. IPv4 and IPv6.
func TestSACKHold(t *testing.T) {
	const rcvNxt = 10000
	for _, c := range dsackCases {
		t.Run(c.name, func(t *testing.T) {
			sent := make(chan []byte, 4)
			var d dsacker
			d.send = func(p *stack.PacketBuffer) {
				// Back through the link: sent, not held again.
				if r, held := d.outbound(p); r != nil || held {
					t.Errorf("released ACK replaced (%v) or held again (%v)", r != nil, held)
				}
				sent <- packetBytes(p)
			}
			d.on.Store(true)
			t.Cleanup(d.stop)
			out := func(b []byte) (held bool) {
				pkt := outPacket(t, b)
				r, held := d.outbound(pkt)
				if r != nil {
					r.DecRef()
				}
				return held
			}
			gapACK := func(ack uint32) []byte {
				gap := header.SACKBlock{Start: seqnum.Value(ack + 1000), End: seqnum.Value(ack + 2000)}
				return c.segment(true, header.TCPFlagAck, 1, ack, tsSACK(gap), nil)
			}
			if out(gapACK(rcvNxt)) {
				t.Fatal("an ACK held with no hold set")
			}
			d.holdFor.Store(int64(time.Hour))
			if !out(gapACK(rcvNxt)) {
				t.Fatal("a gap-reporting ACK not held")
			}
			// The gap fills: the covering ACK goes, the held one is dropped.
			if out(c.segment(true, header.TCPFlagAck, 1, rcvNxt+2000, tsSACK(), nil)) {
				t.Fatal("an ACK with no gap held")
			}
			d.mu.Lock()
			n := len(d.holding)
			d.mu.Unlock()
			if n != 0 {
				t.Fatalf("%d ACKs still held after the gap filled; want 0", n)
			}
			// A duplicate arrived: the ACK reporting it is never held.
			d.inbound0(c.segment(false, header.TCPFlagAck, rcvNxt, 1, nil, make([]byte, 100)))
			if out(gapACK(rcvNxt + 2000)) {
				t.Fatal("an ACK with a DSACK report held")
			}
			// Two gap ACKs in a row: the newer one goes out when the hold is
			// up. The hold is long while both go in (a short one could be up
			// between them on a loaded machine), then cut and the timer run.
			if !out(gapACK(rcvNxt+2000)) || !out(gapACK(rcvNxt+2100)) {
				t.Fatal("gap-reporting ACKs not held")
			}
			d.holdFor.Store(int64(time.Nanosecond))
			d.fire()
			select {
			case b := <-sent:
				s, ok := parseTCP(b)
				if !ok || header.TCP(s.tcp).AckNumber() != rcvNxt+2100 {
					t.Fatalf("released %x; want the newer ACK (ack %d)", b, rcvNxt+2100)
				}
			case <-time.After(time.Minute):
				t.Fatal("the held ACK was not sent in a minute")
			}
			if d.acksHeld.Load() != 3 {
				t.Fatalf("ACKsHeld %d; want 3", d.acksHeld.Load())
			}
		})
	}
}
