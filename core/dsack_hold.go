package core

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The link's ACK hold works around RACK's reordering window in gVisor's
// sender, which its millisecond RTT keeps at 1 ms or less however often
// DSACK reports reordering (docs/gvisor-upstream.md §3): a packet held
// back a millisecond on a fast path counts as lost, is retransmitted and
// the window is cut. So a receiving stack's link holds back a pure ACK
// that reports a gap (a SACK block above its acknowledgement) for up to
// Config.SACKHold: if the gap fills in that time the stack's next ACK,
// which covers it, goes out and the held one is dropped; if not, the
// newest ACK held goes out when the time is up, and the sender learns of
// the gap that much later. A newer gap-reporting ACK replaces the held one
// without extending the time; any other segment the stack sends on the
// connection drops it. An ACK with a DSACK report is never held.

// holdLocked reports whether the link holds pkt (header t, flags), an
// outbound segment of f's connection, keeping a reference; it drops a
// held ACK that pkt supersedes.
//
// +checklocks:d.mu
func (d *dsacker) holdLocked(f *dsackFlow, pkt *stack.PacketBuffer, t header.TCP, flags header.TCPFlags) bool {
	if f.released == pkt {
		f.released = nil
		return false
	}
	hold := time.Duration(d.holdFor.Load())
	if hold <= 0 || d.closed {
		return false
	}
	gap := flags == header.TCPFlagAck && pkt.Data().Size() == 0 && pkt.GSOOptions.Type == stack.GSONone &&
		!f.pending && hasSACKAbove(t, f.rcvNxt)
	if !gap {
		d.dropHeldLocked(f)
		return false
	}
	if f.held != nil {
		f.held.DecRef()
	} else {
		f.heldAt = time.Now()
		if d.holding == nil {
			d.holding = make(map[*dsackFlow]struct{})
		}
		d.holding[f], f.holding = struct{}{}, true
		d.armAtLocked(f.heldAt.Add(hold))
	}
	f.held = pkt.IncRef()
	d.acksHeld.Add(1)
	return true
}

// dropHeldLocked drops f's held ACK, if any.
//
// +checklocks:d.mu
func (d *dsacker) dropHeldLocked(f *dsackFlow) {
	if f == nil || f.held == nil {
		return
	}
	f.held.DecRef()
	f.held = nil
	if f.holding {
		delete(d.holding, f)
		f.holding = false
	}
}

// releaseDueLocked adds to out the held ACKs whose time is up (the caller
// sends them and owns their references), and returns it with next moved
// to the earliest time another is up.
//
// +checklocks:d.mu
func (d *dsacker) releaseDueLocked(now time.Time, out []*stack.PacketBuffer, next time.Time) ([]*stack.PacketBuffer, time.Time) {
	hold := time.Duration(d.holdFor.Load())
	for f := range d.holding {
		at := f.heldAt.Add(hold)
		if now.Before(at) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		out = append(out, f.held)
		f.released, f.held = f.held, nil
		delete(d.holding, f)
		f.holding = false
	}
	return out, next
}
